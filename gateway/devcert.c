/*
 * devcert.c - per-device upstream identities (see devcert.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "devcert.h"
#include "util.h"

bool
devcert_identity_safe(const char *identity)
{
	size_t n = identity ? strlen(identity) : 0;

	/* A leading dot covers "." and ".." and hidden files; no slash
	 * means no way out of the folder. */
	if (n == 0 || n > DEVCERT_IDENTITY_MAX || identity[0] == '.') {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = identity[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		    || (c >= '0' && c <= '9') || c == '.' || c == '_'
		    || c == '-' || c == '@' || c == ':')) {
			return false;
		}
	}
	return true;
}

static enum devcert_choice
devcert_fallback(const struct cfg *cfg)
{
	if (cfg->upstream.cert.path != NULL) {
		return DEVCERT_SHARED;
	}
	return cfg->upstream.device_certs.path != NULL ? DEVCERT_NONE
	    : DEVCERT_ANONYMOUS;
}

enum devcert_choice
devcert_pick(const struct cfg *cfg, const struct devstore *pairs,
    const char *identity, const struct devstore_pair **pair)
{
	*pair = NULL;
	if (cfg->upstream.device_certs.path == NULL || identity == NULL
	    || identity[0] == '\0') {
		return devcert_fallback(cfg);
	}
	/* Checked before the lookup too: an identity that could not be a
	 * file name is refused, never matched. */
	if (!devcert_identity_safe(identity)) {
		return DEVCERT_UNSAFE;
	}
	*pair = devstore_find(pairs, identity);
	return *pair != NULL ? DEVCERT_DEVICE : devcert_fallback(cfg);
}

static int
devcert_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The identity of a directory entry "<identity>.crt" whose .key is there
 * too; NULL (no allocation) for any other entry. */
static char *
devcert_pair_of(DIR *d, const char *name)
{
	size_t n = strlen(name);
	char key[DEVCERT_IDENTITY_MAX + 8], *id;
	struct stat st;

	if (n <= 4 || n - 4 > DEVCERT_IDENTITY_MAX
	    || strcmp(name + n - 4, ".crt") != 0) {
		return NULL;
	}
	snprintf(key, sizeof(key), "%.*s.key", (int)(n - 4), name);
	if (fstatat(dirfd(d), key, &st, 0) != 0 || !S_ISREG(st.st_mode)) {
		return NULL;
	}
	id = strndup(name, n - 4);
	if (id != NULL && !devcert_identity_safe(id)) {
		CB_FREE(id);
	}
	return id;
}

char **
devcert_pairs(const char *dir, size_t *count, char *why, size_t why_len)
{
	char **ids = NULL, **grown, *id;
	struct dirent *de;
	DIR *d;

	*count = 0;
	why[0] = '\0';
	d = opendir(dir);
	if (d == NULL) {
		snprintf(why, why_len, "cannot read folder \"%s\": %s", dir,
		    strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if ((id = devcert_pair_of(d, de->d_name)) == NULL) {
			continue;
		}
		grown = realloc(ids, (*count + 1) * sizeof(*ids));
		if (grown == NULL) {
			free(id);
			devcert_pairs_free(ids, *count);
			*count = 0;
			closedir(d);
			snprintf(why, why_len, "out of memory");
			return NULL;
		}
		ids = grown;
		ids[(*count)++] = id;
	}
	closedir(d);
	if (*count > 1) {
		qsort(ids, *count, sizeof(*ids), devcert_cmp);
	}
	return ids;
}

void
devcert_pairs_free(char **ids, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(ids[i]);
	}
	free(ids);
}

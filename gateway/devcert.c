/*
 * devcert.c - per-device upstream identities (see devcert.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devcert.h"

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
devcert_pick(const struct cfg *cfg, const char *identity,
    struct devcert_paths *paths)
{
	const char *dir = cfg->upstream.device_certs.path;
	int a, b;

	if (dir == NULL || identity == NULL || identity[0] == '\0') {
		return devcert_fallback(cfg);
	}
	if (!devcert_identity_safe(identity)) {
		return DEVCERT_UNSAFE;
	}
	a = snprintf(paths->crt, sizeof(paths->crt), "%s/%s.crt", dir,
	    identity);
	b = snprintf(paths->key, sizeof(paths->key), "%s/%s.key", dir,
	    identity);
	if (a < 0 || b < 0 || (size_t)a >= sizeof(paths->crt)
	    || (size_t)b >= sizeof(paths->key)) {
		return DEVCERT_UNSAFE;
	}
	if (access(paths->crt, R_OK) == 0 && access(paths->key, R_OK) == 0) {
		return DEVCERT_DEVICE;
	}
	return devcert_fallback(cfg);
}

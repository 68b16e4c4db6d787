/*
 * devcheck.c - device_certs pairs checked at load (see devcheck.h).
 *
 * The proof costs a signature and its verification, about a millisecond a
 * pair on this wolfSSL build: a folder of 10,000 devices would stall every
 * reload (the loop waits for it) for ten seconds. So a pair proven once is
 * remembered by the identity of its two files (device, inode, size and
 * ctime, which no one can set back), and a reload proves again only the
 * pairs whose files changed. The memory holds the pairs proven by the last
 * load only, so it stays the size of the folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "devcert.h"
#include "devcheck.h"
#include "util.h"
#include "x509.h"

struct devcheck_file {
	dev_t dev;
	ino_t ino;
	off_t size;
	time_t ctime_s;
	long ctime_ns;
};

struct devcheck_pair {
	struct devcheck_file crt, key;
};

static struct devcheck_pair *proven;
static size_t proven_count;

static int
devcheck_cmp_file(const struct devcheck_file *a, const struct devcheck_file *b)
{
	if (a->dev != b->dev) {
		return a->dev < b->dev ? -1 : 1;
	}
	if (a->ino != b->ino) {
		return a->ino < b->ino ? -1 : 1;
	}
	if (a->size != b->size) {
		return a->size < b->size ? -1 : 1;
	}
	if (a->ctime_s != b->ctime_s) {
		return a->ctime_s < b->ctime_s ? -1 : 1;
	}
	return a->ctime_ns < b->ctime_ns ? -1 : a->ctime_ns > b->ctime_ns;
}

static int
devcheck_cmp(const void *pa, const void *pb)
{
	const struct devcheck_pair *a = pa, *b = pb;
	int c = devcheck_cmp_file(&a->crt, &b->crt);

	return c != 0 ? c : devcheck_cmp_file(&a->key, &b->key);
}

static bool
devcheck_stat(const char *path, struct devcheck_file *f)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		return false;
	}
	memset(f, 0, sizeof(*f));
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->ctime_s = st.st_ctim.tv_sec;
	f->ctime_ns = st.st_ctim.tv_nsec;
	return true;
}

/* Loads one pair and proves it; reports what is wrong. */
static bool
devcheck_pair(const struct cfg *cfg, struct cfg_diag *diag, const char *id,
    const char *crt, const char *key)
{
	char why[X509_WHY_LEN];
	struct x509_list list;
	bool ok = true;

	if (!x509_load_file(crt, &list, why)) {
		cfg_diag_add(diag, true, "%s:%u: [upstream] device_certs: %s",
		    cfg->path, cfg->upstream.device_certs.line, why);
		return false;
	}
	if (!x509_key_matches(list.certs[0], key, why)) {
		cfg_diag_add(diag, true, "%s:%u: [upstream] device_certs: %s; "
		    "\"%s.key\" must hold the private key of the first "
		    "certificate in \"%s\"", cfg->path,
		    cfg->upstream.device_certs.line, why, id, crt);
		ok = false;
	}
	x509_list_free(&list);
	return ok;
}

bool
devcheck_run(const struct cfg *cfg, struct cfg_diag *diag)
{
	const struct cfg_file *dc = &cfg->upstream.device_certs;
	char why[X509_WHY_LEN], crt[PATH_MAX], key[PATH_MAX];
	struct devcheck_pair *next, pair;
	size_t count, next_count = 0;
	char **ids;
	bool ok = true, known;

	ids = devcert_pairs(dc->path, &count, why, sizeof(why));
	if (ids == NULL && why[0] != '\0') {
		cfg_diag_add(diag, true, "%s:%u: [upstream] device_certs: %s",
		    cfg->path, dc->line, why);
		return false;
	}
	/* Without memory for the list, every pair is simply proven again
	 * next time. */
	next = count > 0 ? calloc(count, sizeof(*next)) : NULL;
	for (size_t i = 0; i < count; i++) {
		snprintf(crt, sizeof(crt), "%s/%s.crt", dc->path, ids[i]);
		snprintf(key, sizeof(key), "%s/%s.key", dc->path, ids[i]);
		known = devcheck_stat(crt, &pair.crt) && devcheck_stat(key,
		    &pair.key);
		if (known && proven_count > 0 && bsearch(&pair, proven,
		    proven_count, sizeof(pair), devcheck_cmp) != NULL) {
			/* unchanged since it was proven */
		} else if (!devcheck_pair(cfg, diag, ids[i], crt, key)) {
			ok = false;
			continue;
		}
		if (known && next != NULL) {
			next[next_count++] = pair;
		}
	}
	devcert_pairs_free(ids, count);
	free(proven);
	proven = next;
	proven_count = next != NULL ? next_count : 0;
	if (proven_count > 1) {
		qsort(proven, proven_count, sizeof(*proven), devcheck_cmp);
	}
	return ok;
}

void
devcheck_forget(void)
{
	CB_FREE(proven);
	proven_count = 0;
}

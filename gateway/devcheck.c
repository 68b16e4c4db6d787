/*
 * devcheck.c - device_certs pairs read and checked at load (see
 * devcheck.h).
 *
 * The proof costs a signature and its verification, about a millisecond a
 * pair on this wolfSSL build, and slow storage adds its own time per file:
 * a folder of 10,000 devices would stall every reload (the loop waits for
 * it) for ten seconds or more. So the pairs of the last load are kept with
 * the identity of their two files (device, inode, size and ctime), and a
 * reload reads and proves again only the pairs whose files changed; the
 * others are shared with the previous store, not copied. What is kept is
 * the last load's store (and the stores of generations still in use), so
 * it stays the size of the folder.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "devcert.h"
#include "devcheck.h"
#include "util.h"
#include "x509.h"

/* The last run's pairs, the starting point of the next run (generations
 * hold their own references). */
static struct devstore *last;

/* One run: the store being filled, and a context on which each new pair
 * is loaded the way a session will load it. */
struct devcheck_load {
	const struct cfg *cfg;
	struct cfg_diag *diag;
	struct devstore *next;
	WOLFSSL_CTX *ctx;
};

static bool
devcheck_stat(const char *path, struct devstore_file *f)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		return false;
	}
	devstore_file_of(&st, f);
	return true;
}

/* Whether wolfSSL takes the pair from these buffers, as
 * uplink_use_identity will for every session of this device: a pair the
 * load accepts must not fail in each handshake instead. */
static bool
devcheck_usable(struct devcheck_load *ld, const struct devstore_pair *p)
{
	if (ld->ctx == NULL) {
		ld->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
		if (ld->ctx == NULL) {
			return false;
		}
	}
	return wolfSSL_CTX_use_certificate_chain_buffer_format(ld->ctx,
	    p->chain, (long)p->chain_len, WOLFSSL_FILETYPE_ASN1)
	    == WOLFSSL_SUCCESS
	    && wolfSSL_CTX_use_PrivateKey_buffer(ld->ctx, p->key,
	    (long)p->key_len, WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS;
}

/* Reads one pair, proves it and adds it to the store; reports what is
 * wrong. Each file is read once: its identity comes from the open file,
 * so the bytes kept are the bytes of the file identified. */
static bool
devcheck_read(struct devcheck_load *ld, const char *id, const char *crt,
    const char *key)
{
	const struct cfg *cfg = ld->cfg;
	char why[X509_WHY_LEN], *cbuf, *kbuf = NULL;
	struct devstore_pair pair = { .id = id };
	unsigned char *chain = NULL, *kder = NULL;
	struct x509_list list = { NULL, 0 };
	size_t clen = 0, klen = 0;
	struct stat cst, kst;
	bool ok = false;

	cbuf = x509_read_file(crt, &clen, &cst, why);
	if (cbuf == NULL || !x509_load_buffer(crt, cbuf, clen, &list, why)) {
		cfg_diag_add(ld->diag, true, "%s:%u: [upstream] device_certs: "
		    "%s", cfg->path, cfg->upstream.device_certs.line, why);
		goto out;
	}
	kbuf = x509_read_file(key, &klen, &kst, why);
	if (kbuf == NULL || !x509_key_der(key, kbuf, klen, &kder,
	    &pair.key_len, why) || !x509_key_matches_der(list.certs[0], key,
	    kder, pair.key_len, why)) {
		cfg_diag_add(ld->diag, true, "%s:%u: [upstream] device_certs: "
		    "%s; \"%s.key\" must hold the private key of the first "
		    "certificate in \"%s\"", cfg->path,
		    cfg->upstream.device_certs.line, why, id, crt);
		goto out;
	}
	chain = x509_list_der(&list, &pair.chain_len);
	if (chain == NULL) {
		cfg_diag_add(ld->diag, true, "%s:%u: [upstream] device_certs: "
		    "out of memory", cfg->path,
		    cfg->upstream.device_certs.line);
		goto out;
	}
	pair.chain = chain;
	pair.key = kder;
	devstore_file_of(&cst, &pair.crt_file);
	devstore_file_of(&kst, &pair.key_file);
	if (!devcheck_usable(ld, &pair)) {
		cfg_diag_add(ld->diag, true, "%s:%u: [upstream] device_certs: "
		    "wolfSSL cannot use \"%s\" with \"%s\" as an upstream "
		    "identity", cfg->path, cfg->upstream.device_certs.line,
		    crt, key);
	} else if (!devstore_add(ld->next, &pair)) {
		cfg_diag_add(ld->diag, true, "%s:%u: [upstream] device_certs: "
		    "out of memory", cfg->path,
		    cfg->upstream.device_certs.line);
	} else {
		ok = true;
	}
out:
	x509_list_free(&list);
	if (kbuf != NULL) {
		explicit_bzero(kbuf, klen);
		free(kbuf);
	}
	if (kder != NULL) {
		explicit_bzero(kder, pair.key_len);
		free(kder);
	}
	free(chain);
	free(cbuf);
	return ok;
}

bool
devcheck_run(const struct cfg *cfg, struct cfg_diag *diag,
    struct devstore **store)
{
	const struct cfg_file *dc = &cfg->upstream.device_certs;
	char why[X509_WHY_LEN], crt[PATH_MAX], key[PATH_MAX];
	struct devcheck_load ld = { cfg, diag, NULL, NULL };
	struct devstore_file crt_file, key_file;
	size_t count;
	char **ids;
	bool ok = true;

	*store = NULL;
	ids = devcert_pairs(dc->path, &count, why, sizeof(why));
	if (ids == NULL && why[0] != '\0') {
		cfg_diag_add(diag, true, "%s:%u: [upstream] device_certs: %s",
		    cfg->path, dc->line, why);
		return false;
	}
	ld.next = devstore_new(count);
	if (ld.next == NULL) {
		cfg_diag_add(diag, true, "%s:%u: [upstream] device_certs: out "
		    "of memory", cfg->path, dc->line);
		devcert_pairs_free(ids, count);
		return false;
	}
	for (size_t i = 0; i < count; i++) {
		snprintf(crt, sizeof(crt), "%s/%s.crt", dc->path, ids[i]);
		snprintf(key, sizeof(key), "%s/%s.key", dc->path, ids[i]);
		if (devcheck_stat(crt, &crt_file) && devcheck_stat(key,
		    &key_file) && devstore_reuse(ld.next, last, ids[i],
		    &crt_file, &key_file)) {
			continue; /* unchanged since it was read and proven */
		}
		if (!devcheck_read(&ld, ids[i], crt, key)) {
			ok = false;
		}
	}
	devcert_pairs_free(ids, count);
	if (ld.ctx != NULL) {
		wolfSSL_CTX_free(ld.ctx);
	}
	devstore_unref(last);
	last = ld.next;
	*store = devstore_ref(last);
	return ok;
}

void
devcheck_forget(void)
{
	devstore_unref(last);
	last = NULL;
}

/*
 * certinv.c - the certificate inventory of a configuration (see certinv.h).
 *
 * Only reads files and records facts: judging them is certinv_level_of's
 * job, and reporting them the caller's (certbridge-certs, the gateway's
 * expiry watch). A file that cannot be read is one error line and no item,
 * never a reason to stop: an operator wants the whole picture at once.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certinv.h"
#include "util.h"


/* Where an item comes from, for its fields and its error lines. */
struct certinv_src {
	enum certinv_role role;
	const char *name;      /* the item name */
	const char *section;   /* "downstream", "ca.legacy", "upstream" */
	const char *key;       /* "cert", "file", "crl", "ca", "device_certs" */
	const char *path;
	unsigned line;
	bool bundle_ok;        /* may be marked in_bundle */
};

/* Appends one formatted error line; false when out of memory. */
bool
certinv_add_error(struct certinv *inv, const char *fmt, ...)
{
	va_list ap;
	char **grown;
	char *line;

	va_start(ap, fmt);
	line = cfg_vformat(fmt, ap);
	va_end(ap);
	if (line == NULL) {
		return false;
	}
	grown = realloc(inv->errors, (inv->error_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(line);
		return false;
	}
	inv->errors = grown;
	inv->errors[inv->error_count++] = line;
	return true;
}

static bool
certinv_src_error(struct certinv *inv, const struct certinv_src *src,
    const char *why, const char *cfg_path)
{
	return certinv_add_error(inv, "%s:%u: [%s] %s: %s", cfg_path, src->line,
	    src->section, src->key, why);
}

/* A new zeroed item at the end of inv with the source's fields filled in;
 * NULL when out of memory. */
static struct certinv_item *
certinv_push(struct certinv *inv, const struct certinv_src *src)
{
	struct certinv_item *grown, *it;
	char *path;

	path = strdup(src->path);
	if (path == NULL) {
		return NULL;
	}
	grown = realloc(inv->items, (inv->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(path);
		return NULL;
	}
	inv->items = grown;
	it = &inv->items[inv->count++];
	memset(it, 0, sizeof(*it));
	it->role = src->role;
	snprintf(it->name, sizeof(it->name), "%s", src->name);
	it->path = path;
	it->line = src->line;
	it->index = 1;
	it->of = 1;
	return it;
}

/* Every certificate of one file. False only when out of memory. */
static bool
certinv_add_certs(struct certinv *inv, const struct certinv_src *src,
    const char *cfg_path)
{
	struct x509_list list;
	char why[X509_WHY_LEN];
	bool ok = true;

	if (!x509_load_file(src->path, &list, why)) {
		return certinv_src_error(inv, src, why, cfg_path);
	}
	for (size_t i = 0; i < list.count && ok; i++) {
		WOLFSSL_X509 *cert = list.certs[i];
		struct certinv_item *it;
		int64_t nb, na;

		if (!x509_not_before(cert, &nb) || !x509_not_after(cert, &na)) {
			snprintf(why, sizeof(why), "\"%s\": certificate %zu of "
			    "%zu has unreadable validity dates", src->path,
			    i + 1, list.count);
			ok = certinv_src_error(inv, src, why, cfg_path);
			continue;
		}
		it = certinv_push(inv, src);
		if (it == NULL) {
			ok = false;
			break;
		}
		it->index = i + 1;
		it->of = list.count;
		x509_subject(cert, it->subject);
		x509_issuer(cert, it->issuer);
		it->not_before = nb;
		it->not_after = na;
		x509_fingerprint_hex(cert, it->fingerprint);
		it->is_ca = wolfSSL_X509_get_isCA(cert) != 0;
		it->in_bundle = src->bundle_ok
		    && certtime_is_bundle(list.count);
	}
	x509_list_free(&list);
	return ok;
}

static bool
certinv_add_crl(struct certinv *inv, const struct certinv_src *src,
    const char *cfg_path)
{
	struct x509_crl_file crl;
	struct certinv_item *it;
	char why[X509_WHY_LEN];

	if (!x509_crl_read(src->path, &crl, why)) {
		return certinv_src_error(inv, src, why, cfg_path);
	}
	it = certinv_push(inv, src);
	if (it != NULL) {
		snprintf(it->subject, sizeof(it->subject), "%s", crl.issuer);
		snprintf(it->issuer, sizeof(it->issuer), "%s", crl.issuer);
		it->not_before = crl.this_update;
		it->not_after = crl.next_update;
	}
	x509_crl_free(&crl);
	return it != NULL;
}

static int
certinv_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "*.crt" names of dir, sorted; NULL with *count 0 and why filled when
 * dir cannot be read, NULL with *count 0 and why empty when out of memory
 * (an empty folder gives a non-NULL empty list). */
static char **
certinv_list_dir(const char *dir, size_t *count, char why[X509_WHY_LEN])
{
	char **names, **grown;
	struct dirent *de;
	DIR *d;

	*count = 0;
	why[0] = '\0';
	names = malloc(sizeof(*names));
	if (names == NULL) {
		return NULL;
	}
	d = opendir(dir);
	if (d == NULL) {
		snprintf(why, X509_WHY_LEN, "cannot read the folder \"%s\": %s",
		    dir, strerror(errno));
		free(names);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || n <= 4
		    || strcmp(de->d_name + n - 4, ".crt") != 0) {
			continue;
		}
		grown = realloc(names, (*count + 1) * sizeof(*grown));
		if (grown == NULL || (grown[*count] = strdup(de->d_name))
		    == NULL) {
			names = grown != NULL ? grown : names;
			goto oom;
		}
		names = grown;
		(*count)++;
	}
	closedir(d);
	qsort(names, *count, sizeof(*names), certinv_cmp_names);
	return names;
oom:
	closedir(d);
	for (size_t i = 0; i < *count; i++) {
		free(names[i]);
	}
	free(names);
	*count = 0;
	return NULL;
}

static bool
certinv_add_device_certs(struct certinv *inv, const struct cfg *cfg)
{
	const struct cfg_file *dc = &cfg->upstream.device_certs;
	struct certinv_src src = { CERTINV_DEVICE_CERT, NULL, "upstream",
	    "device_certs", NULL, dc->line, false };
	char why[X509_WHY_LEN], name[CERTINV_NAME_LEN];
	size_t count, len;
	char **names, *path;
	bool ok = true;

	names = certinv_list_dir(dc->path, &count, why);
	if (names == NULL) {
		return why[0] != '\0' && certinv_src_error(inv, &src, why,
		    cfg->path);
	}
	for (size_t i = 0; i < count; i++) {
		len = strlen(dc->path) + strlen(names[i]) + 2;
		path = ok ? malloc(len) : NULL;
		if (path != NULL) {
			snprintf(path, len, "%s/%s", dc->path, names[i]);
			snprintf(name, sizeof(name), "device:%.*s",
			    (int)(strlen(names[i]) - 4), names[i]);
			src.name = name;
			src.path = path;
			ok = certinv_add_certs(inv, &src, cfg->path);
			free(path);
		} else {
			ok = false;
		}
		free(names[i]);
	}
	free(names);
	return ok;
}

/* One file the configuration names (nothing when the key is absent). The
 * item name is the section's: "downstream", "ca.NAME", "upstream". */
static bool
certinv_add_file(struct certinv *inv, const struct cfg *cfg,
    enum certinv_role role, const char *section, const char *key,
    const struct cfg_file *file)
{
	struct certinv_src src = { role, section, section, key, file->path,
	    file->line, role == CERTINV_UPSTREAM_CA };

	if (file->path == NULL) {
		return true;
	}
	return role == CERTINV_CRL ? certinv_add_crl(inv, &src, cfg->path)
	    : certinv_add_certs(inv, &src, cfg->path);
}

static bool
certinv_add_all(const struct cfg *cfg, struct certinv *inv)
{
	char section[64];
	bool ok;

	ok = certinv_add_file(inv, cfg, CERTINV_DOWNSTREAM, "downstream",
	    "cert", &cfg->downstream.cert);
	/* Each SNI chain is shown to devices too: named "sni:HOST". */
	for (size_t i = 0; ok && i < cfg->downstream.sni_count; i++) {
		const struct cfg_sni *e = &cfg->downstream.sni[i];
		char name[CERTINV_NAME_LEN], key[300];
		struct certinv_src src = { CERTINV_DOWNSTREAM, name,
		    "downstream", key, e->cert.path, e->cert.line, false };

		if (e->cert.path == NULL) {
			continue;
		}
		snprintf(name, sizeof(name), "sni:%s", e->host);
		snprintf(key, sizeof(key), "sni_cert.%s", e->host);
		ok = certinv_add_certs(inv, &src, cfg->path);
	}
	for (size_t i = 0; ok && i < cfg->ca_count; i++) {
		const struct cfg_ca *ca = &cfg->cas[i];

		snprintf(section, sizeof(section), "ca.%s", ca->name);
		ok = certinv_add_file(inv, cfg, CERTINV_DEVICE_CA, section,
		    "file", &ca->file) && certinv_add_file(inv, cfg,
		    CERTINV_CRL, section, "crl", &ca->crl);
	}
	ok = ok && certinv_add_file(inv, cfg, CERTINV_UPSTREAM_CA, "upstream",
	    "ca", &cfg->upstream.ca) && certinv_add_file(inv, cfg,
	    CERTINV_UPSTREAM_CERT, "upstream", "cert", &cfg->upstream.cert);
	if (ok && cfg->upstream.device_certs.path != NULL) {
		ok = certinv_add_device_certs(inv, cfg);
	}
	return ok;
}

bool
certinv_build(const struct cfg *cfg, struct certinv *inv)
{
	memset(inv, 0, sizeof(*inv));
	if (!certinv_add_all(cfg, inv)) {
		certinv_free(inv);
		return false;
	}
	return true;
}

void
certinv_free(struct certinv *inv)
{
	for (size_t i = 0; i < inv->count; i++) {
		CB_FREE(inv->items[i].path);
	}
	CB_FREE(inv->items);
	inv->count = 0;
	for (size_t i = 0; i < inv->error_count; i++) {
		CB_FREE(inv->errors[i]);
	}
	CB_FREE(inv->errors);
	inv->error_count = 0;
}

enum certinv_level
certinv_level_of(const struct certinv_item *item, int64_t now,
    int64_t warn_s, int64_t crit_s)
{
	if (item->in_bundle) {
		return CERTINV_OK;
	}
	if (item->role == CERTINV_CRL && item->not_after == 0) {
		return now < item->not_before ? CERTINV_NOT_YET_VALID
		    : CERTINV_OK;
	}
	if (item->role == CERTINV_CRL) {
		/* A CRL lives days or weeks, not years: it is due when a
		 * quarter of its life is left (at least a day), as -t and
		 * the reload say (certtime_crl_warn_window), not 30 days
		 * ahead, which a monthly CRL is from the day it is issued. */
		int64_t window = certtime_crl_warn_window(item->not_before,
		    item->not_after);

		warn_s = warn_s < window ? warn_s : window;
		crit_s = crit_s < window / 2 ? crit_s : window / 2;
	}
	return (enum certinv_level)certtime_level(item->not_before,
	    item->not_after, now, warn_s, crit_s);
}

int64_t
certinv_days_left(const struct certinv_item *item, int64_t now)
{
	if (item->role == CERTINV_CRL && item->not_after == 0) {
		return 0;
	}
	return certtime_days_left(item->not_after, now);
}

const char *
certinv_role_name(enum certinv_role role)
{
	static const char *const names[] = {
		[CERTINV_DOWNSTREAM] = "downstream",
		[CERTINV_DEVICE_CA] = "device-ca",
		[CERTINV_CRL] = "crl",
		[CERTINV_UPSTREAM_CA] = "upstream-ca",
		[CERTINV_UPSTREAM_CERT] = "upstream-cert",
		[CERTINV_DEVICE_CERT] = "device-cert",
	};

	if ((unsigned)role >= CB_ARRAY_SIZE(names)) {
		return "unknown";
	}
	return names[role];
}

const char *
certinv_level_name(enum certinv_level level)
{
	static const char *const names[] = {
		[CERTINV_OK] = "ok",
		[CERTINV_WARN] = "warning",
		[CERTINV_CRIT] = "critical",
		[CERTINV_EXPIRED] = "expired",
		[CERTINV_NOT_YET_VALID] = "not-yet-valid",
	};

	if ((unsigned)level >= CB_ARRAY_SIZE(names)) {
		return "unknown";
	}
	return names[level];
}

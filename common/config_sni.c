/*
 * config_sni.c - [downstream] sni_cert.HOST and sni_key.HOST: a chain
 * (and its key) for devices that ask for HOST by SNI, beside the default
 * [downstream] cert (docs/configuration.md, "A chain per SNI name").
 *
 * HOST is one DNS name, matched exactly and without regard to case (the
 * names pinned fleets were built against: no wildcards). Each HOST needs
 * both keys; a HOST written twice is refused like any duplicate key.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "p11uri.h"

#define SNI_CERT "sni_cert."
#define SNI_KEY "sni_key."
#define SNI_HOST_MAX 253

bool
cfg_sni_is_key(const char *name)
{
	return strncmp(name, SNI_CERT, strlen(SNI_CERT)) == 0
	    || strncmp(name, SNI_KEY, strlen(SNI_KEY)) == 0;
}

/* A DNS name: labels of letters, digits and inner hyphens, 1-63 bytes,
 * at most 253 in all, no empty label; lowered into out. */
static bool
sni_host_ok(const char *host, char out[SNI_HOST_MAX + 1])
{
	size_t n = strlen(host), label = 0;

	if (n == 0 || n > SNI_HOST_MAX) {
		return false;
	}
	for (size_t i = 0; i <= n; i++) {
		char c = host[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || host[i - 1] == '-') {
				return false;
			}
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		    || (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			if (++label > 63) {
				return false;
			}
		} else {
			return false;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	return true;
}

static struct cfg_sni *
sni_entry(struct cfg_loader *ld, const char *host)
{
	struct cfg *cfg = ld->cfg;
	struct cfg_sni *grown;

	for (size_t i = 0; i < cfg->downstream.sni_count; i++) {
		if (strcmp(cfg->downstream.sni[i].host, host) == 0) {
			return &cfg->downstream.sni[i];
		}
	}
	grown = realloc(cfg->downstream.sni, (cfg->downstream.sni_count + 1)
	    * sizeof(*grown));
	if (grown == NULL) {
		return NULL;
	}
	cfg->downstream.sni = grown;
	grown += cfg->downstream.sni_count;
	memset(grown, 0, sizeof(*grown));
	grown->host = strdup(host);
	if (grown->host == NULL) {
		return NULL;
	}
	cfg->downstream.sni_count++;
	return grown;
}

void
cfg_sni_key(struct cfg_loader *ld, const char *name, const char *value,
    unsigned line)
{
	bool is_cert = strncmp(name, SNI_CERT, strlen(SNI_CERT)) == 0;
	const char *host = name + (is_cert ? strlen(SNI_CERT) : strlen(SNI_KEY));
	char lower[SNI_HOST_MAX + 1];
	struct in_addr v4;
	struct cfg_sni *e;
	struct cfg_file *f;

	if (inet_pton(AF_INET, host, &v4) == 1) {
		/* RFC 6066 3: SNI carries host names, never a literal
		 * address; a device that sends one anyway is non-compliant
		 * and cannot be planned for. */
		cfg_key_report(ld, true, line, "downstream", name, "\"%s\" is an "
		    "IP address; SNI carries host names only, so no compliant "
		    "device asks for it: use the DNS name the devices connect "
		    "to", host);
		return;
	}
	if (!sni_host_ok(host, lower)) {
		cfg_key_report(ld, true, line, "downstream", name, "\"%.80s\" is "
		    "not a host name; write %sHOST with HOST a DNS name the "
		    "devices send by SNI, as in %slegacy.example.com", host,
		    is_cert ? SNI_CERT : SNI_KEY, is_cert ? SNI_CERT : SNI_KEY);
		return;
	}
	if (*value == '\0') {
		cfg_key_report(ld, true, line, "downstream", name, "empty value; "
		    "name the %s file, or remove the line", is_cert
		    ? "PEM chain (leaf first)" : "private key");
		return;
	}
	if (!is_cert && p11uri_is(value)) {
		/* A name's key is read into memory at load and set per
		 * connection; a token key is not (docs/configuration.md,
		 * "Keys in hardware"). */
		cfg_key_report(ld, true, line, "downstream", name, "a PKCS#11 "
		    "key is taken for [downstream] key and [upstream] key "
		    "only; an SNI chain needs its key in a file (mode 0600)");
		return;
	}
	e = sni_entry(ld, lower);
	if (e == NULL) {
		cfg_report(ld, true, line, "out of memory");
		return;
	}
	f = is_cert ? &e->cert : &e->key;
	if (f->path != NULL) {
		cfg_key_report(ld, true, line, "downstream", name, "duplicate "
		    "key; already set at line %u (remove one)", f->line);
		return;
	}
	f->path = cfg_resolve(ld, value);
	f->line = line;
	if (f->path != NULL) {
		cfg_check_file(ld, "downstream", name, f->path, line);
	}
}

void
cfg_sni_check(struct cfg_loader *ld)
{
	const struct cfg *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->downstream.sni_count; i++) {
		const struct cfg_sni *e = &cfg->downstream.sni[i];

		if (e->cert.path == NULL && e->key.path != NULL) {
			cfg_report(ld, true, e->key.line, "[downstream] "
			    SNI_KEY "%s: no " SNI_CERT "%s beside it; give the "
			    "chain this key belongs to, or remove the line",
			    e->host, e->host);
		} else if (e->key.path == NULL && e->cert.path != NULL) {
			cfg_report(ld, true, e->cert.line, "[downstream] "
			    SNI_CERT "%s: no " SNI_KEY "%s beside it; give "
			    "the chain's private key", e->host, e->host);
		}
	}
}

void
cfg_sni_free(struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->downstream.sni_count; i++) {
		free(cfg->downstream.sni[i].host);
		free(cfg->downstream.sni[i].cert.path);
		free(cfg->downstream.sni[i].key.path);
	}
	free(cfg->downstream.sni);
}

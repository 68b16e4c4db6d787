/*
 * certinv_keys.c - whether each private key file the configuration names
 * belongs to its certificate (see certinv.h), for certbridge-certs: an
 * inventory that says "ok" for a configuration the gateway would refuse at
 * its next reload sends the operator the wrong way.
 */
#include <stdio.h>
#include <string.h>

#include "certinv.h"
#include "p11uri.h"
#include "x509.h"

/* One pair: the key must be the leaf's. A key in a token (pkcs11: URI) is
 * proven by certbridge -t, which logs in; an inventory does not. */
static bool
certinv_check_pair(const struct cfg *cfg, struct certinv *inv,
    const char *section, const char *key_name, const struct cfg_file *cert,
    const struct cfg_file *key)
{
	struct x509_list list;
	char why[X509_WHY_LEN];
	bool ok = true;

	if (cert->path == NULL || key->path == NULL || p11uri_is(key->path)) {
		return true;
	}
	if (!x509_load_file(cert->path, &list, why)) {
		return true; /* certinv_build has said what is wrong with it */
	}
	if (list.count > 0 && !x509_key_matches(list.certs[0], key->path,
	    why)) {
		ok = certinv_add_error(inv, "%s:%u: [%s] %s: %s", cfg->path,
		    key->line, section, key_name, why);
	}
	x509_list_free(&list);
	return ok;
}

bool
certinv_check_keys(const struct cfg *cfg, struct certinv *inv)
{
	bool ok = certinv_check_pair(cfg, inv, "downstream", "key",
	    &cfg->downstream.cert, &cfg->downstream.key)
	    && certinv_check_pair(cfg, inv, "upstream", "key",
	    &cfg->upstream.cert, &cfg->upstream.key);

	for (size_t i = 0; ok && i < cfg->downstream.sni_count; i++) {
		const struct cfg_sni *e = &cfg->downstream.sni[i];
		char key_name[300];

		snprintf(key_name, sizeof(key_name), "sni_key.%s", e->host);
		ok = certinv_check_pair(cfg, inv, "downstream", key_name,
		    &e->cert, &e->key);
	}
	return ok;
}

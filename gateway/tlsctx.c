/*
 * tlsctx.c - building the downstream and upstream wolfSSL contexts.
 *
 * Debian's wolfSSL is built with NULL, anonymous and RC4 suites compiled in:
 * a context is never left on the library's default list, and a cipher list
 * from the INI is refused when it names any of them.
 */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certtime.h"
#include "clock.h"
#include "devcheck.h"
#include "p11uri.h"
#include "parse.h"
#include "tlsclient.h"
#include "tlsctx.h"
#include "util.h"
#include "x509.h"

/* AEAD suites with forward secrecy only. ChaCha20-Poly1305 first: small
 * devices without AES hardware gain most, and Debian's wolfSSL
 * (WOLFSSL=system) has no AES-NI code, where ChaCha20 relays about 2.5
 * times faster; with the default build's AES-NI both cost the same within
 * the noise (docs/benchmarks.md, docs/wolfssl.md). */
static const char default_ciphers_modern[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:"
    "TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

/* TLS 1.0/1.1 devices have no AEAD suites; when the INI asks for those
 * versions explicitly, add the CBC suites they can speak, still with
 * forward secrecy. */
static const char default_ciphers_legacy[] =
    ":ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA";

/* TLS 1.3 suites of the default list, kept when a custom list names none
 * (as OpenSSL keeps its TLS 1.3 "ciphersuites" apart from "cipher"). */
static const char default_ciphers_tls13[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:"
    "TLS13-AES256-GCM-SHA384";

/* Name parts of suites without encryption, without authentication, or
 * broken: refused whichever way a list enables them (by name or through
 * a keyword such as ALL or HIGH). */
static const char *const unsafe_cipher_marks[] = {
    "NULL", "ADH", "AECDH", "anon", "RC4", "EXP", "DES-CBC-", "MD5", "PSK",
    "TLS13-SHA256-SHA256", "TLS13-SHA384-SHA384", NULL,
};

bool
tlsctx_global_init(void)
{
	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		return false;
	}
	return tlsclient_init();
}

void
tlsctx_global_cleanup(void)
{
	devcheck_forget();
	wolfSSL_Cleanup();
}

static int
tlsctx_proto(int minor)
{
	switch (minor) {
	case 10:
		return TLS1_VERSION;
	case 11:
		return TLS1_1_VERSION;
	case 12:
		return TLS1_2_VERSION;
	default:
		return TLS1_3_VERSION;
	}
}

bool
tlsctx_report_dates(const struct cfg *cfg, struct cfg_diag *diag,
    const char *where, unsigned line, const struct x509_list *list,
    bool as_errors)
{
	char subject[X509_NAME_LEN], when[40];
	int64_t now = clock_wall_s(), nb, na;
	bool ok = true;

	for (size_t i = 0; i < list->count; i++) {
		WOLFSSL_X509 *c = list->certs[i];

		x509_subject(c, subject);
		if (x509_not_before(c, &nb) && nb > now) {
			parse_format_date(nb, when, sizeof(when));
			cfg_diag_add(diag, as_errors, "%s:%u: %s: %scertificate "
			    "%s is not valid before %s; check this machine's "
			    "clock and the issuing machine's", cfg->path, line,
			    where, as_errors ? "" : "warning: ", subject, when);
			ok = false;
		}
		if (!x509_not_after(c, &na)) {
			continue;
		}
		parse_format_date(na, when, sizeof(when));
		switch (certtime_level(INT64_MIN, na, now,
		    CERTTIME_WARN_DAYS * CERTTIME_DAY_S, 0)) {
		case CERTTIME_EXPIRED:
			cfg_diag_add(diag, as_errors, "%s:%u: %s: %scertificate "
			    "%s expired on %s; renew it", cfg->path, line, where,
			    as_errors ? "" : "warning: ", subject, when);
			ok = false;
			break;
		case CERTTIME_WARN:
			cfg_diag_add(diag, false, "%s:%u: %s: warning: "
			    "certificate %s expires on %s (in %lld days); renew "
			    "it soon", cfg->path, line, where, subject, when,
			    (long long)certtime_days_left(na, now));
			break;
		default:
			break;
		}
	}
	return ok || !as_errors;
}

/* A private key others can read is one copy away from a forged gateway:
 * say so (a warning: the file still works). */
static void
tlsctx_check_key_mode(const struct cfg *cfg, struct cfg_diag *diag,
    const char *where, unsigned line, const char *key_path)
{
	struct stat st;

	if (stat(key_path, &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO))
	    == 0) {
		return;
	}
	cfg_diag_add(diag, false, "%s:%u: %s: warning: the private key \"%s\" "
	    "can be read by %s (mode %04o); chmod 600 it, owned by the user "
	    "certbridge runs as", cfg->path, line, where, key_path,
	    (st.st_mode & S_IRWXO) ? "others" : "its group",
	    (unsigned)(st.st_mode & 07777));
}

/*
 * Loads a certificate file the gateway presents (or trusts) and checks what
 * an operator would want to know before a device finds out: that it
 * parses, that the key belongs to it, and its dates. Returns false when the
 * file is unusable.
 */
static bool
tlsctx_check_file(const struct cfg *cfg, struct cfg_diag *diag,
    const char *where, const struct cfg_file *file, const char *key_where,
    const struct cfg_file *key, bool want_ca)
{
	const char *key_path = key != NULL ? key->path : NULL;
	struct x509_list list;
	char why[X509_WHY_LEN], subject[X509_NAME_LEN];
	bool ok = true;

	if (!x509_load_file(file->path, &list, why)) {
		cfg_diag_add(diag, true, "%s:%u: %s: %s", cfg->path, file->line,
		    where, why);
		return false;
	}
	if (key_path != NULL && p11uri_is(key_path)) {
		/* Proven in the token when the context takes it (p11.h). */
	} else if (key_path != NULL) {
		/* A key that does not fit is the key line's problem
		 * (docs/configuration.md, "Configuration that would weaken
		 * trust"). */
		if (!x509_key_matches(list.certs[0], key_path, why)) {
			cfg_diag_add(diag, true, "%s:%u: %s: %s; the key file "
			    "must hold the private key of the first "
			    "certificate in \"%s\" (%s)", cfg->path,
			    key->line, key_where, why, file->path, where);
			ok = false;
		}
		tlsctx_check_key_mode(cfg, diag, key_where, key->line,
		    key_path);
	}
	for (size_t i = 0; i < list.count; i++) {
		x509_subject(list.certs[i], subject);
		if (want_ca && !wolfSSL_X509_get_isCA(list.certs[i])) {
			cfg_diag_add(diag, true, "%s:%u: %s: certificate %zu in "
			    "\"%s\" (%s) is not a CA certificate; this file "
			    "must hold roots (or intermediates), never a "
			    "leaf: a pinned leaf breaks at the next rotation",
			    cfg->path, file->line, where, i + 1, file->path,
			    subject);
			ok = false;
		}
	}
	/* A root bundle (the system's, say) may hold roots that expired
	 * long ago and harm no one: for roots, dates are warnings, and only
	 * for small, hand-made bundles. */
	if (!want_ca) {
		ok = tlsctx_report_dates(cfg, diag, where, file->line, &list,
		    true) && ok;
	} else if (!certtime_is_bundle(list.count)) {
		tlsctx_report_dates(cfg, diag, where, file->line, &list, false);
	}
	x509_list_free(&list);
	return ok;
}

static bool
tlsctx_cipher_unsafe(const char *name)
{
	for (size_t i = 0; unsafe_cipher_marks[i] != NULL; i++) {
		if (strstr(name, unsafe_cipher_marks[i]) != NULL) {
			return true;
		}
	}
	return false;
}

/*
 * wolfSSL's own name of a suite ("TLS13-AES128-GCM-SHA256") for either of
 * the names wolfSSL_CIPHER_get_name() may give: its own, or IANA's
 * ("TLS_AES_128_GCM_SHA256") when the library was built without
 * WOLFSSL_CIPHER_INTERNALNAME or WOLFSSL_QT (docs/architecture.md,
 * "wolfSSL facts"). The suites below are judged by wolfSSL's names, so
 * a list means the same whichever wolfSSL certbridge runs on. The IANA
 * name is found through the suite's two bytes; a name found in neither
 * table is returned as it is.
 */
static const char *
tlsctx_wolf_name(const char *name)
{
	static char all[16384];
	unsigned char c0, c1;
	int flags;
	char *save = NULL;

	if (wolfSSL_get_cipher_suite_from_name(name, &c0, &c1, &flags) == 0) {
		return name;
	}
	if (wolfSSL_get_ciphers(all, (int)sizeof(all)) != WOLFSSL_SUCCESS) {
		return name;
	}
	for (char *w = strtok_r(all, ":", &save); w != NULL;
	    w = strtok_r(NULL, ":", &save)) {
		const char *iana;

		if (wolfSSL_get_cipher_suite_from_name(w, &c0, &c1, &flags) != 0) {
			continue;
		}
		iana = wolfSSL_get_cipher_name_iana_from_suite(c0, c1);
		if (iana != NULL && strcmp(iana, name) == 0) {
			return wolfSSL_get_cipher_name_from_suite(c0, c1);
		}
	}
	return name;
}

/* What a cipher list really enabled on ctx: keywords (ALL, HIGH, DEFAULT)
 * expand inside wolfSSL, so the names written prove nothing. */
struct tlsctx_suites {
	size_t tls13;
	size_t older;
	char unsafe[160];
};

static bool
tlsctx_enabled_suites(WOLFSSL_CTX *ctx, struct tlsctx_suites *out)
{
	WOLFSSL *ssl = wolfSSL_new(ctx);
	WOLF_STACK_OF(WOLFSSL_CIPHER) *sk;
	int n;

	memset(out, 0, sizeof(*out));
	if (ssl == NULL) {
		return false;
	}
	sk = wolfSSL_get_ciphers_compat(ssl);
	n = sk != NULL ? wolfSSL_sk_SSL_CIPHER_num(sk) : 0;
	for (int i = 0; i < n; i++) {
		const char *name = wolfSSL_CIPHER_get_name(
		    wolfSSL_sk_SSL_CIPHER_value(sk, i));
		size_t used = strlen(out->unsafe);

		if (name == NULL) {
			continue;
		}
		name = tlsctx_wolf_name(name);
		if (tlsctx_cipher_unsafe(name)) {
			snprintf(out->unsafe + used, sizeof(out->unsafe) - used,
			    "%s%s", used ? ", " : "", name);
		} else if (strncmp(name, "TLS13-", 6) == 0) {
			out->tls13++;
		} else {
			out->older++;
		}
	}
	wolfSSL_free(ssl);
	return true;
}

bool
tlsctx_suites_for_key(WOLFSSL_CTX *ctx, bool rsa, char *out, size_t cap,
    size_t *older)
{
	WOLFSSL *ssl = wolfSSL_new(ctx);
	WOLF_STACK_OF(WOLFSSL_CIPHER) *sk;
	size_t used = 0;
	bool fits = true;
	int n;

	*older = 0;
	if (cap > 0) {
		out[0] = '\0';
	}
	if (ssl == NULL || cap == 0) {
		wolfSSL_free(ssl);
		return false;
	}
	sk = wolfSSL_get_ciphers_compat(ssl);
	n = sk != NULL ? wolfSSL_sk_SSL_CIPHER_num(sk) : 0;
	for (int i = 0; i < n && fits; i++) {
		const char *name = wolfSSL_CIPHER_get_name(
		    wolfSSL_sk_SSL_CIPHER_value(sk, i));
		bool tls13, ecdsa;
		int w;

		if (name == NULL) {
			continue;
		}
		name = tlsctx_wolf_name(name);
		tls13 = strncmp(name, "TLS13-", 6) == 0;
		ecdsa = strstr(name, "ECDSA") != NULL;
		if (!tls13 && ecdsa == rsa) {
			continue;
		}
		w = snprintf(out + used, cap - used, "%s%s", used ? ":" : "",
		    name);
		fits = w > 0 && (size_t)w < cap - used;
		used += fits ? (size_t)w : 0;
		*older += tls13 ? 0 : 1;
	}
	wolfSSL_free(ssl);
	return fits;
}

static bool
tlsctx_versions(WOLFSSL_CTX *ctx, int lo, int hi)
{
	return wolfSSL_CTX_set_min_proto_version(ctx, tlsctx_proto(lo))
	    == WOLFSSL_SUCCESS
	    && wolfSSL_CTX_set_max_proto_version(ctx, tlsctx_proto(hi))
	    == WOLFSSL_SUCCESS;
}

/*
 * Key exchange on both legs: X25519 first (wolfSSL's costs about 0.6 of its
 * P-256 on Debian's build, docs/benchmarks.md), then the NIST curves every
 * TLS stack has, then brainpool. As a client wolfSSL sends its one key
 * share for the first group; as a server it takes the best-ranked share a
 * device sent and asks for another (HelloRetryRequest) only when none is
 * on this list, so a device that offers only P-256 keeps P-256 at no extra
 * round trip. Only a context that allows TLS 1.3 takes a list; a TLS
 * 1.2-only one keeps wolfSSL's curves, as does one whose wolfSSL lacks a
 * group here (the list is all or nothing).
 */
static void
tlsctx_key_groups(WOLFSSL_CTX *ctx)
{
	static int groups[] = {
		WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1,
		WOLFSSL_ECC_SECP521R1, WOLFSSL_ECC_BRAINPOOLP256R1,
		WOLFSSL_ECC_BRAINPOOLP384R1, WOLFSSL_ECC_BRAINPOOLP512R1,
	};

	(void)wolfSSL_CTX_set_groups(ctx, groups,
	    (int)(sizeof(groups) / sizeof(groups[0])));
}

/*
 * An operator's list is applied, then judged by the suites it enabled:
 * any suite without encryption or authentication refuses the whole list;
 * a list with no TLS 1.3 suite keeps the default ones when 1.3 is allowed
 * (otherwise a client offering both versions would pick 1.3 and find no
 * suite); a list with only TLS 1.3 suites cannot serve older versions.
 */
static bool
tlsctx_custom_ciphers(WOLFSSL_CTX *ctx, const struct cfg *cfg,
    struct cfg_diag *diag, const char *custom, int lo, int hi)
{
	unsigned line = cfg->downstream.ciphers_line;
	struct tlsctx_suites got;
	char *joined;
	size_t len;

	/* A name written in the list counts even if this build lacks it:
	 * the same file may meet another build. */
	if (tlsctx_cipher_unsafe(custom)) {
		cfg_diag_add(diag, true, "%s:%u: [downstream] ciphers: \"%s\" "
		    "names suites without encryption or authentication; name "
		    "only the suites you want, such as "
		    "ECDHE-ECDSA-AES128-GCM-SHA256", cfg->path, line, custom);
		return false;
	}
	if (wolfSSL_CTX_set_cipher_list(ctx, custom) != WOLFSSL_SUCCESS
	    || !tlsctx_enabled_suites(ctx, &got)
	    || got.tls13 + got.older == 0) {
		cfg_diag_add(diag, true, "%s:%u: [downstream] ciphers: wolfSSL "
		    "accepts none of \"%s\"; use wolfSSL names such as "
		    "ECDHE-ECDSA-AES128-GCM-SHA256", cfg->path, line, custom);
		return false;
	}
	if (got.unsafe[0] != '\0') {
		cfg_diag_add(diag, true, "%s:%u: [downstream] ciphers: \"%s\" "
		    "enables suites without encryption or authentication (%s); "
		    "name the suites you want explicitly", cfg->path, line,
		    custom, got.unsafe);
		return false;
	}
	if (got.older == 0 && lo < 13) {
		cfg_diag_add(diag, true, "%s:%u: [downstream] ciphers: the list "
		    "has only TLS 1.3 suites but tls_versions allows older "
		    "versions; add suites such as ECDHE-ECDSA-AES128-GCM-SHA256, "
		    "or set tls_versions = 1.3", cfg->path, line);
		return false;
	}
	if (got.tls13 > 0 || hi < 13) {
		return true;
	}
	len = sizeof(default_ciphers_tls13) + 1 + strlen(custom);
	joined = malloc(len);
	if (joined == NULL) {
		return false;
	}
	snprintf(joined, len, "%s:%s", default_ciphers_tls13, custom);
	if (wolfSSL_CTX_set_cipher_list(ctx, joined) != WOLFSSL_SUCCESS) {
		free(joined);
		return false;
	}
	free(joined);
	return true;
}

static bool
tlsctx_ciphers(WOLFSSL_CTX *ctx, const struct cfg *cfg, struct cfg_diag *diag,
    const char *custom, int lo, int hi)
{
	char list[sizeof(default_ciphers_modern)
	    + sizeof(default_ciphers_legacy)];

	if (custom != NULL) {
		return tlsctx_custom_ciphers(ctx, cfg, diag, custom, lo, hi);
	}
	snprintf(list, sizeof(list), "%s%s", default_ciphers_modern,
	    lo < 12 ? default_ciphers_legacy : "");
	return wolfSSL_CTX_set_cipher_list(ctx, list) == WOLFSSL_SUCCESS;
}

/* The private key of ctx's chain: a PEM file, or a key in a token, proven
 * against the chain's leaf (p11.h). */
static bool
tlsctx_use_key(WOLFSSL_CTX *ctx, const struct cfg *cfg, struct cfg_diag *diag,
    struct p11 *p11, const char *where, const struct cfg_file *key,
    const struct cfg_file *cert)
{
	struct x509_list list;
	char why[X509_WHY_LEN];
	bool ok;

	if (!p11uri_is(key->path)) {
		if (wolfSSL_CTX_use_PrivateKey_file(ctx, key->path,
		    WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS) {
			return true;
		}
		cfg_diag_add(diag, true, "%s:%u: %s: wolfSSL cannot use \"%s\" "
		    "as the key of \"%s\" (an unencrypted PEM key)", cfg->path,
		    key->line, where, key->path, cert->path);
		return false;
	}
	if (!x509_load_file(cert->path, &list, why)) {
		return false; /* told by tlsctx_check_file */
	}
	ok = p11_use_key(p11, ctx, cfg, diag, where, key, list.certs[0]);
	x509_list_free(&list);
	return ok;
}

WOLFSSL_CTX *
tlsctx_downstream_new(const struct cfg *cfg, struct cfg_diag *diag,
    struct p11 *p11)
{
	WOLFSSL_CTX *ctx;
	bool ok;

	ok = tlsctx_check_file(cfg, diag, "[downstream] cert",
	    &cfg->downstream.cert, "[downstream] key", &cfg->downstream.key,
	    false);
	ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (ctx == NULL) {
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		return NULL;
	}
	if (ok && wolfSSL_CTX_use_certificate_chain_file(ctx,
	    cfg->downstream.cert.path) != WOLFSSL_SUCCESS) {
		cfg_diag_add(diag, true, "%s:%u: [downstream] cert: wolfSSL "
		    "cannot use \"%s\" (a PEM chain, leaf first)", cfg->path,
		    cfg->downstream.cert.line, cfg->downstream.cert.path);
		ok = false;
	} else if (ok && !tlsctx_use_key(ctx, cfg, diag, p11,
	    "[downstream] key", &cfg->downstream.key, &cfg->downstream.cert)) {
		ok = false;
	}
	if (!tlsctx_versions(ctx, cfg->downstream.tls_min,
	    cfg->downstream.tls_max)) {
		cfg_diag_add(diag, true, "%s:%u: [downstream] tls_versions: "
		    "this wolfSSL build cannot serve the versions asked for",
		    cfg->path, cfg->downstream.tls_versions_line);
		ok = false;
	}
	tlsctx_key_groups(ctx);
	if (!tlsctx_ciphers(ctx, cfg, diag, cfg->downstream.ciphers,
	    cfg->downstream.tls_min, cfg->downstream.tls_max)) {
		ok = false;
	}
	/* TLS 1.2 resumption would admit a device without re-verifying its
	 * certificate against the current trust (docs/architecture.md,
	 * "Dual trust: one decision, in one place"): the session-ID cache
	 * is process-wide and 1.2 tickets carry no peer certificate. Only
	 * TLS 1.3 tickets, sealed per context, remain. */
	wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
	/* A flight in one write, as every wolfSSL certbridge runs on does
	 * (docs/architecture.md, "wolfSSL facts"): fewer segments per
	 * handshake, and a refusal's alert is read before a write fails. */
	wolfSSL_CTX_set_group_messages(ctx);
	wolfSSL_CTX_NoTicketTLSv12(ctx);
	if (!cfg->downstream.session_tickets) {
		wolfSSL_CTX_no_ticket_TLSv13(ctx);
	}
	if (!ok) {
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

WOLFSSL_CTX *
tlsctx_upstream_new(const struct cfg *cfg, struct cfg_diag *diag,
    struct p11 *p11)
{
	WOLFSSL_CTX *ctx;
	const struct cfg_file *ca = &cfg->upstream.ca;
	bool ok;

	ok = tlsctx_check_file(cfg, diag, "[upstream] ca", ca, NULL, NULL,
	    true);
	if (cfg->upstream.cert.path != NULL
	    && !tlsctx_check_file(cfg, diag, "[upstream] cert",
	    &cfg->upstream.cert, "[upstream] key", &cfg->upstream.key,
	    false)) {
		ok = false;
	}
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (ctx == NULL) {
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		return NULL;
	}
	if (ok && wolfSSL_CTX_load_verify_locations(ctx, ca->path, NULL)
	    != WOLFSSL_SUCCESS) {
		cfg_diag_add(diag, true, "%s:%u: [upstream] ca: wolfSSL cannot "
		    "load \"%s\" as trusted roots", cfg->path, ca->line,
		    ca->path);
		ok = false;
	}
	if (ok && cfg->upstream.cert.path != NULL
	    && wolfSSL_CTX_use_certificate_chain_file(ctx,
	    cfg->upstream.cert.path) != WOLFSSL_SUCCESS) {
		cfg_diag_add(diag, true, "%s:%u: [upstream] cert: wolfSSL "
		    "cannot use \"%s\" (a PEM chain, leaf first)", cfg->path,
		    cfg->upstream.cert.line, cfg->upstream.cert.path);
		ok = false;
	} else if (ok && cfg->upstream.cert.path != NULL
	    && !tlsctx_use_key(ctx, cfg, diag, p11, "[upstream] key",
	    &cfg->upstream.key, &cfg->upstream.cert)) {
		ok = false;
	}
	if (!tlsctx_versions(ctx, cfg->upstream.tls_min,
	    cfg->upstream.tls_max)
	    || !tlsctx_ciphers(ctx, cfg, diag, NULL, cfg->upstream.tls_min,
	    cfg->upstream.tls_max)) {
		cfg_diag_add(diag, true, "%s:%u: [upstream] tls_versions: "
		    "this wolfSSL build cannot use the versions asked for",
		    cfg->path, cfg->upstream.tls_versions_line);
		ok = false;
	}
	tlsctx_key_groups(ctx);
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, tlsclient_verify_cb);
	/* Our flight in one write: a broker that refuses our certificate
	 * closes at once, and a second write would fail before its alert
	 * is read (docs/architecture.md, "wolfSSL facts"). */
	wolfSSL_CTX_set_group_messages(ctx);
	/* No process-wide cache: the sessions resumed towards the broker
	 * are kept per generation and per upstream identity by the session
	 * itself (gateway/upcache.h), never looked up by wolfSSL on its
	 * own. With resumption on, TLS 1.2 asks for a ticket (RFC 5077), so
	 * resuming does not depend on the broker's session-ID cache (TLS
	 * 1.3 tickets need no asking). */
	wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
	if (cfg->upstream.session_resumption && cfg->upstream.tls_min <= 12
	    && wolfSSL_CTX_UseSessionTicket(ctx) != WOLFSSL_SUCCESS) {
		cfg_diag_add(diag, true, "%s: wolfSSL cannot ask the broker "
		    "for TLS 1.2 session tickets (out of memory)", cfg->path);
		ok = false;
	}
	if (!ok) {
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
tlsctx_release_peer_cert(WOLFSSL *ssl)
{
#ifdef WOLFSSL_HAVE_FREE_PEER_CERT
	wolfSSL_FreePeerCert(ssl);
#else
	(void)ssl;
#endif
}

bool
tlsctx_check_pair(const struct cfg *cfg, struct cfg_diag *diag,
    const char *where, const struct cfg_file *cert, const char *key_where,
    const struct cfg_file *key)
{
	return tlsctx_check_file(cfg, diag, where, cert, key_where, key,
	    false);
}

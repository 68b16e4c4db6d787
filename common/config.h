/*
 * config.h - the certbridge INI file: parsing, validation, defaults.
 *
 * cfg_load() reads one file with inih and checks every section and key
 * against one table. It never stops at the first problem: every problem is
 * collected as "FILE:LINE: [section] key: what is wrong", so an engineer
 * fixing the file at 3 a.m. sees all of them at once.
 *
 * A loaded struct cfg is immutable: the gateway shares one between the
 * sessions of a configuration generation and never writes to it. That is why
 * it is a plain record rather than an opaque type.
 *
 * Paths in the result are absolute or relative to the current directory:
 * relative paths in the file are resolved against the file's folder
 * ("cert = gw.pem" in etc/cb.ini becomes "etc/gw.pem"; not canonicalized).
 *
 * Rules of the file (docs/configuration.md, "Syntax"):
 *   - only "key = value"; "key: value" and a line without "=" are syntax
 *     errors; values never continue on the next line;
 *   - ";" starts a comment at the start of a line or after whitespace; "#"
 *     only at the start of a line;
 *   - names of sections, keys and enum words are case-sensitive (booleans
 *     are not); a duplicate key or section header is an error;
 *   - an empty value means "absent" for keys whose absence means off or
 *     "not set" (admin_listen, user, state_file, ciphers, plain_listen,
 *     [ca.*] clock_skew, sni, cert/key of [upstream], device_certs, alpn);
 *     for a required key it is an error, and for a key with a default value
 *     it is an error that names the default. [ca.*] retire_after and crl
 *     turn a trust check on: an empty one is an error
 *     (docs/configuration.md, "Configuration that would weaken trust"),
 *     only leaving the key out turns the check off;
 *   - warnings that need the clock: a retire_after already past, a
 *     clock_skew or expired_grace above 30 days.
 */
#ifndef CB_CONFIG_H
#define CB_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse.h"
#include "util.h"

enum cfg_log_level {
	CFG_LOG_ERROR = 0,
	CFG_LOG_WARN,
	CFG_LOG_INFO,
	CFG_LOG_DEBUG,
};

enum cfg_log_format {
	CFG_LOG_TEXT = 0,
	CFG_LOG_JSON,
};

enum cfg_client_auth {
	CFG_AUTH_REQUIRED = 0,
	CFG_AUTH_OPTIONAL,
	CFG_AUTH_NONE,
};

enum cfg_identity {
	CFG_IDENTITY_CN = 0,
	CFG_IDENTITY_SAN_DNS,
	CFG_IDENTITY_SAN_URI,
	CFG_IDENTITY_NONE,
};

enum cfg_clientid {
	CFG_CLIENTID_KEEP = 0,
	CFG_CLIENTID_CHECK,
	CFG_CLIENTID_REWRITE,
};

enum cfg_username {
	CFG_USERNAME_KEEP = 0,
	CFG_USERNAME_IDENTITY,
	CFG_USERNAME_DROP,
};

/* A file the configuration names, with the line of its key so that later
 * checks (unreadable, bad PEM, expired) can point at it too. path is NULL
 * when the key is absent or empty; line is 0 when the key is absent (a
 * built-in default such as state_file's). */
struct cfg_file {
	char *path;
	unsigned line;
};

/* [downstream] sni_cert.HOST and sni_key.HOST (docs/configuration.md):
 * the chain and key a device that asks for HOST by SNI is shown. */
struct cfg_sni {
	char *host;            /* lower case, as matched */
	struct cfg_file cert;  /* path NULL when the key was not given */
	struct cfg_file key;
};

struct cfg_ca {
	char *name;            /* NAME of [ca.NAME] */
	unsigned line;         /* line of the section header */
	struct cfg_file file;
	struct cfg_file crl;
	bool has_retire_after;
	int64_t retire_after;  /* epoch seconds */
	bool has_clock_skew;   /* else [downstream] clock_skew applies */
	int64_t clock_skew_ms;
	int64_t expired_grace_ms;
};

/* A list of listening addresses, in the order written, without duplicates.
 * line is 0 for the built-in default. */
struct cfg_listen {
	struct parse_hostport *addrs;
	size_t count;
	unsigned line;
};

struct cfg {
	char *path;            /* the file as given */

	struct {
		char *admin_listen;        /* NULL = off */
		enum cfg_log_level log_level;
		enum cfg_log_format log_format;
		uint32_t max_connections;
		int64_t shutdown_grace_ms;
		char *user;                /* NULL = stay */
		unsigned user_line;
		struct cfg_file state_file; /* path NULL = memory only */
		unsigned line;             /* the [gateway] header; 0 = none */
		/* Judge live sessions again at reload and at a retire_after
		 * (docs/configuration.md). */
		bool rejudge;
		/* Keys in hardware (docs/configuration.md): the PKCS#11
		 * module and the file holding the token's user PIN. */
		struct cfg_file pkcs11_module;   /* path NULL = none */
		struct cfg_file pkcs11_pin_file; /* path NULL = no login */
	} gateway;

	struct {
		struct cfg_listen listen;
		struct cfg_file cert;
		struct cfg_file key;
		enum cfg_client_auth client_auth;
		int tls_min, tls_max;      /* 12 = TLS 1.2, 13 = TLS 1.3 */
		unsigned tls_versions_line;
		char *ciphers;             /* NULL = certbridge's safe default */
		unsigned ciphers_line;
		int64_t clock_skew_ms;
		int64_t handshake_timeout_ms;
		bool session_tickets;
		struct cfg_listen plain_listen; /* count 0 = off */
		/* Connections that have not completed their CONNECT, at
		 * most: in all, and from one source address. */
		uint32_t max_handshakes;
		uint32_t max_handshakes_per_ip;
		struct cfg_sni *sni;       /* in the order written */
		size_t sni_count;
	} downstream;

	struct cfg_ca *cas;
	size_t ca_count;

	struct {
		struct parse_hostport address;
		unsigned address_line;
		char *sni;                 /* never NULL after load: defaults to the host */
		struct cfg_file ca;
		struct cfg_file cert;
		struct cfg_file key;
		struct cfg_file device_certs;
		char *alpn;                /* NULL = none */
		int tls_min, tls_max;
		unsigned tls_versions_line;
		int64_t connect_timeout_ms;
		uint32_t connect_rate;
		/* TLS sessions to the broker resumed, per upstream
		 * identity, within a generation (gateway/upcache.h). */
		bool session_resumption;
	} upstream;

	struct {
		enum cfg_identity identity;
		enum cfg_clientid clientid;
		enum cfg_username username;
		uint32_t max_packet_size;
		/* The most a device may send before its CONNECT is whole. */
		uint32_t max_connect_size;
	} mqtt;
};

/* Problems found while loading, in file order. Errors make cfg_load fail;
 * warnings do not. Each line is complete, without a newline:
 *   "FILE:LINE: [section] key: what is wrong"
 *   "FILE:LINE: [section] key: warning: ..."
 *   "FILE:LINE: [section]: ..." (a section header problem)
 *   "FILE:LINE: syntax error: ..."
 *   "FILE: ..." (the file itself cannot be read: no line)
 * Start from a zeroed struct. errors counts every error, even one whose line
 * could not be stored for lack of memory, so errors > 0 always means
 * failure. */
struct cfg_diag {
	char **lines;
	bool *is_error;
	size_t count;
	size_t errors;
};

/* Appends a formatted line to diag; used by the loader and by later checks
 * (files, certificates) that report in the same format. */
void cfg_diag_add(struct cfg_diag *diag, bool is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg_diag_free(struct cfg_diag *diag);
/* A formatted line in new memory (NULL when out of it), for lists of
 * problems kept like diag's. */
char *cfg_vformat(const char *fmt, va_list ap) CB_PRINTF(1, 0);
/* Puts lines about path back in line order (stable) after later checks
 * appended theirs. */
void cfg_diag_sort(struct cfg_diag *diag, const char *path);

/*
 * Loads and validates path. Returns the configuration, or NULL when any
 * error was found; diag receives every error and warning either way,
 * appended after anything it already holds (the caller owns it and frees it
 * with cfg_diag_free). Checks that named files exist and are readable, but
 * does not parse certificates: that is the TLS layer's job, reported in the
 * same format. Sets inih's process-wide options (ini_max_line and friends)
 * on every call.
 */
struct cfg *cfg_load(const char *path, struct cfg_diag *diag);

void cfg_free(struct cfg *cfg);

/* Finds a [ca.NAME] section by name, or NULL. */
const struct cfg_ca *cfg_find_ca(const struct cfg *cfg, const char *name);

#endif

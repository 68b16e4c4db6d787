/*
 * config_int.h - internals shared by the configuration loader's files:
 *
 *   config.c        cfg_load/cfg_free: reading the file, the one inih pass
 *                   (its line reader sees section headers, its handler
 *                   the keys)
 *   config_diag.c   struct cfg_diag and the queue sorted into file order
 *   config_keys.c   the key table (each key's type, default and field),
 *                   unknown-key hints, defaults, storing and freeing values
 *   config_values.c checking a value by its type (files, lists, words)
 *   config_check.c  what needs the whole file: required keys, cross-field
 *                   rules, derived defaults
 *
 * Nothing outside common/config*.c includes this header, but for
 * tests/unit/test_config_table.c, which checks the key table itself.
 */
#ifndef CB_CONFIG_INT_H
#define CB_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "parse.h"
#include "util.h"

/* The fixed sections first (their order is the loader's array index), then
 * the repeatable [ca.NAME]. */
enum cfg_sec {
	CFG_SEC_GATEWAY = 0,
	CFG_SEC_DOWNSTREAM,
	CFG_SEC_UPSTREAM,
	CFG_SEC_MQTT,
	CFG_SEC_CA,
};

#define CFG_FIXED_SECS 4

enum cfg_key_id {
	K_GW_ADMIN_LISTEN = 0,
	K_GW_LOG_LEVEL,
	K_GW_LOG_FORMAT,
	K_GW_MAX_CONNECTIONS,
	K_GW_SHUTDOWN_GRACE,
	K_GW_USER,
	K_GW_STATE_FILE,
	K_GW_REJUDGE,
	K_GW_PKCS11_MODULE,
	K_GW_PKCS11_PIN_FILE,

	K_DS_LISTEN,
	K_DS_CERT,
	K_DS_KEY,
	K_DS_CLIENT_AUTH,
	K_DS_TLS_VERSIONS,
	K_DS_CIPHERS,
	K_DS_CLOCK_SKEW,
	K_DS_HANDSHAKE_TIMEOUT,
	K_DS_SESSION_TICKETS,
	K_DS_PLAIN_LISTEN,
	K_DS_MAX_HANDSHAKES,
	K_DS_MAX_HANDSHAKES_PER_IP,

	K_CA_FILE,
	K_CA_RETIRE_AFTER,
	K_CA_CRL,
	K_CA_CLOCK_SKEW,
	K_CA_EXPIRED_GRACE,

	K_UP_ADDRESS,
	K_UP_SNI,
	K_UP_CA,
	K_UP_CERT,
	K_UP_KEY,
	K_UP_DEVICE_CERTS,
	K_UP_ALPN,
	K_UP_TLS_VERSIONS,
	K_UP_CONNECT_TIMEOUT,
	K_UP_CONNECT_RATE,
	K_UP_SESSION_RESUMPTION,

	K_MQTT_IDENTITY,
	K_MQTT_CLIENTID,
	K_MQTT_USERNAME,
	K_MQTT_MAX_PACKET_SIZE,
	K_MQTT_MAX_CONNECT_SIZE,

	CFG_KEY_COUNT
};

enum cfg_key_type {
	KT_TEXT = 0,     /* free text */
	KT_HOSTPORT,     /* one host:port */
	KT_HOSTPORT_LIST,/* comma-separated host:port */
	KT_FILE,         /* readable file, resolved against the file's folder */
	KT_KEY,          /* a KT_FILE, or a PKCS#11 URI (kept as written) */
	KT_PATH,         /* a path that need not exist yet */
	KT_DIR,          /* an existing, readable folder */
	KT_ENUM,
	KT_UINT,
	KT_DURATION,
	KT_DATE,
	KT_SIZE,
	KT_BOOL,
	KT_TLS_VERSIONS,
	KT_USER,         /* a user name */
	KT_HOSTNAME,     /* a server name (sni) */
	KT_ALPN,         /* comma-separated protocol names */
};

#define KF_REQUIRED 0x1u  /* must be present and non-empty */
#define KF_EMPTY_OFF 0x2u /* an empty value means "absent" (off/default) */
#define KF_NONZERO 0x4u   /* durations: 0 is not allowed */
/* An empty value is an error rather than "off": the key turns a trust check
 * on, and an empty line (a value deleted by a script, a template left
 * unfilled) must not turn it off unnoticed. Omitting the key is "off". */
#define KF_NO_EMPTY 0x8u

/* How a value is kept in its field. */
enum cfg_store {
	CS_STR = 0,  /* char *, owned */
	CS_FILE,     /* struct cfg_file: path owned, and the key's line */
	CS_LIST,     /* struct cfg_listen: addrs owned, and the key's line */
	CS_HOSTPORT, /* struct parse_hostport */
	CS_INT,      /* int, or an enum (the index of the word) */
	CS_U32,      /* uint32_t */
	CS_I64,      /* int64_t: milliseconds, epoch seconds */
	CS_BOOL,
	CS_TLS,      /* int lowest version at off, highest at off_max */
};

/*
 * One key: the only place that says what a key is, what it defaults to and
 * where its value goes. The default is a string, applied at load through
 * the parser a written value takes, so what the table says is what the
 * daemon uses. off is into struct cfg, or into struct cfg_ca for the
 * [ca.NAME] keys. The optional offsets are 0 when unused: offset 0 holds
 * cfg.path and cfg_ca.name, never a line, a flag or a version.
 */
struct cfg_key_def {
	enum cfg_sec sec;
	const char *name;
	enum cfg_key_type type;
	unsigned flags;
	uint64_t min, max;        /* KT_UINT, KT_SIZE */
	const char *const *words; /* KT_ENUM */
	const char *dflt;         /* the default as written in the file */
	enum cfg_store store;
	size_t off, size;         /* the field, and its size (checked) */
	size_t off_line;          /* an unsigned set to the key's line */
	size_t off_has;           /* a bool: the key was written (not empty) */
	size_t off_max;           /* CS_TLS: the highest version's int */
	const char *empty_hint;   /* KF_NO_EMPTY: what an empty value would
	                             have turned off, and how to do it */
};

extern const struct cfg_key_def cfg_keys[CFG_KEY_COUNT];

/* One logical section. A repeated header is an error, but its keys still
 * land in the same logical section so that they are checked too. */
struct cfg_sec_state {
	unsigned line;                /* first header line; 0 = absent */
	unsigned seen[CFG_KEY_COUNT]; /* line of each key; 0 = not set */
	/* A line with a syntax error that names the key ("key gw.key"): the
	 * syntax error is the report, not "required key is missing". */
	bool tried[CFG_KEY_COUNT];
};

struct cfg_pending; /* a diagnostic waiting to be sorted into file order */

struct cfg_loader {
	const char *path;   /* the file as given on the command line */
	char *dir;          /* its folder; NULL when relative paths are cwd's */
	struct cfg *cfg;
	struct cfg_sec_state fixed[CFG_FIXED_SECS];
	struct cfg_sec_state *ca_state; /* parallel to cfg->cas */
	size_t ca_cap;

	struct cfg_pending *pend;
	size_t pend_count, pend_cap;
	size_t lost;        /* diagnostics dropped for lack of memory */

	/* The one pass (config.c): inih reads the text a line at a time
	 * through a reader of ours, and calls the handler for a key line
	 * before it asks for the next line. */
	const char *next, *end; /* the text not yet read */
	unsigned line;      /* the line inih is reading (inih's lineno) */
	int cur;            /* logical section of this line, or LINE_* */
	bool comma;         /* the last key line's value ended with "," */
	bool key_line;      /* this line must be key = value ... */
	bool handled;       /* ... and inih handed it to the handler */
	bool indented;      /* this line starts with a blank */
	char sep;           /* its first "=" or ":", 0 = none */
	char word[64];      /* its first word, a key maybe */
};

/* Queues "FILE:LINE: <text>" (or "FILE: <text>" for line 0). Queued lines
 * move to a struct cfg_diag, sorted by line, with cfg_flush. */
void cfg_report(struct cfg_loader *ld, bool is_error, unsigned line,
    const char *fmt, ...) CB_PRINTF(4, 5);

/* Queues "FILE:LINE: [sec] key: <text>" ("warning: " before the text of a
 * warning). sec is the section name without brackets ("ca.legacy"). */
void cfg_key_report(struct cfg_loader *ld, bool is_error, unsigned line,
    const char *sec, const char *key, const char *fmt, ...) CB_PRINTF(6, 7);

void cfg_flush(struct cfg_loader *ld, struct cfg_diag *diag);

/* Index in cfg_keys of name in sec, or -1. */
int cfg_key_find(enum cfg_sec sec, const char *name);

/* Reports an unknown key with the best hint: the closest key of the same
 * section, the section it belongs to, or the list of keys. */
void cfg_key_unknown(struct cfg_loader *ld, enum cfg_sec sec,
    const char *secname, const char *name, unsigned line);

/* A parsed value on its way into struct cfg. */
struct cfg_value {
	char *str; /* owned until stored */
	struct parse_hostport hp;
	struct parse_hostport *list; /* owned until stored */
	size_t count;
	int64_t i;
	uint64_t u;
	int e;
	bool b;
	int lo, hi;
};

/* Parses a non-empty value by the key's type into v (config_values.c).
 * Returns false, reported, when it is wrong; a file that fails its check
 * is reported but still returned, so the key's line is kept. */
bool cfg_value_parse(struct cfg_loader *ld, const struct cfg_key_def *def,
    const char *sec, const char *value, unsigned line, struct cfg_value *v);

/* Checks one value and stores it into ld->cfg (or ca for CA keys). */
void cfg_key_apply(struct cfg_loader *ld, enum cfg_key_id id,
    struct cfg_ca *ca, const char *secname, const char *value,
    unsigned line);

/* Applies the default of every key of sec that has one, through the same
 * parser as a written value, into base: ld->cfg, or the new CA entry for
 * CFG_SEC_CA (secname "ca.NAME"). A default that does not parse is reported
 * like a written one (at line 0), so a broken table fails every load. */
void cfg_key_defaults(struct cfg_loader *ld, enum cfg_sec sec, void *base,
    const char *secname);

/* Frees (and clears) what the keys of sec own in base. */
void cfg_key_free(enum cfg_sec sec, void *base);

/* Optimal string alignment distance, case-insensitive; large strings
 * return a large number. */
size_t cfg_edit_distance(const char *a, const char *b);

/* Display name of a fixed section ("downstream"). */
const char *cfg_sec_name(enum cfg_sec sec);

/* After the file is read: required keys, cross-field rules, defaults that
 * depend on other keys. */
void cfg_check_all(struct cfg_loader *ld);

/* A path of the INI made absolute against the INI's folder (NULL when out
 * of memory, reported), and whether it names a readable file (reported
 * against sec/key at line when not). */
char *cfg_resolve(struct cfg_loader *ld, const char *value);
void cfg_check_file(struct cfg_loader *ld, const char *sec, const char *key,
    const char *path, unsigned line);

/* [downstream] sni_cert.HOST / sni_key.HOST (config_sni.c): whether name
 * is one; the key taken; every host given both at the end. */
bool cfg_sni_is_key(const char *name);
void cfg_sni_key(struct cfg_loader *ld, const char *name, const char *value,
    unsigned line);
void cfg_sni_check(struct cfg_loader *ld);
void cfg_sni_free(struct cfg *cfg);

#endif

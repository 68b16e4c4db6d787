/*
 * config_keys.c - the key table of the INI file, the hints for unknown keys,
 * the defaults, and storing each checked value into struct cfg.
 *
 * One row per key: section, name, type, flags, bounds, allowed words, the
 * default as an operator would write it, and the field the value goes to.
 * The row is the only place that knows a key: its default is applied at load
 * by the parser a written value takes (cfg_key_defaults), and store() puts a
 * value into its field by the row's offset and kind. A value is parsed by its
 * type (one strict parser per type, in parse.c) and reported in the
 * operator's terms when it is wrong ("bad duration "10x": unknown unit ...",
 * config_values.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "parse.h"

/* Word lists: the index of each word is the value of its enum. */
static const char *const w_log_level[] = { "error", "warn", "info", "debug",
	NULL };
static const char *const w_log_format[] = { "text", "json", NULL };
static const char *const w_client_auth[] = { "required", "optional", "none",
	NULL };
static const char *const w_identity[] = { "cn", "san-dns", "san-uri", "none",
	NULL };
static const char *const w_clientid[] = { "keep", "check", "rewrite", NULL };
static const char *const w_username[] = { "keep", "identity", "drop", NULL };

#define GW CFG_SEC_GATEWAY
#define DS CFG_SEC_DOWNSTREAM
#define UP CFG_SEC_UPSTREAM
#define MQ CFG_SEC_MQTT
#define CA CFG_SEC_CA
#define MQTT_MAX_PACKET 268435460ULL /* 4-byte remaining length + header */

/* Where a key's value goes: how it is kept, the field, and the field's size
 * (store() checks it against the kind). CFG_ for struct cfg, CA_ for
 * struct cfg_ca. Designated, so the optional fields after them need no
 * zeros (clang's -Wmissing-field-initializers). */
#define CFG_AT(kind, m) .store = (kind), .off = offsetof(struct cfg, m), \
	.size = sizeof(((struct cfg *)NULL)->m)
#define CA_AT(kind, m) .store = (kind), .off = offsetof(struct cfg_ca, m), \
	.size = sizeof(((struct cfg_ca *)NULL)->m)
#define CFG_OFF(m) offsetof(struct cfg, m)
#define CA_OFF(m) offsetof(struct cfg_ca, m)

const struct cfg_key_def cfg_keys[CFG_KEY_COUNT] = {
	[K_GW_ADMIN_LISTEN] = { GW, "admin_listen", KT_HOSTPORT, KF_EMPTY_OFF,
		0, 0, NULL, "127.0.0.1:9883",
		CFG_AT(CS_STR, gateway.admin_listen) },
	[K_GW_LOG_LEVEL] = { GW, "log_level", KT_ENUM, 0, 0, 0, w_log_level,
		"info", CFG_AT(CS_INT, gateway.log_level) },
	[K_GW_LOG_FORMAT] = { GW, "log_format", KT_ENUM, 0, 0, 0,
		w_log_format, "text", CFG_AT(CS_INT, gateway.log_format) },
	[K_GW_MAX_CONNECTIONS] = { GW, "max_connections", KT_UINT, 0, 1,
		1000000, NULL, "10000",
		CFG_AT(CS_U32, gateway.max_connections) },
	[K_GW_SHUTDOWN_GRACE] = { GW, "shutdown_grace", KT_DURATION, 0, 0, 0,
		NULL, "10s", CFG_AT(CS_I64, gateway.shutdown_grace_ms) },
	[K_GW_USER] = { GW, "user", KT_USER, KF_EMPTY_OFF, 0, 0, NULL, NULL,
		CFG_AT(CS_STR, gateway.user),
		.off_line = CFG_OFF(gateway.user_line) },
	[K_GW_STATE_FILE] = { GW, "state_file", KT_PATH, KF_EMPTY_OFF, 0, 0,
		NULL, "/var/lib/certbridge/devices.state",
		CFG_AT(CS_FILE, gateway.state_file) },
	[K_GW_REJUDGE] = { GW, "rejudge", KT_BOOL, 0, 0, 0, NULL, "yes",
		CFG_AT(CS_BOOL, gateway.rejudge) },
	[K_GW_PKCS11_MODULE] = { GW, "pkcs11_module", KT_FILE, KF_EMPTY_OFF,
		0, 0, NULL, NULL, CFG_AT(CS_FILE, gateway.pkcs11_module) },
	[K_GW_PKCS11_PIN_FILE] = { GW, "pkcs11_pin_file", KT_FILE,
		KF_EMPTY_OFF, 0, 0, NULL, NULL,
		CFG_AT(CS_FILE, gateway.pkcs11_pin_file) },

	[K_DS_LISTEN] = { DS, "listen", KT_HOSTPORT_LIST, 0, 0, 0, NULL,
		"0.0.0.0:8883", CFG_AT(CS_LIST, downstream.listen) },
	[K_DS_CERT] = { DS, "cert", KT_FILE, KF_REQUIRED, 0, 0, NULL, NULL,
		CFG_AT(CS_FILE, downstream.cert) },
	[K_DS_KEY] = { DS, "key", KT_KEY, KF_REQUIRED, 0, 0, NULL, NULL,
		CFG_AT(CS_FILE, downstream.key) },
	[K_DS_CLIENT_AUTH] = { DS, "client_auth", KT_ENUM, 0, 0, 0,
		w_client_auth, "required",
		CFG_AT(CS_INT, downstream.client_auth) },
	[K_DS_TLS_VERSIONS] = { DS, "tls_versions", KT_TLS_VERSIONS, 0, 0, 0,
		NULL, "1.2-1.3", CFG_AT(CS_TLS, downstream.tls_min),
		.off_max = CFG_OFF(downstream.tls_max),
		.off_line = CFG_OFF(downstream.tls_versions_line) },
	[K_DS_CIPHERS] = { DS, "ciphers", KT_TEXT, KF_EMPTY_OFF, 0, 0, NULL,
		NULL, CFG_AT(CS_STR, downstream.ciphers),
		.off_line = CFG_OFF(downstream.ciphers_line) },
	[K_DS_CLOCK_SKEW] = { DS, "clock_skew", KT_DURATION, 0, 0, 0, NULL,
		"5m", CFG_AT(CS_I64, downstream.clock_skew_ms) },
	[K_DS_HANDSHAKE_TIMEOUT] = { DS, "handshake_timeout", KT_DURATION,
		KF_NONZERO, 0, 0, NULL, "10s",
		CFG_AT(CS_I64, downstream.handshake_timeout_ms) },
	[K_DS_SESSION_TICKETS] = { DS, "session_tickets", KT_BOOL, 0, 0, 0,
		NULL, "yes", CFG_AT(CS_BOOL, downstream.session_tickets) },
	[K_DS_PLAIN_LISTEN] = { DS, "plain_listen", KT_HOSTPORT_LIST,
		KF_EMPTY_OFF, 0, 0, NULL, NULL,
		CFG_AT(CS_LIST, downstream.plain_listen) },
	[K_DS_MAX_HANDSHAKES] = { DS, "max_handshakes", KT_UINT, 0, 1, 1000000,
		NULL, "1000", CFG_AT(CS_U32, downstream.max_handshakes) },
	[K_DS_MAX_HANDSHAKES_PER_IP] = { DS, "max_handshakes_per_ip", KT_UINT,
		0, 1, 1000000, NULL, "64",
		CFG_AT(CS_U32, downstream.max_handshakes_per_ip) },

	[K_CA_FILE] = { CA, "file", KT_FILE, KF_REQUIRED, 0, 0, NULL, NULL,
		CA_AT(CS_FILE, file) },
	[K_CA_RETIRE_AFTER] = { CA, "retire_after", KT_DATE, KF_NO_EMPTY, 0,
		0, NULL, NULL, CA_AT(CS_I64, retire_after),
		.off_has = CA_OFF(has_retire_after),
		.empty_hint = "write the date after which this CA admits no "
		    "device, or remove the line to keep the CA without one" },
	[K_CA_CRL] = { CA, "crl", KT_FILE, KF_NO_EMPTY, 0, 0, NULL, NULL,
		CA_AT(CS_FILE, crl),
		.empty_hint = "write the CRL file of this CA, or remove the "
		    "line to check no CRL for it (revocation checking off)" },
	[K_CA_CLOCK_SKEW] = { CA, "clock_skew", KT_DURATION, KF_EMPTY_OFF, 0,
		0, NULL, NULL, CA_AT(CS_I64, clock_skew_ms),
		.off_has = CA_OFF(has_clock_skew) },
	[K_CA_EXPIRED_GRACE] = { CA, "expired_grace", KT_DURATION, 0, 0, 0,
		NULL, "0", CA_AT(CS_I64, expired_grace_ms) },

	[K_UP_ADDRESS] = { UP, "address", KT_HOSTPORT, KF_REQUIRED, 0, 0,
		NULL, NULL, CFG_AT(CS_HOSTPORT, upstream.address),
		.off_line = CFG_OFF(upstream.address_line) },
	/* No default here: it is the host of address (config_check.c). */
	[K_UP_SNI] = { UP, "sni", KT_HOSTNAME, KF_EMPTY_OFF, 0, 0, NULL, NULL,
		CFG_AT(CS_STR, upstream.sni) },
	[K_UP_CA] = { UP, "ca", KT_FILE, KF_REQUIRED, 0, 0, NULL, NULL,
		CFG_AT(CS_FILE, upstream.ca) },
	[K_UP_CERT] = { UP, "cert", KT_FILE, KF_EMPTY_OFF, 0, 0, NULL, NULL,
		CFG_AT(CS_FILE, upstream.cert) },
	[K_UP_KEY] = { UP, "key", KT_KEY, KF_EMPTY_OFF, 0, 0, NULL, NULL,
		CFG_AT(CS_FILE, upstream.key) },
	[K_UP_DEVICE_CERTS] = { UP, "device_certs", KT_DIR, KF_EMPTY_OFF, 0,
		0, NULL, NULL, CFG_AT(CS_FILE, upstream.device_certs) },
	[K_UP_ALPN] = { UP, "alpn", KT_ALPN, KF_EMPTY_OFF, 0, 0, NULL, NULL,
		CFG_AT(CS_STR, upstream.alpn) },
	[K_UP_TLS_VERSIONS] = { UP, "tls_versions", KT_TLS_VERSIONS, 0, 0, 0,
		NULL, "1.2-1.3", CFG_AT(CS_TLS, upstream.tls_min),
		.off_max = CFG_OFF(upstream.tls_max),
		.off_line = CFG_OFF(upstream.tls_versions_line) },
	[K_UP_CONNECT_TIMEOUT] = { UP, "connect_timeout", KT_DURATION,
		KF_NONZERO, 0, 0, NULL, "10s",
		CFG_AT(CS_I64, upstream.connect_timeout_ms) },
	[K_UP_CONNECT_RATE] = { UP, "connect_rate", KT_UINT, 0, 1, 100000,
		NULL, "50", CFG_AT(CS_U32, upstream.connect_rate) },
	[K_UP_SESSION_RESUMPTION] = { UP, "session_resumption", KT_BOOL, 0,
		0, 0, NULL, "yes",
		CFG_AT(CS_BOOL, upstream.session_resumption) },

	[K_MQTT_IDENTITY] = { MQ, "identity", KT_ENUM, 0, 0, 0, w_identity,
		"cn", CFG_AT(CS_INT, mqtt.identity) },
	[K_MQTT_CLIENTID] = { MQ, "clientid", KT_ENUM, 0, 0, 0, w_clientid,
		"check", CFG_AT(CS_INT, mqtt.clientid) },
	[K_MQTT_USERNAME] = { MQ, "username", KT_ENUM, 0, 0, 0, w_username,
		"keep", CFG_AT(CS_INT, mqtt.username) },
	[K_MQTT_MAX_PACKET_SIZE] = { MQ, "max_packet_size", KT_SIZE, 0, 16,
		MQTT_MAX_PACKET, NULL, "1M",
		CFG_AT(CS_U32, mqtt.max_packet_size) },
	[K_MQTT_MAX_CONNECT_SIZE] = { MQ, "max_connect_size", KT_SIZE, 0, 16,
		MQTT_MAX_PACKET, NULL, "64K",
		CFG_AT(CS_U32, mqtt.max_connect_size) },
};

/* The optional offsets use 0 for "none": these fields hold offset 0. */
_Static_assert(offsetof(struct cfg, path) == 0, "cfg.path at offset 0");
_Static_assert(offsetof(struct cfg_ca, name) == 0, "cfg_ca.name at 0");
/* Enum fields are stored as int (CS_INT). */
_Static_assert(sizeof(enum cfg_log_level) == sizeof(int) &&
    sizeof(enum cfg_identity) == sizeof(int), "enums are int-sized");

const char *
cfg_sec_name(enum cfg_sec sec)
{
	switch (sec) {
	case CFG_SEC_GATEWAY:
		return "gateway";
	case CFG_SEC_DOWNSTREAM:
		return "downstream";
	case CFG_SEC_UPSTREAM:
		return "upstream";
	case CFG_SEC_MQTT:
		return "mqtt";
	case CFG_SEC_CA:
		break;
	}
	return "ca";
}

int
cfg_key_find(enum cfg_sec sec, const char *name)
{
	size_t i;

	for (i = 0; i < CFG_KEY_COUNT; i++) {
		if (cfg_keys[i].sec == sec && strcmp(cfg_keys[i].name, name) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static char
lc(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

size_t
cfg_edit_distance(const char *a, const char *b)
{
	enum { MAXLEN = 64 };
	size_t d[MAXLEN + 1][MAXLEN + 1];
	size_t n = strlen(a), m = strlen(b), i, j;

	if (n > MAXLEN || m > MAXLEN) {
		return SIZE_MAX;
	}
	for (i = 0; i <= n; i++) {
		d[i][0] = i;
	}
	for (j = 0; j <= m; j++) {
		d[0][j] = j;
	}
	for (i = 1; i <= n; i++) {
		for (j = 1; j <= m; j++) {
			size_t cost = lc(a[i - 1]) != lc(b[j - 1]);
			size_t best = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < best) {
				best = d[i][j - 1] + 1;
			}
			if (d[i - 1][j - 1] + cost < best) {
				best = d[i - 1][j - 1] + cost;
			}
			/* a transposition ("cleint") is one typo, not two */
			if (i > 1 && j > 1 && lc(a[i - 1]) == lc(b[j - 2]) &&
			    lc(a[i - 2]) == lc(b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < best) {
				best = d[i - 2][j - 2] + 1;
			}
			d[i][j] = best;
		}
	}
	return d[n][m];
}

/* Names other tools and habits give these keys, too far from them for
 * the edit distance: "upstream = mqtts://broker:8883" in [upstream]. */
static const struct {
	enum cfg_sec sec;
	const char *alias;
	const char *key;
} cfg_key_aliases[] = {
	{CFG_SEC_UPSTREAM, "upstream", "address"},
	{CFG_SEC_UPSTREAM, "broker", "address"},
	{CFG_SEC_UPSTREAM, "host", "address"},
	{CFG_SEC_UPSTREAM, "server", "address"},
	{CFG_SEC_UPSTREAM, "url", "address"},
	{CFG_SEC_UPSTREAM, "uri", "address"},
	{CFG_SEC_UPSTREAM, "cafile", "ca"},
	{CFG_SEC_UPSTREAM, "certfile", "cert"},
	{CFG_SEC_UPSTREAM, "keyfile", "key"},
	{CFG_SEC_DOWNSTREAM, "bind", "listen"},
	{CFG_SEC_DOWNSTREAM, "port", "listen"},
	{CFG_SEC_DOWNSTREAM, "certfile", "cert"},
	{CFG_SEC_DOWNSTREAM, "keyfile", "key"},
	{CFG_SEC_CA, "cafile", "file"},
};

void
cfg_key_unknown(struct cfg_loader *ld, enum cfg_sec sec,
    const char *secname, const char *name, unsigned line)
{
	const char *best = NULL;
	size_t best_d = 3, i, used = 0;
	char list[256] = "";

	for (i = 0; i < sizeof(cfg_key_aliases) / sizeof(cfg_key_aliases[0]);
	    i++) {
		if (cfg_key_aliases[i].sec == sec
		    && cfg_edit_distance(name, cfg_key_aliases[i].alias) == 0) {
			cfg_key_report(ld, true, line, secname, name,
			    "unknown key \"%.64s\"; did you mean \"%s\"?", name,
			    cfg_key_aliases[i].key);
			return;
		}
	}
	for (i = 0; i < CFG_KEY_COUNT; i++) {
		size_t d;

		if (cfg_keys[i].sec != sec) {
			continue;
		}
		d = cfg_edit_distance(name, cfg_keys[i].name);
		if (d < best_d && d < strlen(name)) {
			best_d = d;
			best = cfg_keys[i].name;
		}
		if (used < sizeof(list)) {
			used += (size_t)snprintf(list + used,
			    sizeof(list) - used, "%s%s", used ? ", " : "",
			    cfg_keys[i].name);
		}
	}
	if (best != NULL) {
		cfg_key_report(ld, true, line, secname, name, "unknown key "
		    "\"%.64s\"; did you mean \"%s\"?", name, best);
		return;
	}
	for (i = 0; i < CFG_KEY_COUNT; i++) {
		if (cfg_keys[i].sec != sec &&
		    strcmp(cfg_keys[i].name, name) == 0) {
			cfg_key_report(ld, true, line, secname, name,
			    "unknown key \"%.64s\" here; it belongs in [%s]",
			    name, cfg_keys[i].sec == CFG_SEC_CA ? "ca.NAME" :
			    cfg_sec_name(cfg_keys[i].sec));
			return;
		}
	}
	cfg_key_report(ld, true, line, secname, name, "unknown key \"%.64s\"; "
	    "expected one of: %s", name, list);
}

/* ------------------------------------------------------------ store */

static void *
field(void *base, size_t off)
{
	return (char *)base + off;
}

static size_t
store_size(enum cfg_store kind)
{
	switch (kind) {
	case CS_STR:
		return sizeof(char *);
	case CS_FILE:
		return sizeof(struct cfg_file);
	case CS_LIST:
		return sizeof(struct cfg_listen);
	case CS_HOSTPORT:
		return sizeof(struct parse_hostport);
	case CS_INT:
	case CS_TLS:
		return sizeof(int);
	case CS_U32:
		return sizeof(uint32_t);
	case CS_I64:
		return sizeof(int64_t);
	case CS_BOOL:
		break;
	}
	return sizeof(bool);
}

static void
set_str(char **dst, struct cfg_value *v)
{
	free(*dst);
	*dst = v->str;
	v->str = NULL;
}

/*
 * Puts v into def's field of base (struct cfg, or struct cfg_ca for CA
 * keys); v's owned members move. line 0 means the key was not written: a
 * default, or an empty value that means "off" (v then all zero).
 */
static void
store(void *base, const struct cfg_key_def *def, struct cfg_value *v,
    unsigned line)
{
	void *at = field(base, def->off);

	CB_ASSERT(def->size == store_size(def->store));
	switch (def->store) {
	case CS_STR:
		set_str(at, v);
		break;
	case CS_FILE: {
		struct cfg_file *f = at;

		set_str(&f->path, v);
		f->line = line;
		break;
	}
	case CS_LIST: {
		struct cfg_listen *l = at;

		free(l->addrs);
		l->addrs = v->list;
		l->count = v->count;
		l->line = line;
		v->list = NULL;
		break;
	}
	case CS_HOSTPORT:
		*(struct parse_hostport *)at = v->hp;
		break;
	case CS_INT:
		*(int *)at = v->e;
		break;
	case CS_U32:
		*(uint32_t *)at = (uint32_t)v->u;
		break;
	case CS_I64:
		*(int64_t *)at = v->i;
		break;
	case CS_BOOL:
		*(bool *)at = v->b;
		break;
	case CS_TLS:
		*(int *)at = v->lo;
		*(int *)field(base, def->off_max) = v->hi;
		break;
	}
	if (def->off_line != 0) {
		*(unsigned *)field(base, def->off_line) = line;
	}
	if (def->off_has != 0) {
		*(bool *)field(base, def->off_has) = line != 0;
	}
}

void
cfg_key_defaults(struct cfg_loader *ld, enum cfg_sec sec, void *base,
    const char *secname)
{
	struct cfg_value v;
	size_t i;

	for (i = 0; i < CFG_KEY_COUNT; i++) {
		const struct cfg_key_def *def = &cfg_keys[i];

		if (def->sec != sec || def->dflt == NULL) {
			continue;
		}
		memset(&v, 0, sizeof(v));
		if (cfg_value_parse(ld, def, secname, def->dflt, 0, &v)) {
			store(base, def, &v, 0);
		}
		free(v.str);
		free(v.list);
	}
}

void
cfg_key_free(enum cfg_sec sec, void *base)
{
	size_t i;

	for (i = 0; i < CFG_KEY_COUNT; i++) {
		const struct cfg_key_def *def = &cfg_keys[i];
		void *at = field(base, def->off);

		if (def->sec != sec) {
			continue;
		}
		if (def->store == CS_STR) {
			CB_FREE(*(char **)at);
		} else if (def->store == CS_FILE) {
			CB_FREE(((struct cfg_file *)at)->path);
		} else if (def->store == CS_LIST) {
			CB_FREE(((struct cfg_listen *)at)->addrs);
			((struct cfg_listen *)at)->count = 0;
		}
	}
}

/* An empty value: "off" where the key allows it, else an error that says
 * what to write (or to remove the line for the default). */
static void
apply_empty(struct cfg_loader *ld, const struct cfg_key_def *def,
    void *base, const char *sec, unsigned line)
{
	char why[PARSE_WHY_LEN] = "";
	struct cfg_value v;
	const char *expect;

	if (def->flags & KF_REQUIRED) {
		cfg_key_report(ld, true, line, sec, def->name, "required key is "
		    "empty; expected a %s", def->type == KT_HOSTPORT ?
		    "host:port" : "file");
		return;
	}
	if (def->flags & KF_NO_EMPTY) {
		cfg_key_report(ld, true, line, sec, def->name, "empty value; %s",
		    def->empty_hint ? def->empty_hint : "write a value, or "
		    "remove the line");
		return;
	}
	if (def->flags & KF_EMPTY_OFF) {
		memset(&v, 0, sizeof(v));
		store(base, def, &v, 0); /* NULL / zero = absent */
		return;
	}
	/* The parsers say "empty; expected ..." for "": reuse their words. */
	switch (def->type) {
	case KT_ENUM:
		(void)parse_enum("", def->words, why);
		break;
	case KT_UINT:
		(void)parse_uint("", def->min, def->max, &v.u, why);
		break;
	case KT_DURATION:
		(void)parse_duration_ms("", &v.i, why);
		break;
	case KT_SIZE:
		(void)parse_size("", def->max, &v.u, why);
		break;
	case KT_BOOL:
		(void)parse_bool("", &v.b, why);
		break;
	case KT_TLS_VERSIONS:
		(void)parse_tls_versions("", &v.lo, &v.hi, why);
		break;
	default:
		(void)parse_hostport("", &v.hp, why);
		break;
	}
	expect = strncmp(why, "empty; ", 7) == 0 ? why + 7 : why;
	cfg_key_report(ld, true, line, sec, def->name, "empty value; %s "
	    "(remove the line to use the default, %s)", expect,
	    def->dflt ? def->dflt : "none");
}

void
cfg_key_apply(struct cfg_loader *ld, enum cfg_key_id id, struct cfg_ca *ca,
    const char *secname, const char *value, unsigned line)
{
	const struct cfg_key_def *def = &cfg_keys[id];
	void *base = def->sec == CFG_SEC_CA ? (void *)ca : (void *)ld->cfg;
	struct cfg_value v;

	if (*value == '\0') {
		apply_empty(ld, def, base, secname, line);
		return;
	}
	memset(&v, 0, sizeof(v));
	if (cfg_value_parse(ld, def, secname, value, line, &v)) {
		store(base, def, &v, line);
	}
	free(v.str);
	free(v.list);
}

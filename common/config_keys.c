/*
 * config_keys.c - the key table of the INI file, the hints for unknown keys
 * and storing each checked value into struct cfg.
 *
 * One row per key: section, name, type, flags, bounds, allowed words and the
 * default as an operator would write it. A value is parsed by its type (one
 * strict parser per type, in parse.c), reported in the operator's terms when
 * it is wrong ("bad duration "10x": unknown unit ...", config_values.c), and
 * stored by the switch in store(), the one place that knows the fields of
 * struct cfg.
 */
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

const struct cfg_key_def cfg_keys[CFG_KEY_COUNT] = {
	[K_GW_ADMIN_LISTEN] = { GW, "admin_listen", KT_HOSTPORT, KF_EMPTY_OFF,
		0, 0, NULL, "127.0.0.1:9883" },
	[K_GW_LOG_LEVEL] = { GW, "log_level", KT_ENUM, 0, 0, 0, w_log_level,
		"info" },
	[K_GW_LOG_FORMAT] = { GW, "log_format", KT_ENUM, 0, 0, 0,
		w_log_format, "text" },
	[K_GW_MAX_CONNECTIONS] = { GW, "max_connections", KT_UINT, 0, 1,
		1000000, NULL, "10000" },
	[K_GW_SHUTDOWN_GRACE] = { GW, "shutdown_grace", KT_DURATION, 0, 0, 0,
		NULL, "10s" },
	[K_GW_USER] = { GW, "user", KT_USER, KF_EMPTY_OFF, 0, 0, NULL, NULL },
	[K_GW_STATE_FILE] = { GW, "state_file", KT_PATH, KF_EMPTY_OFF, 0, 0,
		NULL, "/var/lib/certbridge/devices.state" },
	[K_GW_REJUDGE] = { GW, "rejudge", KT_BOOL, 0, 0, 0, NULL, "yes" },

	[K_DS_LISTEN] = { DS, "listen", KT_HOSTPORT_LIST, 0, 0, 0, NULL,
		"0.0.0.0:8883" },
	[K_DS_CERT] = { DS, "cert", KT_FILE, KF_REQUIRED, 0, 0, NULL, NULL },
	[K_DS_KEY] = { DS, "key", KT_FILE, KF_REQUIRED, 0, 0, NULL, NULL },
	[K_DS_CLIENT_AUTH] = { DS, "client_auth", KT_ENUM, 0, 0, 0,
		w_client_auth, "required" },
	[K_DS_TLS_VERSIONS] = { DS, "tls_versions", KT_TLS_VERSIONS, 0, 0, 0,
		NULL, "1.2-1.3" },
	[K_DS_CIPHERS] = { DS, "ciphers", KT_TEXT, KF_EMPTY_OFF, 0, 0, NULL,
		NULL },
	[K_DS_CLOCK_SKEW] = { DS, "clock_skew", KT_DURATION, 0, 0, 0, NULL,
		"5m" },
	[K_DS_HANDSHAKE_TIMEOUT] = { DS, "handshake_timeout", KT_DURATION,
		KF_NONZERO, 0, 0, NULL, "10s" },
	[K_DS_SESSION_TICKETS] = { DS, "session_tickets", KT_BOOL, 0, 0, 0,
		NULL, "yes" },
	[K_DS_PLAIN_LISTEN] = { DS, "plain_listen", KT_HOSTPORT_LIST,
		KF_EMPTY_OFF, 0, 0, NULL, NULL },
	[K_DS_MAX_HANDSHAKES] = { DS, "max_handshakes", KT_UINT, 0, 1, 1000000,
		NULL, "1000" },
	[K_DS_MAX_HANDSHAKES_PER_IP] = { DS, "max_handshakes_per_ip", KT_UINT,
		0, 1, 1000000, NULL, "64" },

	[K_CA_FILE] = { CA, "file", KT_FILE, KF_REQUIRED, 0, 0, NULL, NULL },
	[K_CA_RETIRE_AFTER] = { CA, "retire_after", KT_DATE, KF_NO_EMPTY, 0,
		0, NULL, NULL },
	[K_CA_CRL] = { CA, "crl", KT_FILE, KF_NO_EMPTY, 0, 0, NULL, NULL },
	[K_CA_CLOCK_SKEW] = { CA, "clock_skew", KT_DURATION, KF_EMPTY_OFF, 0,
		0, NULL, NULL },
	[K_CA_EXPIRED_GRACE] = { CA, "expired_grace", KT_DURATION, 0, 0, 0,
		NULL, "0" },

	[K_UP_ADDRESS] = { UP, "address", KT_HOSTPORT, KF_REQUIRED, 0, 0,
		NULL, NULL },
	[K_UP_SNI] = { UP, "sni", KT_HOSTNAME, KF_EMPTY_OFF, 0, 0, NULL, NULL },
	[K_UP_CA] = { UP, "ca", KT_FILE, KF_REQUIRED, 0, 0, NULL, NULL },
	[K_UP_CERT] = { UP, "cert", KT_FILE, KF_EMPTY_OFF, 0, 0, NULL, NULL },
	[K_UP_KEY] = { UP, "key", KT_FILE, KF_EMPTY_OFF, 0, 0, NULL, NULL },
	[K_UP_DEVICE_CERTS] = { UP, "device_certs", KT_DIR, KF_EMPTY_OFF, 0,
		0, NULL, NULL },
	[K_UP_ALPN] = { UP, "alpn", KT_ALPN, KF_EMPTY_OFF, 0, 0, NULL, NULL },
	[K_UP_TLS_VERSIONS] = { UP, "tls_versions", KT_TLS_VERSIONS, 0, 0, 0,
		NULL, "1.2-1.3" },
	[K_UP_CONNECT_TIMEOUT] = { UP, "connect_timeout", KT_DURATION,
		KF_NONZERO, 0, 0, NULL, "10s" },
	[K_UP_CONNECT_RATE] = { UP, "connect_rate", KT_UINT, 0, 1, 100000,
		NULL, "50" },

	[K_MQTT_IDENTITY] = { MQ, "identity", KT_ENUM, 0, 0, 0, w_identity,
		"cn" },
	[K_MQTT_CLIENTID] = { MQ, "clientid", KT_ENUM, 0, 0, 0, w_clientid,
		"check" },
	[K_MQTT_USERNAME] = { MQ, "username", KT_ENUM, 0, 0, 0, w_username,
		"keep" },
	[K_MQTT_MAX_PACKET_SIZE] = { MQ, "max_packet_size", KT_SIZE, 0, 16,
		MQTT_MAX_PACKET, NULL, "1M" },
	[K_MQTT_MAX_CONNECT_SIZE] = { MQ, "max_connect_size", KT_SIZE, 0, 16,
		MQTT_MAX_PACKET, NULL, "64K" },
};

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

void
cfg_key_unknown(struct cfg_loader *ld, enum cfg_sec sec,
    const char *secname, const char *name, unsigned line)
{
	const char *best = NULL;
	size_t best_d = 3, i, used = 0;
	char list[256] = "";

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

static void
set_str(char **field, struct cfg_value *v)
{
	free(*field);
	*field = v->str;
	v->str = NULL;
}

static void
set_file(struct cfg_file *f, struct cfg_value *v, unsigned line)
{
	set_str(&f->path, v);
	f->line = line;
}

static void
set_list(struct cfg_listen *l, struct cfg_value *v, unsigned line)
{
	free(l->addrs);
	l->addrs = v->list;
	l->count = v->count;
	l->line = line;
	v->list = NULL;
}

/* The one place that knows which field each key fills. v's owned members
 * move into the configuration. */
static void
store(struct cfg *cfg, enum cfg_key_id id, struct cfg_ca *ca,
    struct cfg_value *v, unsigned line)
{
	switch (id) {
	case K_GW_ADMIN_LISTEN:
		set_str(&cfg->gateway.admin_listen, v);
		break;
	case K_GW_LOG_LEVEL:
		cfg->gateway.log_level = (enum cfg_log_level)v->e;
		break;
	case K_GW_LOG_FORMAT:
		cfg->gateway.log_format = (enum cfg_log_format)v->e;
		break;
	case K_GW_MAX_CONNECTIONS:
		cfg->gateway.max_connections = (uint32_t)v->u;
		break;
	case K_GW_SHUTDOWN_GRACE:
		cfg->gateway.shutdown_grace_ms = v->i;
		break;
	case K_GW_USER:
		set_str(&cfg->gateway.user, v);
		cfg->gateway.user_line = line;
		break;
	case K_GW_STATE_FILE:
		set_file(&cfg->gateway.state_file, v, line);
		break;
	case K_GW_REJUDGE:
		cfg->gateway.rejudge = v->b;
		break;
	case K_DS_LISTEN:
		set_list(&cfg->downstream.listen, v, line);
		break;
	case K_DS_CERT:
		set_file(&cfg->downstream.cert, v, line);
		break;
	case K_DS_KEY:
		set_file(&cfg->downstream.key, v, line);
		break;
	case K_DS_CLIENT_AUTH:
		cfg->downstream.client_auth = (enum cfg_client_auth)v->e;
		break;
	case K_DS_TLS_VERSIONS:
		cfg->downstream.tls_min = v->lo;
		cfg->downstream.tls_max = v->hi;
		cfg->downstream.tls_versions_line = line;
		break;
	case K_DS_CIPHERS:
		set_str(&cfg->downstream.ciphers, v);
		cfg->downstream.ciphers_line = line;
		break;
	case K_DS_CLOCK_SKEW:
		cfg->downstream.clock_skew_ms = v->i;
		break;
	case K_DS_HANDSHAKE_TIMEOUT:
		cfg->downstream.handshake_timeout_ms = v->i;
		break;
	case K_DS_SESSION_TICKETS:
		cfg->downstream.session_tickets = v->b;
		break;
	case K_DS_MAX_HANDSHAKES:
		cfg->downstream.max_handshakes = (uint32_t)v->u;
		break;
	case K_DS_MAX_HANDSHAKES_PER_IP:
		cfg->downstream.max_handshakes_per_ip = (uint32_t)v->u;
		break;
	case K_DS_PLAIN_LISTEN:
		set_list(&cfg->downstream.plain_listen, v, line);
		break;
	case K_CA_FILE:
		set_file(&ca->file, v, line);
		break;
	case K_CA_RETIRE_AFTER:
		ca->has_retire_after = true;
		ca->retire_after = v->i;
		break;
	case K_CA_CRL:
		set_file(&ca->crl, v, line);
		break;
	case K_CA_CLOCK_SKEW:
		ca->has_clock_skew = true;
		ca->clock_skew_ms = v->i;
		break;
	case K_CA_EXPIRED_GRACE:
		ca->expired_grace_ms = v->i;
		break;
	case K_UP_ADDRESS:
		cfg->upstream.address = v->hp;
		cfg->upstream.address_line = line;
		break;
	case K_UP_SNI:
		set_str(&cfg->upstream.sni, v);
		break;
	case K_UP_CA:
		set_file(&cfg->upstream.ca, v, line);
		break;
	case K_UP_CERT:
		set_file(&cfg->upstream.cert, v, line);
		break;
	case K_UP_KEY:
		set_file(&cfg->upstream.key, v, line);
		break;
	case K_UP_DEVICE_CERTS:
		set_file(&cfg->upstream.device_certs, v, line);
		break;
	case K_UP_ALPN:
		set_str(&cfg->upstream.alpn, v);
		break;
	case K_UP_TLS_VERSIONS:
		cfg->upstream.tls_min = v->lo;
		cfg->upstream.tls_max = v->hi;
		cfg->upstream.tls_versions_line = line;
		break;
	case K_UP_CONNECT_TIMEOUT:
		cfg->upstream.connect_timeout_ms = v->i;
		break;
	case K_UP_CONNECT_RATE:
		cfg->upstream.connect_rate = (uint32_t)v->u;
		break;
	case K_MQTT_IDENTITY:
		cfg->mqtt.identity = (enum cfg_identity)v->e;
		break;
	case K_MQTT_CLIENTID:
		cfg->mqtt.clientid = (enum cfg_clientid)v->e;
		break;
	case K_MQTT_USERNAME:
		cfg->mqtt.username = (enum cfg_username)v->e;
		break;
	case K_MQTT_MAX_PACKET_SIZE:
		cfg->mqtt.max_packet_size = (uint32_t)v->u;
		break;
	case K_MQTT_MAX_CONNECT_SIZE:
		cfg->mqtt.max_connect_size = (uint32_t)v->u;
		break;
	case CFG_KEY_COUNT:
		CB_ASSERT(id != CFG_KEY_COUNT);
		break;
	}
}

/* What an empty value of a KF_NO_EMPTY key would have turned off, and how
 * to turn it off on purpose. */
static const char *
empty_refused(enum cfg_key_id id)
{
	switch (id) {
	case K_CA_CRL:
		return "write the CRL file of this CA, or remove the line to "
		    "check no CRL for it (revocation checking off)";
	case K_CA_RETIRE_AFTER:
		return "write the date after which this CA admits no device, "
		    "or remove the line to keep the CA without one";
	default:
		return "write a value, or remove the line";
	}
}

/* An empty value: "off" where the key allows it, else an error that says
 * what to write (or to remove the line for the default). */
static void
apply_empty(struct cfg_loader *ld, const struct cfg_key_def *def,
    enum cfg_key_id id, struct cfg_ca *ca, const char *sec, unsigned line)
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
		    empty_refused(id));
		return;
	}
	if (def->flags & KF_EMPTY_OFF) {
		memset(&v, 0, sizeof(v));
		store(ld->cfg, id, ca, &v, 0); /* NULL / zero = absent */
		if (id == K_CA_CLOCK_SKEW) {
			ca->has_clock_skew = false;
		}
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
	struct cfg_value v;

	if (*value == '\0') {
		apply_empty(ld, def, id, ca, secname, line);
		return;
	}
	memset(&v, 0, sizeof(v));
	if (cfg_value_parse(ld, def, secname, value, line, &v)) {
		store(ld->cfg, id, ca, &v, line);
	}
	free(v.str);
	free(v.list);
}

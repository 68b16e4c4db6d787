/*
 * config_check.c - the checks that need the whole file: required keys,
 * rules between keys, and defaults derived from other keys.
 *
 * A rule between two keys is reported once, at the line of the key the
 * operator actually wrote (the other one may be a default), and the message
 * names both keys and says which change resolves it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "parse.h"

/* The line of a section header, or 1 when the section is missing. */
static unsigned
sec_line(const struct cfg_loader *ld, enum cfg_sec sec)
{
	return ld->fixed[sec].line ? ld->fixed[sec].line : 1;
}

static unsigned
seen(const struct cfg_loader *ld, enum cfg_key_id id)
{
	return ld->fixed[cfg_keys[id].sec].seen[id];
}

static void
check_required(struct cfg_loader *ld)
{
	size_t i, c;

	for (i = 0; i < CFG_KEY_COUNT; i++) {
		enum cfg_sec sec = cfg_keys[i].sec;

		if (!(cfg_keys[i].flags & KF_REQUIRED)) {
			continue;
		}
		if (sec != CFG_SEC_CA) {
			if (ld->fixed[sec].seen[i] == 0 &&
			    !ld->fixed[sec].tried[i]) {
				cfg_key_report(ld, true, sec_line(ld, sec),
				    cfg_sec_name(sec), cfg_keys[i].name,
				    "required key is missing");
			}
			continue;
		}
		for (c = 0; c < ld->cfg->ca_count; c++) {
			char name[48];

			if (ld->ca_state[c].seen[i] != 0 ||
			    ld->ca_state[c].tried[i]) {
				continue;
			}
			(void)snprintf(name, sizeof(name), "ca.%s",
			    ld->cfg->cas[c].name);
			cfg_key_report(ld, true, ld->cfg->cas[c].line, name,
			    cfg_keys[i].name, "required key is missing");
		}
	}
}

static void
check_client_auth(struct cfg_loader *ld)
{
	const struct cfg *cfg = ld->cfg;
	unsigned at = seen(ld, K_DS_CLIENT_AUTH);
	const char *mode = cfg->downstream.client_auth == CFG_AUTH_REQUIRED ?
	    "required" : "optional";

	if (cfg->downstream.client_auth != CFG_AUTH_NONE &&
	    cfg->ca_count == 0) {
		cfg_key_report(ld, true, at ? at : sec_line(ld,
		    CFG_SEC_DOWNSTREAM), "downstream", "client_auth",
		    "client_auth = %s%s needs at least one [ca.NAME] section "
		    "with the CA that issues the device certificates (or "
		    "client_auth = none)", mode, at ? "" : " (the default)");
	}
	if (cfg->downstream.client_auth == CFG_AUTH_NONE && cfg->ca_count > 0) {
		cfg_key_report(ld, false, at, "downstream", "client_auth",
		    "client_auth = none: the [ca.*] sections are not used");
	}
}

static const char *
identity_word(enum cfg_identity id)
{
	static const char *const words[] = { "cn", "san-dns", "san-uri",
		"none" };

	return words[id];
}

/* [mqtt] identity against clientid, username and client_auth. */
static void
check_identity(struct cfg_loader *ld)
{
	const struct cfg *cfg = ld->cfg;
	unsigned id_at = seen(ld, K_MQTT_IDENTITY);
	unsigned cid_at = seen(ld, K_MQTT_CLIENTID);
	unsigned user_at = seen(ld, K_MQTT_USERNAME);
	unsigned auth_at = seen(ld, K_DS_CLIENT_AUTH);

	if (cfg->mqtt.identity == CFG_IDENTITY_NONE &&
	    cfg->mqtt.clientid != CFG_CLIENTID_KEEP) {
		const char *mode = cfg->mqtt.clientid == CFG_CLIENTID_CHECK ?
		    "check" : "rewrite";

		if (cid_at != 0) {
			cfg_key_report(ld, true, cid_at, "mqtt", "clientid",
			    "clientid = %s needs a device identity, but "
			    "identity = none (line %u); set clientid = keep",
			    mode, id_at);
		} else {
			cfg_key_report(ld, true, id_at, "mqtt", "identity",
			    "identity = none, but clientid = check (the "
			    "default) needs an identity; set clientid = keep");
		}
	}
	if (cfg->mqtt.identity == CFG_IDENTITY_NONE &&
	    cfg->mqtt.username == CFG_USERNAME_IDENTITY) {
		cfg_key_report(ld, true, user_at, "mqtt", "username",
		    "username = identity needs a device identity, but identity "
		    "= none (line %u); set username = keep or drop", id_at);
	}
	if (cfg->mqtt.identity != CFG_IDENTITY_NONE &&
	    cfg->downstream.client_auth == CFG_AUTH_NONE) {
		if (id_at != 0) {
			cfg_key_report(ld, true, id_at, "mqtt", "identity",
			    "identity = %s needs a device certificate, but "
			    "[downstream] client_auth = none (line %u); set "
			    "identity = none or client_auth = required",
			    identity_word(cfg->mqtt.identity), auth_at);
		} else {
			cfg_key_report(ld, true, auth_at, "downstream",
			    "client_auth", "client_auth = none gives no device "
			    "certificate, but [mqtt] identity = cn (the "
			    "default) needs one; set [mqtt] identity = none");
		}
	}
}

static void
check_upstream(struct cfg_loader *ld)
{
	struct cfg *cfg = ld->cfg;
	unsigned cert_at = seen(ld, K_UP_CERT), key_at = seen(ld, K_UP_KEY);
	bool has_cert = cfg->upstream.cert.path != NULL;
	bool has_key = cfg->upstream.key.path != NULL;

	if (has_cert && !has_key) {
		cfg_key_report(ld, true, cert_at, "upstream", "cert", "cert is "
		    "set but key is missing; set both or neither");
	} else if (has_key && !has_cert) {
		cfg_key_report(ld, true, key_at, "upstream", "key", "key is "
		    "set but cert is missing; set both or neither");
	}
	if (cfg->upstream.sni == NULL && seen(ld, K_UP_ADDRESS) != 0 &&
	    cfg->upstream.address.host[0] != '\0') {
		cfg->upstream.sni = strdup(cfg->upstream.address.host);
		if (cfg->upstream.sni == NULL) {
			ld->lost++;
		}
	}
}

/* Two listeners on one address cannot both bind: say so now, not at start. */
static void
check_overlap(struct cfg_loader *ld)
{
	const struct cfg *cfg = ld->cfg;
	const struct cfg_listen *tls = &cfg->downstream.listen;
	const struct cfg_listen *plain = &cfg->downstream.plain_listen;
	struct parse_hostport admin;
	char why[PARSE_WHY_LEN];
	size_t i, j;

	for (i = 0; i < plain->count; i++) {
		for (j = 0; j < tls->count; j++) {
			if (strcmp(plain->addrs[i].host, tls->addrs[j].host) ||
			    strcmp(plain->addrs[i].port, tls->addrs[j].port)) {
				continue;
			}
			cfg_key_report(ld, true, plain->line, "downstream",
			    "plain_listen", "%s%s%s:%s is also in listen%s; "
			    "use another port", strchr(tls->addrs[j].host,
			    ':') ? "[" : "", tls->addrs[j].host,
			    strchr(tls->addrs[j].host, ':') ? "]" : "",
			    tls->addrs[j].port, tls->line ? "" :
			    " (the default)");
		}
	}
	if (cfg->gateway.admin_listen == NULL ||
	    !parse_hostport(cfg->gateway.admin_listen, &admin, why)) {
		return;
	}
	for (i = 0; i < tls->count + plain->count; i++) {
		const struct parse_hostport *a = i < tls->count ?
		    &tls->addrs[i] : &plain->addrs[i - tls->count];

		if (strcmp(a->host, admin.host) == 0 &&
		    strcmp(a->port, admin.port) == 0) {
			cfg_key_report(ld, true, seen(ld, K_GW_ADMIN_LISTEN) ?
			    seen(ld, K_GW_ADMIN_LISTEN) : sec_line(ld,
			    CFG_SEC_GATEWAY), "gateway", "admin_listen",
			    "%s is also a [downstream] %s address; use another "
			    "port", cfg->gateway.admin_listen, i < tls->count ?
			    "listen" : "plain_listen");
			break;
		}
	}
}

void
cfg_check_all(struct cfg_loader *ld)
{
	check_required(ld);
	check_client_auth(ld);
	check_identity(ld);
	check_upstream(ld);
	check_overlap(ld);
}

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

#include "clock.h"
#include "config.h"
#include "config_int.h"
#include "p11uri.h"
#include "parse.h"

/* Past this, clock_skew is no longer skew and expired_grace no longer a
 * grace: warned about (docs/configuration.md, "Configuration that would
 * weaken trust"). */
#define CHECK_WIDE_MS (30LL * 86400 * 1000)

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

/* A clock_skew above 30 days: a notBefore that far ahead is a broken
 * issuing clock (or a forged certificate), not skew. */
static void
check_skew(struct cfg_loader *ld, unsigned line, const char *sec,
    int64_t ms)
{
	char d[32];

	if (line == 0 || ms <= CHECK_WIDE_MS) {
		return;
	}
	parse_format_duration(ms, d, sizeof(d));
	cfg_key_report(ld, false, line, sec, "clock_skew", "%s is more than 30 "
	    "days: device certificates issued up to %s in the future are "
	    "admitted; fix the clock of the machine that issues them and keep "
	    "this to minutes or hours", d, d);
}

/* Dates and durations that weaken trust while looking harmless: a
 * retire_after already past (a typo in the year refuses a whole fleet),
 * a clock_skew or expired_grace above 30 days. Warnings: each may be
 * meant, and the file still loads. */
static void
check_trust_windows(struct cfg_loader *ld)
{
	const struct cfg *cfg = ld->cfg;
	int64_t now = clock_wall_s();
	char sec[48], when[40], d[32];
	size_t c;

	check_skew(ld, seen(ld, K_DS_CLOCK_SKEW), "downstream",
	    cfg->downstream.clock_skew_ms);
	for (c = 0; c < cfg->ca_count; c++) {
		const struct cfg_ca *ca = &cfg->cas[c];
		const unsigned *at = ld->ca_state[c].seen;

		(void)snprintf(sec, sizeof(sec), "ca.%s", ca->name);
		if (ca->has_retire_after && ca->retire_after <= now &&
		    at[K_CA_RETIRE_AFTER] != 0) {
			parse_format_date(ca->retire_after, when, sizeof(when));
			cfg_key_report(ld, false, at[K_CA_RETIRE_AFTER], sec,
			    "retire_after", "%s is in the past: every device "
			    "of this CA is refused now (reason=retired-ca); if "
			    "that is a typo in the year, fix it", when);
		}
		if (ca->has_clock_skew) {
			check_skew(ld, at[K_CA_CLOCK_SKEW], sec,
			    ca->clock_skew_ms);
		}
		if (ca->expired_grace_ms > CHECK_WIDE_MS &&
		    at[K_CA_EXPIRED_GRACE] != 0) {
			parse_format_duration(ca->expired_grace_ms, d,
			    sizeof(d));
			cfg_key_report(ld, false, at[K_CA_EXPIRED_GRACE], sec,
			    "expired_grace", "%s is more than 30 days: device "
			    "certificates that expired up to %s ago are "
			    "admitted; renew the stranded certificates and keep "
			    "this to the days they need", d, d);
		}
	}
}

/* A key in a token needs the module that reaches it; a module that no key
 * uses is loaded for nothing (and a PIN file without a module is read by
 * nobody). */
static void
check_pkcs11(struct cfg_loader *ld)
{
	const struct cfg *cfg = ld->cfg;
	unsigned mod_at = seen(ld, K_GW_PKCS11_MODULE);
	unsigned pin_at = seen(ld, K_GW_PKCS11_PIN_FILE);
	bool down = p11uri_is(cfg->downstream.key.path);
	bool up = p11uri_is(cfg->upstream.key.path);

	if ((down || up) && cfg->gateway.pkcs11_module.path == NULL) {
		if (down) {
			cfg_key_report(ld, true, seen(ld, K_DS_KEY),
			    "downstream", "key", "a PKCS#11 key needs [gateway] "
			    "pkcs11_module, the token's module (for SoftHSM2: "
			    "/usr/lib/softhsm/libsofthsm2.so)");
		}
		if (up) {
			cfg_key_report(ld, true, seen(ld, K_UP_KEY), "upstream",
			    "key", "a PKCS#11 key needs [gateway] "
			    "pkcs11_module, the token's module (for SoftHSM2: "
			    "/usr/lib/softhsm/libsofthsm2.so)");
		}
		return;
	}
	if (!down && !up && mod_at != 0) {
		cfg_key_report(ld, false, mod_at, "gateway", "pkcs11_module",
		    "no key is a pkcs11: URI, so the module is not loaded");
	} else if (!down && !up && pin_at != 0) {
		cfg_key_report(ld, false, pin_at, "gateway", "pkcs11_pin_file",
		    "no key is a pkcs11: URI, so the PIN file is not read");
	}
}

void
cfg_check_all(struct cfg_loader *ld)
{
	ld->cfg->gateway.line = ld->fixed[CFG_SEC_GATEWAY].line;
	check_required(ld);
	check_client_auth(ld);
	check_identity(ld);
	check_upstream(ld);
	check_overlap(ld);
	check_trust_windows(ld);
	check_pkcs11(ld);
	cfg_sni_check(ld);
}

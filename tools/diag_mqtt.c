/*
 * diag_mqtt.c - CONNACK codes in words (see diag_mqtt.h).
 */
#include <stdio.h>
#include <string.h>

#include "diag_mqtt.h"
#include "diag_text.h"
#include "mqtt.h"
#include "util.h"

#define ESC_LEN 600

static const struct {
	const char *word;
	uint8_t level;
} diag_versions[] = {
	/* The first word of each level is its name. */
	{"3.1.1", MQTT_V311}, {"311", MQTT_V311}, {"4", MQTT_V311},
	{"5", MQTT_V5}, {"5.0", MQTT_V5},
	{"3.1", MQTT_V31}, {"31", MQTT_V31}, {"3", MQTT_V31},
};

bool
diag_mqtt_version_parse(const char *s, uint8_t *out)
{
	for (size_t i = 0; i < CB_ARRAY_SIZE(diag_versions); i++) {
		if (strcmp(s, diag_versions[i].word) == 0) {
			*out = diag_versions[i].level;
			return true;
		}
	}
	return false;
}

const char *
diag_mqtt_version_name(uint8_t level)
{
	for (size_t i = 0; i < CB_ARRAY_SIZE(diag_versions); i++) {
		if (diag_versions[i].level == level) {
			return diag_versions[i].word;
		}
	}
	return "?";
}

const char *
diag_connack_name(uint8_t version, uint8_t code)
{
	/* MQTT 3.1.1 section 3.2.2.3 (3.1 has the same six). */
	static const char *const v3[] = {
		"connection accepted", "unacceptable protocol version",
		"identifier rejected", "server unavailable",
		"bad user name or password", "not authorized",
	};
	/* MQTT 5.0 section 3.2.2.2. */
	static const struct {
		uint8_t code;
		const char *name;
	} v5[] = {
		{0x00, "success"}, {0x80, "unspecified error"},
		{0x81, "malformed packet"}, {0x82, "protocol error"},
		{0x83, "implementation specific error"},
		{0x84, "unsupported protocol version"},
		{0x85, "client identifier not valid"},
		{0x86, "bad user name or password"}, {0x87, "not authorized"},
		{0x88, "server unavailable"}, {0x89, "server busy"},
		{0x8A, "banned"}, {0x8C, "bad authentication method"},
		{0x90, "topic name invalid"}, {0x95, "packet too large"},
		{0x97, "quota exceeded"}, {0x99, "payload format invalid"},
		{0x9A, "retain not supported"}, {0x9B, "QoS not supported"},
		{0x9C, "use another server"}, {0x9D, "server moved"},
		{0x9F, "connection rate exceeded"},
	};

	if (version != MQTT_V5) {
		return code < CB_ARRAY_SIZE(v3) ? v3[code] : "unknown code";
	}
	for (size_t i = 0; i < CB_ARRAY_SIZE(v5); i++) {
		if (v5[i].code == code) {
			return v5[i].name;
		}
	}
	return "unknown code";
}

/* Folds the 3.x codes and their 5.0 counterparts into one case. */
static int
diag_connack_kind(uint8_t version, uint8_t code)
{
	if (version == MQTT_V5) {
		return code;
	}
	switch (code) {
	case 1:
		return 0x84;
	case 2:
		return 0x85;
	case 3:
		return 0x88;
	case 4:
		return 0x86;
	case 5:
		return 0x87;
	default:
		return 0x80;
	}
}

void
diag_connack_explain(uint8_t version, uint8_t code,
    const struct diag_connect_facts *f, char *out, size_t cap)
{
	char what[96], id[ESC_LEN], cn[ESC_LEN], user[ESC_LEN];

	snprintf(what, sizeof(what), "CONNACK 0x%02X, %s", code,
	    diag_connack_name(version, code));
	diag_escape(f->client_id, id, sizeof(id));
	diag_escape(f->cert_cn, cn, sizeof(cn));
	diag_escape(f->username, user, sizeof(user));
	switch (diag_connack_kind(version, code)) {
	case 0x84:
		snprintf(out, cap, "the server does not speak this MQTT "
		    "version (%s): try --mqtt-version 3.1.1 or 5", what);
		return;
	case 0x85:
		snprintf(out, cap, "the server rejected the client id \"%s\" "
		    "(%s): certbridge with [mqtt] clientid = check wants the "
		    "device's identity%s%s%s; give that with --client-id, or "
		    "see the server's log for its rule", id, what,
		    f->cert_cn ? " (the CN of --cert: \"" : "",
		    f->cert_cn ? cn : "", f->cert_cn ? "\")" : "");
		return;
	case 0x86:
		snprintf(out, cap, "the server refused the user name or "
		    "password (%s; user name %s%s%s): check --username and "
		    "--password against the broker's password file",
		    what, f->username ? "\"" : "", f->username ? user
		    : "none sent", f->username ? "\"" : "");
		return;
	case 0x87:
		snprintf(out, cap, "the server does not authorize this client "
		    "(%s): for certbridge, the device identity rules of "
		    "[mqtt] (identity, username) refused it, see its log "
		    "(event=mqtt-connect); for a broker, check its ACL or "
		    "authentication plugin", what);
		return;
	case 0x88:
	case 0x89:
		snprintf(out, cap, "the server is unavailable (%s): if this is "
		    "certbridge, the broker behind it could not be reached or "
		    "refused the gateway; its log says why (event="
		    "upstream-failed or handshake-failed side=upstream)", what);
		return;
	case 0x8A:
		snprintf(out, cap, "the server has banned this client (%s): "
		    "ask the broker's operator", what);
		return;
	case 0x95:
		snprintf(out, cap, "the server finds the CONNECT too large "
		    "(%s): shorten the client id, user name or password",
		    what);
		return;
	case 0x9C:
	case 0x9D:
		snprintf(out, cap, "the server sends this client elsewhere "
		    "(%s): connect to the server it names (a Server Reference "
		    "property)", what);
		return;
	case 0x9F:
		snprintf(out, cap, "the server refuses connections this fast "
		    "(%s): wait and retry, or lower the connection rate "
		    "(certbridge: [upstream] connect_rate)", what);
		return;
	default:
		snprintf(out, cap, "the server refused the CONNECT (%s): see "
		    "the server's log for the reason", what);
		return;
	}
}

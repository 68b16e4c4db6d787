/*
 * mqttpolicy.c - identity rules on CONNECT (see mqttpolicy.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "mqttpolicy.h"

static enum mqttpolicy_rc
mqttpolicy_refuse(struct mqttpolicy_result *res, uint8_t version,
    bool bad_id, const char *fmt, ...) CB_PRINTF(4, 5);

static enum mqttpolicy_rc
mqttpolicy_refuse(struct mqttpolicy_result *res, uint8_t version,
    bool bad_id, const char *fmt, ...)
{
	va_list ap;

	if (version == MQTT_V5) {
		res->connack_code = bad_id ? MQTT_RC_V5_CLIENT_ID_INVALID
		    : MQTT_RC_V5_NOT_AUTHORIZED;
	} else {
		res->connack_code = bad_id ? MQTT_CONNACK_V3_IDENTIFIER_REJECTED
		    : MQTT_CONNACK_V3_NOT_AUTHORIZED;
	}
	res->reason = REASON_IDENTITY;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	return MQTTPOLICY_REFUSE;
}

/* Client ids are compared and logged as text; a byte that could end a C
 * string or break a log line is shown escaped by the log layer. */
static void
mqttpolicy_text(const struct mqtt_bytes *b, char *out, size_t cap)
{
	size_t n = b->len < cap - 1 ? b->len : cap - 1;

	for (size_t i = 0; i < n; i++) {
		out[i] = (b->ptr[i] >= 0x20 && b->ptr[i] < 0x7f)
		    ? (char)b->ptr[i] : '?';
	}
	out[n] = '\0';
}

enum mqttpolicy_rc
mqttpolicy_apply(const struct cfg *cfg, const struct trust_verdict *v,
    bool has_cert, struct mqtt_connect *c, struct evbuffer *out,
    struct mqttpolicy_result *res)
{
	const struct judge_identity *id = &v->id;
	bool needs_identity, changed = false;
	char shown[96];
	size_t size;
	uint8_t *buf;

	memset(res, 0, sizeof(*res));
	needs_identity = cfg->mqtt.clientid != CFG_CLIENTID_KEEP
	    || cfg->mqtt.username == CFG_USERNAME_IDENTITY;
	/* Identities are exact (docs/configuration.md): when [mqtt]
	 * identity reads a field, it reads it exactly or the device is
	 * refused, whatever clientid and username say; the identity also
	 * names the device in logs and sightings and picks its
	 * device_certs pair. */
	if (has_cert && cfg->mqtt.identity != CFG_IDENTITY_NONE
	    && id->state != JUDGE_ID_OK) {
		return mqttpolicy_refuse(res, c->version, false, "%s", id->why);
	}
	if (needs_identity && !has_cert) {
		return mqttpolicy_refuse(res, c->version, false, "the device "
		    "presented no certificate, so it has no identity for "
		    "[mqtt] clientid/username rules");
	}
	/* [MQTT-3.1.3-8]: a 3.x client that wants its session kept must
	 * name it. (5.0 lets the server assign an id: the broker's call.) */
	if (c->version != MQTT_V5 && c->client_id.len == 0 && !c->clean_start
	    && cfg->mqtt.clientid != CFG_CLIENTID_REWRITE) {
		return mqttpolicy_refuse(res, c->version, true,
		    "empty client id with clean session off "
		    "[MQTT-3.1.3-8]; the device must send a client id");
	}
	if (cfg->mqtt.clientid == CFG_CLIENTID_CHECK
	    && !judge_identity_equals(id, c->client_id.ptr, c->client_id.len)) {
		mqttpolicy_text(&c->client_id, shown, sizeof(shown));
		return mqttpolicy_refuse(res, c->version, true,
		    "client id \"%s\" differs from the certificate identity "
		    "\"%s\"; fix the device's client id, or set [mqtt] "
		    "clientid = rewrite", shown, id->bytes);
	}
	if (cfg->mqtt.clientid == CFG_CLIENTID_REWRITE
	    && !judge_identity_equals(id, c->client_id.ptr, c->client_id.len)) {
		c->client_id.ptr = (const uint8_t *)id->bytes;
		c->client_id.len = (uint16_t)id->len;
		changed = true;
	}
	if (cfg->mqtt.username == CFG_USERNAME_IDENTITY && !(c->has_username
	    && judge_identity_equals(id, c->username.ptr, c->username.len))) {
		c->has_username = true;
		c->username.ptr = (const uint8_t *)id->bytes;
		c->username.len = (uint16_t)id->len;
		changed = true;
	} else if (cfg->mqtt.username == CFG_USERNAME_DROP && c->has_username) {
		c->has_username = false;
		c->username.len = 0;
		/* 3.x forbids a password without a username [MQTT-3.1.2-22]. */
		if (c->version != MQTT_V5) {
			c->has_password = false;
			c->password.len = 0;
		}
		changed = true;
	}
	if (!changed) {
		return MQTTPOLICY_PASS;
	}
	/* Only a 3.1 CONNECT gets here with a password and no user name:
	 * its user name flag was set but the name missing or not UTF-8, which
	 * the broker ignores (mqtt_connect_decode). Re-encoded, the password
	 * would stand alone, which the broker closes on [MQTT-3.1.2-22], so
	 * it goes with the name, as with [mqtt] username = drop above. */
	if (c->version != MQTT_V5 && c->has_password && !c->has_username) {
		c->has_password = false;
		c->password.len = 0;
	}
	size = mqtt_connect_encode(c, NULL, 0);
	if (size == 0 || (buf = malloc(size)) == NULL) {
		res->reason = REASON_INTERNAL;
		res->connack_code = c->version == MQTT_V5
		    ? MQTT_RC_V5_SERVER_UNAVAILABLE
		    : MQTT_CONNACK_V3_SERVER_UNAVAILABLE;
		snprintf(res->detail, sizeof(res->detail), "cannot re-encode "
		    "the CONNECT");
		return MQTTPOLICY_REFUSE;
	}
	mqtt_connect_encode(c, buf, size);
	evbuffer_add(out, buf, size);
	free(buf);
	return MQTTPOLICY_REWRITTEN;
}

/*
 * intake.c - the device side of a session up to its CONNECT: the TLS
 * handshake's verdict (admission, identity, the migration figures), then
 * the first packet, read whole within [mqtt] max_connect_size, checked
 * against the [mqtt] identity rules and given its place in the connect
 * queue (see session.h).
 */
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "admit.h"
#include "certfacts.h"
#include "clock.h"
#include "devcert.h"
#include "gen.h"
#include "metrics.h"
#include "mqttpolicy.h"
#include "parse.h"
#include "session_int.h"
#include "sightfile.h"
#include "sightings.h"
#include "tlsctx.h"

void
intake_handshake_over(struct session *s)
{
	if (s->hs_held) {
		s->hs_held = false;
		admit_handshake_over(s->rt->admit, &s->hs_key);
	}
}

/* The reason a device handshake failed, from what trust recorded and
 * what wolfSSL returned. */
static enum reason
intake_tls_reason(struct session *s, char *detail, size_t cap)
{
	struct conn *c = s->down;
	const struct conn_failure *f = conn_failure(c);
	int err = f->tls_error;
	char what[256];

	if (s->verdict.decided && !s->verdict.j.admitted) {
		snprintf(detail, cap, "%s", s->verdict.j.detail);
		return s->verdict.j.reason;
	}
	conn_describe(c, what, sizeof(what));
	if (err == NO_PEER_CERT) {
		trust_refuse_no_cert(&s->verdict);
		snprintf(detail, cap, "%s", s->verdict.j.detail);
		return REASON_NO_CLIENT_CERT;
	}
	if (f->alert >= 0) {
		snprintf(detail, cap, "the device aborted the handshake (%s); "
		    "usually its trust store does not accept the gateway's "
		    "chain in [downstream] cert: give the device's legacy "
		    "CA a chain it knows", what);
		return REASON_PEER_REJECTED;
	}
	if (f->kind == CONN_FAIL_NONE || err == SOCKET_PEER_CLOSED_E
	    || (err == SOCKET_ERROR_E && f->sys_error == 0)) {
		snprintf(detail, cap, "the peer closed the connection during "
		    "the TLS handshake without an alert (a port check, or a "
		    "device that gave up); if a device keeps doing this, compare "
		    "its TLS versions and ciphers with [downstream] "
		    "tls_versions and ciphers");
		return REASON_PROTOCOL;
	}
	snprintf(detail, cap, "%s; check the device's TLS versions and "
	    "ciphers against [downstream] tls_versions and ciphers", what);
	return REASON_PROTOCOL;
}

void
intake_handshake_failed(struct session *s)
{
	struct log_line l;
	char detail[JUDGE_DETAIL_LEN + 64];
	enum reason why = intake_tls_reason(s, detail, sizeof(detail));

	metrics_handshake(s->rt->metrics, METRICS_DOWNSTREAM, false,
	    why);
	if (session_log_begin(s, &l, LOG_WARN, "handshake-failed")) {
		log_str(&l, "side", "downstream");
		log_str(&l, "reason", reason_slug(why));
		log_str(&l, "detail", detail);
		log_end(&l);
	}
	/* A judged certificate, or a handshake the device broke off with
	 * an alert, is a refusal an operator may be asked about; a port
	 * check closing without a word, or a handshake that timed out, is
	 * not worth pushing those out of the ring. */
	if (s->verdict.decided || (why != REASON_PROTOCOL
	    && why != REASON_TIMEOUT)) {
		session_note_refusal(s, why, detail);
	}
	s->quiet_close = true;
	session_end(s, why, detail);
}

/* A device whose session lasts is still on its CA: its sighting is made
 * new now and then (session_refresh_sightings), or a fleet that never
 * reconnects would look gone from its CA after 7 days, and retiring that
 * CA would cut it off (docs/rotation.md). */
void
intake_refresh_sighting(struct session *s, int64_t now)
{
	const struct trust_verdict *v = &s->verdict;
	char device[4 * JUDGE_IDENTITY_MAX + 1];

	if (!s->has_cert || v->j.ca_index < 0) {
		return;
	}
	judge_identity_display(&v->id, device, sizeof(device));
	if (device[0] != '\0') {
		sightings_note(s->rt->sightings,
		    s->gen->cfg->cas[v->j.ca_index].name, device, "", now);
	}
}

/* Every admission by a CA counts towards that CA's migration figures. */
static void
intake_note_sighting(struct session *s)
{
	const struct trust_verdict *v = &s->verdict;
	struct sightings *seen = s->rt->sightings;
	char device[4 * JUDGE_IDENTITY_MAX + 1];
	const char *ca;

	if (!s->has_cert || v->j.ca_index < 0) {
		return;
	}
	ca = s->gen->cfg->cas[v->j.ca_index].name;
	sightings_count_admission(seen, ca);
	/* Escaped, so a name with odd bytes keys the table (and the state
	 * file) as the text shown in logs, never cut at a NUL. */
	judge_identity_display(&v->id, device, sizeof(device));
	if (device[0] != '\0') {
		char serial[SIGHTFILE_SERIAL_HEX] = "";
		struct certfacts leaf;
		char why[CERTFACTS_WHY_LEN];

		/* Kept for certbridge-certs --what-if 'crl:...': which
		 * devices a new CRL would cut off. */
		if (v->chain.count > 0 && certfacts_parse(v->chain.der,
		    v->chain.len[0], &leaf, why)) {
			sightfile_serial_hex(leaf.serial.ptr, leaf.serial.len,
			    serial);
		}
		sightings_note(seen, ca, device, serial, clock_wall_s());
	}
	if (v->j.grace != JUDGE_GRACE_NONE) {
		sightings_count_grace(seen, ca,
		    v->j.grace == JUDGE_GRACE_EXPIRED);
	}
}

void
intake_admitted(struct session *s)
{
	WOLFSSL *ssl = conn_ssl(s->down);
	struct log_line l;
	const char *kind = NULL;

	if (ssl != NULL) {
		/* Judged, from certbridge's own copy of the chain (this and
		 * every later judgement): wolfSSL's parsed copy can go. */
		tlsctx_release_peer_cert(ssl);
		s->has_cert = s->verdict.decided && s->verdict.j.admitted;
		if (wolfSSL_session_reused(ssl)) {
			s->resumed = true;
			trust_judge_resumed(ssl, &s->verdict);
			if (!s->verdict.decided && s->gen->cfg->downstream.client_auth
			    == CFG_AUTH_REQUIRED) {
				trust_refuse_no_cert(&s->verdict);
			}
			if (s->verdict.decided && !s->verdict.j.admitted) {
				intake_handshake_failed(s);
				return;
			}
			s->has_cert = s->verdict.decided;
		}
		if (s->verdict.decided && !s->verdict.j.admitted) {
			intake_handshake_failed(s);
			return;
		}
		if (s->has_cert && !session_judged_current(s)) {
			return;
		}
		if (s->has_cert) {
			trust_identity(s->gen->cfg, &s->verdict);
		}
	}
	s->identified = true;
	if (ssl != NULL) {
		metrics_handshake(s->rt->metrics, METRICS_DOWNSTREAM,
		    true, REASON_NONE);
	}
	if (s->verdict.j.grace == JUDGE_GRACE_SKEW) {
		kind = "skew";
	} else if (s->verdict.j.grace == JUDGE_GRACE_EXPIRED) {
		kind = "expired";
	}
	if (session_log_begin(s, &l, kind ? LOG_WARN : LOG_INFO,
	    "device-admitted")) {
		if (ssl != NULL) {
			log_str(&l, "tls", wolfSSL_get_version(ssl));
			log_str(&l, "cipher", wolfSSL_get_cipher_name(ssl));
			if (s->resumed) {
				log_str(&l, "resumed", "yes");
			}
		} else {
			log_str(&l, "tls", "none");
		}
		if (!s->has_cert) {
			log_str(&l, "client_cert", "none");
		}
		if (kind != NULL) {
			char span[32];

			parse_format_duration(s->verdict.j.grace_offset_s * 1000,
			    span, sizeof(span));
			log_str(&l, "grace", kind);
			log_str(&l, "offset", span);
			log_str(&l, "detail", kind[0] == 's'
			    ? "device certificate notBefore is in the future, "
			    "within clock_skew; fix the issuing machine's clock"
			    : "device certificate has expired and was admitted "
			    "under expired_grace; renew it");
		}
		log_end(&l);
	}
	intake_note_sighting(s);
	session_set_state(s, SESSION_WAIT_CONNECT);
	conn_set_reading(s->down, true);
}

const char *
intake_identity(const struct session *s)
{
	return s->has_cert && s->verdict.id.state == JUDGE_ID_OK
	    ? s->verdict.id.bytes : NULL;
}

static void
intake_log_connect(struct session *s, const struct mqtt_connect *c,
    const struct mqtt_bytes *sent_id, const char *clientid_rule)
{
	struct log_line l;

	if (!session_log_begin(s, &l, LOG_INFO, "mqtt-connect")) {
		return;
	}
	log_str(&l, "version", c->version == MQTT_V5 ? "5.0"
	    : c->version == MQTT_V311 ? "3.1.1" : "3.1");
	if (c->bridge) {
		log_str(&l, "bridge", "yes");
	}
	log_bytes(&l, "clientid", sent_id->ptr, sent_id->len);
	if (c->client_id.ptr != sent_id->ptr) {
		log_bytes(&l, "clientid_upstream", c->client_id.ptr,
		    c->client_id.len);
	}
	log_u64(&l, "keepalive", c->keepalive);
	log_str(&l, "clean", c->clean_start ? "yes" : "no");
	log_str(&l, "will", c->will ? "yes" : "no");
	log_str(&l, "identity_rule", clientid_rule);
	log_end(&l);
}

/* A device that would reach the broker with no client certificate while
 * device_certs asks for one is refused here, before it takes a place in
 * the connect queue. */
static bool
intake_upstream_identity_ok(struct session *s, const struct mqtt_connect *c)
{
	const struct devstore_pair *pair;
	const char *id = intake_identity(s);
	char detail[320];
	uint8_t code = c->version == MQTT_V5 ? MQTT_RC_V5_NOT_AUTHORIZED
	    : MQTT_CONNACK_V3_NOT_AUTHORIZED;

	switch (devcert_pick(s->gen->cfg, s->gen->devstore, id, &pair)) {
	case DEVCERT_UNSAFE:
		snprintf(detail, sizeof(detail), "identity \"%s\" cannot be "
		    "a file name in [upstream] device_certs (letters, digits "
		    "and . _ - @ : only, at most %d, no leading dot)", id,
		    DEVCERT_IDENTITY_MAX);
		session_refuse_connack(s, code, REASON_IDENTITY, detail);
		return false;
	case DEVCERT_NONE:
		snprintf(detail, sizeof(detail), "no upstream certificate for "
		    "this device: add %s.crt and %s.key to [upstream] "
		    "device_certs, or set [upstream] cert and key",
		    id ? id : "<identity>", id ? id : "<identity>");
		session_refuse_connack(s, code, REASON_IDENTITY, detail);
		return false;
	case DEVCERT_DEVICE:
	case DEVCERT_SHARED:
	case DEVCERT_ANONYMOUS:
		break;
	}
	return true;
}

/* The broker's answer to a level it does not speak, whatever layout
 * follows: CONNACK 0x01 in 3.1.1's form, then close (docs/protocol.md). */
static void
intake_unsupported_level(struct session *s, const char *why)
{
	char detail[MQTT_WHY_LEN + 160];

	s->version = MQTT_V311;
	snprintf(detail, sizeof(detail), "%s; answered CONNACK 0x01 "
	    "(unacceptable protocol version) as the broker would", why);
	session_refuse_connack(s, MQTT_CONNACK_V3_PROTOCOL_VERSION,
	    REASON_PROTOCOL, detail);
}

/*
 * A CONNECT larger than [mqtt] max_connect_size is refused from its fixed
 * header, before its bytes are held: a device's memory before CONNACK is
 * bounded by that size, not by max_packet_size. A 5.0 device is told why
 * (CONNACK 0x95), which takes the protocol name and level, a few bytes
 * after the header; 3.x has no code for it and is closed. A level the
 * broker does not speak gets the broker's CONNACK 0x01 at any size, as
 * under the limit. Returns false while those bytes are still to come.
 */
static bool
intake_connect_too_large(struct session *s, const struct mqtt_fixed *fh,
    uint32_t limit)
{
	struct evbuffer *in = conn_input(s->down);
	uint8_t head[MQTT_MAX_FIXED_HEADER + 9];
	size_t n = evbuffer_get_length(in);
	char detail[160];
	uint8_t version = 0;
	enum mqtt_rc rc;

	n = n < sizeof(head) ? n : sizeof(head);
	evbuffer_copyout(in, head, n);
	rc = mqtt_connect_version(head + fh->header_len, n - fh->header_len,
	    &version);
	if (rc == MQTT_NEED_MORE) {
		return false;
	}
	snprintf(detail, sizeof(detail), "the CONNECT is %llu bytes, more than "
	    "[mqtt] max_connect_size (%u); a device's CONNECT (will "
	    "included) must fit it, or raise max_connect_size",
	    (unsigned long long)fh->header_len + fh->remaining, limit);
	if (rc == MQTT_UNSUPPORTED) {
		uint8_t level = 0;

		(void)mqtt_connect_level(head + fh->header_len,
		    n - fh->header_len, &level);
		snprintf(detail, sizeof(detail), "CONNECT: protocol level %u "
		    "is not MQTT 3.1, 3.1.1 or 5.0 (the CONNECT, %llu bytes, "
		    "is over [mqtt] max_connect_size and was read no further)",
		    (unsigned)level,
		    (unsigned long long)fh->header_len + fh->remaining);
		intake_unsupported_level(s, detail);
		return true;
	}
	metrics_refused(s->rt->metrics, REASON_PACKET_TOO_LARGE);
	/* A 5.0 CONNECT with fixed header flags is closed by the broker
	 * before it reads further, so it gets no 0x95 either. */
	if (rc == MQTT_OK && version == MQTT_V5 && fh->flags == 0) {
		s->version = MQTT_V5;
		session_refuse_connack(s, MQTT_RC_V5_PACKET_TOO_LARGE,
		    REASON_PACKET_TOO_LARGE, detail);
	} else {
		session_end(s, REASON_PACKET_TOO_LARGE, detail);
	}
	return true;
}

/*
 * Who this device is, for its place in the connect queue: its identity,
 * or without one the client id the broker will see. A newer session with
 * the same key replaces a queued older one (upstream.h), so one device
 * reconnecting in a loop holds one place, not thirty.
 */
static void
intake_queue_key(struct session *s, const struct mqtt_connect *c)
{
	wc_Sha256 sha;
	const struct judge_identity *id = &s->verdict.id;
	uint8_t kind;

	s->wait.has_key = false;
	if (s->has_cert && id->state == JUDGE_ID_OK) {
		kind = 'i';
	} else if (c->client_id.len > 0) {
		kind = 'c';
	} else {
		return; /* a v5 device asking the broker to name it */
	}
	if (wc_InitSha256(&sha) != 0) {
		return;
	}
	if (wc_Sha256Update(&sha, &kind, 1) == 0 && (kind == 'i'
	    ? wc_Sha256Update(&sha, (const byte *)id->bytes,
	    (word32)id->len) : wc_Sha256Update(&sha, c->client_id.ptr,
	    c->client_id.len)) == 0 && wc_Sha256Final(&sha, s->wait.key)
	    == 0) {
		s->wait.has_key = true;
	}
	wc_Sha256Free(&sha);
}

/* Reads the first packet; it must be a whole, valid CONNECT. */
void
intake_read_connect(struct session *s)
{
	struct evbuffer *in = conn_input(s->down);
	const struct cfg *cfg = s->gen->cfg;
	uint8_t head[MQTT_MAX_FIXED_HEADER];
	struct mqtt_fixed fh;
	struct mqtt_connect c;
	struct mqttpolicy_result res;
	struct mqtt_bytes sent_id;
	enum mqttpolicy_rc verdict;
	char why[MQTT_WHY_LEN];
	size_t avail = evbuffer_get_length(in), n, total;
	uint32_t limit;
	enum mqtt_rc rc;
	const uint8_t *pkt;

	n = avail < sizeof(head) ? avail : sizeof(head);
	evbuffer_copyout(in, head, n);
	/* The size is judged below, from the header: framed without a
	 * limit here. */
	rc = mqtt_fixed_frame(head, n, MQTT_MAX_REMAINING + 5, &fh, why);
	if (rc == MQTT_NEED_MORE) {
		return;
	}
	if (rc != MQTT_OK) {
		session_end(s, REASON_PROTOCOL, why);
		return;
	}
	/* Its fixed header flags are judged once the protocol level is
	 * known, as the broker judges them (mqtt_connect_fixed_flags_ok). */
	if (fh.type != MQTT_CONNECT) {
		snprintf(why, sizeof(why), "the first packet must be CONNECT "
		    "[MQTT-3.1.0-1], got %s (flags 0x%x)",
		    mqtt_type_name(fh.type), fh.flags);
		session_end(s, REASON_PROTOCOL, why);
		return;
	}
	total = (size_t)fh.header_len + fh.remaining;
	limit = cfg->mqtt.max_connect_size < cfg->mqtt.max_packet_size
	    ? cfg->mqtt.max_connect_size : cfg->mqtt.max_packet_size;
	if (total > limit) {
		intake_connect_too_large(s, &fh, limit);
		return;
	}
	if (avail < total) {
		return;
	}
	pkt = evbuffer_pullup(in, (ssize_t)total);
	if (pkt == NULL) {
		session_end(s, REASON_INTERNAL, "out of memory");
		return;
	}
	rc = mqtt_connect_decode(pkt + fh.header_len, fh.remaining, &c, why);
	if (rc == MQTT_UNSUPPORTED) {
		evbuffer_drain(in, total);
		intake_unsupported_level(s, why);
		return;
	}
	if (rc == MQTT_OK && !mqtt_connect_fixed_flags_ok(c.version,
	    fh.flags, why)) {
		rc = MQTT_MALFORMED;
	}
	if (rc != MQTT_OK) {
		session_end(s, REASON_PROTOCOL, why);
		return;
	}
	intake_handshake_over(s);
	s->version = c.version;
	s->keepalive = c.keepalive;
	s->connect_pkt = evbuffer_new();
	if (s->connect_pkt == NULL) {
		session_end(s, REASON_INTERNAL, "out of memory");
		return;
	}
	/* The client id as the device sent it, for the log: the policy may
	 * point c at the identity instead. Logged before the packet's bytes
	 * leave the input buffer, which c points into. */
	sent_id = c.client_id;
	verdict = mqttpolicy_apply(cfg, &s->verdict, s->has_cert, &c,
	    s->connect_pkt, &res);
	intake_log_connect(s, &c, &sent_id, verdict == MQTTPOLICY_REFUSE
	    ? "refused" : verdict == MQTTPOLICY_REWRITTEN ? "rewritten"
	    : "kept");
	switch (verdict) {
	case MQTTPOLICY_REFUSE:
		evbuffer_drain(in, total);
		session_refuse_connack(s, res.connack_code, res.reason,
		    res.detail);
		return;
	case MQTTPOLICY_REWRITTEN:
		evbuffer_drain(in, total);
		break;
	case MQTTPOLICY_PASS:
		evbuffer_remove_buffer(in, s->connect_pkt, total);
		break;
	}
	if (!intake_upstream_identity_ok(s, &c)) {
		return;
	}
	intake_queue_key(s, &c);
	relay_init(&s->to_broker, true, s->version, cfg->mqtt.max_packet_size,
	    metrics_traffic(s->rt->metrics, true));
	relay_init(&s->to_device, false, s->version,
	    cfg->mqtt.max_packet_size,
	    metrics_traffic(s->rt->metrics, false));
	uplink_begin(s);
}

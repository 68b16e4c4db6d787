/*
 * session_up.c - the broker side of a session and the relay between the
 * two sides (see session.h for the state diagram).
 *
 * Every way the broker connection can fail before its CONNACK reaches the
 * device becomes an MQTT answer the device understands (CONNACK "server
 * unavailable") plus one log line that says exactly why; certbridge never
 * answers anything else on the broker's behalf.
 */
#include <stdio.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include "clock.h"
#include "devcert.h"
#include "gen.h"
#include "judge.h"
#include "metrics.h"
#include "parse.h"
#include "server.h"
#include "session_int.h"
#include "watch.h"
#include "x509.h"

static void session_on_up(struct conn *c, enum conn_event ev, void *arg);

void
session_log_connect(struct session *s, const struct mqtt_connect *c,
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

static uint8_t
session_unavailable_code(const struct session *s)
{
	return s->version == MQTT_V5 ? MQTT_RC_V5_SERVER_UNAVAILABLE
	    : MQTT_CONNACK_V3_SERVER_UNAVAILABLE;
}

/*
 * The broker could not be reached, refused the gateway, or did not answer
 * in time: one line on the broker's side with the cause, then the device
 * gets "server unavailable" and the session ends.
 */
static void
session_upstream_failed(struct session *s, const char *event,
    enum reason why, const char *detail)
{
	struct log_line l;
	const struct cfg *cfg = s->gen->cfg;

	if (session_log_begin(s, &l, LOG_WARN, event)) {
		log_str(&l, "side", "upstream");
		log_strf(&l, "broker", "%s:%s", cfg->upstream.address.host,
		    cfg->upstream.address.port);
		log_str(&l, "reason", reason_slug(why));
		log_str(&l, "detail", detail);
		if (s->up_seen.chain[0] != '\0') {
			log_str(&l, "chain", s->up_seen.chain);
		}
		log_end(&l);
	}
	if (s->device_saw_broker) {
		/* Part of a broker answer is already with the device; a
		 * CONNACK of ours would corrupt the stream. */
		session_end(s, REASON_UPSTREAM_UNAVAILABLE, detail);
		return;
	}
	session_refuse_connack(s, session_unavailable_code(s),
	    REASON_UPSTREAM_UNAVAILABLE, detail);
}

/* Names the cause of a failed broker handshake in the operator's terms. */
static enum reason
session_up_tls_reason(struct session *s, char *detail, size_t cap)
{
	const struct cfg *cfg = s->gen->cfg;
	int err = s->up_seen.err;
	char what[256];

	conn_describe(s->up, what, sizeof(what));
	switch (judge_vclass(err)) {
	case JUDGE_VC_UNKNOWN_ISSUER:
		snprintf(detail, cap, "the broker's chain does not end in a "
		    "root of [upstream] ca (%s): %s; if the cloud moved to a "
		    "new root, add that root to [upstream] ca and reload",
		    cfg->upstream.ca.path, judge_vcode_text(err));
		return REASON_UNKNOWN_CA;
	case JUDGE_VC_EXPIRED:
		snprintf(detail, cap, "a certificate in the broker's chain has "
		    "expired (depth %d); the cloud must renew it, or this "
		    "gateway's clock is wrong", s->up_seen.err_depth);
		return REASON_EXPIRED;
	case JUDGE_VC_NOT_YET_VALID:
		snprintf(detail, cap, "a certificate in the broker's chain is "
		    "not yet valid (depth %d); check this gateway's clock",
		    s->up_seen.err_depth);
		return REASON_NOT_YET_VALID;
	case JUDGE_VC_BAD_SIGNATURE:
		snprintf(detail, cap, "a signature in the broker's chain does "
		    "not verify (depth %d)", s->up_seen.err_depth);
		return REASON_BAD_SIGNATURE;
	default:
		break;
	}
	if (conn_tls_error(s->up) == DOMAIN_NAME_MISMATCH
	    || conn_tls_error(s->up) == IPADDR_MISMATCH) {
		snprintf(detail, cap, "the broker's certificate is not valid "
		    "for the name \"%s\"; set [upstream] sni to a DNS name in "
		    "its certificate", cfg->upstream.sni);
		return REASON_NAME_MISMATCH;
	}
	if (conn_peer_alert(s->up) >= 0) {
		snprintf(detail, cap, "the broker refused the gateway: %s; "
		    "check that the broker trusts [upstream] cert (%s) and "
		    "accepts its TLS versions", what,
		    cfg->upstream.cert.path ? cfg->upstream.cert.path
		    : "none configured");
		return REASON_PEER_REJECTED;
	}
	snprintf(detail, cap, "%s", what);
	return REASON_PROTOCOL;
}

static void
session_up_failed(struct session *s)
{
	char detail[640];
	enum reason why;

	if (conn_failure(s->up) == CONN_FAIL_TLS) {
		why = session_up_tls_reason(s, detail, sizeof(detail));
		metrics_handshake(server_metrics(s->srv), METRICS_UPSTREAM, false,
		    why);
		session_upstream_failed(s, "handshake-failed", why, detail);
		return;
	}
	conn_describe(s->up, detail, sizeof(detail));
	if (s->state == SESSION_WAIT_CONNACK) {
		strncat(detail, " (before CONNACK)", sizeof(detail)
		    - strlen(detail) - 1);
	}
	session_upstream_failed(s, "upstream-failed",
	    REASON_UPSTREAM_UNAVAILABLE, detail);
}

/* The broker must prove the name (or address) in [upstream] sni. SNI
 * itself carries host names only [RFC 6066, 3]: an address is checked
 * against the certificate's IP SANs and not sent. */
static bool
session_up_expect_name(WOLFSSL *ssl, const char *name)
{
	if (tlsctx_is_ip(name)) {
		return true; /* checked after the handshake: session_up_ip_ok */
	}
	return wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, name,
	    (unsigned short)strlen(name)) == WOLFSSL_SUCCESS
	    && wolfSSL_check_domain_name(ssl, name) == WOLFSSL_SUCCESS;
}

/*
 * An IP address in [upstream] sni must be an IP SAN of the broker's
 * certificate. wolfSSL 5.5.4 skips its X509_VERIFY_PARAM address check
 * whenever a verify callback is installed (ours records the chain), so the
 * check is made here, on the verified leaf, before anything is sent.
 */
static bool
session_up_ip_ok(struct session *s, WOLFSSL *ssl)
{
	const char *ip = s->gen->cfg->upstream.sni;
	WOLFSSL_X509 *leaf;
	bool ok;
	char detail[320];

	if (!tlsctx_is_ip(ip)) {
		return true;
	}
	leaf = wolfSSL_get_peer_certificate(ssl);
	ok = leaf != NULL && wolfSSL_X509_check_ip_asc(leaf, ip, 0) == 1;
	if (leaf != NULL) {
		wolfSSL_X509_free(leaf);
	}
	if (ok) {
		return true;
	}
	snprintf(detail, sizeof(detail), "the broker's certificate is not "
	    "valid for the address %s (no such IP SAN); set [upstream] sni to "
	    "a name or address in its certificate", ip);
	metrics_handshake(server_metrics(s->srv), METRICS_UPSTREAM, false,
	    REASON_NAME_MISMATCH);
	session_upstream_failed(s, "handshake-failed", REASON_NAME_MISMATCH,
	    detail);
	return false;
}

/* With device_certs, a device with its own pair connects upstream as
 * itself; others keep the context's [upstream] cert. */
static bool
session_up_use_identity(struct session *s, WOLFSSL *ssl)
{
	struct devcert_paths paths;
	char detail[PATH_MAX + 128];

	s->up_cert = devcert_pick(s->gen->cfg, session_identity(s), &paths);
	if (s->up_cert != DEVCERT_DEVICE) {
		return true;
	}
	if (wolfSSL_use_certificate_chain_file(ssl, paths.crt)
	    != WOLFSSL_SUCCESS) {
		snprintf(detail, sizeof(detail), "cannot use %s as this "
		    "device's upstream certificate (PEM chain, leaf first)",
		    paths.crt);
	} else if (wolfSSL_use_PrivateKey_file(ssl, paths.key,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS
	    || wolfSSL_check_private_key(ssl) != WOLFSSL_SUCCESS) {
		snprintf(detail, sizeof(detail), "%s is not the private key of "
		    "%s", paths.key, paths.crt);
	} else {
		return true;
	}
	session_upstream_failed(s, "upstream-failed", REASON_BAD_CERT, detail);
	return false;
}

static void
session_upstream_fd(void *arg, int fd, const char *why)
{
	struct session *s;
	const struct cfg *cfg;
	WOLFSSL *ssl;

	CB_CAST(s, arg, SESSION_MAGIC);
	s->wait_active = false;
	if (fd == UPSTREAM_TAKEN_OVER) {
		/* Never at the broker, no CONNACK yet: the device is closed,
		 * as a broker closes the older of two sessions of one client
		 * id. */
		metrics_refused(server_metrics(s->srv), REASON_TAKEOVER);
		session_end(s, REASON_TAKEOVER, why);
		return;
	}
	if (fd < 0) {
		session_upstream_failed(s, "upstream-failed",
		    REASON_UPSTREAM_UNAVAILABLE, why);
		return;
	}
	cfg = s->gen->cfg;
	ssl = wolfSSL_new(s->gen->up_ctx);
	if (ssl == NULL) {
		int err = errno;

		close(fd);
		session_upstream_failed(s, "upstream-failed", REASON_INTERNAL,
		    err == EMFILE || err == ENFILE ? "out of file descriptors "
		    "(wolfSSL could not open /dev/urandom); raise the descriptor "
		    "limit (LimitNOFILE) or lower [gateway] max_connections"
		    : "out of memory");
		return;
	}
	tlsctx_upstream_attach(ssl, &s->up_seen);
	if (!session_up_use_identity(s, ssl)) {
		wolfSSL_free(ssl);
		close(fd);
		return;
	}
	if (!session_up_expect_name(ssl, cfg->upstream.sni)
	    || (cfg->upstream.alpn != NULL && wolfSSL_UseALPN(ssl,
	    cfg->upstream.alpn, (unsigned)strlen(cfg->upstream.alpn),
	    WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)) {
		wolfSSL_free(ssl);
		close(fd);
		session_upstream_failed(s, "upstream-failed", REASON_INTERNAL,
		    "cannot set SNI, name check or ALPN on the connection");
		return;
	}
	s->up = conn_new(server_base(s->srv), fd, ssl, true, session_on_up, s);
	if (s->up == NULL) {
		session_upstream_failed(s, "upstream-failed", REASON_INTERNAL,
		    "out of memory");
		return;
	}
	metrics_connection(server_metrics(s->srv), METRICS_UPSTREAM, 1);
	conn_start(s->up, true);
}

void
session_upstream_begin(struct session *s)
{
	const struct cfg *cfg = s->gen->cfg;

	session_set_state(s, SESSION_UPSTREAM);
	s->upstream_started_ms = clock_mono_ms();
	evtimer_del(s->timer);
	session_arm(s, cfg->upstream.connect_timeout_ms);
	s->wait_active = true;
	upstream_request(server_upstream(s->srv), &s->wait,
	    &cfg->upstream.address, session_upstream_fd, s);
	if (log_enabled(LOG_DEBUG)) {
		struct log_line l;

		session_log_begin(s, &l, LOG_DEBUG, "upstream-queued");
		log_u64(&l, "queue", upstream_queue_length(
		    server_upstream(s->srv)));
		log_end(&l);
	}
	/* Whatever the device sends meanwhile waits in its input buffer. */
	session_pump_to_broker(s);
}

/* The connection to the broker is up: the CONNECT goes first, then what
 * the device sent while it waited, in order. */
static void
session_up_ready(struct session *s)
{
	struct log_line l;
	WOLFSSL *ssl = conn_ssl(s->up);

	if (!session_up_ip_ok(s, ssl)) {
		return;
	}
	if (session_log_begin(s, &l, LOG_DEBUG, "upstream-connected")) {
		log_str(&l, "tls", wolfSSL_get_version(ssl));
		log_str(&l, "client_cert", s->up_cert == DEVCERT_DEVICE
		    ? "device" : s->up_cert == DEVCERT_SHARED ? "shared"
		    : "none");
		log_str(&l, "cipher", wolfSSL_get_cipher_name(ssl));
		log_str(&l, "chain", s->up_seen.chain);
		log_i64(&l, "ms", clock_mono_ms() - s->upstream_started_ms);
		log_end(&l);
	}
	{
		const struct parse_hostport *a = &s->gen->cfg->upstream.address;
		char broker[300];

		snprintf(broker, sizeof(broker), "%s:%s", a->host, a->port);
		watch_upstream_chain(server_watch(s->srv), ssl, broker);
	}
	relay_count(&s->to_broker, MQTT_CONNECT,
	    evbuffer_get_length(s->connect_pkt));
	evbuffer_add_buffer(conn_output(s->up), s->connect_pkt);
	evbuffer_free(s->connect_pkt);
	s->connect_pkt = NULL;
	metrics_handshake(server_metrics(s->srv), METRICS_UPSTREAM, true,
	    REASON_NONE);
	session_set_state(s, SESSION_WAIT_CONNACK);
	if (s->device_gone) {
		/* The device left while the broker connection was being
		 * made: what it sent still goes, as on a direct connection. */
		session_device_gone(s, s->device_gone_error);
		return;
	}
	conn_set_reading(s->up, true);
	conn_set_reading(s->down, true);
	session_pump_to_broker(s);
	conn_flush(s->up);
}

static void
session_arm_keepalive(struct session *s)
{
	evtimer_del(s->timer);
	if (s->keepalive > 0) {
		session_arm(s, (int64_t)s->keepalive * 1500);
	}
}

static void
session_connack(struct session *s)
{
	struct log_line l;
	const struct mqtt_connack *ack = &s->to_device.connack;

	if (s->version == MQTT_V5 && ack->has_server_keepalive) {
		s->keepalive = ack->server_keepalive;
	}
	if (session_log_begin(s, &l, ack->code == 0 ? LOG_INFO : LOG_WARN,
	    "mqtt-connack")) {
		log_strf(&l, "code", "0x%02x", ack->code);
		log_u64(&l, "keepalive", s->keepalive);
		log_i64(&l, "ms", clock_mono_ms() - s->started_ms);
		log_end(&l);
	}
	if (s->state == SESSION_WAIT_CONNACK) {
		session_set_state(s, SESSION_RELAY);
		session_arm_keepalive(s);
	}
}

/* Applies backpressure after a move into sink: the source waits while the
 * sink's output is above the high mark. */
static void
session_backpressure(struct conn *source, struct conn *sink)
{
	if (evbuffer_get_length(conn_output(sink)) > SESSION_OUT_HIGH) {
		conn_set_reading(source, false);
		conn_notify_drained(sink, SESSION_OUT_LOW);
	}
}

/* A packet over max_packet_size ends the session; a v5 device is told why
 * first [MQTT-3.14.2-1, reason 0x95]. The broker connection is closed
 * without DISCONNECT, as for any abnormal end. */
static void
session_too_big(struct session *s, const char *why)
{
	uint8_t pkt[4];

	/* Only after the device has its CONNACK: a server DISCONNECT before
	 * it is not allowed [MQTT-3.14.0-1], and only between packets. */
	if (s->version == MQTT_V5 && s->state == SESSION_RELAY
	    && s->to_device.left == 0) {
		size_t n = mqtt_disconnect_encode_v5(
		    MQTT_RC_V5_PACKET_TOO_LARGE, pkt);

		evbuffer_add(conn_output(s->down), pkt, n);
		relay_count(&s->to_device, MQTT_DISCONNECT, n);
		session_drain(s, s->down, REASON_PACKET_TOO_LARGE, why);
		return;
	}
	session_end(s, REASON_PACKET_TOO_LARGE, why);
}

void
session_pump_to_broker(struct session *s)
{
	enum relay_rc rc;

	if (s->state == SESSION_UPSTREAM) {
		if (evbuffer_get_length(conn_input(s->down)) > SESSION_HOLD_MAX) {
			conn_set_reading(s->down, false);
		}
		return;
	}
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
		return;
	}
	rc = relay_move(&s->to_broker, conn_input(s->down),
	    conn_output(s->up));
	conn_flush(s->up);
	switch (rc) {
	case RELAY_OK:
	case RELAY_CONNACK:
		break;
	case RELAY_TOO_BIG:
		session_too_big(s, s->to_broker.why);
		return;
	case RELAY_MALFORMED:
	case RELAY_SECOND_CONNECT:
		session_end(s, REASON_PROTOCOL, s->to_broker.why);
		return;
	}
	session_backpressure(s->down, s->up);
}

static void
session_pump_to_device(struct session *s)
{
	enum relay_rc rc;
	uint64_t before = s->to_device.bytes;

	for (;;) {
		rc = relay_move(&s->to_device, conn_input(s->up),
		    conn_output(s->down));
		if (s->to_device.bytes != before) {
			s->device_saw_broker = true;
		}
		if (rc != RELAY_CONNACK) {
			break;
		}
		session_connack(s);
	}
	conn_flush(s->down);
	switch (rc) {
	case RELAY_OK:
	case RELAY_CONNACK:
		break;
	case RELAY_TOO_BIG:
		session_too_big(s, s->to_device.why);
		return;
	case RELAY_MALFORMED:
	case RELAY_SECOND_CONNECT:
		session_end(s, REASON_PROTOCOL, s->to_device.why);
		return;
	}
	session_backpressure(s->up, s->down);
}

void
session_sink_drained(struct session *s, struct conn *sink)
{
	if (s->state == SESSION_DRAINING) {
		if (sink == s->draining) {
			session_linger(s);
		}
		return;
	}
	if (s->state != SESSION_RELAY && s->state != SESSION_WAIT_CONNACK) {
		return;
	}
	conn_set_reading(sink == s->up ? s->down : s->up, true);
}

void
session_device_gone(struct session *s, bool error)
{
	const char *detail;

	if (s->state == SESSION_WAIT_CONNECT) {
		session_end(s, REASON_DEVICE_CLOSED, error
		    ? "connection lost before a complete CONNECT"
		    : "the device closed before a complete CONNECT");
		return;
	}
	if (s->state == SESSION_UPSTREAM && s->wait_active && s->wait.queued
	    && upstream_congested(server_upstream(s->srv))) {
		/* Held back by connect_rate: the broker was never asked, and
		 * asking it now would only add load (and a will) to a storm
		 * for a device that gave up. */
		session_end(s, REASON_DEVICE_CLOSED, "the device left while "
		    "waiting in the connect queue; the broker was not "
		    "contacted");
		return;
	}
	if (s->state == SESSION_UPSTREAM) {
		/* The broker connection is being made: its CONNECT (and will)
		 * and what followed are the broker's to receive, as on a
		 * direct connection. Finish when the connection is up. */
		s->device_gone = true;
		s->device_gone_error = error;
		conn_set_reading(s->down, false);
		return;
	}
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
		if (s->state == SESSION_DRAINING && s->draining == s->down) {
			session_end(s, s->drain_reason, s->drain_detail);
		}
		return;
	}
	/* What the device sent before it went reaches the broker; then the
	 * broker sees the connection end without DISCONNECT (unless the
	 * device sent one), so it publishes the will as for a direct
	 * connection. */
	session_pump_to_broker(s);
	if (s->state == SESSION_CLOSED || s->state == SESSION_DRAINING) {
		return;
	}
	if (s->to_broker.last_type == MQTT_DISCONNECT) {
		detail = "the device sent DISCONNECT and closed";
	} else if (error) {
		detail = "connection to the device lost without DISCONNECT; "
		    "the broker publishes its will";
	} else {
		detail = "the device closed without DISCONNECT; the broker "
		    "publishes its will";
	}
	session_drain(s, s->up, REASON_DEVICE_CLOSED, detail);
}

/* The broker ended the connection after it was up: what it sent reaches
 * the device first. */
static void
session_broker_gone(struct session *s, bool error)
{
	char detail[256];

	if (s->state == SESSION_DRAINING) {
		if (s->draining == s->up) {
			session_end(s, s->drain_reason, s->drain_detail);
		}
		return;
	}

	if (s->state == SESSION_UPSTREAM
	    || (s->state == SESSION_WAIT_CONNACK && !s->device_saw_broker)) {
		session_pump_to_device(s);
		if (s->state == SESSION_CLOSED || s->device_saw_broker) {
			if (s->state != SESSION_CLOSED) {
				session_drain(s, s->down,
				    REASON_BROKER_CLOSED, "the broker closed");
			}
			return;
		}
		/* The broker read the whole CONNECT and closed without a
		 * word: that is its answer (a CONNECT it judged malformed
		 * or would not take), and the device gets the same one, a
		 * close, rather than a CONNACK of ours (docs/protocol.md). */
		if (s->state == SESSION_WAIT_CONNACK && !error
		    && evbuffer_get_length(conn_output(s->up)) == 0) {
			session_drain(s, s->down, REASON_BROKER_CLOSED, "the "
			    "broker closed the connection after the CONNECT, "
			    "without a CONNACK: it refused that CONNECT; the "
			    "device is closed the same way, as if connected "
			    "directly (the broker's log says why)");
			return;
		}
		session_up_failed(s);
		return;
	}
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
		return;
	}
	session_pump_to_device(s);
	if (s->state == SESSION_CLOSED || s->state == SESSION_DRAINING) {
		return;
	}
	if (s->to_broker.last_type == MQTT_DISCONNECT) {
		/* The device ended the session; the broker only closed the
		 * connection behind it [MQTT-3.14.4-1]. */
		session_drain(s, s->down, REASON_DEVICE_CLOSED,
		    "the device sent DISCONNECT; the broker closed");
		return;
	}
	if (error) {
		conn_describe(s->up, detail, sizeof(detail));
	} else {
		snprintf(detail, sizeof(detail), "the broker closed the "
		    "connection");
	}
	session_drain(s, s->down, REASON_BROKER_CLOSED, detail);
}

static void
session_on_up(struct conn *c, enum conn_event ev, void *arg)
{
	struct session *s;

	(void)c;
	CB_CAST(s, arg, SESSION_MAGIC);
	if (s->state == SESSION_CLOSED) {
		return;
	}
	switch (ev) {
	case CONN_EV_HANDSHAKE_DONE:
		if (s->state == SESSION_UPSTREAM) {
			session_up_ready(s);
		}
		return;
	case CONN_EV_READ:
		if (s->state == SESSION_WAIT_CONNACK
		    || s->state == SESSION_RELAY) {
			session_pump_to_device(s);
		}
		return;
	case CONN_EV_DRAINED:
		session_sink_drained(s, s->up);
		return;
	case CONN_EV_EOF:
		session_broker_gone(s, false);
		return;
	case CONN_EV_ERROR:
		if (s->state == SESSION_UPSTREAM) {
			session_up_failed(s);
			return;
		}
		session_broker_gone(s, true);
		return;
	}
}

void
session_upstream_timer(struct session *s)
{
	char detail[256], span[32];
	int64_t idle, limit;

	if (s->state == SESSION_UPSTREAM || s->state == SESSION_WAIT_CONNACK) {
		parse_format_duration(s->gen->cfg->upstream.connect_timeout_ms,
		    span, sizeof(span));
		snprintf(detail, sizeof(detail), "no CONNACK from the broker "
		    "within [upstream] connect_timeout (%s; stage: %s)", span,
		    s->wait_active ? "waiting for a connect slot"
		    : s->state == SESSION_UPSTREAM ? "TCP/TLS connect"
		    : "waiting for CONNACK");
		session_upstream_failed(s, "upstream-failed", REASON_TIMEOUT,
		    detail);
		return;
	}
	if (s->state != SESSION_RELAY || s->keepalive == 0) {
		return;
	}
	limit = (int64_t)s->keepalive * 1500;
	idle = clock_mono_ms() - s->last_rx_ms;
	if (idle < limit) {
		session_arm(s, limit - idle);
		return;
	}
	snprintf(detail, sizeof(detail), "no packet from the device for %lld "
	    "ms, 1.5 x its keepalive of %u s; the broker publishes its will",
	    (long long)idle, s->keepalive);
	session_end(s, REASON_KEEPALIVE, detail);
}

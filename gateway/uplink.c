/*
 * uplink.c - the broker side of a session: a place in the connect queue,
 * TCP and TLS to the broker with the right client identity, the CONNECT
 * sent first (see session.h).
 *
 * Every way the broker connection can fail before its CONNACK reaches the
 * device becomes an MQTT answer the device understands (CONNACK "server
 * unavailable") plus one log line that says exactly why; certbridge never
 * answers anything else on the broker's behalf.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "clock.h"
#include "devcert.h"
#include "gen.h"
#include "judge.h"
#include "metrics.h"
#include "parse.h"
#include "session_int.h"
#include "tlsclient.h"
#include "tlsctx.h"
#include "upcache.h"
#include "upsess.h"
#include "watch.h"
#include "x509.h"

/* How long the sessions of one full handshake to the broker may be
 * resumed, renewed or not, before the next full one (uplink_ready). */
#define UPLINK_FULL_HANDSHAKE_EVERY_S 3600

static uint8_t
uplink_unavailable_code(const struct session *s)
{
	return s->version == MQTT_V5 ? MQTT_RC_V5_SERVER_UNAVAILABLE
	    : MQTT_CONNACK_V3_SERVER_UNAVAILABLE;
}

/*
 * The broker could not be reached, refused the gateway, or did not answer
 * in time: one line on the broker's side with the cause, then the device
 * gets "server unavailable" and the session ends.
 */
void
uplink_unavailable(struct session *s, const char *event,
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
	session_refuse_connack(s, uplink_unavailable_code(s),
	    REASON_UPSTREAM_UNAVAILABLE, detail);
}

/* A broker chain that does not verify, in the operator's terms; false for
 * a cause without words of its own here (the connection's text says it). */
static bool
uplink_chain_reason(struct session *s, enum reason *why, char *detail,
    size_t cap)
{
	const struct cfg *cfg = s->gen->cfg;
	int err = s->up_seen.err, depth = s->up_seen.err_depth;

	switch (judge_vclass(err)) {
	case JUDGE_VC_UNKNOWN_ISSUER:
		snprintf(detail, cap, "the broker's chain does not end in a "
		    "root of [upstream] ca (%s): %s; if the cloud moved to a "
		    "new root, add that root to [upstream] ca and reload",
		    cfg->upstream.ca.path, judge_vcode_text(err));
		*why = REASON_UNKNOWN_CA;
		return true;
	case JUDGE_VC_EXPIRED:
		snprintf(detail, cap, "a certificate in the broker's chain has "
		    "expired (depth %d); the cloud must renew it, or this "
		    "gateway's clock is wrong", depth);
		*why = REASON_EXPIRED;
		return true;
	case JUDGE_VC_NOT_YET_VALID:
		snprintf(detail, cap, "a certificate in the broker's chain is "
		    "not yet valid (depth %d); check this gateway's clock",
		    depth);
		*why = REASON_NOT_YET_VALID;
		return true;
	case JUDGE_VC_BAD_SIGNATURE:
		snprintf(detail, cap, "a signature in the broker's chain does "
		    "not verify (depth %d)", depth);
		*why = REASON_BAD_SIGNATURE;
		return true;
	default:
		return false;
	}
}

/* Names the cause of a failed broker handshake in the operator's terms:
 * which check refused the broker is decided as certbridge-diag decides it
 * (common/tlsclient.h). */
static enum reason
uplink_tls_reason(struct session *s, char *detail, size_t cap)
{
	const struct cfg *cfg = s->gen->cfg;
	enum reason why;
	char what[256];

	conn_describe(s->up, what, sizeof(what));
	switch (tlsclient_refusal(conn_failure(s->up)->tls_error,
	    &s->up_seen)) {
	case TLSCLIENT_CHAIN:
		if (uplink_chain_reason(s, &why, detail, cap)) {
			return why;
		}
		break;
	case TLSCLIENT_NAME:
		snprintf(detail, cap, "the broker's certificate is not valid "
		    "for the name \"%s\"; set [upstream] sni to a DNS name in "
		    "its certificate", cfg->upstream.sni);
		return REASON_NAME_MISMATCH;
	case TLSCLIENT_NOT_REFUSED:
		break;
	}
	if (conn_failure(s->up)->alert >= 0) {
		snprintf(detail, cap, "the broker refused the gateway: %s; "
		    "check that the broker trusts [upstream] cert (%s) and "
		    "accepts its TLS versions", what,
		    cfg->upstream.cert.path ? cfg->upstream.cert.path
		    : "none configured");
		return REASON_PEER_REJECTED;
	}
	snprintf(detail, cap, "%s; check that [upstream] address is the "
	    "broker's TLS port and that it accepts [upstream] tls_versions",
	    what);
	return REASON_PROTOCOL;
}

/* A TLS 1.3 broker judges the gateway's client certificate after the
 * handshake is over on the gateway's side: its refusal is an alert (or a
 * close) where the CONNACK should be. Said as the refusal it is, and
 * counted as the failed handshake it was (its success was not counted
 * yet: uplink_ready). */
static void
uplink_refused_after_handshake(struct session *s)
{
	const struct cfg *cfg = s->gen->cfg;
	char detail[640], what[256];
	enum reason why;

	conn_describe(s->up, what, sizeof(what));
	if (conn_failure(s->up)->alert >= 0) {
		why = REASON_PEER_REJECTED;
		snprintf(detail, sizeof(detail), "the broker refused the gateway "
		    "after the TLS 1.3 handshake, before its CONNACK: %s; check "
		    "that the broker trusts [upstream] cert (%s)", what,
		    cfg->upstream.cert.path ? cfg->upstream.cert.path
		    : "none configured: the broker may require one");
	} else {
		why = REASON_PROTOCOL;
		snprintf(detail, sizeof(detail), "the broker closed the "
		    "connection right after the TLS 1.3 handshake, before its "
		    "CONNACK (%s): a TLS 1.3 broker that does not accept the "
		    "gateway's client certificate does this; check that it "
		    "trusts [upstream] cert (%s), and the broker's log", what,
		    cfg->upstream.cert.path ? cfg->upstream.cert.path
		    : "none configured");
	}
	metrics_handshake(s->rt->metrics, METRICS_UPSTREAM, false, why);
	uplink_unavailable(s, "handshake-failed", why, detail);
}

/* Whether the failure before the CONNACK is how a TLS 1.3 broker refuses
 * the client certificate of a full handshake: an alert, or a close
 * without one. A resumed handshake is not judged again, and a record that
 * does not decrypt is the broker failing (upstream-failed). */
static bool
uplink_tls13_refusal(struct session *s)
{
	const struct conn_failure *f = conn_failure(s->up);

	if (s->state != SESSION_WAIT_CONNACK || s->up_counted
	    || s->up_resumed || f->kind != CONN_FAIL_TLS) {
		return false;
	}
	return f->alert >= 0 || f->tls_error == SOCKET_PEER_CLOSED_E
	    || (f->tls_error == SOCKET_ERROR_E && f->sys_error == 0);
}

static void uplink_fd(void *arg, int fd, const char *why);

/*
 * The broker failed a handshake in which a stored session was offered. A
 * broker that cannot use a session is meant to answer with a full
 * handshake, but wolfSSL 5.5.4 as a client fails instead when a TLS 1.2
 * ticket can no longer be decrypted (-373, out of order; after a broker
 * restart, for one), and a broker may refuse in other ways. The session is
 * dropped and the device gets one more try, a new connection with a full
 * handshake, which also names the real cause if the broker refuses that
 * too. It goes through the connect queue again, as any new connection.
 */
static void
uplink_retry_full(struct session *s)
{
	struct log_line l;
	char what[256];

	conn_describe(s->up, what, sizeof(what));
	upcache_forget(s->gen->upcache, s->up_key);
	if (session_log_begin(s, &l, LOG_INFO, "upstream-resume-refused")) {
		log_str(&l, "side", "upstream");
		log_str(&l, "detail", what);
		log_str(&l, "next", "full handshake");
		log_end(&l);
	}
	s->up_retried = true;
	s->up_offered = false;
	/* In its own callback now: freed at the next grant or with the
	 * session (conn.h). */
	conn_free(s->up_spent);
	s->up_spent = s->up;
	s->up = NULL;
	metrics_connection(s->rt->metrics, METRICS_UPSTREAM, -1);
	session_set_state(s, SESSION_QUEUED);
	upstream_request(s->rt->upstream, &s->wait,
	    &s->gen->cfg->upstream.address, uplink_fd, s);
}

void
uplink_failed(struct session *s)
{
	char detail[640];
	enum reason why;

	/* Only a handshake can refuse an offered session: a record-layer
	 * error once it is done (WAIT_CONNACK) is the broker failing. */
	if (conn_failure(s->up)->kind == CONN_FAIL_TLS && s->up_offered
	    && !s->up_retried && s->state == SESSION_CONNECTING) {
		uplink_retry_full(s);
		return;
	}
	if (conn_failure(s->up)->kind == CONN_FAIL_TLS
	    && s->state == SESSION_CONNECTING) {
		why = uplink_tls_reason(s, detail, sizeof(detail));
		metrics_handshake(s->rt->metrics, METRICS_UPSTREAM, false,
		    why);
		uplink_unavailable(s, "handshake-failed", why, detail);
		return;
	}
	if (uplink_tls13_refusal(s)) {
		uplink_refused_after_handshake(s);
		return;
	}
	conn_describe(s->up, detail, sizeof(detail));
	if (s->state == SESSION_WAIT_CONNACK) {
		strncat(detail, " (before CONNACK)", sizeof(detail)
		    - strlen(detail) - 1);
	}
	uplink_unavailable(s, "upstream-failed",
	    REASON_UPSTREAM_UNAVAILABLE, detail);
}

/*
 * The broker must prove the name (or address) in [upstream] sni. wolfSSL
 * 5.5.4 checks an address only when asked after the handshake (see
 * common/tlsclient.h): that is done here, before anything is sent.
 */
static bool
uplink_ip_ok(struct session *s, WOLFSSL *ssl)
{
	const char *ip = s->gen->cfg->upstream.sni;
	char detail[320];

	if (tlsclient_name_ok(ssl, ip)) {
		return true;
	}
	snprintf(detail, sizeof(detail), "the broker's certificate is not "
	    "valid for the address %s (no such IP SAN); set [upstream] sni to "
	    "a name or address in its certificate", ip);
	metrics_handshake(s->rt->metrics, METRICS_UPSTREAM, false,
	    REASON_NAME_MISMATCH);
	uplink_unavailable(s, "handshake-failed", REASON_NAME_MISMATCH,
	    detail);
	return false;
}

/*
 * With device_certs, a device with its own pair connects upstream as
 * itself; others keep the context's [upstream] cert. The pair comes from
 * the generation's memory: no file is read on the loop, where slow storage
 * would stall every session. It was proven at load on these very bytes (a
 * signature made and verified, gateway/devcheck.c), so
 * wolfSSL_check_private_key is not asked again: in 5.5.4 it proves nothing
 * for EC keys and costs about a millisecond of the loop per session.
 */
static bool
uplink_use_identity(struct session *s, WOLFSSL *ssl)
{
	const char *dir = s->gen->cfg->upstream.device_certs.path;
	const struct devstore_pair *pair;
	char detail[2 * PATH_MAX + 128];

	s->up_cert = devcert_pick(s->gen->cfg, s->gen->devstore,
	    intake_identity(s), &pair);
	/* Sessions are filed under the identity that makes them: a resumed
	 * session is the broker's client of its first handshake
	 * (gateway/upcache.h). A pair's id lives as long as the generation
	 * this session holds. */
	s->up_key = pair != NULL ? pair->id : UPCACHE_OWN;
	if (s->up_cert != DEVCERT_DEVICE) {
		return true;
	}
	if (wolfSSL_use_certificate_chain_buffer_format(ssl, pair->chain,
	    (long)pair->chain_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
		snprintf(detail, sizeof(detail), "cannot use %s/%s.crt as this "
		    "device's upstream certificate (PEM chain, leaf first)",
		    dir, pair->id);
	} else if (wolfSSL_use_PrivateKey_buffer(ssl, pair->key,
	    (long)pair->key_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
		snprintf(detail, sizeof(detail), "%s/%s.key is not the private "
		    "key of %s/%s.crt", dir, pair->id, dir, pair->id);
	} else {
		return true;
	}
	uplink_unavailable(s, "upstream-failed", REASON_BAD_CERT, detail);
	return false;
}

/*
 * Offers the identity's stored session, if it has one. A resumed handshake
 * does not examine the broker's chain again: wolfSSL proves the broker
 * holds the secret of a session made by a full handshake of this
 * generation, with its [upstream] ca, sni and this identity, that verified
 * the chain and the name; and the store dates each session no later than
 * the earliest notAfter of that chain (docs/architecture.md, "Upstream
 * session resumption").
 */
static void
uplink_offer_session(struct session *s, WOLFSSL *ssl)
{
	struct upcache *c = s->gen->upcache;
	const unsigned char *der;
	WOLFSSL_SESSION *sess;
	size_t len;
	int64_t until;

	s->up_offered = false;
	if (c == NULL || s->up_retried) {
		return;
	}
	der = upcache_get(c, s->up_key, clock_wall_s(), &len, &until);
	if (der == NULL) {
		return;
	}
	sess = upsess_decode(der, len);
	if (sess == NULL) {
		upcache_forget(c, s->up_key);
		return;
	}
	if (wolfSSL_set_session(ssl, sess) == WOLFSSL_SUCCESS) {
		s->up_offered = true;
		s->up_until = until;
	}
	wolfSSL_SESSION_free(sess);
}

/* Whether sess can be resumed: a TLS 1.3 or 1.2 ticket, or a TLS 1.2
 * session ID. */
static bool
uplink_resumable(WOLFSSL *ssl, WOLFSSL_SESSION *sess)
{
	unsigned int id_len = 0;

	if (wolfSSL_SESSION_has_ticket(sess)) {
		return true;
	}
	return wolfSSL_version(ssl) != TLS1_3_VERSION
	    && wolfSSL_SESSION_get_id(sess, &id_len) != NULL && id_len > 0;
}

/* The broker accepted the handshake: counted once. */
static void
uplink_count_handshake(struct session *s)
{
	if (s->up_counted) {
		return;
	}
	s->up_counted = true;
	metrics_upstream_handshake(s->rt->metrics, s->up_resumed);
	metrics_handshake(s->rt->metrics, METRICS_UPSTREAM, true,
	    REASON_NONE);
}

/* Files this connection's session under its identity, replacing the
 * identity's older one. */
static void
uplink_keep(struct session *s)
{
	struct upcache *c = s->gen->upcache;
	WOLFSSL_SESSION *sess;
	unsigned char *der;
	int64_t until;
	long timeout;
	size_t len;

	if (c == NULL || s->up == NULL || s->up_until <= 0) {
		return;
	}
	/* The connection's own record, held while it is serialized.
	 * wolfSSL_get_session would do, but where wolfSSL is built without
	 * NO_SESSION_CACHE_REF (the default build) it also files a client
	 * session in wolfSSL's process-wide cache, which is never freed. */
	sess = wolfSSL_get1_session(conn_ssl(s->up));
	if (sess == NULL) {
		return;
	}
	if (uplink_resumable(conn_ssl(s->up), sess)
	    && (len = upsess_encode(sess, &der)) > 0) {
		timeout = wolfSSL_SESSION_get_timeout(sess);
		until = clock_wall_s() + (timeout > 0 ? timeout : 0);
		if (until > s->up_until) {
			until = s->up_until;
		}
		(void)upcache_put(c, s->up_key, der, len, until);
		upsess_free_der(der, len);
	}
	wolfSSL_SESSION_free(sess);
}

void
uplink_keep_session(struct session *s)
{
	/* TLS 1.2 sessions were kept at the end of the handshake. */
	if (s->up != NULL && wolfSSL_version(conn_ssl(s->up))
	    == TLS1_3_VERSION) {
		uplink_count_handshake(s);
		uplink_keep(s);
	}
}

static void
uplink_fd(void *arg, int fd, const char *why)
{
	struct session *s;
	const struct cfg *cfg;
	WOLFSSL *ssl;

	CB_CAST(s, arg, SESSION_MAGIC);
	if (fd == UPSTREAM_TAKEN_OVER) {
		/* Never at the broker, no CONNACK yet: the device is closed,
		 * as a broker closes the older of two sessions of one client
		 * id. */
		metrics_refused(s->rt->metrics, REASON_TAKEOVER);
		session_end(s, REASON_TAKEOVER, why);
		return;
	}
	if (fd < 0) {
		uplink_unavailable(s, "upstream-failed",
		    REASON_UPSTREAM_UNAVAILABLE, why);
		return;
	}
	cfg = s->gen->cfg;
	conn_free(s->up_spent);
	s->up_spent = NULL;
	session_set_state(s, SESSION_CONNECTING);
	ssl = wolfSSL_new(s->gen->up_ctx);
	if (ssl == NULL) {
		int err = errno;

		close(fd);
		uplink_unavailable(s, "upstream-failed", REASON_INTERNAL,
		    err == EMFILE || err == ENFILE ? "out of file descriptors "
		    "(Debian's wolfSSL opens /dev/urandom); raise the descriptor "
		    "limit (LimitNOFILE) or lower [gateway] max_connections"
		    : "out of memory");
		return;
	}
	tlsclient_seen_free(&s->up_seen); /* an earlier attempt's */
	tlsclient_attach(ssl, &s->up_seen, false);
	s->up_seen.keep_chain = true; /* for the watch, at success */
	if (!uplink_use_identity(s, ssl)) {
		wolfSSL_free(ssl);
		close(fd);
		return;
	}
	if (!tlsclient_expect_name(ssl, cfg->upstream.sni)
	    || (cfg->upstream.alpn != NULL && wolfSSL_UseALPN(ssl,
	    cfg->upstream.alpn, (unsigned)strlen(cfg->upstream.alpn),
	    WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)) {
		wolfSSL_free(ssl);
		close(fd);
		uplink_unavailable(s, "upstream-failed", REASON_INTERNAL,
		    "cannot set SNI, name check or ALPN on the connection");
		return;
	}
	uplink_offer_session(s, ssl);
	s->up = conn_new(s->rt->base, fd, ssl, true, session_on_conn, s);
	if (s->up == NULL) {
		uplink_unavailable(s, "upstream-failed", REASON_INTERNAL,
		    "out of memory");
		return;
	}
	metrics_connection(s->rt->metrics, METRICS_UPSTREAM, 1);
	conn_start(s->up, true);
}

void
uplink_begin(struct session *s)
{
	const struct cfg *cfg = s->gen->cfg;

	session_set_state(s, SESSION_QUEUED);
	s->upstream_started_ms = clock_mono_ms();
	session_arm(s, cfg->upstream.connect_timeout_ms);
	upstream_request(s->rt->upstream, &s->wait,
	    &cfg->upstream.address, uplink_fd, s);
	if (log_enabled(LOG_DEBUG)) {
		struct log_line l;

		session_log_begin(s, &l, LOG_DEBUG, "upstream-queued");
		log_u64(&l, "queue", upstream_queue_length(
		    s->rt->upstream));
		log_end(&l);
	}
	/* Whatever the device sends meanwhile waits in its input buffer. */
	bridge_pump(s, TO_BROKER);
}

/* The connection to the broker is up: the CONNECT goes first, then what
 * the device sent while it waited, in order. */
void
uplink_ready(struct session *s)
{
	struct log_line l;
	WOLFSSL *ssl = conn_ssl(s->up);
	bool resumed = wolfSSL_session_reused(ssl) == 1;

	/* A resumed session shows no certificate (gateway/upsess.h): the
	 * full handshake that made it passed this check, under this
	 * generation's sni, before it was kept. */
	if (!resumed && !uplink_ip_ok(s, ssl)) {
		return;
	}
	/* Nothing reads the broker's certificate after that check. */
	tlsctx_release_peer_cert(ssl);
	if (!resumed) {
		/* A full handshake: its verified chain dates the session it
		 * makes (an offered one the broker declined is replaced),
		 * and so does the hour: resumptions renew the broker's
		 * tickets for ever, and only a full handshake shows the chain
		 * watch a broker certificate rotated without a restart. */
		int64_t hour = clock_wall_s() + UPLINK_FULL_HANDSHAKE_EVERY_S;

		s->up_until = s->up_seen.not_after_min;
		if (s->up_until > hour) {
			s->up_until = hour;
		}
	}
	s->up_resumed = resumed;
	if (session_log_begin(s, &l, LOG_DEBUG, "upstream-connected")) {
		log_str(&l, "tls", wolfSSL_get_version(ssl));
		log_str(&l, "resumed", resumed ? "yes" : "no");
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
		watch_upstream_chain(s->rt->watch, s->up_seen.chain_der,
		    s->up_seen.chain_len, (size_t)s->up_seen.chain_count,
		    broker);
		tlsclient_seen_free(&s->up_seen);
	}
	relay_count(&s->to_broker, MQTT_CONNECT,
	    evbuffer_get_length(s->connect_pkt));
	evbuffer_add_buffer(conn_output(s->up), s->connect_pkt);
	evbuffer_free(s->connect_pkt);
	s->connect_pkt = NULL;
	if (wolfSSL_version(ssl) != TLS1_3_VERSION) {
		/* TLS 1.2: the session ID or ticket came within the
		 * handshake, and the broker has judged the gateway by now.
		 * TLS 1.3 tickets come after it, and a TLS 1.3 broker judges
		 * the client certificate after it too: both at the CONNACK
		 * (uplink_keep_session). */
		uplink_count_handshake(s);
		uplink_keep(s);
	}
	session_set_state(s, SESSION_WAIT_CONNACK);
	if (s->device_gone) {
		/* The device left while the broker connection was being
		 * made: what it sent still goes, as on a direct connection. */
		bridge_device_gone(s, s->device_gone_error);
		return;
	}
	conn_set_reading(s->up, true);
	conn_set_reading(s->down, true);
	bridge_pump(s, TO_BROKER);
	conn_flush(s->up);
}

/* No CONNACK within connect_timeout, at whichever stage. */
void
uplink_timeout(struct session *s)
{
	char detail[256], span[32];

	parse_format_duration(s->gen->cfg->upstream.connect_timeout_ms, span,
	    sizeof(span));
	snprintf(detail, sizeof(detail), "no CONNACK from the broker within "
	    "[upstream] connect_timeout (%s; stage: %s)", span,
	    s->state == SESSION_QUEUED ? "waiting for a connect slot"
	    : s->state == SESSION_CONNECTING ? "TCP/TLS connect"
	    : "waiting for CONNACK");
	if (s->state == SESSION_CONNECTING && s->up != NULL) {
		/* A broker connection that did not get through TCP and TLS
		 * within connect_timeout failed its handshake (metrics.md). */
		metrics_handshake(s->rt->metrics, METRICS_UPSTREAM, false,
		    REASON_TIMEOUT);
	}
	uplink_unavailable(s, "upstream-failed", REASON_TIMEOUT, detail);
}

/*
 * bridge.c - the relay of a session, both ways (see session.h): packets
 * framed and counted as they move, the broker's CONNACK read on its way,
 * backpressure, the keepalive, and what each side's end means for the
 * other.
 *
 * One pump serves both directions, as nginx's stream proxy has one
 * process function: the two differ only in which connection is the source
 * and in what each direction may carry (only the broker's sends a CONNACK,
 * only the device's is held while the broker connection is made).
 */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "gen.h"
#include "log.h"
#include "metrics.h"
#include "session_int.h"

static void
bridge_arm_keepalive(struct session *s)
{
	evtimer_del(s->timer);
	if (s->keepalive > 0) {
		session_arm(s, (int64_t)s->keepalive * 1500);
	}
}

static void
bridge_connack(struct session *s)
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
		uplink_keep_session(s);
		session_set_state(s, SESSION_RELAY);
		bridge_arm_keepalive(s);
	}
}

/* Applies backpressure after a move into sink: the source waits while the
 * sink's output is above the high mark. */
static void
bridge_backpressure(struct conn *source, struct conn *sink)
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
bridge_too_big(struct session *s, const char *what, bool from_device)
{
	uint8_t pkt[4];
	char why[400];

	snprintf(why, sizeof(why), "%s, sent by the %s: the limit is [mqtt] "
	    "max_packet_size; raise it if such packets are expected", what,
	    from_device ? "device" : "broker");

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
bridge_pump(struct session *s, enum bridge_dir dir)
{
	struct relay_dir *d = dir == TO_BROKER ? &s->to_broker : &s->to_device;
	struct conn *src = dir == TO_BROKER ? s->down : s->up;
	struct conn *dst = dir == TO_BROKER ? s->up : s->down;
	enum relay_rc rc;
	uint64_t before = d->bytes;

	if (dir == TO_BROKER && session_upstream_pending(s)) {
		/* What the device sends meanwhile waits in its input, up to
		 * a bound; then it is not read until the broker is there. */
		if (evbuffer_get_length(conn_input(s->down))
		    > SESSION_HOLD_MAX) {
			conn_set_reading(s->down, false);
		}
		return;
	}
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
		return;
	}
	for (;;) {
		rc = relay_move(d, conn_input(src), conn_output(dst));
		if (dir == TO_DEVICE && d->bytes != before) {
			s->device_saw_broker = true;
		}
		if (rc != RELAY_CONNACK) {
			break;
		}
		bridge_connack(s);
	}
	conn_flush(dst);
	switch (rc) {
	case RELAY_OK:
	case RELAY_CONNACK:
		break;
	case RELAY_TOO_BIG:
		bridge_too_big(s, d->why, dir == TO_BROKER);
		return;
	case RELAY_MALFORMED:
	case RELAY_SECOND_CONNECT:
		session_end(s, REASON_PROTOCOL, d->why);
		return;
	}
	bridge_backpressure(src, dst);
}

void
bridge_drained(struct session *s, struct conn *sink)
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

/* The side being drained, or lingered on, is gone: the end is complete. */
static bool
bridge_end_complete(struct session *s, struct conn *gone)
{
	if (s->state != SESSION_DRAINING && s->state != SESSION_LINGER) {
		return false;
	}
	if (s->draining == gone) {
		session_end(s, s->drain_reason, s->drain_detail);
	}
	return true;
}

void
bridge_device_gone(struct session *s, bool error)
{
	const char *detail;

	if (bridge_end_complete(s, s->down)) {
		return;
	}
	if (s->state == SESSION_WAIT_CONNECT) {
		session_end(s, REASON_DEVICE_CLOSED, error
		    ? "connection lost before a complete CONNECT"
		    : "the device closed before a complete CONNECT");
		return;
	}
	if (s->state == SESSION_QUEUED && s->wait.queued
	    && upstream_congested(s->rt->upstream)) {
		/* Held back by connect_rate: the broker was never asked, and
		 * asking it now would only add load (and a will) to a storm
		 * for a device that gave up. */
		session_end(s, REASON_DEVICE_CLOSED, "the device left while "
		    "waiting in the connect queue; the broker was not "
		    "contacted");
		return;
	}
	if (session_upstream_pending(s)) {
		/* The broker connection is being made: its CONNECT (and will)
		 * and what followed are the broker's to receive, as on a
		 * direct connection. Finish when the connection is up. */
		s->device_gone = true;
		s->device_gone_error = error;
		conn_set_reading(s->down, false);
		return;
	}
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
		return;
	}
	/* What the device sent before it went reaches the broker; then the
	 * broker sees the connection end without DISCONNECT (unless the
	 * device sent one), so it publishes the will as for a direct
	 * connection. */
	bridge_pump(s, TO_BROKER);
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
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

/* The broker ended the connection: what it sent reaches the device first. */
void
bridge_broker_gone(struct session *s, bool error)
{
	char detail[256];

	if (bridge_end_complete(s, s->up)) {
		return;
	}
	if (session_upstream_pending(s)
	    || (s->state == SESSION_WAIT_CONNACK && !s->device_saw_broker)) {
		bridge_pump(s, TO_DEVICE);
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
		uplink_failed(s);
		return;
	}
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
		return;
	}
	bridge_pump(s, TO_DEVICE);
	if (s->state != SESSION_WAIT_CONNACK && s->state != SESSION_RELAY) {
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

/* RELAY's timer: nothing from the device for 1.5 x its keepalive. The
 * timer is re-armed lazily from the last byte, not at every packet. */
void
bridge_keepalive(struct session *s)
{
	char detail[256];
	int64_t idle, limit;

	if (s->keepalive == 0) {
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

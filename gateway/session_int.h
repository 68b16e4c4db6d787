/*
 * session_int.h - struct session and the calls between the files of one
 * session: session.c, intake.c, uplink.c, bridge.c, session_judge.c (see
 * session.h). Not for other modules: they use session.h.
 */
#ifndef CB_SESSION_INT_H
#define CB_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "hslimit.h"
#include "log.h"
#include "mqtt.h"
#include "reason.h"
#include "registry.h"
#include "relay.h"
#include "runtime.h"
#include "session.h"
#include "tlsclient.h"
#include "trust.h"
#include "upstream.h"

#define SESSION_MAGIC 0x5E55104Eu
/* How long the live side gets to take what the other side sent before it
 * closed. */
#define SESSION_DRAIN_MS 5000
/* After our close: how long the peer's own close is awaited. */
#define SESSION_LINGER_MS 1000
/* Backpressure marks on a sink's output: above HIGH the source stops
 * being read; it resumes once the sink is down to LOW. */
#define SESSION_OUT_HIGH (256u * 1024u)
#define SESSION_OUT_LOW (64u * 1024u)
/* What a device may send after its CONNECT while the broker connection is
 * still being made; beyond this it is simply not read until then. */
#define SESSION_HOLD_MAX (64u * 1024u)

/* The two directions of the relay. */
enum bridge_dir {
	TO_BROKER = 0,
	TO_DEVICE,
};

struct session {
	unsigned magic;
	enum session_state state;
	uint64_t id;
	struct runtime *rt;
	struct gen *gen;
	struct registry_link reg;

	struct conn *down;
	struct conn *up;
	struct event *timer;
	char peer[64];
	int64_t started_ms;
	int64_t last_rx_ms;     /* last bytes from the device (monotonic) */

	/* intake.c: the device, up to its CONNECT. */
	struct hslimit_key hs_key;
	bool hs_held;           /* owns a handshake slot (admit.h) */
	struct trust_verdict verdict;
	bool identified;        /* the handshake is done: log device=/ca= */
	bool has_cert;
	bool resumed;
	uint8_t version;
	uint16_t keepalive;     /* seconds; the broker's (v5) wins */
	struct evbuffer *connect_pkt;

	/* uplink.c: the broker connection. */
	struct upstream_wait wait;
	struct tlsclient_seen up_seen; /* what the broker showed (tlsclient.h) */
	int64_t upstream_started_ms;
	int up_cert;            /* enum devcert_choice used upstream */
	/* Resumption (gateway/upcache.h): the identity's key in the
	 * generation's store, whether a stored session was offered, whether
	 * the broker refused one and this is the one retry, and until when
	 * a session made now may be offered (the earliest notAfter of the
	 * chain the full handshake verified). */
	const char *up_key;
	bool up_offered;
	bool up_retried;
	/* The broker connection's handshake was resumed; and it is counted
	 * as accepted (at its end in TLS 1.2, at the CONNACK in TLS 1.3,
	 * whose broker judges the client certificate after it). */
	bool up_resumed;
	bool up_counted;
	int64_t up_until;
	/* The connection of a refused resumption: freed from outside its
	 * own callbacks (conn.h). */
	struct conn *up_spent;
	/* The device ended while the broker connection was being made: its
	 * CONNECT (and will) still go, then its end follows. */
	bool device_gone;
	bool device_gone_error;

	/* bridge.c: the relay. */
	struct relay_dir to_broker;
	struct relay_dir to_device;
	bool device_saw_broker; /* bytes from the broker reached the device */

	/* The end: DRAINING flushes `draining`, LINGER awaits its close. */
	struct conn *draining;
	enum reason drain_reason;
	char drain_detail[320];
	bool quiet_close;       /* the end was already logged by its cause */
};

/* session.c */
void session_set_state(struct session *s, enum session_state next);
bool session_log_begin(struct session *s, struct log_line *l,
    enum log_level lvl, const char *event);
void session_log_end(struct session *s, const char *event, enum reason why,
    const char *detail);
void session_arm(struct session *s, int64_t ms);
void session_end(struct session *s, enum reason why, const char *detail);
void session_drain(struct session *s, struct conn *live, enum reason why,
    const char *detail);
void session_linger(struct session *s);
void session_refuse_connack(struct session *s, uint8_t code, enum reason why,
    const char *detail);
/* The callback of both of a session's conns (arg: the session). */
void session_on_conn(struct conn *c, enum conn_event ev, void *arg);
/* Whether the session is getting its broker connection (QUEUED or
 * CONNECTING). */
bool session_upstream_pending(const struct session *s);

/* intake.c: the device side up to its CONNECT. */
void intake_admitted(struct session *s);
void intake_refresh_sighting(struct session *s, int64_t now);
void intake_handshake_failed(struct session *s);
void intake_read_connect(struct session *s);
/* The CONNECT is whole (or the session ends): its handshake slot goes
 * back. */
void intake_handshake_over(struct session *s);
/* The identity proved by the device certificate, or NULL. */
const char *intake_identity(const struct session *s);

/* uplink.c: the broker connection. */
void uplink_begin(struct session *s);
void uplink_ready(struct session *s);
void uplink_failed(struct session *s);
/* Ends the session for a broker that could not be used: one log line on
 * the broker's side, then CONNACK "server unavailable" to the device. */
void uplink_unavailable(struct session *s, const char *event,
    enum reason why, const char *detail);
void uplink_timeout(struct session *s);
/* The broker's first packet was read: a TLS 1.3 session ticket, sent
 * right after the handshake, has arrived by now; it is kept for the next
 * connection of the same upstream identity. */
void uplink_keep_session(struct session *s);

/* bridge.c: the relay both ways. */
void bridge_pump(struct session *s, enum bridge_dir dir);
void bridge_drained(struct session *s, struct conn *sink);
void bridge_device_gone(struct session *s, bool error);
void bridge_broker_gone(struct session *s, bool error);
void bridge_keepalive(struct session *s);

/* session_judge.c: a handshake begun under an older generation is judged
 * under the current one; false when it was refused (and ended). */
bool session_judged_current(struct session *s);
/* Adds the session's refusal to the ring the status page shows
 * (refusals.h): its peer, its device (the identity, or the first CN of the
 * refused certificate) and why. */
void session_note_refusal(struct session *s, enum reason why,
    const char *detail);

#endif

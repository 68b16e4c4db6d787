/*
 * session_int.h - struct session, shared by session.c (device side) and
 * session_up.c (broker side and relay). Not for other modules.
 */
#ifndef CB_SESSION_INT_H
#define CB_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "hslimit.h"
#include "log.h"
#include "mqtt.h"
#include "reason.h"
#include "relay.h"
#include "session.h"
#include "tlsctx.h"
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

struct session {
	unsigned magic;
	enum session_state state;
	uint64_t id;
	struct server *srv;
	struct gen *gen;
	TAILQ_ENTRY(session) link;

	struct conn *down;
	struct conn *up;
	struct event *timer;
	char peer[64];
	/* A handshake slot (admit.h), held until the CONNECT is whole. */
	struct hslimit_key hs_key;
	bool hs_held;

	struct trust_verdict verdict;
	bool identified;        /* the handshake is done: log device=/ca= */
	bool has_cert;
	bool resumed;
	struct tlsctx_upstream_seen up_seen;

	uint8_t version;
	uint16_t keepalive;     /* seconds; the broker's (v5) wins */
	struct evbuffer *connect_pkt;
	struct upstream_wait wait;
	bool wait_active;
	int64_t upstream_started_ms;
	bool device_saw_broker; /* bytes from the broker reached the device */
	int up_cert;            /* enum devcert_choice used upstream */
	bool device_gone;       /* the device ended while UPSTREAM */
	bool device_gone_error;

	struct relay_dir to_broker;
	struct relay_dir to_device;

	int64_t started_ms;
	int64_t last_rx_ms;     /* last bytes from the device (monotonic) */

	struct conn *draining;  /* the live side being flushed */
	enum reason drain_reason;
	char drain_detail[320];
	bool quiet_close;       /* the end was already logged by its cause */
};

TAILQ_HEAD(session_list, session);

/* session.c */
void session_set_state(struct session *s, enum session_state next);
bool session_log_begin(struct session *s, struct log_line *l,
    enum log_level lvl, const char *event);
void session_arm(struct session *s, int64_t ms);
void session_end(struct session *s, enum reason why, const char *detail);
void session_drain(struct session *s, struct conn *live, enum reason why,
    const char *detail);
void session_linger(struct session *s);
void session_refuse_connack(struct session *s, uint8_t code, enum reason why,
    const char *detail);
/* The CONNECT is whole (or the session ends): its handshake slot goes
 * back. */
void session_handshake_over(struct session *s);

void session_log_end(struct session *s, const char *event, enum reason why,
    const char *detail);
void session_handshake_failed(struct session *s);

/* The identity proved by the device certificate, or NULL. */
const char *session_identity(const struct session *s);

/* session_connect.c: reads the first packet, which must be a whole, valid
 * CONNECT (WAIT_CONNECT). */
void session_read_connect(struct session *s);

/* session_judge.c: a handshake begun under an older generation is judged
 * under the current one; false when it was refused (and ended). */
bool session_judged_current(struct session *s);

/* session_up.c */
void session_log_connect(struct session *s, const struct mqtt_connect *c,
    const struct mqtt_bytes *sent_id, const char *clientid_rule);
void session_upstream_begin(struct session *s);
void session_upstream_timer(struct session *s);
void session_pump_to_broker(struct session *s);
void session_sink_drained(struct session *s, struct conn *sink);
void session_device_gone(struct session *s, bool error);

#endif

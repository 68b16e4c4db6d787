/*
 * metrics.h - the process's counters, and their Prometheus text form.
 *
 * Counters are plain integers bumped on the paths that already log the
 * event (one add, no lock: one thread). Figures that are states rather
 * than events (sessions open, devices seen, certificate dates, the connect
 * queue) are read from their owners when /metrics is scraped.
 */
#ifndef CB_METRICS_H
#define CB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "reason.h"

enum metrics_side {
	METRICS_DOWNSTREAM = 0,
	METRICS_UPSTREAM,
	METRICS_SIDES_
};

/* Relayed traffic per direction: up = device to broker. */
struct metrics_traffic {
	uint64_t packets[16];  /* by MQTT packet type */
	uint64_t bytes;
};

/* The accept-time limits, for refusals counted by limit. */
enum metrics_limit {
	METRICS_LIMIT_CONNECTIONS = 0,  /* [gateway] max_connections */
	METRICS_LIMIT_HANDSHAKES,       /* [downstream] max_handshakes */
	METRICS_LIMIT_PER_IP,           /* [downstream] max_handshakes_per_ip */
	METRICS_LIMITS_
};

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

void metrics_handshake(struct metrics *m, enum metrics_side side, bool ok,
    enum reason why);
void metrics_connection(struct metrics *m, enum metrics_side side, int delta);
/* A broker handshake that passed (also counted by metrics_handshake):
 * resumed from a session of the same identity, or full. */
void metrics_upstream_handshake(struct metrics *m, bool resumed);
/* A device refused at accept (limit), answered with a refusal CONNACK
 * (identity, upstream-unavailable), refused for a CONNECT above
 * max_connect_size (packet-too-large), or replaced in the connect queue
 * (takeover). */
void metrics_refused(struct metrics *m, enum reason why);
/* A connection refused at accept by a limit (metrics_refused counts it
 * as reason=limit too). */
void metrics_limit(struct metrics *m, enum metrics_limit which);
/* "max_connections", "max_handshakes", "max_handshakes_per_ip". */
const char *metrics_limit_name(enum metrics_limit which);
/* A live session closed when judged again ([gateway] rejudge). */
void metrics_revoked(struct metrics *m, enum reason why);
void metrics_reload(struct metrics *m, bool ok);
struct metrics_traffic *metrics_traffic(struct metrics *m, bool up);

/* Prometheus text exposition helpers, used by the admin endpoint. */
void metrics_help(struct evbuffer *out, const char *name, const char *type,
    const char *help);
/* Writes `value` as a label value: backslash, double quote and newline
 * escaped as the exposition format requires; other bytes below 0x20 and
 * invalid UTF-8 as "?" (labels come from certificates). */
void metrics_label(struct evbuffer *out, const char *value);

/* Writes every counter family of m. */
void metrics_render_counters(const struct metrics *m, struct evbuffer *out);

#endif

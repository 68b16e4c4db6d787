/*
 * metrics.c - counters and their Prometheus text exposition (see
 * metrics.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "mqtt.h"
#include "util.h"

struct metrics {
	/* [side][ok] for ok; [side] by reason for failures. */
	uint64_t handshakes_ok[METRICS_SIDES_];
	uint64_t handshakes_fail[METRICS_SIDES_][REASON_COUNT_];
	uint64_t connections[METRICS_SIDES_];
	uint64_t up_full, up_resumed;
	uint64_t refused[REASON_COUNT_];
	uint64_t revoked[REASON_COUNT_];
	uint64_t limits[METRICS_LIMITS_];
	uint64_t reloads_ok;
	uint64_t reloads_fail;
	struct metrics_traffic up;
	struct metrics_traffic down;
};

static const char *const side_names[METRICS_SIDES_] = {
	"downstream", "upstream",
};

struct metrics *
metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void
metrics_free(struct metrics *m)
{
	free(m);
}

void
metrics_handshake(struct metrics *m, enum metrics_side side, bool ok,
    enum reason why)
{
	if (ok) {
		m->handshakes_ok[side]++;
	} else if ((unsigned)why < REASON_COUNT_) {
		m->handshakes_fail[side][why]++;
	}
}

void
metrics_upstream_handshake(struct metrics *m, bool resumed)
{
	if (resumed) {
		m->up_resumed++;
	} else {
		m->up_full++;
	}
}

void
metrics_connection(struct metrics *m, enum metrics_side side, int delta)
{
	if (delta < 0 && m->connections[side] == 0) {
		return;
	}
	m->connections[side] += (uint64_t)(int64_t)delta;
}

void
metrics_refused(struct metrics *m, enum reason why)
{
	if ((unsigned)why < REASON_COUNT_) {
		m->refused[why]++;
	}
}

void
metrics_limit(struct metrics *m, enum metrics_limit which)
{
	if ((unsigned)which < METRICS_LIMITS_) {
		m->limits[which]++;
	}
}

const char *
metrics_limit_name(enum metrics_limit which)
{
	static const char *const names[METRICS_LIMITS_] = {
		"max_connections", "max_handshakes", "max_handshakes_per_ip",
	};

	return (unsigned)which < METRICS_LIMITS_ ? names[which] : "unknown";
}

void
metrics_revoked(struct metrics *m, enum reason why)
{
	if ((unsigned)why < REASON_COUNT_) {
		m->revoked[why]++;
	}
}

void
metrics_reload(struct metrics *m, bool ok)
{
	if (ok) {
		m->reloads_ok++;
	} else {
		m->reloads_fail++;
	}
}

struct metrics_traffic *
metrics_traffic(struct metrics *m, bool up)
{
	return up ? &m->up : &m->down;
}

void
metrics_help(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

void
metrics_label(struct evbuffer *out, const char *value)
{
	size_t n = strlen(value);
	bool utf8 = mqtt_utf8_valid((const uint8_t *)value, n);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '\\') {
			evbuffer_add(out, "\\\\", 2);
		} else if (c == '"') {
			evbuffer_add(out, "\\\"", 2);
		} else if (c == '\n') {
			evbuffer_add(out, "\\n", 2);
		} else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
			evbuffer_add(out, "?", 1);
		} else {
			evbuffer_add(out, &value[i], 1);
		}
	}
}

static void
metrics_traffic_render(struct evbuffer *out, const struct metrics *m)
{
	metrics_help(out, "certbridge_mqtt_packets_total", "counter",
	    "MQTT packets relayed (up = device to broker), by type.");
	for (int dir = 0; dir < 2; dir++) {
		const struct metrics_traffic *t = dir == 0 ? &m->up : &m->down;

		for (uint8_t type = 1; type < 16; type++) {
			evbuffer_add_printf(out, "certbridge_mqtt_packets_total"
			    "{direction=\"%s\",type=\"%s\"} %" PRIu64 "\n",
			    dir == 0 ? "up" : "down", mqtt_type_name(type),
			    t->packets[type]);
		}
	}
	metrics_help(out, "certbridge_bytes_total", "counter",
	    "MQTT bytes relayed (up = device to broker).");
	evbuffer_add_printf(out, "certbridge_bytes_total{direction=\"up\"} "
	    "%" PRIu64 "\n", m->up.bytes);
	evbuffer_add_printf(out, "certbridge_bytes_total{direction=\"down\"} "
	    "%" PRIu64 "\n", m->down.bytes);
}

void
metrics_render_counters(const struct metrics *m, struct evbuffer *out)
{
	static const enum reason refusals[] = {
		REASON_IDENTITY, REASON_UPSTREAM_UNAVAILABLE, REASON_LIMIT,
		REASON_PACKET_TOO_LARGE, REASON_TAKEOVER,
	};

	metrics_help(out, "certbridge_connections", "gauge",
	    "Open connections: devices (downstream) and broker (upstream).");
	for (int side = 0; side < METRICS_SIDES_; side++) {
		evbuffer_add_printf(out, "certbridge_connections{side=\"%s\"} "
		    "%" PRIu64 "\n", side_names[side], m->connections[side]);
	}
	metrics_help(out, "certbridge_handshakes_total", "counter",
	    "TLS handshakes by side and result; reason names a failure.");
	for (int side = 0; side < METRICS_SIDES_; side++) {
		evbuffer_add_printf(out, "certbridge_handshakes_total{side=\"%s\","
		    "result=\"ok\",reason=\"\"} %" PRIu64 "\n",
		    side_names[side], m->handshakes_ok[side]);
		for (int r = 1; r < REASON_COUNT_; r++) {
			/* Every slug a handshake can fail with is always
			 * present, so rate() works from the first scrape. */
			if (r > REASON_PROTOCOL && m->handshakes_fail[side][r]
			    == 0) {
				continue;
			}
			evbuffer_add_printf(out, "certbridge_handshakes_total{"
			    "side=\"%s\",result=\"fail\",reason=\"%s\"} %"
			    PRIu64 "\n", side_names[side],
			    reason_slug((enum reason)r),
			    m->handshakes_fail[side][r]);
		}
	}
	metrics_help(out, "certbridge_upstream_handshakes_total", "counter",
	    "Broker TLS handshakes that passed: full, or resumed from a "
	    "session of the same upstream identity.");
	evbuffer_add_printf(out, "certbridge_upstream_handshakes_total{"
	    "kind=\"full\"} %" PRIu64 "\n", m->up_full);
	evbuffer_add_printf(out, "certbridge_upstream_handshakes_total{"
	    "kind=\"resumed\"} %" PRIu64 "\n", m->up_resumed);
	metrics_help(out, "certbridge_connect_refused_total", "counter",
	    "Devices refused: at accept (limit), with a refusal CONNACK "
	    "(identity, upstream-unavailable), a CONNECT too large, or "
	    "replaced in the connect queue (takeover).");
	for (size_t i = 0; i < CB_ARRAY_SIZE(refusals); i++) {
		evbuffer_add_printf(out, "certbridge_connect_refused_total{"
		    "reason=\"%s\"} %" PRIu64 "\n", reason_slug(refusals[i]),
		    m->refused[refusals[i]]);
	}
	metrics_help(out, "certbridge_limit_refusals_total", "counter",
	    "Connections closed at accept, by the limit that refused them.");
	for (int i = 0; i < METRICS_LIMITS_; i++) {
		evbuffer_add_printf(out, "certbridge_limit_refusals_total{"
		    "limit=\"%s\"} %" PRIu64 "\n",
		    metrics_limit_name((enum metrics_limit)i), m->limits[i]);
	}
	metrics_help(out, "certbridge_sessions_revoked_total", "counter",
	    "Live sessions closed because they were no longer trusted when "
	    "judged again (at a reload or a CA's retire_after).");
	for (int r = REASON_UNKNOWN_CA; r <= REASON_BAD_CERT; r++) {
		if (r == REASON_NO_CLIENT_CERT) {
			continue;
		}
		evbuffer_add_printf(out, "certbridge_sessions_revoked_total{"
		    "reason=\"%s\"} %" PRIu64 "\n", reason_slug((enum reason)r),
		    m->revoked[r]);
	}
	metrics_help(out, "certbridge_config_reloads_total", "counter",
	    "Configuration reloads (SIGHUP) by result.");
	evbuffer_add_printf(out, "certbridge_config_reloads_total{result=\"ok\"} "
	    "%" PRIu64 "\n", m->reloads_ok);
	evbuffer_add_printf(out, "certbridge_config_reloads_total{result="
	    "\"fail\"} %" PRIu64 "\n", m->reloads_fail);
	metrics_traffic_render(out, m);
}

/*
 * admit.c - the accept-time limits (see admit.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "admit.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* Refusals are logged at most this often (one reason: limit), whatever
 * the limit; the lines between are counted into the next one. */
#define ADMIT_LOG_EVERY_MS 1000

/* The refusals since the last line, and the latest of them, which the
 * next line names (by then its listener may have gone with a reload). */
struct admit_quiet {
	uint64_t refused;
	int64_t logged_ms;
	enum metrics_limit which;
	uint32_t max;
	char peer[64];
	char listener[64];
};

struct admit {
	struct metrics *metrics;
	struct hslimit *pending;
	struct admit_quiet quiet;
	/* Writes the line for refusals held back by the once-a-second rule
	 * when no later refusal comes to carry them. */
	struct event *flush;
};

static void admit_flush(evutil_socket_t fd, short what, void *arg);

struct admit *
admit_new(struct event_base *base, struct metrics *m)
{
	struct admit *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		return NULL;
	}
	a->metrics = m;
	a->pending = hslimit_new();
	a->flush = evtimer_new(base, admit_flush, a);
	if (a->pending == NULL || a->flush == NULL) {
		admit_free(a);
		return NULL;
	}
	a->quiet.logged_ms = INT64_MIN / 2;
	return a;
}

void
admit_free(struct admit *a)
{
	if (a == NULL) {
		return;
	}
	if (a->flush != NULL) {
		event_free(a->flush);
	}
	hslimit_free(a->pending);
	free(a);
}

static void
admit_peer_text(const struct sockaddr *sa, char *out, size_t cap)
{
	const void *addr = NULL;

	if (sa->sa_family == AF_INET) {
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		addr = &((const struct sockaddr_in6 *)(const void *)sa)
		    ->sin6_addr;
	}
	if (addr == NULL || inet_ntop(sa->sa_family, addr, out,
	    (socklen_t)cap) == NULL) {
		snprintf(out, cap, "?");
	}
}

static void
admit_log(struct admit *a, int64_t now)
{
	static const char *const details[METRICS_LIMITS_] = {
		[METRICS_LIMIT_CONNECTIONS] = "[gateway] max_connections "
		    "reached; raise it or add a gateway",
		[METRICS_LIMIT_HANDSHAKES] = "[downstream] max_handshakes "
		    "connections are in their TLS handshake or before their "
		    "CONNECT; a storm of new connections, or a host holding "
		    "idle ones: new ones wait until those complete or time out "
		    "([downstream] handshake_timeout)",
		[METRICS_LIMIT_PER_IP] = "this address already holds "
		    "[downstream] max_handshakes_per_ip connections in their "
		    "handshake; a device reconnecting in a loop, or a host "
		    "holding idle sockets",
	};
	struct admit_quiet *q = &a->quiet;
	struct log_line l;

	if (log_begin(&l, LOG_WARN, "connection-refused")) {
		log_str(&l, "listener", q->listener);
		log_str(&l, "peer", q->peer);
		log_str(&l, "reason", "limit");
		log_str(&l, "limit", metrics_limit_name(q->which));
		log_u64(&l, "max", q->max);
		log_u64(&l, "count", q->refused);
		log_str(&l, "detail", details[q->which]);
		log_end(&l);
	}
	q->refused = 0;
	q->logged_ms = now;
}

static void
admit_flush(evutil_socket_t fd, short what, void *arg)
{
	struct admit *a = arg;

	(void)fd;
	(void)what;
	if (a->quiet.refused > 0) {
		admit_log(a, clock_mono_ms());
	}
}

static void
admit_refuse(struct admit *a, enum metrics_limit which, uint32_t value,
    const struct sockaddr *peer, const char *listener)
{
	struct admit_quiet *q = &a->quiet;
	int64_t now = clock_mono_ms();
	int64_t wait_ms;

	metrics_refused(a->metrics, REASON_LIMIT);
	metrics_limit(a->metrics, which);
	q->refused++;
	q->which = which;
	q->max = value;
	admit_peer_text(peer, q->peer, sizeof(q->peer));
	snprintf(q->listener, sizeof(q->listener), "%s",
	    listener != NULL ? listener : "");
	wait_ms = q->logged_ms + ADMIT_LOG_EVERY_MS - now;
	if (wait_ms <= 0) {
		if (evtimer_pending(a->flush, NULL)) {
			evtimer_del(a->flush);
		}
		admit_log(a, now);
	} else if (!evtimer_pending(a->flush, NULL)) {
		struct timeval tv = {
			.tv_sec = (time_t)(wait_ms / 1000),
			.tv_usec = (suseconds_t)(wait_ms % 1000) * 1000,
		};

		evtimer_add(a->flush, &tv);
	}
}

bool
admit_accept(struct admit *a, const struct cfg *cfg, size_t sessions,
    const struct sockaddr *peer, const char *listener,
    struct hslimit_key *key)
{
	uint32_t max_conn = cfg->gateway.max_connections;
	uint32_t max_hs = cfg->downstream.max_handshakes;

	/* max_connections below max_handshakes caps the handshakes too. */
	if (max_hs > max_conn) {
		max_hs = max_conn;
	}
	if (sessions >= max_conn) {
		admit_refuse(a, METRICS_LIMIT_CONNECTIONS, max_conn, peer,
		    listener);
		return false;
	}
	hslimit_key_of(peer, key);
	switch (hslimit_take(a->pending, key, max_hs,
	    cfg->downstream.max_handshakes_per_ip)) {
	case HSLIMIT_OK:
		return true;
	case HSLIMIT_TOTAL:
		admit_refuse(a, METRICS_LIMIT_HANDSHAKES, max_hs, peer,
		    listener);
		return false;
	case HSLIMIT_PER_IP:
		admit_refuse(a, METRICS_LIMIT_PER_IP,
		    cfg->downstream.max_handshakes_per_ip, peer, listener);
		return false;
	}
	return false;
}

void
admit_handshake_over(struct admit *a, const struct hslimit_key *key)
{
	hslimit_release(a->pending, key);
}

uint32_t
admit_pending(const struct admit *a)
{
	return hslimit_pending(a->pending);
}

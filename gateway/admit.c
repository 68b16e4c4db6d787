/*
 * admit.c - the accept-time limits (see admit.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "admit.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* Refusals are logged per limit at most this often. */
#define ADMIT_LOG_EVERY_MS 1000

struct admit_quiet {
	uint64_t refused;          /* since the last line */
	int64_t logged_ms;
};

struct admit {
	struct metrics *metrics;
	struct hslimit *pending;
	struct admit_quiet quiet[METRICS_LIMITS_];
};

struct admit *
admit_new(struct metrics *m)
{
	struct admit *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		return NULL;
	}
	a->metrics = m;
	a->pending = hslimit_new();
	if (a->pending == NULL) {
		free(a);
		return NULL;
	}
	for (size_t i = 0; i < METRICS_LIMITS_; i++) {
		a->quiet[i].logged_ms = INT64_MIN / 2;
	}
	return a;
}

void
admit_free(struct admit *a)
{
	if (a == NULL) {
		return;
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
admit_refuse(struct admit *a, enum metrics_limit which, uint32_t value,
    const struct sockaddr *peer, const char *listener)
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
	struct admit_quiet *q = &a->quiet[which];
	int64_t now = clock_mono_ms();
	struct log_line l;
	char ip[64];

	metrics_refused(a->metrics, REASON_LIMIT);
	metrics_limit(a->metrics, which);
	q->refused++;
	if (now - q->logged_ms < ADMIT_LOG_EVERY_MS) {
		return;
	}
	if (log_begin(&l, LOG_WARN, "connection-refused")) {
		admit_peer_text(peer, ip, sizeof(ip));
		log_str(&l, "listener", listener);
		log_str(&l, "peer", ip);
		log_str(&l, "reason", "limit");
		log_str(&l, "limit", metrics_limit_name(which));
		log_u64(&l, "max", value);
		log_u64(&l, "count", q->refused);
		log_str(&l, "detail", details[which]);
		log_end(&l);
	}
	q->refused = 0;
	q->logged_ms = now;
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

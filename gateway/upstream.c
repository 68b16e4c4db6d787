/*
 * upstream.c - the paced connect queue (see upstream.h).
 *
 * One DNS answer serves every waiter: the broker's name is resolved once,
 * cached for UPSTREAM_DNS_TTL, and waiters that arrive while a lookup is in
 * flight queue behind it, so a storm of reconnects costs one query.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/util.h>

#include "clock.h"
#include "upstream.h"
#include "util.h"

#define UPSTREAM_DNS_TTL_MS 60000
#define UPSTREAM_WHY_LEN 256
/* Buckets of the queued waiters by key. */
#define UPSTREAM_KEY_BUCKETS 1024

TAILQ_HEAD(upstream_waitq, upstream_wait);

struct upstream_dns_req {
	struct upstream *u;   /* NULL once the upstream is gone */
};

struct upstream {
	struct event_base *base;
	struct evdns_base *dns;
	struct event *pump_ev;

	struct upstream_waitq queue;      /* waiting for a token */
	size_t queued;
	struct upstream_wait *by_key[UPSTREAM_KEY_BUCKETS];
	struct upstream_waitq dns_waiters; /* have a token, need an address */

	double tokens;
	double burst;
	double rate;
	int64_t refilled_ms;

	/* A single cached answer: gateways talk to one broker. */
	struct parse_hostport cached;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int64_t cached_until_ms;
	struct upstream_dns_req *inflight;
	char dns_error[UPSTREAM_WHY_LEN];
};

static void upstream_pump(evutil_socket_t fd, short what, void *arg);

struct upstream *
upstream_new(struct event_base *base, struct evdns_base *dns)
{
	struct upstream *u;

	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		return NULL;
	}
	u->base = base;
	u->dns = dns;
	TAILQ_INIT(&u->queue);
	TAILQ_INIT(&u->dns_waiters);
	u->pump_ev = evtimer_new(base, upstream_pump, u);
	if (u->pump_ev == NULL) {
		free(u);
		return NULL;
	}
	upstream_set_rate(u, 50);
	u->tokens = u->burst;
	u->refilled_ms = clock_mono_ms();
	return u;
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL) {
		return;
	}
	if (u->inflight != NULL) {
		u->inflight->u = NULL; /* its callback frees it */
	}
	event_free(u->pump_ev);
	free(u);
}

static void upstream_refill(struct upstream *u);

void
upstream_set_rate(struct upstream *u, uint32_t per_second)
{
	/* The time since the last top-up was spent at the old rate: credit
	 * it so before the new one applies from now on. */
	upstream_refill(u);
	u->rate = per_second > 0 ? per_second : 1;
	/* A small burst: enough to absorb a handful of devices at once
	 * without letting a storm through. */
	u->burst = u->rate / 5.0 < 1.0 ? 1.0 : u->rate / 5.0;
	if (u->tokens > u->burst) {
		u->tokens = u->burst;
	}
}

static void
upstream_refill(struct upstream *u)
{
	int64_t now = clock_mono_ms();

	u->tokens += (double)(now - u->refilled_ms) * u->rate / 1000.0;
	if (u->tokens > u->burst) {
		u->tokens = u->burst;
	}
	u->refilled_ms = now;
}

static bool
upstream_same_target(const struct parse_hostport *a,
    const struct parse_hostport *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0;
}

static void
upstream_connect(struct upstream *u, struct upstream_wait *w)
{
	char why[UPSTREAM_WHY_LEN];
	int fd, one = 1;

	fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK
	    | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot create a socket: %s%s",
		    strerror(errno), errno == EMFILE || errno == ENFILE
		    ? "; raise the descriptor limit (LimitNOFILE) or lower "
		    "[gateway] max_connections" : "");
		w->done(w->arg, -1, why);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&u->addr, u->addr_len) != 0
	    && errno != EINPROGRESS) {
		snprintf(why, sizeof(why), "connect to %s:%s failed: %s",
		    w->target.host, w->target.port, strerror(errno));
		close(fd);
		w->done(w->arg, -1, why);
		return;
	}
	w->done(w->arg, fd, NULL);
}

static void upstream_resolve(struct upstream *u,
    const struct parse_hostport *target);

/* Hands addresses to everyone who waited for them. */
static void
upstream_serve_dns_waiters(struct upstream *u)
{
	struct upstream_wait *w;
	int64_t now = clock_mono_ms();

	while ((w = TAILQ_FIRST(&u->dns_waiters)) != NULL) {
		if (!upstream_same_target(&w->target, &u->cached)
		    || now >= u->cached_until_ms) {
			if (u->inflight == NULL) {
				upstream_resolve(u, &w->target);
			}
			if (u->inflight != NULL) {
				return;
			}
			continue; /* resolved synchronously or failed */
		}
		TAILQ_REMOVE(&u->dns_waiters, w, link);
		w->resolving = false;
		if (u->addr_len == 0) {
			w->done(w->arg, -1, u->dns_error);
		} else {
			upstream_connect(u, w);
		}
	}
}

static void
upstream_store(struct upstream *u, const struct parse_hostport *target,
    struct evutil_addrinfo *ai, int err)
{
	u->cached = *target;
	u->addr_len = 0;
	if (err == 0 && ai != NULL && ai->ai_addrlen <= sizeof(u->addr)) {
		memcpy(&u->addr, ai->ai_addr, ai->ai_addrlen);
		u->addr_len = (socklen_t)ai->ai_addrlen;
		u->cached_until_ms = clock_mono_ms() + UPSTREAM_DNS_TTL_MS;
	} else {
		snprintf(u->dns_error, sizeof(u->dns_error), "cannot resolve "
		    "broker host \"%s\": %s; check [upstream] address and the "
		    "gateway's DNS", target->host, evutil_gai_strerror(err));
		/* A failed lookup is retried soon, not cached for long. */
		u->cached_until_ms = clock_mono_ms() + 1000;
	}
}

static void
upstream_dns_done(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct upstream_dns_req *req = arg;
	struct upstream *u = req->u;
	struct upstream_wait *w;

	free(req);
	if (u == NULL) {
		if (ai != NULL) {
			evutil_freeaddrinfo(ai);
		}
		return;
	}
	u->inflight = NULL;
	w = TAILQ_FIRST(&u->dns_waiters);
	if (w != NULL) {
		upstream_store(u, &w->target, ai, err);
	}
	if (ai != NULL) {
		evutil_freeaddrinfo(ai);
	}
	upstream_serve_dns_waiters(u);
}

static void
upstream_resolve(struct upstream *u, const struct parse_hostport *target)
{
	struct evutil_addrinfo hints, *ai = NULL;
	struct upstream_dns_req *req;
	int err;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
	/* A literal address needs no lookup and never expires. */
	err = evutil_getaddrinfo(target->host, target->port, &hints, &ai);
	if (err == 0) {
		upstream_store(u, target, ai, 0);
		u->cached_until_ms = INT64_MAX;
		evutil_freeaddrinfo(ai);
		return;
	}
	hints.ai_flags = EVUTIL_AI_NUMERICSERV | EVUTIL_AI_ADDRCONFIG;
	req = calloc(1, sizeof(*req));
	if (req == NULL) {
		upstream_store(u, target, NULL, EVUTIL_EAI_MEMORY);
		return;
	}
	req->u = u;
	u->inflight = req;
	/* The callback may run before this returns (cached answers,
	 * immediate failures); it clears inflight itself. */
	evdns_getaddrinfo(u->dns, target->host, target->port, &hints,
	    upstream_dns_done, req);
}

static void
upstream_grant(struct upstream *u, struct upstream_wait *w)
{
	w->resolving = true;
	TAILQ_INSERT_TAIL(&u->dns_waiters, w, link);
	if (u->inflight == NULL) {
		upstream_serve_dns_waiters(u);
	}
}

/* The key is a digest already: its first bytes spread well. */
static struct upstream_wait **
upstream_key_slot(struct upstream *u, const uint8_t key[32])
{
	size_t b = ((size_t)key[0] << 8 | key[1]) % UPSTREAM_KEY_BUCKETS;

	return &u->by_key[b];
}

static void
upstream_key_remove(struct upstream *u, struct upstream_wait *w)
{
	struct upstream_wait **p;

	if (!w->has_key) {
		return;
	}
	for (p = upstream_key_slot(u, w->key); *p != NULL;
	    p = &(*p)->same_next) {
		if (*p == w) {
			*p = w->same_next;
			w->same_next = NULL;
			return;
		}
	}
}

/* Takes w out of the queue (not granted). */
static void
upstream_dequeue(struct upstream *u, struct upstream_wait *w)
{
	TAILQ_REMOVE(&u->queue, w, link);
	u->queued--;
	w->queued = false;
	upstream_key_remove(u, w);
}

static void
upstream_pump(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	struct upstream_wait *w;
	struct timeval tv;
	double wait_ms;

	(void)fd;
	(void)what;
	upstream_refill(u);
	while ((w = TAILQ_FIRST(&u->queue)) != NULL && u->tokens >= 1.0) {
		upstream_dequeue(u, w);
		u->tokens -= 1.0;
		upstream_grant(u, w);
	}
	if (!TAILQ_EMPTY(&u->queue)) {
		wait_ms = (1.0 - u->tokens) * 1000.0 / u->rate;
		if (wait_ms < 1.0) {
			wait_ms = 1.0;
		}
		tv.tv_sec = (time_t)(wait_ms / 1000.0);
		tv.tv_usec = (suseconds_t)((int64_t)wait_ms % 1000) * 1000;
		evtimer_add(u->pump_ev, &tv);
	}
}

void
upstream_request(struct upstream *u, struct upstream_wait *w,
    const struct parse_hostport *target, upstream_done_cb done, void *arg)
{
	struct upstream_wait **slot, *old;

	w->target = *target;
	w->done = done;
	w->arg = arg;
	w->resolving = false;
	w->same_next = NULL;
	if (w->has_key) {
		slot = upstream_key_slot(u, w->key);
		for (old = *slot; old != NULL; old = old->same_next) {
			if (memcmp(old->key, w->key, sizeof(w->key)) == 0) {
				break;
			}
		}
		if (old != NULL) {
			upstream_dequeue(u, old);
			old->done(old->arg, UPSTREAM_TAKEN_OVER, "a newer "
			    "connection of the same device took its place in "
			    "the connect queue");
		}
		w->same_next = *slot;
		*slot = w;
	}
	w->queued = true;
	TAILQ_INSERT_TAIL(&u->queue, w, link);
	u->queued++;
	if (!evtimer_pending(u->pump_ev, NULL)) {
		event_active(u->pump_ev, EV_TIMEOUT, 0);
	}
}

void
upstream_cancel(struct upstream *u, struct upstream_wait *w)
{
	if (w->queued) {
		upstream_dequeue(u, w);
	} else if (w->resolving) {
		TAILQ_REMOVE(&u->dns_waiters, w, link);
		w->resolving = false;
	}
}

bool
upstream_congested(struct upstream *u)
{
	upstream_refill(u);
	return (double)u->queued > u->tokens;
}

size_t
upstream_queue_length(const struct upstream *u)
{
	return u->queued;
}

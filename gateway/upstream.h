/*
 * upstream.h - getting a TCP connection to the broker, paced.
 *
 * Sessions that need the broker wait in one FIFO. A token bucket refills at
 * [upstream] connect_rate per second with a small burst, so a fleet that
 * reconnects at once reaches the broker as a steady stream instead of a
 * storm the broker throttles. A waiter that gets its turn is resolved (DNS
 * answers cached briefly) and handed a socket whose non-blocking connect is
 * in progress; TLS is the session's business.
 */
#ifndef CB_UPSTREAM_H
#define CB_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "parse.h"

struct upstream;

/* Called once per wait: fd >= 0 with a connect in progress, or fd < 0 and
 * why filled; fd == UPSTREAM_TAKEN_OVER when a newer waiter with the same
 * key took this one's place. */
typedef void (*upstream_done_cb)(void *arg, int fd, const char *why);

#define UPSTREAM_TAKEN_OVER (-2)

/* Embedded in the waiting session; the upstream module never allocates
 * per waiter. */
struct upstream_wait {
	TAILQ_ENTRY(upstream_wait) link;
	struct upstream_wait *same_next;  /* queued waiters by key */
	struct parse_hostport target;
	upstream_done_cb done;
	void *arg;
	bool queued;
	bool resolving;
	/* Who is waiting (a digest of the device's identity or client id):
	 * one device holds at most one place in the queue. */
	bool has_key;
	uint8_t key[32];
};

struct upstream *upstream_new(struct event_base *base,
    struct evdns_base *dns);
void upstream_free(struct upstream *u);

/* Sets the pace for connections granted from now on (at every load). */
void upstream_set_rate(struct upstream *u, uint32_t per_second);

/* Queues w; done is called later, never from inside this call. When w
 * has a key and a queued waiter has the same one, that older waiter
 * leaves the queue and its done is called at once with
 * UPSTREAM_TAKEN_OVER (a newer session of the same device replaces it, as
 * the broker would with a duplicate client id). */
void upstream_request(struct upstream *u, struct upstream_wait *w,
    const struct parse_hostport *target, upstream_done_cb done, void *arg);

/* Withdraws w (a session closing while it waits); done is not called. */
void upstream_cancel(struct upstream *u, struct upstream_wait *w);

size_t upstream_queue_length(const struct upstream *u);

/* Whether waiters are held back by connect_rate right now (more of them
 * than tokens), as opposed to merely passing through the queue. */
bool upstream_congested(struct upstream *u);

#endif

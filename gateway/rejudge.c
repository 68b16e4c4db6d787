/*
 * rejudge.c - judging live sessions again (see rejudge.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "gen.h"
#include "registry.h"
#include "runtime.h"
#include "log.h"
#include "rejudge.h"
#include "session.h"
#include "trust.h"
#include "util.h"

/* Longest a slice of a pass may hold the loop. */
#define REJUDGE_SLICE_MS 5
/* The retirement timer fires this much after the instant, so the wall
 * clock read then is surely past it. */
#define REJUDGE_RETIRE_MARGIN_MS 200

struct rejudge {
	struct runtime *rt;
	struct event *slice;
	struct event *retire;
	struct session *next;     /* the next session of the pass */
	bool active;
	char cause[96];
	uint64_t checked;
	uint64_t closed;
	int64_t started_ms;
	int64_t armed_at;         /* the retire_after the timer waits for */
};

static void
rejudge_done(struct rejudge *r)
{
	struct log_line l;

	r->active = false;
	if (log_begin(&l, r->closed > 0 ? LOG_WARN : LOG_INFO, "rejudged")) {
		log_str(&l, "cause", r->cause);
		log_u64(&l, "sessions", r->checked);
		log_u64(&l, "closed", r->closed);
		log_i64(&l, "duration_ms", clock_mono_ms() - r->started_ms);
		log_end(&l);
	}
}

static void
rejudge_on_slice(evutil_socket_t fd, short what, void *arg)
{
	struct rejudge *r = arg;
	int64_t now = clock_wall_s(), t0 = clock_mono_ms();

	(void)fd;
	(void)what;
	while (r->next != NULL) {
		struct session *s = r->next;

		r->next = session_next(s);
		r->checked++;
		if (session_rejudge(s, now)) {
			r->closed++;
		}
		if (r->next != NULL && clock_mono_ms() - t0
		    >= REJUDGE_SLICE_MS) {
			event_active(r->slice, EV_TIMEOUT, 0);
			return;
		}
	}
	rejudge_done(r);
}

void
rejudge_start(struct rejudge *r, const char *cause)
{
	if (!r->rt->gen->cfg->gateway.rejudge) {
		return;
	}
	snprintf(r->cause, sizeof(r->cause), "%s", cause);
	r->next = registry_first(r->rt->sessions);
	r->checked = 0;
	r->closed = 0;
	r->started_ms = clock_mono_ms();
	r->active = true;
	/* From the loop, not from here: a reload runs inside a signal
	 * callback, and the pass may close sessions. */
	event_active(r->slice, EV_TIMEOUT, 0);
}

/* A session leaving the registry: the walk steps over it. */
static void
rejudge_leaving(void *arg, struct session *s)
{
	struct rejudge *r = arg;

	if (r->next == s) {
		r->next = session_next(s);
	}
}

static void
rejudge_on_retire(evutil_socket_t fd, short what, void *arg)
{
	struct rejudge *r = arg;
	struct gen *g = r->rt->gen;
	int64_t now = clock_wall_s();
	char cause[96] = "retire_after";

	(void)fd;
	(void)what;
	/* A monotonic timer over weeks may fire a little early against
	 * the wall clock: then it is only armed again. */
	if (now >= r->armed_at) {
		for (size_t i = 0; i < g->cfg->ca_count; i++) {
			const struct cfg_ca *ca = &g->cfg->cas[i];

			if (ca->has_retire_after
			    && ca->retire_after == r->armed_at) {
				snprintf(cause, sizeof(cause), "retire_after "
				    "of [ca.%s]", ca->name);
			}
		}
		rejudge_start(r, cause);
	}
	rejudge_watch_retirements(r);
}

void
rejudge_watch_retirements(struct rejudge *r)
{
	struct gen *g = r->rt->gen;
	int64_t now = clock_wall_s(), at;
	struct timeval tv;
	int64_t ms;

	evtimer_del(r->retire);
	if (!g->cfg->gateway.rejudge) {
		return;
	}
	at = trust_next_retirement(g->trust, now);
	if (at == 0) {
		return;
	}
	r->armed_at = at;
	ms = (at - now) * 1000 + REJUDGE_RETIRE_MARGIN_MS;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(r->retire, &tv);
}

struct rejudge *
rejudge_new(struct runtime *rt)
{
	struct rejudge *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		return NULL;
	}
	r->rt = rt;
	r->slice = event_new(rt->base, -1, 0, rejudge_on_slice, r);
	r->retire = evtimer_new(rt->base, rejudge_on_retire, r);
	if (r->slice == NULL || r->retire == NULL) {
		rejudge_free(r);
		return NULL;
	}
	registry_on_leaving(rt->sessions, rejudge_leaving, r);
	return r;
}

void
rejudge_free(struct rejudge *r)
{
	if (r == NULL) {
		return;
	}
	if (r->slice != NULL) {
		event_free(r->slice);
	}
	if (r->retire != NULL) {
		event_free(r->retire);
	}
	free(r);
}

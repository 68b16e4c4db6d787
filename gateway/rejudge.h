/*
 * rejudge.h - judging live sessions again (docs/configuration.md,
 * [gateway] rejudge).
 *
 * A session admitted under rules that no longer hold (its CA removed or
 * retired, its certificate now on a CRL) must not go on forever: a device
 * with keepalive 0 would otherwise keep a revoked identity connected until
 * the next power cut. After every reload, and at the instant a CA's
 * retire_after passes, each established session is judged again by
 * judge.c under the rules then in force; the ones now refused are closed
 * (see session_rejudge). With [gateway] rejudge = no, nothing is re-judged.
 *
 * A pass visits each session once, in slices of a few milliseconds with
 * the loop running in between, so thousands of sessions never stall the
 * relay; a new pass (another reload) restarts from the first session.
 */
#ifndef CB_REJUDGE_H
#define CB_REJUDGE_H

#include <stdint.h>

#include <event2/event.h>

struct rejudge;
struct runtime;

/* Needs rt->base and rt->sessions (it watches sessions leave); reads
 * rt->gen at each pass. */
struct rejudge *rejudge_new(struct runtime *rt);
void rejudge_free(struct rejudge *r);

/* Starts a pass over every session; cause names it in the log
 * ("reload", "retire_after of [ca.old]"). */
void rejudge_start(struct rejudge *r, const char *cause);

/* Arms the retirement timer for the current generation: at the next
 * retire_after still ahead, a pass starts. Called at start and after
 * every reload. */
void rejudge_watch_retirements(struct rejudge *r);

#endif

/*
 * runtime.h - what the parts of a running gateway share: the event loop,
 * the configuration generation in force and the process-wide services.
 *
 * The server owns the record and everything it points to, and is the only
 * one that writes it (at start, at every reload, at stop). Sessions, the
 * re-judge, the admission limits and the admin endpoint are handed a
 * pointer and read it, so every dependency points down to this record and
 * none back up to the server that owns them. Like struct cfg it is a plain
 * record, not an opaque type: it holds no logic, and getters for each
 * field would add nothing (docs/architecture.md).
 */
#ifndef CB_RUNTIME_H
#define CB_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

struct admit;
struct gen;
struct listener_set;
struct metrics;
struct refusals;
struct registry;
struct rejudge;
struct sightings;
struct upstream;
struct watch;

struct runtime {
	struct event_base *base;
	/* The generation new connections are accepted under; sessions keep
	 * a reference to their own. */
	struct gen *gen;
	int64_t started_at;             /* wall clock, epoch seconds */
	/* Bound and accepting (for /healthz): false before the first bind
	 * and from the moment a stop begins. */
	bool serving;
	const struct listener_set *listeners;

	struct registry *sessions;
	struct upstream *upstream;
	struct admit *admit;
	struct metrics *metrics;
	struct sightings *sightings;
	/* The last refusals, for the status page and /status. */
	struct refusals *refusals;
	struct watch *watch;
	struct rejudge *rejudge;
};

#endif

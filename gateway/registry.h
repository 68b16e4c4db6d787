/*
 * registry.h - the sessions of the process: who is connected, how many,
 * and what number the next one gets.
 *
 * The registry owns the list; a session carries its link (struct
 * registry_link) but never walks the list itself. Two parties want to
 * know when a session leaves: the re-judge, whose walk must step over it,
 * and the server, which stops once the last one is gone after a SIGTERM;
 * each sets a hook.
 */
#ifndef CB_REGISTRY_H
#define CB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct session;

struct registry_link {
	TAILQ_ENTRY(registry_link) entry;
	struct session *session;
};

struct registry;

/* Called with a session just before it leaves the list. */
typedef void (*registry_leaving_cb)(void *arg, struct session *s);
/* Called when the list becomes empty. */
typedef void (*registry_empty_cb)(void *arg);

struct registry *registry_new(void);
void registry_free(struct registry *r);

/* Adds s (through its link) at the end; returns its connection number,
 * counting from 1 over the life of the process. */
uint64_t registry_add(struct registry *r, struct registry_link *link,
    struct session *s);
void registry_remove(struct registry *r, struct registry_link *link);

size_t registry_count(const struct registry *r);
/* In order of arrival; NULL at the end. */
struct session *registry_first(const struct registry *r);
struct session *registry_next(const struct registry_link *link);

void registry_on_leaving(struct registry *r, registry_leaving_cb cb,
    void *arg);
void registry_on_empty(struct registry *r, registry_empty_cb cb, void *arg);

#endif

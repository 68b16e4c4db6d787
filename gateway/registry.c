/*
 * registry.c - the session list (see registry.h).
 */
#include <stdlib.h>

#include "registry.h"
#include "util.h"

TAILQ_HEAD(registry_list, registry_link);

struct registry {
	struct registry_list list;
	size_t count;
	uint64_t next_id;
	registry_leaving_cb leaving;
	void *leaving_arg;
	registry_empty_cb empty;
	void *empty_arg;
};

struct registry *
registry_new(void)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (r != NULL) {
		TAILQ_INIT(&r->list);
	}
	return r;
}

void
registry_free(struct registry *r)
{
	if (r == NULL) {
		return;
	}
	CB_ASSERT(r->count == 0);
	free(r);
}

uint64_t
registry_add(struct registry *r, struct registry_link *link,
    struct session *s)
{
	link->session = s;
	TAILQ_INSERT_TAIL(&r->list, link, entry);
	r->count++;
	return ++r->next_id;
}

void
registry_remove(struct registry *r, struct registry_link *link)
{
	CB_ASSERT(r->count > 0);
	if (r->leaving != NULL) {
		r->leaving(r->leaving_arg, link->session);
	}
	TAILQ_REMOVE(&r->list, link, entry);
	if (--r->count == 0 && r->empty != NULL) {
		r->empty(r->empty_arg);
	}
}

size_t
registry_count(const struct registry *r)
{
	return r->count;
}

struct session *
registry_first(const struct registry *r)
{
	struct registry_link *l = TAILQ_FIRST(&r->list);

	return l != NULL ? l->session : NULL;
}

struct session *
registry_next(const struct registry_link *link)
{
	struct registry_link *l = TAILQ_NEXT(link, entry);

	return l != NULL ? l->session : NULL;
}

void
registry_on_leaving(struct registry *r, registry_leaving_cb cb, void *arg)
{
	r->leaving = cb;
	r->leaving_arg = arg;
}

void
registry_on_empty(struct registry *r, registry_empty_cb cb, void *arg)
{
	r->empty = cb;
	r->empty_arg = arg;
}

/*
 * refusals.c - the ring of the last refusals (see refusals.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "refusals.h"

struct refusals {
	struct refusal ring[REFUSALS_MAX];
	size_t next;   /* where the next one goes */
	size_t count;
};

struct refusals *
refusals_new(void)
{
	return calloc(1, sizeof(struct refusals));
}

void
refusals_free(struct refusals *r)
{
	free(r);
}

void
refusals_add(struct refusals *r, int64_t at, const char *peer,
    const char *device, enum reason why, const char *detail)
{
	struct refusal *e = &r->ring[r->next];

	e->at = at;
	e->why = why;
	snprintf(e->peer, sizeof(e->peer), "%s", peer != NULL ? peer : "");
	snprintf(e->device, sizeof(e->device), "%s", device != NULL ? device
	    : "");
	snprintf(e->detail, sizeof(e->detail), "%s", detail != NULL ? detail
	    : "");
	r->next = (r->next + 1) % REFUSALS_MAX;
	if (r->count < REFUSALS_MAX) {
		r->count++;
	}
}

size_t
refusals_count(const struct refusals *r)
{
	return r->count;
}

const struct refusal *
refusals_at(const struct refusals *r, size_t i)
{
	if (i >= r->count) {
		return NULL;
	}
	return &r->ring[(r->next + REFUSALS_MAX - 1 - i) % REFUSALS_MAX];
}

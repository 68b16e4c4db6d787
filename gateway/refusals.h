/*
 * refusals.h - the last devices certbridge refused, for the status page and
 * /status (docs/operations.md, "The status page"): when, from where, which
 * device (its identity, or the certificate's CN), the reason= slug and the
 * sentence that says what to fix.
 *
 * A ring of the newest REFUSALS_MAX, fixed at start (about 32 KB): a flood
 * of refusals costs no memory, it only pushes older ones out. The texts are
 * stored as given (identities already escaped as the logs show them); the
 * writers of the page and of /status escape them for their format.
 */
#ifndef CB_REFUSALS_H
#define CB_REFUSALS_H

#include <stddef.h>
#include <stdint.h>

#include "reason.h"

#define REFUSALS_MAX 50

struct refusal {
	int64_t at;            /* wall clock, epoch seconds */
	char peer[64];         /* address:port */
	char device[160];      /* identity or CN, escaped; "" when unknown */
	enum reason why;
	char detail[320];
};

struct refusals;

struct refusals *refusals_new(void);
void refusals_free(struct refusals *r);

/* Records one refusal (texts cut to fit), pushing out the oldest when the
 * ring is full. */
void refusals_add(struct refusals *r, int64_t at, const char *peer,
    const char *device, enum reason why, const char *detail);

/* How many are kept (at most REFUSALS_MAX), and the i-th, newest first. */
size_t refusals_count(const struct refusals *r);
const struct refusal *refusals_at(const struct refusals *r, size_t i);

#endif

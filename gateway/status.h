/*
 * status.h - the /status document of the admin endpoint (docs/metrics.md):
 * generation, listeners, sessions, the upstream chain last seen, every
 * certificate with its days left, and the per-CA device figures.
 */
#ifndef CB_STATUS_H
#define CB_STATUS_H

#include <event2/buffer.h>

struct runtime;

/* Writes the document (JSON) to out. */
void status_json(const struct runtime *rt, struct evbuffer *out);

#endif

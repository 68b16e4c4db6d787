/*
 * admin.h - the read-only HTTP endpoint on [gateway] admin_listen:
 * GET / (the status page, page.h), /healthz, /metrics (Prometheus text),
 * /status (JSON).
 *
 * It serves from the same event loop as the devices, and nothing on it can
 * change the gateway: only GET and HEAD are answered.
 */
#ifndef CB_ADMIN_H
#define CB_ADMIN_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct admin;
struct runtime;

/* Binds listen ("host:port") on rt->base, serving what rt holds; NULL
 * with why filled when it cannot. */
struct admin *admin_new(const struct runtime *rt, const char *listen,
    char *why, size_t why_len);
void admin_free(struct admin *a);
const char *admin_address(const struct admin *a);

#endif

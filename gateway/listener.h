/*
 * listener.h - the device-facing sockets ([downstream] listen and
 * plain_listen) and the accept-time limit.
 */
#ifndef CB_LISTENER_H
#define CB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "parse.h"

struct listener;

/* Called for every accepted connection that passed max_connections. */
typedef void (*listener_accept_cb)(void *arg, int fd,
    const struct sockaddr *peer, int peer_len, bool tls);
/* Asked at every accept: may one more device connect? */
typedef bool (*listener_admit_cb)(void *arg);

/* Binds addr; on failure returns NULL with why filled. */
struct listener *listener_new(struct event_base *base,
    const struct parse_hostport *addr, bool tls, listener_accept_cb on_accept,
    listener_admit_cb admit, void *arg, char *why, size_t why_len);
void listener_free(struct listener *l);

/* "127.0.0.1:8883" as configured. */
const char *listener_name(const struct listener *l);
bool listener_tls(const struct listener *l);

#endif

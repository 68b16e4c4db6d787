/*
 * listener.h - the device-facing sockets ([downstream] listen and
 * plain_listen), and the accept-time check of the limits.
 */
#ifndef CB_LISTENER_H
#define CB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "config.h"
#include "parse.h"

struct listener;

/* Called for every accepted connection that admit let in. */
typedef void (*listener_accept_cb)(void *arg, int fd,
    const struct sockaddr *peer, int peer_len, bool tls);
/* Asked at every accept, before any TLS work: may this peer connect now
 * (the limits, docs/configuration.md)? A refused connection is closed at
 * once; the callee logs and counts the refusal. */
typedef bool (*listener_admit_cb)(void *arg, const struct sockaddr *peer,
    const char *listener);

/* Binds addr; on failure returns NULL with why filled. */
struct listener *listener_new(struct event_base *base,
    const struct parse_hostport *addr, bool tls, listener_accept_cb on_accept,
    listener_admit_cb admit, void *arg, char *why, size_t why_len);
void listener_free(struct listener *l);

/*
 * The listeners of one configuration: [downstream] listen (TLS) and
 * plain_listen. On reload a new set is built from the new configuration,
 * taking over the old set's sockets for every address that did not
 * change, so no device is refused on those while the set changes.
 */
struct listener_set;

/* Binds what cfg asks for, reusing listeners of old (which may be NULL)
 * that match. On failure returns NULL with why filled, and old is intact;
 * on success the reused listeners belong to the new set and whatever is
 * left in old is the caller's to free with listener_set_free. */
struct listener_set *listener_set_bind(struct event_base *base,
    const struct cfg_listen *tls, const struct cfg_listen *plain,
    struct listener_set *old, listener_accept_cb on_accept,
    listener_admit_cb admit, void *arg, char *why, size_t why_len);
void listener_set_free(struct listener_set *set);
size_t listener_set_count(const struct listener_set *set);
struct listener *listener_set_at(const struct listener_set *set, size_t i);

/* "127.0.0.1:8883" as configured. */
const char *listener_name(const struct listener *l);
bool listener_tls(const struct listener *l);

#endif

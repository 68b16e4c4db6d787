/*
 * notify.h - systemd's service notification protocol, spoken directly
 * (no libsystemd): one datagram per state change to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace),
 * and a watchdog ping every half $WATCHDOG_USEC from the event loop, so
 * that a loop that hangs stops pinging and systemd restarts the daemon
 * (docs/install.md, "systemd"). Without $NOTIFY_SOCKET every call does
 * nothing.
 */
#ifndef CB_NOTIFY_H
#define CB_NOTIFY_H

#include <event2/event.h>

struct notify;

/* Reads the environment and connects the socket (before privileges are
 * dropped: the socket may not be writable afterwards). NULL only when out
 * of memory; problems with the socket are logged once and the daemon
 * runs without notifications. */
struct notify *notify_new(struct event_base *base);
void notify_free(struct notify *n);

/* Sends state, newline-separated assignments ("READY=1\nSTATUS=..."). */
void notify_send(struct notify *n, const char *state);
/* RELOADING=1 with the MONOTONIC_USEC systemd 253 asks for, then the
 * caller's READY=1 when the reload is over (whether it worked or not:
 * the daemon serves either way). */
void notify_reloading(struct notify *n);

#endif

/*
 * listener.c - binding and accepting (see listener.h).
 *
 * A refused connection (a limit) is closed at accept, before any TLS work:
 * it must cost the gateway as little as possible. Running out of
 * descriptors pauses accepting for a moment instead of spinning on EMFILE.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "listener.h"
#include "log.h"
#include "util.h"

#define LISTENER_BACKLOG 1024
#define LISTENER_PAUSE_MS 1000

struct listener {
	struct parse_hostport addr;
	struct evconnlistener *evl;
	struct event *resume;
	char name[300];
	bool tls;
	listener_accept_cb on_accept;
	listener_admit_cb admit;
	void *arg;
};

static void
listener_accepted(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;

	(void)evl;
	if (!l->admit(l->arg, sa, l->name)) {
		close(fd);
		return;
	}
	l->on_accept(l->arg, fd, sa, salen, l->tls);
}

static void
listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->evl);
}

static void
listener_error(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {LISTENER_PAUSE_MS / 1000, 0};

	(void)evl;
	log_msg(LOG_ERROR, "accept-failed", "listener %s: %s; pausing accept "
	    "for %d ms", l->name, evutil_socket_error_to_string(err),
	    LISTENER_PAUSE_MS);
	evconnlistener_disable(l->evl);
	evtimer_add(l->resume, &tv);
}

struct listener *
listener_new(struct event_base *base, const struct parse_hostport *addr,
    bool tls, listener_accept_cb on_accept, listener_admit_cb admit,
    void *arg, char *why, size_t why_len)
{
	struct evutil_addrinfo hints, *ai = NULL;
	struct listener *l;
	int err;

	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	l->addr = *addr;
	snprintf(l->name, sizeof(l->name), strchr(addr->host, ':')
	    ? "[%s]:%s" : "%s:%s", addr->host, addr->port);
	l->tls = tls;
	l->on_accept = on_accept;
	l->admit = admit;
	l->arg = arg;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
	err = evutil_getaddrinfo(addr->host, addr->port, &hints, &ai);
	if (err != 0) {
		snprintf(why, why_len, "cannot resolve listen address %s: %s",
		    l->name, evutil_gai_strerror(err));
		free(l);
		return NULL;
	}
	l->evl = evconnlistener_new_bind(base, listener_accepted, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    LISTENER_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	l->resume = evtimer_new(base, listener_resume, l);
	if (l->evl == NULL || l->resume == NULL) {
		snprintf(why, why_len, "cannot listen on %s: %s", l->name,
		    strerror(errno));
		listener_free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->evl, listener_error);
	return l;
}

void
listener_free(struct listener *l)
{
	if (l == NULL) {
		return;
	}
	if (l->evl != NULL) {
		evconnlistener_free(l->evl);
	}
	if (l->resume != NULL) {
		event_free(l->resume);
	}
	free(l);
}

const char *
listener_name(const struct listener *l)
{
	return l->name;
}

bool
listener_tls(const struct listener *l)
{
	return l->tls;
}

#define LISTENER_SET_MAX 32

struct listener_set {
	struct listener *items[LISTENER_SET_MAX];
	bool reused[LISTENER_SET_MAX];   /* taken over from the old set */
	size_t from[LISTENER_SET_MAX];   /* index in the old set when reused */
	bool was_tls[LISTENER_SET_MAX];  /* what a reused listener served */
	size_t count;
};

/* Same address: the socket is taken over whatever it serves now, so an
 * address moving between listen and plain_listen is not rebound. */
static bool
listener_same(const struct listener *l, const struct parse_hostport *a)
{
	return l != NULL && strcmp(l->addr.host, a->host) == 0
	    && strcmp(l->addr.port, a->port) == 0;
}

/* Gives reused listeners back to old and frees the new ones: a failed
 * reload leaves the running set as it was. */
static void
listener_set_undo(struct listener_set *set, struct listener_set *old)
{
	for (size_t i = 0; i < set->count; i++) {
		if (set->reused[i]) {
			set->items[i]->tls = set->was_tls[i];
			old->items[set->from[i]] = set->items[i];
		} else {
			listener_free(set->items[i]);
		}
	}
	free(set);
}

static bool
listener_set_add(struct listener_set *set, struct event_base *base,
    const struct parse_hostport *a, bool tls, struct listener_set *old,
    listener_accept_cb on_accept, listener_admit_cb admit, void *arg,
    char *why, size_t why_len)
{
	struct listener *l = NULL;
	size_t i;

	if (set->count == LISTENER_SET_MAX) {
		snprintf(why, why_len, "more than %d listen addresses",
		    LISTENER_SET_MAX);
		return false;
	}
	for (i = 0; old != NULL && i < old->count; i++) {
		if (listener_same(old->items[i], a)) {
			l = old->items[i];
			set->was_tls[set->count] = l->tls;
			l->tls = tls;
			old->items[i] = NULL;
			set->reused[set->count] = true;
			set->from[set->count] = i;
			break;
		}
	}
	if (l == NULL) {
		l = listener_new(base, a, tls, on_accept, admit, arg, why,
		    why_len);
		if (l == NULL) {
			return false;
		}
	}
	set->items[set->count++] = l;
	return true;
}

struct listener_set *
listener_set_bind(struct event_base *base, const struct cfg_listen *tls,
    const struct cfg_listen *plain, struct listener_set *old,
    listener_accept_cb on_accept, listener_admit_cb admit, void *arg,
    char *why, size_t why_len)
{
	struct listener_set *set = calloc(1, sizeof(*set));

	if (set == NULL) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < tls->count; i++) {
		if (!listener_set_add(set, base, &tls->addrs[i], true, old,
		    on_accept, admit, arg, why, why_len)) {
			goto fail;
		}
	}
	for (size_t i = 0; i < plain->count; i++) {
		if (!listener_set_add(set, base, &plain->addrs[i], false, old,
		    on_accept, admit, arg, why, why_len)) {
			goto fail;
		}
	}
	return set;
fail:
	if (old != NULL) {
		listener_set_undo(set, old);
	} else {
		listener_set_free(set);
	}
	return NULL;
}

void
listener_set_free(struct listener_set *set)
{
	if (set == NULL) {
		return;
	}
	for (size_t i = 0; i < set->count; i++) {
		listener_free(set->items[i]);
	}
	free(set);
}

size_t
listener_set_count(const struct listener_set *set)
{
	return set->count;
}

struct listener *
listener_set_at(const struct listener_set *set, size_t i)
{
	return set->items[i];
}

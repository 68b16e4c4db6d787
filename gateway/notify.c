/*
 * notify.c - systemd notifications and watchdog (see notify.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

struct notify {
	int fd;                  /* -1: no notifications */
	struct event *watchdog;  /* NULL without WATCHDOG_USEC */
};

static int
notify_connect(const char *name)
{
	struct sockaddr_un sa;
	size_t len = strlen(name);
	socklen_t salen;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (len < 2 || len >= sizeof(sa.sun_path)
	    || (name[0] != '/' && name[0] != '@')) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@') {
		sa.sun_path[0] = '\0'; /* the abstract namespace */
	}
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len
	    + (name[0] == '/' ? 1 : 0));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, salen) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void
notify_send(struct notify *n, const char *state)
{
	if (n == NULL || n->fd < 0) {
		return;
	}
	/* A full or gone receiver must never stall the loop: the datagram
	 * is simply lost (systemd then times out, which it reports). */
	(void)send(n->fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void
notify_reloading(struct notify *n)
{
	struct timespec ts;
	char msg[80];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL
	    + (unsigned long long)ts.tv_nsec / 1000ULL);
	notify_send(n, msg);
}

static void
notify_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify_send(arg, "WATCHDOG=1");
}

/* The watchdog interval asked for, in microseconds; 0 when none is asked
 * of this process (WATCHDOG_PID names another one). */
static unsigned long long
notify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (usec == NULL || *usec == '\0') {
		return 0;
	}
	if (pid != NULL && *pid != '\0') {
		long p = strtol(pid, &end, 10);

		if (*end != '\0' || p != (long)getpid()) {
			return 0;
		}
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	return errno == 0 && *end == '\0' ? v : 0;
}

struct notify *
notify_new(struct event_base *base)
{
	struct notify *n = calloc(1, sizeof(*n));
	const char *name = getenv("NOTIFY_SOCKET");
	unsigned long long usec;

	if (n == NULL) {
		return NULL;
	}
	n->fd = -1;
	if (name == NULL || *name == '\0') {
		return n;
	}
	n->fd = notify_connect(name);
	if (n->fd < 0) {
		log_msg(LOG_WARN, "notify-failed", "NOTIFY_SOCKET=%s: %s; "
		    "running without systemd notifications", name,
		    strerror(errno));
		return n;
	}
	usec = notify_watchdog_usec();
	if (usec > 0) {
		/* Half the interval, as sd_watchdog_enabled(3) advises; never
		 * more often than every 10 ms, whatever is asked. */
		unsigned long long half = usec / 2 < 10000 ? 10000 : usec / 2;
		struct timeval every = {
			.tv_sec = (time_t)(half / 1000000ULL),
			.tv_usec = (suseconds_t)(half % 1000000ULL),
		};

		n->watchdog = event_new(base, -1, EV_PERSIST,
		    notify_on_watchdog, n);
		if (n->watchdog == NULL || event_add(n->watchdog, &every) != 0) {
			notify_free(n);
			return NULL;
		}
	}
	return n;
}

void
notify_free(struct notify *n)
{
	if (n == NULL) {
		return;
	}
	if (n->watchdog != NULL) {
		event_free(n->watchdog);
	}
	if (n->fd >= 0) {
		close(n->fd);
	}
	free(n);
}

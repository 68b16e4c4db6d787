/*
 * diag_net.c - bounded network I/O (see diag_net.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "clock.h"
#include "diag_net.h"
#include "diag_text.h"

int64_t
diag_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
diag_wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		left = deadline_ms - clock_mono_ms();
		if (left <= 0) {
			return 0;
		}
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0) {
			return 1;
		}
		if (n < 0 && errno != EINTR) {
			return -1;
		}
	}
}

void
diag_addr_text(const struct sockaddr *sa, socklen_t len, char *out,
    size_t cap)
{
	char host[INET6_ADDRSTRLEN + 16], port[8];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, cap, "(unprintable address)");
		return;
	}
	snprintf(out, cap, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
	    host, port);
}

int
diag_tcp_connect(const struct addrinfo *a, int64_t timeout_ms, int *err)
{
	socklen_t len = sizeof(*err);
	int fd, w, fl;

	*err = 0;
	fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0
	    || (fl = fcntl(fd, F_GETFL)) < 0
	    || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		*err = errno;
		close(fd);
		return -1;
	}
	if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
		return fd;
	}
	if (errno != EINPROGRESS) {
		*err = errno;
		close(fd);
		return -1;
	}
	w = diag_wait_fd(fd, POLLOUT, clock_mono_ms() + timeout_ms);
	if (w <= 0) {
		*err = w == 0 ? 0 : errno;
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len) != 0) {
		*err = errno;
	}
	if (*err != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void
diag_explain_resolve(int rc, int sys_err, const char *host, char *out,
    size_t cap)
{
	char esc[600];

	diag_escape(host, esc, sizeof(esc));
	if (rc == EAI_AGAIN) {
		snprintf(out, cap, "DNS gave no answer for \"%s\" (%s): check "
		    "this machine's DNS servers (/etc/resolv.conf) and its "
		    "network", esc, gai_strerror(rc));
		return;
	}
	snprintf(out, cap, "the name \"%s\" does not resolve (%s): check its "
	    "spelling, and this machine's DNS (/etc/resolv.conf, /etc/hosts)",
	    esc, rc == EAI_SYSTEM ? strerror(sys_err) : gai_strerror(rc));
}

void
diag_explain_tcp(int err, const char *target, const char *waited,
    char *out, size_t cap)
{
	char esc[600];

	diag_escape(target, esc, sizeof(esc));
	if (err == 0 || err == ETIMEDOUT) {
		snprintf(out, cap, "no answer from %s within %s (TCP connect): "
		    "the host is down, or a firewall drops the packets; check "
		    "the address and the network", esc, waited);
	} else if (err == ECONNREFUSED) {
		snprintf(out, cap, "nothing listens on %s (connection "
		    "refused): check the port, and that the broker or "
		    "certbridge runs there (certbridge: [downstream] listen)",
		    esc);
	} else if (err == ENETUNREACH || err == EHOSTUNREACH) {
		snprintf(out, cap, "%s cannot be reached (%s): check the "
		    "address, this machine's routes and any firewall on the "
		    "way", esc, strerror(err));
	} else {
		snprintf(out, cap, "cannot connect to %s (%s): check the "
		    "address and the network", esc, strerror(err));
	}
}

/* After a wolfSSL call returned rc: OK when it succeeded (rc > 0), else
 * waits for what wolfSSL wants and returns -1 to retry, or the outcome. */
static int
diag_tls_step(WOLFSSL *ssl, int fd, int rc, int64_t deadline_ms, int *err)
{
	int e, w;

	if (rc > 0) {
		return DIAG_IO_OK;
	}
	e = wolfSSL_get_error(ssl, rc);
	if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
		*err = e;
		return DIAG_IO_ERR;
	}
	w = diag_wait_fd(fd, e == WOLFSSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
	    deadline_ms);
	if (w < 0) {
		*err = WOLFSSL_ERROR_SYSCALL;
		return DIAG_IO_ERR;
	}
	return w == 0 ? DIAG_IO_TIMEOUT : -1;
}

enum diag_io
diag_tls_connect(WOLFSSL *ssl, int fd, int64_t deadline_ms, int *err)
{
	int r;

	while ((r = diag_tls_step(ssl, fd, wolfSSL_connect(ssl), deadline_ms,
	    err)) < 0) {
		continue;
	}
	return (enum diag_io)r;
}

enum diag_io
diag_tls_write(WOLFSSL *ssl, int fd, const void *buf, int len,
    int64_t deadline_ms, int *err)
{
	int r;

	while ((r = diag_tls_step(ssl, fd, wolfSSL_write(ssl, buf, len),
	    deadline_ms, err)) < 0) {
		continue;
	}
	return (enum diag_io)r;
}

enum diag_io
diag_tls_read(WOLFSSL *ssl, int fd, void *buf, int cap, int *got,
    int64_t deadline_ms, int *err)
{
	int r, n;

	*got = 0;
	for (;;) {
		n = wolfSSL_read(ssl, buf, cap);
		r = diag_tls_step(ssl, fd, n, deadline_ms, err);
		if (r == DIAG_IO_OK) {
			*got = n;
		}
		if (r >= 0) {
			return (enum diag_io)r;
		}
	}
}

int
diag_tls_alert_received(WOLFSSL *ssl)
{
	WOLFSSL_ALERT_HISTORY h;

	if (wolfSSL_get_alert_history(ssl, &h) == WOLFSSL_SUCCESS
	    && h.last_rx.code > 0) {
		return h.last_rx.code;
	}
	return -1;
}

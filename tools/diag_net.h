/*
 * diag_net.h - bounded network I/O for certbridge-diag: a tool may block,
 * but never without a deadline. Sockets are non-blocking and every wait is
 * a poll() against a monotonic deadline (clock_mono_ms milliseconds), for
 * TCP connects and for wolfSSL's handshake, reads and writes alike.
 */
#ifndef CB_DIAG_NET_H
#define CB_DIAG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netdb.h>
#include <sys/socket.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* Monotonic microseconds, for measuring how long a step took. */
int64_t diag_now_us(void);

/* Waits until fd is ready for events (POLLIN, POLLOUT) or the deadline
 * passes: 1 ready, 0 timed out, -1 poll failed (errno). */
int diag_wait_fd(int fd, short events, int64_t deadline_ms);

/* "127.0.0.1:8883" or "[::1]:8883", numeric. */
void diag_addr_text(const struct sockaddr *sa, socklen_t len, char *out,
    size_t cap);

/* One non-blocking connect to a, waiting at most timeout_ms: the connected
 * socket (non-blocking, close-on-exec), or -1 with *err set to the errno
 * (0 when the time ran out). */
int diag_tcp_connect(const struct addrinfo *a, int64_t timeout_ms, int *err);

/* The sentence for a failed getaddrinfo(host) that returned rc (errno
 * sys_err for EAI_SYSTEM). host is escaped here. */
void diag_explain_resolve(int rc, int sys_err, const char *host, char *out,
    size_t cap);

/* The sentence for a failed TCP connect to target: err is the last errno
 * seen (0: every address timed out, after the time in words "waited"). */
void diag_explain_tcp(int err, const char *target, const char *waited,
    char *out, size_t cap);

/* The outcome of a bounded TLS operation. */
enum diag_io {
	DIAG_IO_OK = 0,
	DIAG_IO_TIMEOUT,   /* the deadline passed first */
	DIAG_IO_ERR,       /* *err: wolfSSL_get_error()'s code */
};

/* Runs the client handshake on ssl (set up with fd, non-blocking). */
enum diag_io diag_tls_connect(WOLFSSL *ssl, int fd, int64_t deadline_ms,
    int *err);

/* Writes all len bytes (one wolfSSL_write, retried with the same length
 * as wolfSSL requires after WANT_WRITE). */
enum diag_io diag_tls_write(WOLFSSL *ssl, int fd, const void *buf, int len,
    int64_t deadline_ms, int *err);

/* Reads at least one byte, at most cap; *got is the count on OK. The
 * peer's close is an error (WOLFSSL_ERROR_ZERO_RETURN for close_notify). */
enum diag_io diag_tls_read(WOLFSSL *ssl, int fd, void *buf, int cap,
    int *got, int64_t deadline_ms, int *err);

/* The last TLS alert the peer sent (its description code), or -1. */
int diag_tls_alert_received(WOLFSSL *ssl);

#endif

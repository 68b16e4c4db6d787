/*
 * certbridge-diag - connect like a device (to certbridge) or like the
 * gateway (to the broker) would, and say at which step it fails and what
 * to do about it (docs/troubleshooting.md, "Walk through one connection:
 * certbridge-diag").
 *
 *   certbridge-diag HOST:PORT [--ca FILE] [--cert FILE --key FILE]
 *       [--sni NAME] [--mqtt-version 3.1.1|5|3.1] [--client-id ID]
 *       [--username U [--password P]] [--timeout 10s]
 *
 * Steps: resolve, TCP connect, TLS handshake (always verified), MQTT
 * CONNECT and CONNACK, then DISCONNECT. Each prints what it saw; the first
 * failure ends the run with one sentence ("FAILED (step N, name): ...")
 * and an exit code of its own (see usage()). Blocking is fine in a tool,
 * but every wait is bounded: sockets are non-blocking and each wait is a
 * poll() against the step's deadline (getaddrinfo excepted: it waits as
 * long as the resolver's own timeouts).
 *
 * The server's name and chain are checked by the gateway's own code
 * (common/tlsclient.h), so what the tool reports is what certbridge would
 * meet: a DNS name is checked by wolfSSL during the handshake, an address
 * on the verified leaf right after it, because wolfSSL 5.5.4 ignores
 * X509_VERIFY_PARAM_set1_ip_asc when a verify callback is installed.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "clock.h"
#include "diag_mqtt.h"
#include "diag_net.h"
#include "diag_text.h"
#include "diag_tls.h"
#include "mqtt.h"
#include "parse.h"
#include "tlsclient.h"
#include "util.h"
#include "version.h"
#include "x509.h"

#define PROG "certbridge-diag"
#define SYSTEM_ROOTS "/etc/ssl/certs/ca-certificates.crt"
#define KEEPALIVE 30
#define CONNACK_MAX 65536u  /* a CONNACK with properties is far smaller */
#define ESC 600             /* an escaped name */
#define SETTLE_MIN_MS 200   /* see tls13_settle() */

enum diag_exit {
	EXIT_OK = 0,
	EXIT_INTERNAL = 1,  /* out of memory, wolfSSL would not start */
	EXIT_USAGE = 2,     /* arguments, or a local file that cannot be used */
	EXIT_NET = 3,       /* DNS, TCP refused or unreachable */
	EXIT_TLS = 4,       /* handshake, verification, client cert refused */
	EXIT_MQTT = 5,      /* CONNACK refusal, no or bad CONNACK */
	EXIT_TIMEOUT = 6,   /* a step did not finish within --timeout */
};

enum step {
	STEP_FILES = 0,
	STEP_RESOLVE,
	STEP_TCP,
	STEP_TLS,
	STEP_MQTT,
};

static const char *const step_names[] = {
	[STEP_FILES] = "files", [STEP_RESOLVE] = "resolve",
	[STEP_TCP] = "tcp", [STEP_TLS] = "tls", [STEP_MQTT] = "mqtt",
};

struct opts {
	const char *target;
	struct parse_hostport hp;
	const char *ca, *cert, *key, *sni;
	const char *client_id, *username, *password;
	uint8_t version;
	int64_t timeout_ms;
};

struct run {
	const struct opts *o;
	struct x509_list cas;      /* --ca, or the system's roots */
	struct x509_list mine;     /* --cert (leaf first) */
	struct addrinfo *ai;
	int fd;
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;
	struct tlsclient_seen peer;
	const char *name;          /* checked in the server's certificate */
	bool name_is_ip;
	const char *client_id;     /* --client-id, or default_id */
	char default_id[40];
	int64_t connect_us;        /* how long the TCP connect took */
	int exit_code;
};

/* ------------------------------------------------------------ usage */

#define USAGE_LINE "usage: " PROG " HOST:PORT [--ca FILE] [--cert FILE " \
    "--key FILE] [--sni NAME]\n" \
    "       [--mqtt-version 3.1.1|5|3.1] [--client-id ID] [--username U " \
    "[--password P]]\n       [--timeout 10s]\n"

static void
usage(FILE *out)
{
	fprintf(out, USAGE_LINE
	    "       " PROG " -h | -V\n"
	    "Connects to HOST:PORT like a device (to certbridge) or like the "
	    "gateway (to the\nbroker) and shows each step: resolve, TCP "
	    "connect, TLS handshake with the\nserver's chain, MQTT CONNECT "
	    "and CONNACK. A failure ends with one sentence\nsaying what is "
	    "wrong and what to do.\n"
	    "  --ca FILE        roots the server's chain must end in (default "
	    SYSTEM_ROOTS ");\n"
	    "                   the chain is always verified\n"
	    "  --cert FILE      client certificate (PEM, leaf first), with "
	    "--key FILE\n"
	    "  --sni NAME       name sent as SNI and checked in the server's "
	    "certificate\n"
	    "                   (default HOST; an address is checked against "
	    "IP SANs)\n"
	    "  --mqtt-version   3.1.1 (default), 5 or 3.1\n"
	    "  --client-id ID   default certbridge-diag-<pid>\n"
	    "  --username U, --password P   sent in the CONNECT\n"
	    "  --timeout DUR    limit of each step (default 10s)\n"
	    "Exit: 0 every step passed (CONNACK 0), 1 internal error, 2 usage "
	    "or a local\n      file (--ca, --cert, --key), 3 DNS or TCP "
	    "(refused, unreachable),\n      4 TLS (verification, name, "
	    "client certificate refused), 5 MQTT (CONNECT\n      refused or "
	    "no valid CONNACK), 6 timeout (at any step).\n");
}

/* A usage error: "PROG: ARG: MSG" (ARG escaped, when given), the
 * synopsis, and exit 2. */
static int
usage_error(const char *arg, const char *msg)
{
	char esc[ESC];

	if (arg != NULL) {
		fprintf(stderr, PROG ": %s: %s\n", diag_escape(arg, esc,
		    sizeof(esc)), msg);
	} else {
		fprintf(stderr, PROG ": %s\n", msg);
	}
	fprintf(stderr, USAGE_LINE "(" PROG " -h for help)\n");
	return -1;
}

/* 0: run; 1: done (help or version printed); -1: usage error. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const char *const names[] = {
		"--ca", "--cert", "--key", "--sni", "--client-id",
		"--username", "--password", "--mqtt-version", "--timeout",
	};
	const char **dst[] = {
		&o->ca, &o->cert, &o->key, &o->sni, &o->client_id,
		&o->username, &o->password,
	};
	char why[PARSE_WHY_LEN];

	memset(o, 0, sizeof(*o));
	o->version = MQTT_V311;
	o->timeout_ms = 10000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		size_t k, n;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf(PROG " %s\n", CERTBRIDGE_VERSION);
			return 1;
		}
		if (a[0] != '-') {
			if (o->target != NULL) {
				return usage_error(a, "unexpected "
				    "argument (one HOST:PORT only)");
			}
			o->target = a;
			continue;
		}
		for (k = 0; k < CB_ARRAY_SIZE(names); k++) {
			n = strlen(names[k]);
			if (strcmp(a, names[k]) == 0) {
				if (i + 1 >= argc) {
					return usage_error(a, "needs a value");
				}
				v = argv[++i];
				break;
			}
			if (strncmp(a, names[k], n) == 0 && a[n] == '=') {
				v = a + n + 1;
				break;
			}
		}
		if (k == CB_ARRAY_SIZE(names)) {
			return usage_error(a, "unknown option");
		}
		if (k < CB_ARRAY_SIZE(dst)) {
			*dst[k] = v;
		} else if (strcmp(names[k], "--mqtt-version") == 0) {
			if (!diag_mqtt_version_parse(v, &o->version)) {
				return usage_error(v, "--mqtt-version "
				    "expects 3.1.1, 5 or 3.1");
			}
		} else if (!parse_duration_ms(v, &o->timeout_ms, why)
		    || o->timeout_ms <= 0) {
			return usage_error(v, "--timeout expects a "
			    "duration above zero such as 500ms, 10s or 1m");
		}
	}
	if (o->target == NULL) {
		return usage_error(NULL, "HOST:PORT is required");
	}
	if (!parse_hostport(o->target, &o->hp, why)) {
		return usage_error(o->target, why);
	}
	if (o->sni != NULL && o->sni[0] == '\0') {
		return usage_error(NULL, "--sni needs a name or an address");
	}
	if ((o->cert == NULL) != (o->key == NULL)) {
		return usage_error(NULL, "--cert and --key go together");
	}
	if (o->password != NULL && o->username == NULL
	    && o->version != MQTT_V5) {
		return usage_error(NULL, "--password needs --username "
		    "before MQTT 5");
	}
	if ((o->client_id && strlen(o->client_id) > 65535)
	    || (o->username && strlen(o->username) > 65535)
	    || (o->password && strlen(o->password) > 65535)) {
		return usage_error(NULL, "--client-id, --username and "
		    "--password are at most 65535 bytes long in MQTT");
	}
	return 0;
}

/* ------------------------------------------------------------ output */

static const char *
took(int64_t since_us, char *buf, size_t cap)
{
	diag_duration(diag_now_us() - since_us, buf, cap);
	return buf;
}

static const char *
timeout_text(const struct run *r, char *buf, size_t cap)
{
	parse_format_duration(r->o->timeout_ms, buf, cap);
	return buf;
}

static void
step_head(enum step s, const char *what)
{
	printf("%d. %s\n", (int)s, what);
	fflush(stdout);
}

/* The end of the run: one sentence, and the exit code. Returns false so
 * that step functions can `return fail(...)`. */
static bool CB_PRINTF(4, 5)
fail(struct run *r, enum step s, int code, const char *fmt, ...)
{
	char sentence[DIAG_WHY_LEN + 512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sentence, sizeof(sentence), fmt, ap);
	va_end(ap);
	printf("FAILED (step %d, %s): %s\n", (int)s, step_names[s], sentence);
	fflush(stdout);
	r->exit_code = code;
	return false;
}

/* ------------------------------------------------------------ files */

static bool
step_files(struct run *r)
{
	const struct opts *o = r->o;
	const char *ca = o->ca != NULL ? o->ca : SYSTEM_ROOTS;
	char why[X509_WHY_LEN], esc[ESC], name[X509_NAME_LEN];
	int64_t na;

	/* The list only serves the explanations; a system bundle that
	 * this parser dislikes is still wolfSSL's to load. */
	if (!x509_load_file(ca, &r->cas, why) && o->ca != NULL) {
		return fail(r, STEP_FILES, EXIT_USAGE, "--ca cannot be used as "
		    "trusted roots: %s", diag_escape(why, esc, sizeof(esc)));
	}
	printf("   trust    %s%s (%zu certificate%s)\n", o->ca ? "--ca "
	    : "system roots ", diag_escape(ca, esc, sizeof(esc)),
	    r->cas.count, r->cas.count == 1 ? "" : "s");
	if (o->cert == NULL) {
		printf("   client   no client certificate (--cert)\n");
		return true;
	}
	if (!x509_load_file(o->cert, &r->mine, why)) {
		return fail(r, STEP_FILES, EXIT_USAGE, "--cert cannot be used: "
		    "%s", diag_escape(why, esc, sizeof(esc)));
	}
	if (!x509_key_matches(r->mine.certs[0], o->key, why)) {
		return fail(r, STEP_FILES, EXIT_USAGE, "--key cannot be used "
		    "with --cert: %s", diag_escape(why, esc, sizeof(esc)));
	}
	x509_subject(r->mine.certs[0], name);
	printf("   client   %s", diag_escape(name, esc, sizeof(esc)));
	x509_issuer(r->mine.certs[0], name);
	printf(", issued by %s", diag_escape(name, esc, sizeof(esc)));
	if (x509_not_after(r->mine.certs[0], &na) && na < clock_wall_s()) {
		printf(" (EXPIRED: servers will refuse it)");
	}
	printf("\n");
	return true;
}

/* ------------------------------------------------------------ resolve */

static bool
step_resolve(struct run *r)
{
	const struct opts *o = r->o;
	struct addrinfo hints;
	char esc[ESC], addr[80], t[32], why[DIAG_WHY_LEN];
	int64_t t0 = diag_now_us();
	int rc;

	step_head(STEP_RESOLVE, "resolve");
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	diag_escape(o->hp.host, esc, sizeof(esc));
	rc = getaddrinfo(o->hp.host, o->hp.port, &hints, &r->ai);
	if (rc != 0) {
		r->ai = NULL;
		diag_explain_resolve(rc, errno, o->hp.host, why, sizeof(why));
		return fail(r, STEP_RESOLVE, EXIT_NET, "%s", why);
	}
	printf("   %s ->", esc);
	for (struct addrinfo *a = r->ai; a != NULL; a = a->ai_next) {
		diag_addr_text(a->ai_addr, a->ai_addrlen, addr, sizeof(addr));
		printf(" %s", addr);
	}
	printf(" (%s)\n", took(t0, t, sizeof(t)));
	return true;
}

/* ------------------------------------------------------------ TCP */

static bool
step_tcp(struct run *r)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	char addr[80], mine[80] = "?", t[32], why[DIAG_WHY_LEN];
	int err = 0, last = 0;
	int64_t t0;

	step_head(STEP_TCP, "TCP connect");
	for (struct addrinfo *a = r->ai; a != NULL; a = a->ai_next) {
		diag_addr_text(a->ai_addr, a->ai_addrlen, addr, sizeof(addr));
		t0 = diag_now_us();
		r->fd = diag_tcp_connect(a, r->o->timeout_ms, &err);
		if (r->fd >= 0) {
			r->connect_us = diag_now_us() - t0;
			if (getsockname(r->fd, (struct sockaddr *)&local,
			    &len) == 0) {
				diag_addr_text((struct sockaddr *)&local, len,
				    mine, sizeof(mine));
			}
			printf("   connected %s -> %s in %s\n", mine, addr,
			    took(t0, t, sizeof(t)));
			return true;
		}
		last = err != 0 ? err : last;
		printf("   %s: %s (%s)\n", addr, err == 0 ? "no answer"
		    : strerror(err), took(t0, t, sizeof(t)));
	}
	diag_explain_tcp(last, r->o->target, timeout_text(r, t, sizeof(t)),
	    why, sizeof(why));
	return fail(r, STEP_TCP, last == 0 || last == ETIMEDOUT ? EXIT_TIMEOUT
	    : EXIT_NET, "%s", why);
}

/* ------------------------------------------------------------ TLS */

static bool
tls_setup(struct run *r)
{
	const struct opts *o = r->o;
	char why[DIAG_WHY_LEN];

	r->ctx = diag_tls_ctx_new(o->ca != NULL ? o->ca : SYSTEM_ROOTS,
	    o->cert, o->key, why, sizeof(why));
	if (r->ctx == NULL) {
		return fail(r, STEP_FILES, EXIT_USAGE, "%s", why);
	}
	r->ssl = wolfSSL_new(r->ctx);
	if (r->ssl == NULL || !tlsclient_attach(r->ssl, &r->peer, true)
	    || wolfSSL_set_fd(r->ssl, r->fd) != WOLFSSL_SUCCESS) {
		return fail(r, STEP_TLS, EXIT_INTERNAL, "out of memory");
	}
	wolfSSL_set_using_nonblock(r->ssl, 1);
	r->name = o->sni != NULL ? o->sni : o->hp.host;
	r->name_is_ip = tlsclient_is_ip(r->name);
	if (!tlsclient_expect_name(r->ssl, r->name)) {
		return fail(r, STEP_TLS, EXIT_INTERNAL, "cannot set the "
		    "server name to check");
	}
	return true;
}

static WOLFSSL_X509 *
our_cert(const struct run *r)
{
	return r->mine.count > 0 ? r->mine.certs[0] : NULL;
}

/* The connection ended after the handshake, before a CONNACK: with an
 * alert, that is a TLS 1.3 server refusing our certificate (it judges it
 * after its Finished); without one, the MQTT step failed. */
static bool
ended(struct run *r, int e)
{
	int alert = diag_tls_alert_received(r->ssl);
	const char *how = e == WOLFSSL_ERROR_ZERO_RETURN ? "close_notify"
	    : "no TLS alert";
	char why[DIAG_WHY_LEN];

	if (alert > 0) {
		diag_explain_alert(alert, true, our_cert(r), r->o->cert,
		    r->name, why, sizeof(why));
		return fail(r, STEP_TLS, EXIT_TLS, "%s", why);
	}
	if (our_cert(r) == NULL && strcmp(wolfSSL_get_version(r->ssl),
	    "TLSv1.3") == 0) {
		return fail(r, STEP_MQTT, EXIT_MQTT, "the server closed the "
		    "connection without a CONNACK (%s) and we sent no client "
		    "certificate: in TLS 1.3 a server that wants one may do "
		    "just that; give --cert FILE --key FILE, or see the "
		    "server's log", how);
	}
	return fail(r, STEP_MQTT, EXIT_MQTT, "the server closed the "
	    "connection without a CONNACK (%s): an MQTT server closes on a "
	    "CONNECT it cannot parse or will not accept; see its log (for "
	    "certbridge: event=session-closed)", how);
}

/*
 * TLS 1.3 finishes the client's handshake before the server has judged
 * the client's certificate; a refusal (an alert, then a close) follows
 * about one round trip later. Reading for a moment now catches it before
 * our CONNECT meets a closed socket (ECONNRESET), which would hide the
 * alert. The wait is twice the TCP connect time, at least SETTLE_MIN_MS.
 */
static bool
tls13_settle(struct run *r)
{
	int64_t wait_ms = r->connect_us / 500;
	uint8_t b;
	int got, err = 0;

	if (strcmp(wolfSSL_get_version(r->ssl), "TLSv1.3") != 0) {
		return true;
	}
	wait_ms = wait_ms < SETTLE_MIN_MS ? SETTLE_MIN_MS : wait_ms;
	wait_ms = wait_ms > r->o->timeout_ms ? r->o->timeout_ms : wait_ms;
	switch (diag_tls_read(r->ssl, r->fd, &b, 1, &got,
	    clock_mono_ms() + wait_ms, &err)) {
	case DIAG_IO_TIMEOUT:
		return true; /* nothing to say: the usual case */
	case DIAG_IO_OK:
		return fail(r, STEP_MQTT, EXIT_MQTT, "the server sent data "
		    "before our CONNECT: an MQTT server speaks only when "
		    "spoken to; is this an MQTT port?");
	default:
		return ended(r, err);
	}
}

static bool
step_tls(struct run *r)
{
	struct diag_trust trust = {
		.ca_path = r->o->ca != NULL ? r->o->ca : SYSTEM_ROOTS,
		.ca_given = r->o->ca != NULL, .cas = &r->cas,
	};
	char esc[ESC], head[ESC + 96], t[32], end[X509_NAME_LEN], ca[ESC];
	char why[DIAG_WHY_LEN];
	int64_t t0;
	int err = 0;

	if (!tls_setup(r)) {
		return false;
	}
	diag_escape(r->name, esc, sizeof(esc));
	snprintf(head, sizeof(head), r->name_is_ip ? "TLS handshake (no SNI "
	    "for an address; %s must be an IP SAN)" : "TLS handshake (SNI %s; "
	    "the name must be in the certificate)", esc);
	step_head(STEP_TLS, head);
	t0 = diag_now_us();
	switch (diag_tls_connect(r->ssl, r->fd, clock_mono_ms()
	    + r->o->timeout_ms, &err)) {
	case DIAG_IO_OK:
		break;
	case DIAG_IO_TIMEOUT:
		diag_peer_print(stdout, &r->peer, clock_wall_s());
		return fail(r, STEP_TLS, EXIT_TIMEOUT, "no TLS handshake within "
		    "%s: the port accepts TCP but the server does not answer "
		    "TLS (a plain MQTT port?), or it is overloaded",
		    timeout_text(r, t, sizeof(t)));
	default:
		diag_peer_print(stdout, &r->peer, clock_wall_s());
		trust.now = clock_wall_s();
		diag_explain_handshake(err, diag_tls_alert_received(r->ssl),
		    &r->peer, &trust, our_cert(r), r->o->cert, r->name, why,
		    sizeof(why));
		return fail(r, STEP_TLS, EXIT_TLS, "%s", why);
	}
	printf("   %s, %s, in %s\n", wolfSSL_get_version(r->ssl),
	    wolfSSL_get_cipher_name(r->ssl), took(t0, t, sizeof(t)));
	diag_peer_print(stdout, &r->peer, clock_wall_s());
	if (!tlsclient_name_ok(r->ssl, r->name)) {
		diag_explain_name(r->peer.certs[0], r->name, why, sizeof(why));
		return fail(r, STEP_TLS, EXIT_TLS, "%s", why);
	}
	diag_peer_chain_end(&r->peer, end);
	printf("   verified: the chain ends in %s, a CA of %s; the "
	    "certificate is valid for %s\n", diag_escape(end, head,
	    sizeof(head)), diag_escape(trust.ca_path, ca, sizeof(ca)), esc);
	fflush(stdout);
	return tls13_settle(r);
}

/* ------------------------------------------------------------ MQTT */

/* Reads one whole CONNACK into buf within the deadline. */
static bool
read_connack(struct run *r, uint8_t *buf, size_t cap, struct mqtt_fixed *fx,
    int64_t dl)
{
	char why[MQTT_WHY_LEN], esc[ESC], e_why[ESC], tmo[32];
	size_t len = 0;
	enum mqtt_rc mrc;
	int got, err = 0;

	for (;;) {
		mrc = len == 0 ? MQTT_NEED_MORE : mqtt_fixed_decode(buf, len,
		    (uint32_t)cap, fx, why);
		if (mrc == MQTT_OK && fx->type != MQTT_CONNACK) {
			return fail(r, STEP_MQTT, EXIT_MQTT, "the server "
			    "answered the CONNECT with %s, not CONNACK: it "
			    "does not speak MQTT as a broker does",
			    mqtt_type_name(fx->type));
		}
		if (mrc == MQTT_OK && len >= fx->header_len + fx->remaining) {
			return true;
		}
		if (mrc == MQTT_MALFORMED || mrc == MQTT_TOO_BIG) {
			diag_escape_bytes(buf, len < 16 ? len : 16, esc,
			    sizeof(esc));
			return fail(r, STEP_MQTT, EXIT_MQTT, "the server's "
			    "answer is not MQTT (%s; first bytes \"%s\"): is "
			    "this an MQTT port?", diag_escape(why, e_why,
			    sizeof(e_why)), esc);
		}
		switch (diag_tls_read(r->ssl, r->fd, buf + len,
		    (int)(cap - len), &got, dl, &err)) {
		case DIAG_IO_OK:
			len += (size_t)got;
			break;
		case DIAG_IO_TIMEOUT:
			return fail(r, STEP_MQTT, EXIT_TIMEOUT, "no CONNACK "
			    "within %s: the server accepted TLS but did not "
			    "answer the CONNECT; for certbridge, the broker "
			    "behind it may be slow (see [upstream] "
			    "connect_timeout and its log)",
			    timeout_text(r, tmo, sizeof(tmo)));
		default:
			return ended(r, err);
		}
	}
}

/* Encodes our CONNECT into a new buffer (*len bytes); NULL if it
 * cannot be. */
static uint8_t *
connect_packet(const struct run *r, size_t *len)
{
	const struct opts *o = r->o;
	struct mqtt_connect c;
	uint8_t *pkt;

	memset(&c, 0, sizeof(c));
	c.version = o->version;
	c.clean_start = true;
	c.keepalive = KEEPALIVE;
	c.client_id.ptr = (const uint8_t *)r->client_id;
	c.client_id.len = (uint16_t)strlen(r->client_id);
	if ((c.has_username = o->username != NULL)) {
		c.username.ptr = (const uint8_t *)o->username;
		c.username.len = (uint16_t)strlen(o->username);
	}
	if ((c.has_password = o->password != NULL)) {
		c.password.ptr = (const uint8_t *)o->password;
		c.password.len = (uint16_t)strlen(o->password);
	}
	*len = mqtt_connect_encode(&c, NULL, 0);
	if (*len == 0 || (pkt = malloc(*len)) == NULL) {
		return NULL;
	}
	if (mqtt_connect_encode(&c, pkt, *len) != *len) {
		free(pkt);
		return NULL;
	}
	return pkt;
}

static bool
refused(struct run *r, uint8_t code)
{
	struct diag_connect_facts facts;
	char why[DIAG_WHY_LEN], cn[X509_NAME_LEN] = "";

	if (our_cert(r) != NULL) {
		x509_cn(our_cert(r), cn);
	}
	facts.client_id = r->client_id;
	facts.cert_cn = cn[0] ? cn : NULL;
	facts.username = r->o->username;
	diag_connack_explain(r->o->version, code, &facts, why, sizeof(why));
	return fail(r, STEP_MQTT, EXIT_MQTT, "%s", why);
}

static bool
step_mqtt(struct run *r)
{
	static uint8_t in[CONNACK_MAX];
	const struct opts *o = r->o;
	struct mqtt_connack ack;
	struct mqtt_fixed fx;
	uint8_t *pkt, disc[4];
	char head[DIAG_WHY_LEN], esc[ESC], t[32];
	int64_t t0, dl;
	size_t len;
	int err = 0;
	enum diag_io io;

	if ((pkt = connect_packet(r, &len)) == NULL) {
		return fail(r, STEP_MQTT, EXIT_INTERNAL, "the CONNECT cannot "
		    "be encoded (out of memory)");
	}
	snprintf(head, sizeof(head), "MQTT %s CONNECT (client id \"%s\", "
	    "clean session, keepalive %d s%s)", diag_mqtt_version_name(o->version),
	    diag_escape(r->client_id, esc, sizeof(esc)), KEEPALIVE,
	    o->username ? ", with user name" : "");
	step_head(STEP_MQTT, head);
	t0 = diag_now_us();
	dl = clock_mono_ms() + o->timeout_ms;
	io = diag_tls_write(r->ssl, r->fd, pkt, (int)len, dl, &err);
	free(pkt);
	if (io == DIAG_IO_TIMEOUT) {
		return fail(r, STEP_MQTT, EXIT_TIMEOUT, "the CONNECT could not "
		    "be sent within %s: the server reads nothing",
		    timeout_text(r, t, sizeof(t)));
	}
	if (io != DIAG_IO_OK) {
		return ended(r, err);
	}
	if (!read_connack(r, in, sizeof(in), &fx, dl)) {
		return false;
	}
	if (mqtt_connack_decode(in + fx.header_len, fx.remaining, o->version,
	    &ack, head) != MQTT_OK) {
		return fail(r, STEP_MQTT, EXIT_MQTT, "the server's CONNACK is "
		    "malformed (%s): it does not speak MQTT %s as asked; try "
		    "another --mqtt-version", diag_escape(head, esc,
		    sizeof(esc)), diag_mqtt_version_name(o->version));
	}
	printf("   CONNACK 0x%02X (%s), session present: %s", ack.code,
	    diag_connack_name(o->version, ack.code), ack.session_present
	    ? "yes" : "no");
	if (ack.has_server_keepalive) {
		printf(", server keepalive %u s", ack.server_keepalive);
	}
	printf(", in %s\n", took(t0, t, sizeof(t)));
	if (ack.code != 0) {
		return refused(r, ack.code);
	}
	/* DISCONNECT: 3.x has no body; 5.0 says "normal" (0x00). */
	if (o->version == MQTT_V5) {
		len = mqtt_disconnect_encode_v5(0x00, disc);
	} else {
		disc[0] = MQTT_DISCONNECT << 4;
		disc[1] = 0;
		len = 2;
	}
	if (diag_tls_write(r->ssl, r->fd, disc, (int)len, dl, &err)
	    == DIAG_IO_OK) {
		printf("   DISCONNECT sent\n");
	}
	wolfSSL_shutdown(r->ssl); /* close_notify, not waiting for theirs */
	return true;
}

/* ------------------------------------------------------------ main */

static int
run(const struct opts *o)
{
	struct run r;
	char esc[ESC];
	bool ok;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.fd = -1;
	r.peer.depth_max = -1;
	r.exit_code = EXIT_OK;
	/* At most 23 characters, as MQTT 3.1 demands of client ids. */
	snprintf(r.default_id, sizeof(r.default_id), "certbridge-diag-%ld",
	    (long)getpid());
	r.client_id = o->client_id != NULL ? o->client_id : r.default_id;
	printf(PROG " %s: %s\n", CERTBRIDGE_VERSION,
	    diag_escape(o->target, esc, sizeof(esc)));
	ok = step_files(&r) && step_resolve(&r) && step_tcp(&r)
	    && step_tls(&r) && step_mqtt(&r);
	if (ok) {
		printf("OK: every step passed (resolve, TCP, TLS, MQTT CONNACK "
		    "0x00)\n");
	}
	wolfSSL_free(r.ssl);
	wolfSSL_CTX_free(r.ctx);
	tlsclient_seen_free(&r.peer);
	if (r.fd >= 0) {
		close(r.fd);
	}
	if (r.ai != NULL) {
		freeaddrinfo(r.ai);
	}
	x509_list_free(&r.cas);
	x509_list_free(&r.mine);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		return EXIT_INTERNAL;
	}
	return r.exit_code;
}

int
main(int argc, char **argv)
{
	struct opts o;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0) {
		return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	/* A server that closes while we write must not kill the report,
	 * and each line is out as soon as it is known (a step may wait). */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		fprintf(stderr, PROG ": wolfSSL failed to initialise\n");
		return EXIT_INTERNAL;
	}
	rc = run(&o);
	wolfSSL_Cleanup();
	return rc;
}

/*
 * watch.c - the broker chain watch and the daily expiry watch (see
 * watch.h).
 */
#include <stdlib.h>
#include <string.h>

#include "certinv.h"
#include "certtime.h"
#include "clock.h"
#include "log.h"
#include "parse.h"
#include "util.h"
#include "watch.h"


struct watch_der {
	unsigned char *data;
	int len;
};

struct watch {
	struct event *daily;
	const struct certinv *inv;

	/* The broker's chain as last seen: its bytes, for the cheap
	 * comparison at every handshake, and its facts, for logs and
	 * /status. */
	struct watch_der der[WATCH_MAX_CHAIN];
	struct watch_cert certs[WATCH_MAX_CHAIN];
	size_t count;
	char broker[300];
};

static void
watch_on_daily(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	watch_check_expiry(arg);
}

struct watch *
watch_new(struct event_base *base)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct timeval day = {CERTTIME_DAY_S, 0};

	if (w == NULL) {
		return NULL;
	}
	w->daily = event_new(base, -1, EV_PERSIST, watch_on_daily, w);
	if (w->daily == NULL) {
		free(w);
		return NULL;
	}
	evtimer_add(w->daily, &day);
	return w;
}

static void
watch_forget_chain(struct watch *w)
{
	for (size_t i = 0; i < w->count; i++) {
		CB_FREE(w->der[i].data);
	}
	w->count = 0;
}

void
watch_free(struct watch *w)
{
	if (w == NULL) {
		return;
	}
	watch_forget_chain(w);
	event_free(w->daily);
	free(w);
}

static void
watch_log_expiring(const char *role, const char *name, const char *subject,
    int64_t not_after, const char *path, int64_t now)
{
	struct log_line l;
	char when[40];
	int64_t left = not_after - now;

	parse_format_date(not_after, when, sizeof(when));
	if (!log_begin(&l, LOG_WARN, left < 0 ? "cert-expired"
	    : "cert-expiring")) {
		return;
	}
	log_str(&l, "role", role);
	log_str(&l, "name", name);
	log_str(&l, "subject", subject);
	log_str(&l, "not_after", when);
	log_i64(&l, "days_left", certtime_days_left(not_after, now));
	if (path != NULL) {
		log_str(&l, "file", path);
	}
	log_str(&l, "detail", left < 0 ? "past its end: renew it now"
	    : "renew it before it ends; certbridge-certs lists every date");
	log_end(&l);
}

void
watch_check_expiry(struct watch *w)
{
	int64_t now = clock_wall_s();
	int64_t warn = (int64_t)CERTTIME_WARN_DAYS * CERTTIME_DAY_S;

	for (size_t i = 0; w->inv != NULL && i < w->inv->count; i++) {
		const struct certinv_item *it = &w->inv->items[i];
		enum certinv_level lvl = certinv_level_of(it, now, warn, 0);

		if (it->in_bundle || lvl == CERTINV_OK
		    || lvl == CERTINV_NOT_YET_VALID) {
			continue;
		}
		watch_log_expiring(certinv_role_name(it->role), it->name,
		    it->subject, it->not_after, it->path, now);
	}
	for (size_t i = 0; i < w->count; i++) {
		if (w->certs[i].not_after - now < warn) {
			watch_log_expiring(i == 0 ? "broker" : "broker-ca",
			    w->broker, w->certs[i].subject,
			    w->certs[i].not_after, NULL, now);
		}
	}
}

void
watch_set_inventory(struct watch *w, const struct certinv *inv)
{
	w->inv = inv;
	watch_check_expiry(w);
}

static bool
watch_same_chain(const struct watch *w, const uint8_t *der,
    const uint32_t *len, size_t n)
{
	if (n != w->count) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if ((int)len[i] != w->der[i].len
		    || memcmp(der, w->der[i].data, len[i]) != 0) {
			return false;
		}
		der += len[i];
	}
	return true;
}

static void
watch_log_chain(const struct watch *w, const char *event, enum log_level lvl,
    const char *detail)
{
	struct log_line l;
	char list[1024] = "";
	size_t used = 0;

	for (size_t i = 0; i < w->count && used < sizeof(list); i++) {
		char when[40];
		int n;

		parse_format_date(w->certs[i].not_after, when, sizeof(when));
		n = snprintf(list + used, sizeof(list) - used, "%s%s (notAfter "
		    "%s, sha256 %.23s...)", i ? " <- " : "",
		    w->certs[i].subject, when, w->certs[i].fingerprint);
		if (n < 0) {
			break;
		}
		used += (size_t)n;
	}
	if (log_begin(&l, lvl, event)) {
		log_str(&l, "broker", w->broker);
		log_u64(&l, "certificates", w->count);
		log_str(&l, "chain", list);
		if (detail != NULL) {
			log_str(&l, "detail", detail);
		}
		log_end(&l);
	}
}

void
watch_upstream_chain(struct watch *w, const uint8_t *der,
    const uint32_t *len, size_t n, const char *broker)
{
	bool first = w->count == 0;

	if (n == 0 || der == NULL) {
		return;
	}
	if (n > WATCH_MAX_CHAIN) {
		n = WATCH_MAX_CHAIN;
	}
	if (watch_same_chain(w, der, len, n)) {
		return;
	}
	watch_forget_chain(w);
	snprintf(w->broker, sizeof(w->broker), "%s", broker);
	for (size_t i = 0; i < n; der += len[i], i++) {
		WOLFSSL_X509 *x = wolfSSL_X509_d2i(NULL, der, (int)len[i]);
		struct watch_cert *c = &w->certs[w->count];

		if (x == NULL || (w->der[w->count].data = malloc(len[i]))
		    == NULL) {
			if (x != NULL) {
				wolfSSL_X509_free(x);
			}
			break;
		}
		memcpy(w->der[w->count].data, der, len[i]);
		w->der[w->count].len = (int)len[i];
		x509_subject(x, c->subject);
		x509_issuer(x, c->issuer);
		if (!x509_not_before(x, &c->not_before)) {
			c->not_before = 0;
		}
		if (!x509_not_after(x, &c->not_after)) {
			c->not_after = 0;
		}
		x509_fingerprint_hex(x, c->fingerprint);
		wolfSSL_X509_free(x);
		w->count++;
	}
	if (first) {
		watch_log_chain(w, "upstream-chain", LOG_INFO, NULL);
	} else {
		watch_log_chain(w, "upstream-chain-changed", LOG_WARN,
		    "the broker presents a different chain than before (a "
		    "rotated leaf or intermediate); nothing to do while it "
		    "verifies against [upstream] ca");
	}
}

size_t
watch_chain(const struct watch *w, const struct watch_cert **certs)
{
	*certs = w->certs;
	return w->count;
}

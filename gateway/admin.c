/*
 * admin.c - the admin endpoint: routing, /healthz and /metrics (see
 * admin.h; /status is in status.c).
 *
 * Every figure is computed at scrape time from its owner; the costliest is
 * the per-CA count of devices seen in 7 days, one pass over the sightings
 * table per CA, which stays well under a millisecond at 10,000 devices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin.h"
#include "status.h"
#include "admit.h"
#include "certinv.h"
#include "clock.h"
#include "gen.h"
#include "listener.h"
#include "metrics.h"
#include "page.h"
#include "parse.h"
#include "registry.h"
#include "runtime.h"
#include "sightings.h"
#include "upstream.h"
#include "util.h"
#include "version.h"
#include "watch.h"


struct admin {
	struct evhttp *http;
	const struct runtime *rt;
	char address[300];
};

/* /healthz: the listeners are bound and a configuration is loaded. */
static bool
admin_serving(const struct runtime *rt)
{
	return rt->serving && rt->gen != NULL && rt->listeners != NULL
	    && listener_set_count(rt->listeners) > 0;
}

static void
admin_ca_families(const struct runtime *rt, struct evbuffer *out)
{
	const struct cfg *cfg = rt->gen->cfg;
	struct sightings *seen = rt->sightings;
	int64_t since = clock_wall_s() - SIGHTINGS_WINDOW_S;

	metrics_help(out, "certbridge_device_auth_total", "counter",
	    "Devices admitted, by the [ca.NAME] that admitted them.");
	for (size_t i = 0; i < cfg->ca_count; i++) {
		evbuffer_add_printf(out, "certbridge_device_auth_total{ca=\"");
		metrics_label(out, cfg->cas[i].name);
		evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)
		    sightings_counts(seen, cfg->cas[i].name).admissions);
	}
	metrics_help(out, "certbridge_devices_seen", "gauge",
	    "Distinct devices each CA admitted within the window: the "
	    "figure that says when an old CA can be retired.");
	for (size_t i = 0; i < cfg->ca_count; i++) {
		evbuffer_add_printf(out, "certbridge_devices_seen{ca=\"");
		metrics_label(out, cfg->cas[i].name);
		evbuffer_add_printf(out, "\",window=\"7d\"} %zu\n",
		    sightings_devices_since(seen, cfg->cas[i].name, since));
	}
	metrics_help(out, "certbridge_grace_admissions_total", "counter",
	    "Devices admitted only thanks to clock_skew or expired_grace.");
	for (size_t i = 0; i < cfg->ca_count; i++) {
		struct sightings_counts c = sightings_counts(seen,
		    cfg->cas[i].name);

		evbuffer_add_printf(out,
		    "certbridge_grace_admissions_total{ca=\"");
		metrics_label(out, cfg->cas[i].name);
		evbuffer_add_printf(out, "\",kind=\"skew\"} %llu\n",
		    (unsigned long long)c.grace_skew);
		evbuffer_add_printf(out,
		    "certbridge_grace_admissions_total{ca=\"");
		metrics_label(out, cfg->cas[i].name);
		evbuffer_add_printf(out, "\",kind=\"expired\"} %llu\n",
		    (unsigned long long)c.grace_expired);
	}
}

static void
admin_not_after(struct evbuffer *out, const char *role, const char *name,
    const char *subject, int64_t not_after)
{
	evbuffer_add_printf(out, "certbridge_cert_not_after_seconds{role=\"");
	metrics_label(out, role);
	evbuffer_add_printf(out, "\",name=\"");
	metrics_label(out, name);
	evbuffer_add_printf(out, "\",subject=\"");
	metrics_label(out, subject);
	evbuffer_add_printf(out, "\"} %lld\n", (long long)not_after);
}

/* Configured certificates and CRLs (roots of a large bundle excepted:
 * their dates are not the operator's to act on) and the broker's chain
 * as last seen. A CRL's value is its nextUpdate. */
static void
admin_cert_family(const struct runtime *rt, struct evbuffer *out)
{
	const struct certinv *inv = &rt->gen->inv;
	const struct watch_cert *chain;
	size_t n = watch_chain(rt->watch, &chain);

	metrics_help(out, "certbridge_cert_not_after_seconds", "gauge",
	    "notAfter (a CRL: nextUpdate) of every certificate the "
	    "configuration names and of the broker's chain as last seen.");
	for (size_t i = 0; i < inv->count; i++) {
		const struct certinv_item *it = &inv->items[i];

		if (it->in_bundle || it->not_after == 0) {
			continue;
		}
		admin_not_after(out, certinv_role_name(it->role), it->name,
		    it->subject, it->not_after);
	}
	for (size_t i = 0; i < n; i++) {
		admin_not_after(out, i == 0 ? "broker" : "broker-ca", "upstream",
		    chain[i].subject, chain[i].not_after);
	}
}

static void
admin_metrics(const struct runtime *rt, struct evbuffer *out)
{
	metrics_render_counters(rt->metrics, out);
	admin_ca_families(rt, out);
	admin_cert_family(rt, out);
	metrics_help(out, "certbridge_upstream_connect_queue", "gauge",
	    "Devices waiting for a connect slot (connect_rate).");
	evbuffer_add_printf(out, "certbridge_upstream_connect_queue %zu\n",
	    upstream_queue_length(rt->upstream));
	metrics_help(out, "certbridge_handshakes_pending", "gauge",
	    "Device connections in their TLS handshake or before their "
	    "CONNECT ([downstream] max_handshakes).");
	evbuffer_add_printf(out, "certbridge_handshakes_pending %u\n",
	    (unsigned)admit_pending(rt->admit));
	metrics_help(out, "certbridge_build_info", "gauge",
	    "Always 1; the version is a label.");
	evbuffer_add_printf(out, "certbridge_build_info{version=\"%s\"} 1\n",
	    CERTBRIDGE_VERSION);
	metrics_help(out, "certbridge_start_time_seconds", "gauge",
	    "When the process started (epoch seconds).");
	evbuffer_add_printf(out, "certbridge_start_time_seconds %lld\n",
	    (long long)rt->started_at);
	metrics_help(out, "certbridge_config_generation", "gauge",
	    "Configuration generation in force: 1 at start, +1 per reload.");
	evbuffer_add_printf(out, "certbridge_config_generation %llu\n",
	    (unsigned long long)rt->gen->number);
}

static void
admin_reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void
admin_handle(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(
	    req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *body = evbuffer_new();

	if (body == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		evbuffer_add_printf(body, "read-only: GET /, /healthz, "
		    "/metrics or /status\n");
		admin_reply(req, 405, "Method Not Allowed", "text/plain", body);
	} else if (path != NULL && strcmp(path, "/healthz") == 0) {
		bool up = admin_serving(a->rt);

		evbuffer_add_printf(body, up ? "ok\n" : "not listening\n");
		admin_reply(req, up ? HTTP_OK : 503, up ? "OK"
		    : "Service Unavailable", "text/plain", body);
	} else if (path != NULL && strcmp(path, "/metrics") == 0) {
		admin_metrics(a->rt, body);
		admin_reply(req, HTTP_OK, "OK",
		    "text/plain; version=0.0.4; charset=utf-8", body);
	} else if (path != NULL && strcmp(path, "/") == 0) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);

		page_html(a->rt, body);
		/* Belt and braces for a page that holds outside strings: no
		 * script may run and nothing may be fetched, whatever a
		 * browser makes of it. */
		evhttp_add_header(h, "Content-Security-Policy", "default-src "
		    "'none'; style-src 'unsafe-inline'; img-src 'self'");
		evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
		admin_reply(req, HTTP_OK, "OK", "text/html; charset=utf-8", body);
	} else if (path != NULL && strcmp(path, "/status") == 0) {
		status_json(a->rt, body);
		admin_reply(req, HTTP_OK, "OK", "application/json", body);
	} else {
		evbuffer_add_printf(body, "not found: try / (the status "
		    "page), /healthz, /metrics or /status\n");
		admin_reply(req, HTTP_NOTFOUND, "Not Found", "text/plain", body);
	}
	evbuffer_free(body);
}

struct admin *
admin_new(const struct runtime *rt, const char *listen, char *why,
    size_t why_len)
{
	struct parse_hostport hp;
	char pwhy[PARSE_WHY_LEN];
	struct admin *a;

	if (!parse_hostport(listen, &hp, pwhy)) {
		snprintf(why, why_len, "[gateway] admin_listen: %s", pwhy);
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->http = evhttp_new(rt->base)) == NULL) {
		free(a);
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	a->rt = rt;
	snprintf(a->address, sizeof(a->address), "%s", listen);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD
	    | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE
	    | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH | EVHTTP_REQ_TRACE
	    | EVHTTP_REQ_CONNECT);
	evhttp_set_timeout(a->http, 10);
	evhttp_set_max_headers_size(a->http, 8192);
	evhttp_set_max_body_size(a->http, 4096);
	evhttp_set_gencb(a->http, admin_handle, a);
	if (evhttp_bind_socket_with_handle(a->http, hp.host,
	    (uint16_t)strtoul(hp.port, NULL, 10)) == NULL) {
		snprintf(why, why_len, "cannot listen on admin_listen %s: %s",
		    listen, strerror(errno));
		admin_free(a);
		return NULL;
	}
	return a;
}

void
admin_free(struct admin *a)
{
	if (a == NULL) {
		return;
	}
	if (a->http != NULL) {
		evhttp_free(a->http);
	}
	free(a);
}

const char *
admin_address(const struct admin *a)
{
	return a->address;
}

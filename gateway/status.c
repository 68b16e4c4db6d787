/*
 * status.c - the /status document of the admin endpoint (see status.h).
 *
 * What an operator asks when something is off: which configuration is in
 * force and since when, where certbridge listens, every certificate with
 * its dates, how many devices each CA still admits, and what the broker
 * presented last.
 */
#include <string.h>

#include "certinv.h"
#include "certtime.h"
#include "clock.h"
#include "gen.h"
#include "jsonw.h"
#include "listener.h"
#include "reason.h"
#include "refusals.h"
#include "registry.h"
#include "runtime.h"
#include "sightings.h"
#include "status.h"
#include "upstream.h"
#include "version.h"
#include "watch.h"

/* Days left until not_after (negative once past), or null when unknown. */
static void
status_days_left(struct jsonw *w, int64_t not_after, int64_t now)
{
	jsonw_key(w, "days_left");
	if (not_after == 0) {
		jsonw_null(w);
		return;
	}
	jsonw_i64(w, certtime_days_left(not_after, now));
}

/* What /status says of any certificate: names, dates, days left. */
static void
status_cert_fields(struct jsonw *w, const char *subject, const char *issuer,
    int64_t not_before, int64_t not_after, int64_t now)
{
	jsonw_kstr(w, "subject", subject);
	jsonw_kstr(w, "issuer", issuer);
	jsonw_kdate(w, "not_before", not_before);
	jsonw_kdate(w, "not_after", not_after);
	status_days_left(w, not_after, now);
}

static void
status_listeners(struct jsonw *w, const struct runtime *rt)
{
	const struct listener_set *set = rt->listeners;
	size_t n = set != NULL ? listener_set_count(set) : 0;

	jsonw_key(w, "listeners");
	jsonw_arr(w);
	for (size_t i = 0; i < n; i++) {
		struct listener *l = listener_set_at(set, i);

		jsonw_obj(w);
		jsonw_kstr(w, "addr", listener_name(l));
		jsonw_kbool(w, "tls", listener_tls(l));
		jsonw_end(w);
	}
	jsonw_end(w);
}

static void
status_upstream(struct jsonw *w, const struct runtime *rt, int64_t now)
{
	const struct cfg *cfg = rt->gen->cfg;
	const struct watch_cert *chain;
	size_t n = watch_chain(rt->watch, &chain);
	char addr[300];

	snprintf(addr, sizeof(addr), "%s:%s", cfg->upstream.address.host,
	    cfg->upstream.address.port);
	jsonw_key(w, "upstream");
	jsonw_obj(w);
	jsonw_kstr(w, "address", addr);
	jsonw_kstr(w, "sni", cfg->upstream.sni);
	jsonw_ku64(w, "connect_queue", upstream_queue_length(rt->upstream));
	jsonw_key(w, "chain");
	jsonw_arr(w);
	for (size_t i = 0; i < n; i++) {
		jsonw_obj(w);
		status_cert_fields(w, chain[i].subject, chain[i].issuer,
		    chain[i].not_before, chain[i].not_after, now);
		jsonw_kstr(w, "fingerprint_sha256", chain[i].fingerprint);
		jsonw_end(w);
	}
	jsonw_end(w);
	jsonw_end(w);
}

static void
status_certificates(struct jsonw *w, const struct runtime *rt, int64_t now)
{
	const struct certinv *inv = &rt->gen->inv;

	jsonw_key(w, "certificates");
	jsonw_arr(w);
	for (size_t i = 0; i < inv->count; i++) {
		const struct certinv_item *it = &inv->items[i];

		jsonw_obj(w);
		jsonw_kstr(w, "role", certinv_role_name(it->role));
		jsonw_kstr(w, "name", it->name);
		jsonw_kstr(w, "file", it->path);
		status_cert_fields(w, it->subject, it->issuer, it->not_before,
		    it->not_after, now);
		jsonw_key(w, "fingerprint_sha256");
		if (it->role == CERTINV_CRL) {
			jsonw_null(w);
		} else {
			jsonw_str(w, it->fingerprint);
		}
		jsonw_kstr(w, "status", it->in_bundle ? "not-judged"
		    : certinv_level_name(certinv_level_of(it, now,
		    CERTTIME_WARN_DAYS * CERTTIME_DAY_S,
		    CERTTIME_CRIT_DAYS * CERTTIME_DAY_S)));
		jsonw_kbool(w, "in_bundle", it->in_bundle);
		jsonw_end(w);
	}
	jsonw_end(w);
}

static void
status_cas(struct jsonw *w, const struct runtime *rt, int64_t now)
{
	const struct cfg *cfg = rt->gen->cfg;
	struct sightings *seen = rt->sightings;

	jsonw_key(w, "cas");
	jsonw_arr(w);
	for (size_t i = 0; i < cfg->ca_count; i++) {
		const struct cfg_ca *ca = &cfg->cas[i];
		struct sightings_counts c = sightings_counts(seen, ca->name);

		jsonw_obj(w);
		jsonw_kstr(w, "name", ca->name);
		jsonw_ku64(w, "devices_7d", sightings_devices_since(seen,
		    ca->name, now - SIGHTINGS_WINDOW_S));
		jsonw_ku64(w, "devices_total", sightings_devices_since(seen,
		    ca->name, 0));
		jsonw_kdate(w, "last_seen", sightings_last_seen(seen, ca->name));
		jsonw_kdate(w, "retire_after", ca->has_retire_after
		    ? ca->retire_after : 0);
		jsonw_ku64(w, "admissions", c.admissions);
		jsonw_ku64(w, "grace_skew", c.grace_skew);
		jsonw_ku64(w, "grace_expired", c.grace_expired);
		jsonw_end(w);
	}
	jsonw_end(w);
}

/* Newest first, as the page shows them. */
static void
status_refusals(struct jsonw *w, const struct runtime *rt)
{
	size_t n = rt->refusals != NULL ? refusals_count(rt->refusals) : 0;

	jsonw_key(w, "refusals");
	jsonw_arr(w);
	for (size_t i = 0; i < n; i++) {
		const struct refusal *r = refusals_at(rt->refusals, i);

		jsonw_obj(w);
		jsonw_kdate(w, "time", r->at);
		jsonw_kstr(w, "peer", r->peer);
		jsonw_key(w, "device");
		if (r->device[0] != '\0') {
			jsonw_str(w, r->device);
		} else {
			jsonw_null(w);
		}
		jsonw_kstr(w, "reason", reason_slug(r->why));
		jsonw_kstr(w, "detail", r->detail);
		jsonw_end(w);
	}
	jsonw_end(w);
}

void
status_json(const struct runtime *rt, struct evbuffer *out)
{
	struct jsonw w = {0};
	const struct gen *g = rt->gen;
	int64_t now = clock_wall_s();

	jsonw_obj(&w);
	jsonw_kstr(&w, "version", CERTBRIDGE_VERSION);
	jsonw_ku64(&w, "generation", g->number);
	jsonw_kdate(&w, "loaded_at", g->loaded_at);
	jsonw_kdate(&w, "started_at", rt->started_at);
	jsonw_kstr(&w, "config", g->cfg->path);
	status_listeners(&w, rt);
	jsonw_ku64(&w, "sessions", registry_count(rt->sessions));
	status_upstream(&w, rt, now);
	status_certificates(&w, rt, now);
	status_cas(&w, rt, now);
	status_refusals(&w, rt);
	jsonw_end(&w);
	jsonw_raw(&w, "\n");
	if (w.failed) {
		evbuffer_add_printf(out, "{\"error\":\"out of memory\"}\n");
	} else {
		evbuffer_add(out, w.buf, w.len);
	}
	jsonw_free(&w);
}

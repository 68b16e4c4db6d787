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
#include "registry.h"
#include "runtime.h"
#include "sightings.h"
#include "status.h"
#include "upstream.h"
#include "version.h"
#include "watch.h"


static void
status_days_left(struct jsonw *w, int64_t not_after, int64_t now)
{
	if (not_after == 0) {
		jsonw_raw(w, "null");
		return;
	}
	jsonw_i64(w, certtime_days_left(not_after, now));
}

static void
status_listeners(struct jsonw *w, const struct runtime *rt)
{
	const struct listener_set *set = rt->listeners;
	size_t n = set != NULL ? listener_set_count(set) : 0;

	jsonw_key(w, "listeners");
	jsonw_raw(w, "[");
	for (size_t i = 0; i < n; i++) {
		struct listener *l = listener_set_at(set, i);

		jsonw_raw(w, i ? ",{" : "{");
		jsonw_key(w, "addr");
		jsonw_str(w, listener_name(l));
		jsonw_raw(w, ",");
		jsonw_key(w, "tls");
		jsonw_bool(w, listener_tls(l));
		jsonw_raw(w, "}");
	}
	jsonw_raw(w, "]");
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
	jsonw_raw(w, "{");
	jsonw_key(w, "address");
	jsonw_str(w, addr);
	jsonw_raw(w, ",");
	jsonw_key(w, "sni");
	jsonw_str(w, cfg->upstream.sni);
	jsonw_raw(w, ",");
	jsonw_key(w, "connect_queue");
	jsonw_u64(w, upstream_queue_length(rt->upstream));
	jsonw_raw(w, ",");
	jsonw_key(w, "chain");
	jsonw_raw(w, "[");
	for (size_t i = 0; i < n; i++) {
		jsonw_raw(w, i ? ",{" : "{");
		jsonw_key(w, "subject");
		jsonw_str(w, chain[i].subject);
		jsonw_raw(w, ",");
		jsonw_key(w, "issuer");
		jsonw_str(w, chain[i].issuer);
		jsonw_raw(w, ",");
		jsonw_key(w, "not_before");
		jsonw_date(w, chain[i].not_before);
		jsonw_raw(w, ",");
		jsonw_key(w, "not_after");
		jsonw_date(w, chain[i].not_after);
		jsonw_raw(w, ",");
		jsonw_key(w, "days_left");
		status_days_left(w, chain[i].not_after, now);
		jsonw_raw(w, ",");
		jsonw_key(w, "fingerprint_sha256");
		jsonw_str(w, chain[i].fingerprint);
		jsonw_raw(w, "}");
	}
	jsonw_raw(w, "]}");
}

static void
status_certificates(struct jsonw *w, const struct runtime *rt, int64_t now)
{
	const struct certinv *inv = &rt->gen->inv;

	jsonw_key(w, "certificates");
	jsonw_raw(w, "[");
	for (size_t i = 0; i < inv->count; i++) {
		const struct certinv_item *it = &inv->items[i];

		jsonw_raw(w, i ? ",{" : "{");
		jsonw_key(w, "role");
		jsonw_str(w, certinv_role_name(it->role));
		jsonw_raw(w, ",");
		jsonw_key(w, "name");
		jsonw_str(w, it->name);
		jsonw_raw(w, ",");
		jsonw_key(w, "file");
		jsonw_str(w, it->path);
		jsonw_raw(w, ",");
		jsonw_key(w, "subject");
		jsonw_str(w, it->subject);
		jsonw_raw(w, ",");
		jsonw_key(w, "issuer");
		jsonw_str(w, it->issuer);
		jsonw_raw(w, ",");
		jsonw_key(w, "not_before");
		jsonw_date(w, it->not_before);
		jsonw_raw(w, ",");
		jsonw_key(w, "not_after");
		jsonw_date(w, it->not_after);
		jsonw_raw(w, ",");
		jsonw_key(w, "days_left");
		status_days_left(w, it->not_after, now);
		jsonw_raw(w, ",");
		jsonw_key(w, "fingerprint_sha256");
		if (it->role == CERTINV_CRL) {
			jsonw_raw(w, "null");
		} else {
			jsonw_str(w, it->fingerprint);
		}
		jsonw_raw(w, ",");
		jsonw_key(w, "status");
		jsonw_str(w, it->in_bundle ? "not-judged" : certinv_level_name(
		    certinv_level_of(it, now, CERTTIME_WARN_DAYS * CERTTIME_DAY_S,
		    CERTTIME_CRIT_DAYS * CERTTIME_DAY_S)));
		jsonw_raw(w, ",");
		jsonw_key(w, "in_bundle");
		jsonw_bool(w, it->in_bundle);
		jsonw_raw(w, "}");
	}
	jsonw_raw(w, "]");
}

static void
status_cas(struct jsonw *w, const struct runtime *rt, int64_t now)
{
	const struct cfg *cfg = rt->gen->cfg;
	struct sightings *seen = rt->sightings;

	jsonw_key(w, "cas");
	jsonw_raw(w, "[");
	for (size_t i = 0; i < cfg->ca_count; i++) {
		const struct cfg_ca *ca = &cfg->cas[i];
		struct sightings_counts c = sightings_counts(seen, ca->name);

		jsonw_raw(w, i ? ",{" : "{");
		jsonw_key(w, "name");
		jsonw_str(w, ca->name);
		jsonw_raw(w, ",");
		jsonw_key(w, "devices_7d");
		jsonw_u64(w, sightings_devices_since(seen, ca->name,
		    now - SIGHTINGS_WINDOW_S));
		jsonw_raw(w, ",");
		jsonw_key(w, "devices_total");
		jsonw_u64(w, sightings_devices_since(seen, ca->name, 0));
		jsonw_raw(w, ",");
		jsonw_key(w, "last_seen");
		jsonw_date(w, sightings_last_seen(seen, ca->name));
		jsonw_raw(w, ",");
		jsonw_key(w, "retire_after");
		jsonw_date(w, ca->has_retire_after ? ca->retire_after : 0);
		jsonw_raw(w, ",");
		jsonw_key(w, "admissions");
		jsonw_u64(w, c.admissions);
		jsonw_raw(w, ",");
		jsonw_key(w, "grace_skew");
		jsonw_u64(w, c.grace_skew);
		jsonw_raw(w, ",");
		jsonw_key(w, "grace_expired");
		jsonw_u64(w, c.grace_expired);
		jsonw_raw(w, "}");
	}
	jsonw_raw(w, "]");
}

void
status_json(const struct runtime *rt, struct evbuffer *out)
{
	struct jsonw w = {0};
	const struct gen *g = rt->gen;
	int64_t now = clock_wall_s();

	jsonw_raw(&w, "{");
	jsonw_key(&w, "version");
	jsonw_str(&w, CERTBRIDGE_VERSION);
	jsonw_raw(&w, ",");
	jsonw_key(&w, "generation");
	jsonw_u64(&w, g->number);
	jsonw_raw(&w, ",");
	jsonw_key(&w, "loaded_at");
	jsonw_date(&w, g->loaded_at);
	jsonw_raw(&w, ",");
	jsonw_key(&w, "started_at");
	jsonw_date(&w, rt->started_at);
	jsonw_raw(&w, ",");
	jsonw_key(&w, "config");
	jsonw_str(&w, g->cfg->path);
	jsonw_raw(&w, ",");
	status_listeners(&w, rt);
	jsonw_raw(&w, ",");
	jsonw_key(&w, "sessions");
	jsonw_u64(&w, registry_count(rt->sessions));
	jsonw_raw(&w, ",");
	status_upstream(&w, rt, now);
	jsonw_raw(&w, ",");
	status_certificates(&w, rt, now);
	jsonw_raw(&w, ",");
	status_cas(&w, rt, now);
	jsonw_raw(&w, "}\n");
	if (w.failed) {
		evbuffer_add_printf(out, "{\"error\":\"out of memory\"}\n");
	} else {
		evbuffer_add(out, w.buf, w.len);
	}
	jsonw_free(&w);
}

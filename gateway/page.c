/*
 * page.c - the status page, GET / on the admin endpoint (see page.h).
 *
 * One self-contained HTML document: inline CSS, inline SVG, no script and
 * nothing fetched from elsewhere (a site network is often isolated). It is
 * made from the same sources as /status (status.c): the generation, the
 * listeners, the broker chain watch, the certificate inventory, the
 * sightings and the refusal ring. Every string from outside goes through
 * htmlw_text; the markup written here is constant text and numbers.
 *
 * Its size does not grow with the sessions: a device_certs folder of
 * thousands of pairs is summed up (the ones ending within 30 days listed),
 * and the roots of a system bundle are counted, not listed.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "certinv.h"
#include "certtime.h"
#include "clock.h"
#include "gen.h"
#include "htmlw.h"
#include "listener.h"
#include "page.h"
#include "parse.h"
#include "reason.h"
#include "refusals.h"
#include "registry.h"
#include "runtime.h"
#include "sightings.h"
#include "upstream.h"
#include "version.h"
#include "watch.h"

/* Device certificates ending soon listed at most, the rest counted. */
#define PAGE_DEVICE_CERTS_MAX 50
/* CAs shown with their figures (a gateway has a handful). */
#define PAGE_CAS_MAX 64

/* One colour per CA, in [ca.NAME] order (then again): distinct in print
 * too, and each with its name and figures beside it, never colour alone. */
static const char *const page_colours[] = {
	"#3b6ea5", "#e08a2c", "#4c9a5b", "#b0413e", "#7d5ba6", "#6b7b8c",
};

/* On a phone the tables keep a laptop's width and scroll sideways in their
 * .scroll box, rather than squeezing a subject into a letter per line. */
static const char page_style[] =
    "<style>\n"
    "body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "margin:0 auto;padding:12px;max-width:1200px;color:#1d2430;"
    "background:#fff}\n"
    "h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em;"
    "border-bottom:1px solid #ccd3db}\n"
    ".meta{color:#4a5563}.meta span{white-space:nowrap;margin-right:1em}\n"
    "nav a{margin-right:.8em}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:.93em}\n"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e7ec;"
    "vertical-align:top}\n"
    "th{background:#f2f4f7}td.num,th.num{text-align:right;"
    "white-space:nowrap}\n"
    "td.wrap{word-break:break-word}td.date{white-space:nowrap}\n"
    ".warn{background:#fff3cd}.crit{background:#f8d7da;font-weight:600}\n"
    ".flag{font-size:.85em;white-space:nowrap}\n"
    ".swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em;"
    "border:1px solid #555;vertical-align:-.05em}\n"
    "svg.bar{width:100%;height:34px;display:block;border:1px solid #99a3ad}\n"
    ".none{color:#6b7480;font-style:italic}\n"
    "code{font-size:.95em}\n"
    "@media (max-width:640px){body{font-size:14px;padding:6px}"
    "th,td{padding:3px 4px}table{min-width:620px}}\n"
    "@media print{nav{display:none}body{max-width:none}"
    ".warn,.crit{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n"
    "</style>\n";

static void
page_date(struct evbuffer *out, int64_t epoch, size_t chars)
{
	char when[40];

	if (epoch == 0) {
		evbuffer_add_printf(out, "<span class=\"none\">never</span>");
		return;
	}
	parse_format_date(epoch, when, sizeof(when));
	/* "2027-06-30T12:00:00Z": the day (10), or day and minute (16). */
	if (chars > 10) {
		when[10] = ' ';
	}
	evbuffer_add_printf(out, "%.*s%s", (int)chars, when, chars > 10
	    ? " UTC" : "");
}

/* The days-left cell: marked under 30 days, marked harder under 7 (and
 * past), in words as well as colour, so a printout says it too. */
static void
page_days_cell(struct evbuffer *out, int64_t not_after, int64_t now)
{
	int64_t days;

	if (not_after == 0) {
		evbuffer_add_printf(out, "<td class=\"num\">-</td>");
		return;
	}
	days = certtime_days_left(not_after, now);
	if (days < 0) {
		evbuffer_add_printf(out, "<td class=\"num crit\">%lld "
		    "<span class=\"flag\">PAST</span></td>", (long long)days);
	} else if (days < CERTTIME_CRIT_DAYS) {
		evbuffer_add_printf(out, "<td class=\"num crit\">%lld "
		    "<span class=\"flag\">under %d days</span></td>",
		    (long long)days, CERTTIME_CRIT_DAYS);
	} else if (days < CERTTIME_WARN_DAYS) {
		evbuffer_add_printf(out, "<td class=\"num warn\">%lld "
		    "<span class=\"flag\">under %d days</span></td>",
		    (long long)days, CERTTIME_WARN_DAYS);
	} else {
		evbuffer_add_printf(out, "<td class=\"num\">%lld</td>",
		    (long long)days);
	}
}

/* The "ends" and "days left" cells of a certificate (or a CRL). */
static void
page_ends_cells(struct evbuffer *out, int64_t not_after, int64_t now)
{
	evbuffer_add_printf(out, "<td class=\"date\">");
	page_date(out, not_after, 10);
	evbuffer_add_printf(out, "</td>");
	page_days_cell(out, not_after, now);
}

static void
page_cell(struct evbuffer *out, const char *cls, const char *text)
{
	evbuffer_add_printf(out, "<td%s%s%s>", cls != NULL ? " class=\"" : "",
	    cls != NULL ? cls : "", cls != NULL ? "\"" : "");
	htmlw_text(out, text);
	evbuffer_add_printf(out, "</td>");
}

static void
page_header(const struct runtime *rt, struct evbuffer *out, int64_t now)
{
	const struct gen *g = rt->gen;
	char host[256] = "";
	int64_t up = now - rt->started_at;

	if (gethostname(host, sizeof(host) - 1) != 0) {
		host[0] = '\0';
	}
	evbuffer_add_printf(out, "<title>certbridge ");
	htmlw_text(out, host);
	evbuffer_add_printf(out, "</title>\n%s</head>\n<body>\n"
	    "<h1>certbridge ", page_style);
	htmlw_text(out, host);
	evbuffer_add_printf(out, "</h1>\n<p class=\"meta\"><span>version %s"
	    "</span> <span>configuration generation %llu, loaded ",
	    CERTBRIDGE_VERSION, (unsigned long long)g->number);
	page_date(out, g->loaded_at, 16);
	evbuffer_add_printf(out, "</span> <span>up %lld d %lld h %lld min"
	    "</span> <span>%zu sessions</span> <span>", (long long)(up / 86400),
	    (long long)(up / 3600 % 24), (long long)(up / 60 % 60),
	    registry_count(rt->sessions));
	htmlw_text(out, g->cfg->path);
	evbuffer_add_printf(out, "</span> <span>page made ");
	page_date(out, now, 16);
	evbuffer_add_printf(out, "</span></p>\n<nav><a href=\"#cas\">CAs</a>"
	    "<a href=\"#certificates\">certificates</a>"
	    "<a href=\"#upstream\">upstream</a>"
	    "<a href=\"#refusals\">refusals</a>"
	    "<a href=\"/status\">/status (JSON)</a>"
	    "<a href=\"/metrics\">/metrics</a></nav>\n");
}

/* The fleet's share per CA as one bar: devices seen in 7 days (all ever
 * seen when none was lately). */
static void
page_migration_bar(struct evbuffer *out, const struct cfg *cfg, size_t n,
    const size_t *counts, size_t total, const char *window)
{
	size_t x = 0, last = 0;

	if (total == 0) {
		evbuffer_add_printf(out, "<p class=\"none\">No device seen yet: "
		    "the bar shows each CA's share once devices connect.</p>\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (counts[i] > 0) {
			last = i;
		}
	}
	evbuffer_add_printf(out, "<svg class=\"bar\" viewBox=\"0 0 1000 34\" "
	    "preserveAspectRatio=\"none\" role=\"img\" aria-labelledby=\""
	    "bar-title\"><title id=\"bar-title\">Devices seen (%s), share "
	    "per CA:", window);
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_printf(out, " ");
		htmlw_text(out, cfg->cas[i].name);
		evbuffer_add_printf(out, " %zu%s", counts[i], i + 1 < n ? ","
		    : "");
	}
	evbuffer_add_printf(out, "</title>");
	for (size_t i = 0; i < n; i++) {
		/* The last share ends the bar, whatever the rounding. */
		size_t end = i == last ? 1000 : x + counts[i] * 1000 / total;

		if (counts[i] > 0) {
			evbuffer_add_printf(out, "<rect class=\"ca-share\" "
			    "data-ca=\"");
			htmlw_text(out, cfg->cas[i].name);
			evbuffer_add_printf(out, "\" data-devices=\"%zu\" x=\"%zu\" "
			    "y=\"0\" width=\"%zu\" height=\"34\" fill=\"%s\"/>",
			    counts[i], x, end - x,
			    page_colours[i % CB_ARRAY_SIZE(page_colours)]);
		}
		x = end;
	}
	evbuffer_add_printf(out, "</svg>\n");
}

static void
page_cas(const struct runtime *rt, struct evbuffer *out, int64_t now)
{
	const struct cfg *cfg = rt->gen->cfg;
	struct sightings *seen = rt->sightings;
	size_t week[PAGE_CAS_MAX], ever[PAGE_CAS_MAX];
	size_t total_week = 0, total_ever = 0;
	size_t n = cfg->ca_count < PAGE_CAS_MAX ? cfg->ca_count
	    : PAGE_CAS_MAX;
	size_t moved_week[PAGE_CAS_MAX], moved_ever[PAGE_CAS_MAX];
	const size_t *share;
	size_t share_total;

	/* The table counts every device a CA saw (certbridge_devices_seen);
	 * the bar, the fleet's share, counts each device once, with the CA
	 * it was seen with last: a device that moved is the new CA's. */
	for (size_t i = 0; i < n; i++) {
		week[i] = sightings_devices_since(seen, cfg->cas[i].name,
		    now - SIGHTINGS_WINDOW_S);
		ever[i] = sightings_devices_since(seen, cfg->cas[i].name, 0);
		moved_week[i] = sightings_devices_now_with(seen,
		    cfg->cas[i].name, now - SIGHTINGS_WINDOW_S);
		moved_ever[i] = sightings_devices_now_with(seen,
		    cfg->cas[i].name, 0);
		total_week += moved_week[i];
		total_ever += moved_ever[i];
	}
	share = total_week > 0 ? moved_week : moved_ever;
	share_total = total_week > 0 ? total_week : total_ever;
	evbuffer_add_printf(out, "<h2 id=\"cas\">Device CAs: the migration"
	    "</h2>\n");
	page_migration_bar(out, cfg, n, share, share_total, total_week > 0
	    ? "7 days" : "since start");
	evbuffer_add_printf(out, "<div class=\"scroll\"><table id=\"ca-table\">"
	    "<tr><th>CA</th><th class=\"num\">devices, 7 days</th>"
	    "<th class=\"num\">devices, all</th><th class=\"num\">share</th>"
	    "<th>last seen</th><th>retire_after</th>"
	    "<th class=\"num\">days left</th></tr>\n");
	for (size_t i = 0; i < n; i++) {
		const struct cfg_ca *ca = &cfg->cas[i];

		evbuffer_add_printf(out, "<tr class=\"ca-row\"><td><span "
		    "class=\"swatch\" style=\"background:%s\"></span>",
		    page_colours[i % CB_ARRAY_SIZE(page_colours)]);
		htmlw_text(out, ca->name);
		evbuffer_add_printf(out, "</td><td class=\"num\">%zu</td>"
		    "<td class=\"num\">%zu</td><td class=\"num\">%zu%%</td><td "
		    "class=\"date\">",
		    week[i], ever[i], share_total > 0 ? (share[i] * 100
		    + share_total / 2) / share_total : 0);
		page_date(out, sightings_last_seen(seen, ca->name), 16);
		evbuffer_add_printf(out, "</td><td class=\"date\">");
		if (ca->has_retire_after) {
			page_date(out, ca->retire_after, 10);
			evbuffer_add_printf(out, "</td>");
			page_days_cell(out, ca->retire_after, now);
		} else {
			evbuffer_add_printf(out, "<span class=\"none\">not set"
			    "</span></td><td class=\"num\">-</td>");
		}
		evbuffer_add_printf(out, "</tr>\n");
	}
	evbuffer_add_printf(out, "</table></div>\n");
	if (cfg->ca_count > n) {
		evbuffer_add_printf(out, "<p>And %zu more CAs: /status lists "
		    "every one.</p>\n", cfg->ca_count - n);
	}
}

static void
page_cert_row(struct evbuffer *out, const struct certinv_item *it,
    int64_t now)
{
	evbuffer_add_printf(out, "<tr class=\"cert-row\">");
	page_cell(out, NULL, certinv_role_name(it->role));
	page_cell(out, NULL, it->name);
	page_cell(out, "wrap", it->subject);
	page_ends_cells(out, it->not_after, now);
	page_cell(out, "wrap", it->path);
	evbuffer_add_printf(out, "</tr>\n");
}

static void
page_certificates(const struct runtime *rt, struct evbuffer *out,
    int64_t now)
{
	const struct certinv *inv = &rt->gen->inv;
	int64_t soon = now + (int64_t)CERTTIME_WARN_DAYS * CERTTIME_DAY_S;
	size_t bundled = 0, devices = 0, devices_soon = 0, listed = 0;
	int64_t device_nearest = 0;

	evbuffer_add_printf(out, "<h2 id=\"certificates\">Certificates and "
	    "CRLs</h2>\n<div class=\"scroll\"><table id=\"cert-table\"><tr>"
	    "<th>role</th><th>name</th><th>subject</th><th>ends</th>"
	    "<th class=\"num\">days left</th><th>file</th></tr>\n");
	for (size_t i = 0; i < inv->count; i++) {
		const struct certinv_item *it = &inv->items[i];

		if (it->in_bundle) {
			bundled++;
			continue;
		}
		if (it->role == CERTINV_DEVICE_CERT) {
			devices++;
			if (it->not_after != 0 && (device_nearest == 0
			    || it->not_after < device_nearest)) {
				device_nearest = it->not_after;
			}
			if (it->not_after == 0 || it->not_after >= soon) {
				continue;
			}
			devices_soon++;
			if (listed++ >= PAGE_DEVICE_CERTS_MAX) {
				continue;
			}
		}
		page_cert_row(out, it, now);
	}
	evbuffer_add_printf(out, "</table></div>\n");
	if (devices > 0) {
		evbuffer_add_printf(out, "<p>[upstream] device_certs: %zu "
		    "certificates, %zu ending within %d days%s; the nearest "
		    "ends ", devices, devices_soon, CERTTIME_WARN_DAYS,
		    devices_soon > PAGE_DEVICE_CERTS_MAX ? " (the first 50 "
		    "listed above; /status has all)" : " (listed above)");
		page_date(out, device_nearest, 10);
		evbuffer_add_printf(out, ".</p>\n");
	}
	if (bundled > 0) {
		evbuffer_add_printf(out, "<p>And %zu roots of a system bundle "
		    "(their dates are not judged; /status lists them).</p>\n",
		    bundled);
	}
}

static void
page_upstream(const struct runtime *rt, struct evbuffer *out, int64_t now)
{
	const struct cfg *cfg = rt->gen->cfg;
	const struct watch_cert *chain;
	size_t n = watch_chain(rt->watch, &chain);
	size_t listeners = rt->listeners != NULL
	    ? listener_set_count(rt->listeners) : 0;

	evbuffer_add_printf(out, "<h2 id=\"upstream\">Listeners and upstream"
	    "</h2>\n<p>Devices: ");
	for (size_t i = 0; i < listeners; i++) {
		struct listener *l = listener_set_at(rt->listeners, i);

		evbuffer_add_printf(out, "%s<code>", i > 0 ? ", " : "");
		htmlw_text(out, listener_name(l));
		evbuffer_add_printf(out, "</code> (%s)", listener_tls(l)
		    ? "TLS" : "plain MQTT");
	}
	evbuffer_add_printf(out, "%s.<br>Broker: <code>", listeners == 0
	    ? "<span class=\"none\">not listening</span>" : "");
	htmlw_text(out, cfg->upstream.address.host);
	evbuffer_add_printf(out, ":");
	htmlw_text(out, cfg->upstream.address.port);
	evbuffer_add_printf(out, "</code>, name checked: <code>");
	htmlw_text(out, cfg->upstream.sni);
	evbuffer_add_printf(out, "</code>, %zu waiting for a connect slot.</p>\n",
	    upstream_queue_length(rt->upstream));
	if (n == 0) {
		evbuffer_add_printf(out, "<p class=\"none\">No broker chain seen "
		    "yet (it is recorded at the first full handshake).</p>\n");
		return;
	}
	evbuffer_add_printf(out, "<div class=\"scroll\"><table id=\"chain-table"
	    "\"><tr><th>the broker's chain, as last seen</th><th>issuer</th>"
	    "<th>ends</th><th class=\"num\">days left</th><th>SHA-256</th>"
	    "</tr>\n");
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_printf(out, "<tr>");
		page_cell(out, "wrap", chain[i].subject);
		page_cell(out, "wrap", chain[i].issuer);
		page_ends_cells(out, chain[i].not_after, now);
		evbuffer_add_printf(out, "<td><code>%.23s...</code></td></tr>\n",
		    chain[i].fingerprint);
	}
	evbuffer_add_printf(out, "</table></div>\n");
}

static void
page_refusals(const struct runtime *rt, struct evbuffer *out)
{
	size_t n = rt->refusals != NULL ? refusals_count(rt->refusals) : 0;

	evbuffer_add_printf(out, "<h2 id=\"refusals\">Last refusals (newest "
	    "first, at most %d)</h2>\n", REFUSALS_MAX);
	if (n == 0) {
		evbuffer_add_printf(out, "<p class=\"none\">No device refused "
		    "since start.</p>\n");
		return;
	}
	evbuffer_add_printf(out, "<div class=\"scroll\"><table id=\"refusal-"
	    "table\"><tr><th>time</th><th>peer</th><th>device</th>"
	    "<th>reason=</th><th>what to do</th></tr>\n");
	for (size_t i = 0; i < n; i++) {
		const struct refusal *r = refusals_at(rt->refusals, i);

		evbuffer_add_printf(out, "<tr class=\"refusal-row\"><td "
		    "class=\"date\">");
		page_date(out, r->at, 19);
		evbuffer_add_printf(out, "</td>");
		page_cell(out, NULL, r->peer);
		if (r->device[0] != '\0') {
			page_cell(out, "wrap device", r->device);
		} else {
			evbuffer_add_printf(out, "<td class=\"none\">no "
			    "certificate</td>");
		}
		evbuffer_add_printf(out, "<td><code class=\"reason\">%s</code>"
		    "</td>", reason_slug(r->why));
		page_cell(out, "wrap fix", r->detail);
		evbuffer_add_printf(out, "</tr>\n");
	}
	evbuffer_add_printf(out, "</table></div>\n");
}

void
page_html(const struct runtime *rt, struct evbuffer *out)
{
	int64_t now = clock_wall_s();

	evbuffer_add_printf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta name=\"viewport\" content=\""
	    "width=device-width,initial-scale=1\">\n");
	page_header(rt, out, now);
	page_cas(rt, out, now);
	page_certificates(rt, out, now);
	page_upstream(rt, out, now);
	page_refusals(rt, out);
	evbuffer_add_printf(out, "<p class=\"meta\">Read-only. The same figures "
	    "as JSON: <a href=\"/status\">/status</a>; for Prometheus: "
	    "<a href=\"/metrics\">/metrics</a>.</p>\n</body></html>\n");
}

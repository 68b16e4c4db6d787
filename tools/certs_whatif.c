/*
 * certs_whatif.c - certbridge-certs --what-if (see certs_report.h): which
 * devices would be refused if a device CA were retired (or its section
 * removed) now, from the per-CA sightings the gateway keeps in [gateway]
 * state_file (common/sightfile.h; docs/rotation.md, step "Retire the old
 * CA").
 *
 * A device is judged by the CA of its latest admission: a device of the
 * old CA that has since come back with a certificate of the new one has
 * moved, and is not refused. Identities are as the gateway logged them
 * (device=); they are printed escaped, since a device chose them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs_report.h"
#include "jsonw.h"
#include "parse.h"
#include "sightfile.h"

/* A line of the state file. */
struct whatif_rec {
	char *device;
	char *ca;
	int64_t last;
};

/* A device, from all its lines (strings borrowed from them). */
struct whatif_dev {
	const char *device;
	const char *ca;          /* of the latest admission */
	int64_t last;
	const char *retired_ca;  /* a retired CA it was seen with, or NULL */
	int64_t retired_last;
};

struct whatif_set {
	const struct certs_opts *o;
	struct whatif_rec *recs;
	size_t nrecs, cap;
	struct whatif_dev *devs;
	size_t count;
	bool failed;
};

bool
certs_whatif_add(struct certs_opts *o, const char *spec, char *why,
    size_t why_len)
{
	const char *name = NULL;

	if (strncmp(spec, "retire:", 7) == 0 || strncmp(spec, "retire ", 7)
	    == 0) {
		name = spec + 7;
	} else if (strncmp(spec, "remove:", 7) == 0
	    || strncmp(spec, "remove ", 7) == 0) {
		name = spec + 7;
	}
	while (name != NULL && *name == ' ') {
		name++;
	}
	if (name != NULL && strncmp(name, "ca.", 3) == 0) {
		name += 3; /* "retire ca.old" as the section is written */
	}
	if (name == NULL || *name == '\0') {
		snprintf(why, why_len, "--what-if \"%s\": expected \"retire "
		    "NAME\" or \"retire:NAME\" (NAME of a [ca.NAME] section; "
		    "\"remove\" alike)", spec);
		return false;
	}
	if (o->what_if_count == CERTS_WHATIF_MAX) {
		snprintf(why, why_len, "--what-if: at most %d CAs at once",
		    CERTS_WHATIF_MAX);
		return false;
	}
	o->what_if[o->what_if_count++] = name;
	return true;
}

static bool
whatif_retired(const struct certs_opts *o, const char *ca)
{
	for (size_t i = 0; i < o->what_if_count; i++) {
		if (strcmp(o->what_if[i], ca) == 0) {
			return true;
		}
	}
	return false;
}

static void
whatif_note(void *arg, const struct sightfile_rec *rec)
{
	struct whatif_set *set = arg;
	struct whatif_rec *r;

	if (set->failed) {
		return;
	}
	if (set->nrecs == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 256;
		struct whatif_rec *grown = realloc(set->recs,
		    cap * sizeof(*grown));

		if (grown == NULL) {
			set->failed = true;
			return;
		}
		set->recs = grown;
		set->cap = cap;
	}
	r = &set->recs[set->nrecs];
	r->device = strdup(rec->device);
	r->ca = strdup(rec->ca);
	r->last = rec->last;
	if (r->device == NULL || r->ca == NULL) {
		free(r->device);
		free(r->ca);
		set->failed = true;
		return;
	}
	set->nrecs++;
}

static int
whatif_rec_cmp(const void *a, const void *b)
{
	const struct whatif_rec *x = a, *y = b;
	int c = strcmp(x->device, y->device);

	if (c != 0) {
		return c;
	}
	return x->last < y->last ? -1 : x->last > y->last;
}

/* One entry per device, folded from its lines sorted by time: sorting
 * keeps a state file of a large fleet at n log n. */
static bool
whatif_fold(struct whatif_set *set)
{
	qsort(set->recs, set->nrecs, sizeof(*set->recs), whatif_rec_cmp);
	set->devs = calloc(set->nrecs ? set->nrecs : 1, sizeof(*set->devs));
	if (set->devs == NULL) {
		return false;
	}
	for (size_t i = 0; i < set->nrecs; i++) {
		const struct whatif_rec *r = &set->recs[i];
		struct whatif_dev *d;

		if (set->count == 0 || strcmp(set->devs[set->count - 1].device,
		    r->device) != 0) {
			set->devs[set->count++].device = r->device;
		}
		d = &set->devs[set->count - 1];
		d->ca = r->ca;       /* sorted by time: the last one wins */
		d->last = r->last;
		if (whatif_retired(set->o, r->ca)) {
			d->retired_ca = r->ca;
			d->retired_last = r->last;
		}
	}
	return true;
}

static void
whatif_free(struct whatif_set *set)
{
	for (size_t i = 0; i < set->nrecs; i++) {
		free(set->recs[i].device);
		free(set->recs[i].ca);
	}
	free(set->recs);
	free(set->devs);
}

static bool
whatif_refused(const struct certs_opts *o, const struct whatif_dev *d)
{
	return d->ca != NULL && whatif_retired(o, d->ca);
}

static bool
whatif_moved(const struct certs_opts *o, const struct whatif_dev *d)
{
	return d->retired_ca != NULL && !whatif_refused(o, d);
}

/* Most recently seen first: those are the devices still out there. */
static int
whatif_by_last(const void *a, const void *b)
{
	const struct whatif_dev *x = a, *y = b;

	if (x->last != y->last) {
		return x->last > y->last ? -1 : 1;
	}
	return strcmp(x->device, y->device);
}

static void
whatif_text_dev(const struct whatif_dev *d, int64_t last, const char *ca,
    int64_t now, const char *how)
{
	char when[40], ago[48];

	parse_format_date(last, when, sizeof(when));
	certs_span(now - last, ago, sizeof(ago));
	printf("  ");
	certs_put_clean(d->device, 40, 40);
	printf("  last seen %s (%s ago) %s ca.%s\n", when, ago, how, ca);
}

static void
whatif_text(const struct certs_run *r, const struct whatif_set *set,
    size_t refused, size_t moved)
{
	const struct certs_opts *o = r->o;

	printf("what if ");
	for (size_t i = 0; i < o->what_if_count; i++) {
		printf("%sca.%s", i ? " and " : "", o->what_if[i]);
	}
	printf(" %s retired now (from %s, %zu %s known):\n",
	    o->what_if_count > 1 ? "were" : "was",
	    r->cfg->gateway.state_file.path, set->count, set->count == 1
	    ? "device" : "devices");
	if (refused == 0) {
		printf("no device would be refused\n");
	} else {
		printf("%zu %s would be refused (reason=retired-ca):\n", refused,
		    refused == 1 ? "device" : "devices");
	}
	for (size_t i = 0; i < set->count; i++) {
		if (whatif_refused(o, &set->devs[i])) {
			whatif_text_dev(&set->devs[i], set->devs[i].last,
			    set->devs[i].ca, r->now, "with");
		}
	}
	if (moved > 0) {
		printf("%zu %s moved to another CA since (not refused):\n", moved,
		    moved == 1 ? "device has" : "devices have");
		for (size_t i = 0; i < set->count; i++) {
			const struct whatif_dev *d = &set->devs[i];

			if (whatif_moved(o, d)) {
				whatif_text_dev(d, d->last, d->ca, r->now, "with");
			}
		}
	}
}

static void
whatif_json_dev(struct jsonw *w, const struct whatif_dev *d, bool moved)
{
	jsonw_obj(w);
	jsonw_kstr(w, "device", d->device);
	jsonw_kstr(w, "ca", d->ca);
	jsonw_kdate(w, "last_seen", d->last);
	if (moved) {
		jsonw_kstr(w, "from", d->retired_ca);
		jsonw_kdate(w, "last_seen_with_from", d->retired_last);
	}
	jsonw_end(w);
}

static bool
whatif_json(const struct certs_run *r, const struct whatif_set *set,
    size_t refused, int exit_code)
{
	struct jsonw w = {0};
	bool ok;

	jsonw_obj(&w);
	jsonw_kstr(&w, "config", r->o->config);
	jsonw_kdate(&w, "generated_at", r->now);
	jsonw_key(&w, "retire");
	jsonw_arr(&w);
	for (size_t i = 0; i < r->o->what_if_count; i++) {
		jsonw_str(&w, r->o->what_if[i]);
	}
	jsonw_end(&w);
	jsonw_kstr(&w, "state_file", r->cfg->gateway.state_file.path);
	jsonw_ku64(&w, "devices_known", set->count);
	jsonw_ku64(&w, "refused_count", refused);
	jsonw_key(&w, "refused");
	jsonw_arr(&w);
	for (size_t i = 0; i < set->count; i++) {
		if (whatif_refused(r->o, &set->devs[i])) {
			whatif_json_dev(&w, &set->devs[i], false);
		}
	}
	jsonw_end(&w);
	jsonw_key(&w, "moved");
	jsonw_arr(&w);
	for (size_t i = 0; i < set->count; i++) {
		if (whatif_moved(r->o, &set->devs[i])) {
			whatif_json_dev(&w, &set->devs[i], true);
		}
	}
	jsonw_end(&w);
	jsonw_ku64(&w, "exit_code", (uint64_t)exit_code);
	jsonw_end(&w);
	ok = !w.failed;
	if (ok) {
		printf("%s\n", w.buf);
	}
	jsonw_free(&w);
	return ok;
}

int
certs_whatif_run(const struct certs_run *r)
{
	const struct cfg *cfg = r->cfg;
	struct whatif_set set = {0};
	size_t skipped = 0, refused = 0, moved = 0;
	bool missing = false;
	char why[512];
	int rc;

	for (size_t i = 0; i < r->o->what_if_count; i++) {
		if (cfg_find_ca(cfg, r->o->what_if[i]) == NULL) {
			fprintf(stderr, "certbridge-certs: --what-if: %s has no "
			    "[ca.%s]; its device CAs are:", r->o->config,
			    r->o->what_if[i]);
			for (size_t k = 0; k < cfg->ca_count; k++) {
				fprintf(stderr, " %s", cfg->cas[k].name);
			}
			fprintf(stderr, "%s\n", cfg->ca_count ? "" : " none");
			return 3;
		}
	}
	if (cfg->gateway.state_file.path == NULL) {
		fprintf(stderr, "certbridge-certs: --what-if: [gateway] "
		    "state_file is not set in %s, so the gateway keeps no record "
		    "of which device each CA admitted; set it and let the "
		    "gateway run a while (docs/configuration.md)\n",
		    r->o->config);
		return 3;
	}
	set.o = r->o;
	if (!sightfile_read(cfg->gateway.state_file.path, whatif_note, &set,
	    &skipped, &missing, why, sizeof(why))) {
		fprintf(stderr, "certbridge-certs: --what-if: %s\n", why);
		whatif_free(&set);
		return 3;
	}
	if (set.failed || !whatif_fold(&set)) {
		fprintf(stderr, "certbridge-certs: --what-if: out of memory\n");
		whatif_free(&set);
		return 3;
	}
	if (missing) {
		fprintf(stderr, "certbridge-certs: --what-if: the state file "
		    "\"%s\" does not exist yet: the gateway writes it within a "
		    "minute of admitting devices (is it running with this "
		    "configuration?)\n", cfg->gateway.state_file.path);
		whatif_free(&set);
		return 3;
	}
	if (skipped > 0) {
		fprintf(stderr, "certbridge-certs: --what-if: %zu damaged "
		    "line(s) of \"%s\" skipped\n", skipped,
		    cfg->gateway.state_file.path);
	}
	qsort(set.devs, set.count, sizeof(*set.devs), whatif_by_last);
	for (size_t i = 0; i < set.count; i++) {
		refused += whatif_refused(r->o, &set.devs[i]);
		moved += whatif_moved(r->o, &set.devs[i]);
	}
	rc = refused > 0 ? 1 : 0;
	if (r->o->json) {
		if (!whatif_json(r, &set, refused, rc)) {
			fprintf(stderr, "certbridge-certs: out of memory\n");
			rc = 3;
		}
	} else {
		whatif_text(r, &set, refused, moved);
	}
	whatif_free(&set);
	return rc;
}

/*
 * certs_whatif.c - certbridge-certs --what-if (see certs_report.h): which
 * devices would be refused if a device CA were retired (or its section
 * removed) now, or a CRL applied to it, from the per-CA sightings the
 * gateway keeps in [gateway] state_file (common/sightfile.h; docs/
 * rotation.md, step "Ask who would be cut off").
 *
 * A CRL is checked as the gateway would check it: it must parse as a
 * complete CRL (common/crl.c) and be signed by a certificate of the CA's
 * file; a device of that CA whose last certificate's serial it lists would
 * be refused (revoked). Devices last seen before serials were recorded
 * cannot be told and are counted apart.
 *
 * A device is judged by the CA of its latest admission: a device of the
 * old CA that has since come back with a certificate of the new one has
 * moved, and is not refused. Identities are as the gateway logged them
 * (device=); they are printed escaped, since a device chose them.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs_report.h"
#include "crl.h"
#include "jsonw.h"
#include "parse.h"
#include "sightfile.h"
#include "util.h"
#include "x509.h"

/* A line of the state file. */
struct whatif_rec {
	char *device;
	char *ca;
	char *serial;      /* "" unknown */
	int64_t last;
};

/* A device, from all its lines (strings borrowed from them). */
struct whatif_dev {
	const char *device;
	const char *ca;          /* of the latest admission */
	const char *serial;      /* of its certificate then; "" unknown */
	int64_t last;
	const char *reason;      /* "retired-ca", "revoked", NULL */
	const char *retired_ca;  /* a retired CA it was seen with, or NULL */
	int64_t retired_last;
};

/* A CRL imagined applied: its facts and its DER (which they point into). */
struct whatif_crl {
	const char *ca;
	struct x509_crl_file file;
	struct crl_facts facts;
};

struct whatif_set {
	const struct certs_opts *o;
	struct whatif_crl crls[CERTS_WHATIF_MAX];
	size_t ncrls;
	struct whatif_rec *recs;
	size_t nrecs, cap;
	struct whatif_dev *devs;
	size_t count;
	bool failed;
};

/* "crl:NAME=FILE": NAME (or ca.NAME) and FILE are cut out of spec into
 * static storage of their own. */
static bool
whatif_add_crl(struct certs_opts *o, const char *spec, char *why,
    size_t why_len)
{
	static char names[CERTS_WHATIF_MAX][256];
	const char *p = spec + 4, *eq;
	size_t n;

	while (isspace((unsigned char)*p)) {
		p++;
	}
	if (strncmp(p, "ca.", 3) == 0) {
		p += 3;
	}
	eq = strchr(p, '=');
	n = eq != NULL ? (size_t)(eq - p) : 0;
	if (eq == NULL || n == 0 || n >= sizeof(names[0]) || eq[1] == '\0') {
		snprintf(why, why_len, "--what-if \"%s\": expected "
		    "\"crl:NAME=FILE\" (NAME of a [ca.NAME] section, FILE its "
		    "new CRL, PEM or DER)", spec);
		return false;
	}
	if (o->what_if_crl_count == CERTS_WHATIF_MAX) {
		snprintf(why, why_len, "--what-if: at most %d CRLs at once",
		    CERTS_WHATIF_MAX);
		return false;
	}
	memcpy(names[o->what_if_crl_count], p, n);
	names[o->what_if_crl_count][n] = '\0';
	o->what_if_crl[o->what_if_crl_count].ca = names[o->what_if_crl_count];
	o->what_if_crl[o->what_if_crl_count].file = eq + 1;
	o->what_if_crl_count++;
	return true;
}

/* Whether spec starts with verb and then ':' or blank space. */
static bool
whatif_verb(const char *spec, const char *verb)
{
	size_t n = strlen(verb);

	return strncmp(spec, verb, n) == 0 && (spec[n] == ':'
	    || isspace((unsigned char)spec[n]));
}

/* spec without the blank space around it (a question pasted from a
 * runbook, or typed with a tab), in static storage that outlives the
 * options; NULL when there is no room. */
static const char *
whatif_trimmed(const char *spec)
{
	static char kept[2 * CERTS_WHATIF_MAX][512];
	static size_t used;
	size_t n;

	while (isspace((unsigned char)*spec)) {
		spec++;
	}
	n = strlen(spec);
	while (n > 0 && isspace((unsigned char)spec[n - 1])) {
		n--;
	}
	if (used == CB_ARRAY_SIZE(kept) || n >= sizeof(kept[0])) {
		return NULL;
	}
	memcpy(kept[used], spec, n);
	kept[used][n] = '\0';
	return kept[used++];
}

bool
certs_whatif_add(struct certs_opts *o, const char *given, char *why,
    size_t why_len)
{
	const char *spec = whatif_trimmed(given);
	const char *name = NULL;

	if (spec == NULL) {
		snprintf(why, why_len, "--what-if \"%.64s\": too long, or too "
		    "many questions at once", given);
		return false;
	}
	if (whatif_verb(spec, "crl")) {
		return whatif_add_crl(o, spec, why, why_len);
	}
	if (whatif_verb(spec, "retire") || whatif_verb(spec, "remove")) {
		name = spec + 7;
		o->what_if_removed[o->what_if_count % CERTS_WHATIF_MAX] =
		    whatif_verb(spec, "remove");
	}
	while (name != NULL && isspace((unsigned char)*name)) {
		name++;
	}
	if (name != NULL && strncmp(name, "ca.", 3) == 0) {
		name += 3; /* "retire ca.old" as the section is written */
	}
	if (name == NULL || *name == '\0') {
		snprintf(why, why_len, "--what-if \"%s\": expected \"retire "
		    "NAME\" or \"retire:NAME\" (NAME of a [ca.NAME] section; "
		    "\"remove\" alike) or \"crl:NAME=FILE\"", spec);
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

/* Whether ca is one the questions retire or remove; *removed says which
 * (a removed section refuses its devices as unknown-ca, a retired one as
 * retired-ca). */
static bool
whatif_retired(const struct certs_opts *o, const char *ca, bool *removed)
{
	for (size_t i = 0; i < o->what_if_count; i++) {
		if (strcmp(o->what_if[i], ca) == 0) {
			if (removed != NULL) {
				*removed = o->what_if_removed[i];
			}
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
	r->serial = strdup(rec->serial);
	r->last = rec->last;
	if (r->device == NULL || r->ca == NULL || r->serial == NULL) {
		free(r->device);
		free(r->ca);
		free(r->serial);
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
	if (set->nrecs > 0) {
		qsort(set->recs, set->nrecs, sizeof(*set->recs),
		    whatif_rec_cmp);
	}
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
		d->serial = r->serial;
		d->last = r->last;
		if (whatif_retired(set->o, r->ca, NULL)) {
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
		free(set->recs[i].serial);
	}
	free(set->recs);
	free(set->devs);
	for (size_t i = 0; i < set->ncrls; i++) {
		crl_facts_free(&set->crls[i].facts);
		x509_crl_free(&set->crls[i].file);
	}
}

/* Reads, parses and checks each CRL of the question against its CA's
 * file, as the gateway would at a reload. False with the problem said. */
static bool
whatif_load_crls(struct whatif_set *set, const struct cfg *cfg)
{
	for (size_t i = 0; i < set->o->what_if_crl_count; i++) {
		const char *name = set->o->what_if_crl[i].ca;
		const char *path = set->o->what_if_crl[i].file;
		const struct cfg_ca *ca = cfg_find_ca(cfg, name);
		struct whatif_crl *c = &set->crls[set->ncrls];
		char why[X509_WHY_LEN], cwhy[CRL_WHY_LEN];
		struct x509_list certs = {0};
		WOLFSSL_CERT_MANAGER *cm;
		bool signed_ok = false;

		if (ca == NULL) {
			fprintf(stderr, "certbridge-certs: --what-if: %s has no "
			    "[ca.%s]\n", set->o->config, name);
			return false;
		}
		c->ca = ca->name;
		if (!x509_crl_read(path, &c->file, why)) {
			fprintf(stderr, "certbridge-certs: --what-if: %s\n", why);
			return false;
		}
		set->ncrls++;
		if (!crl_parse(c->file.data, c->file.len, &c->facts, cwhy)) {
			fprintf(stderr, "certbridge-certs: --what-if: \"%s\": %s\n",
			    path, cwhy);
			return false;
		}
		/* Signed by a certificate of the CA's file: wolfSSL checks
		 * that when it loads the CRL (dates aside: a CRL of the
		 * future is a fair question). */
		cm = wolfSSL_CertManagerNew();
		if (cm != NULL && x509_load_file(ca->file.path, &certs, why)) {
			for (size_t k = 0; k < certs.count; k++) {
				int len = 0;
				const unsigned char *der = wolfSSL_X509_get_der(
				    certs.certs[k], &len);

				if (der != NULL) {
					wolfSSL_CertManagerLoadCABuffer(cm, der,
					    len, WOLFSSL_FILETYPE_ASN1);
				}
			}
			signed_ok = wolfSSL_CertManagerEnableCRL(cm, 0)
			    == WOLFSSL_SUCCESS
			    && wolfSSL_CertManagerLoadCRLBuffer(cm,
			    c->file.data, (long)c->file.len, c->file.format)
			    == WOLFSSL_SUCCESS;
		}
		x509_list_free(&certs);
		if (cm != NULL) {
			wolfSSL_CertManagerFree(cm);
		}
		if (!signed_ok) {
			fprintf(stderr, "certbridge-certs: --what-if: \"%s\" is not "
			    "a CRL signed by a CA of \"%s\" ([ca.%s]), or it is "
			    "past its nextUpdate; the gateway would refuse it "
			    "too\n", path, ca->file.path, ca->name);
			return false;
		}
	}
	return true;
}

static int
whatif_hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'A' + 10;
}

/* Whether crl lists the serial recorded as hex. */
static bool
whatif_listed(const struct whatif_crl *crl, const char *hex)
{
	uint8_t bytes[SIGHTFILE_SERIAL_MAX];
	size_t n = strlen(hex) / 2;
	struct der_span serial;

	for (size_t i = 0; i < n && i < sizeof(bytes); i++) {
		bytes[i] = (uint8_t)(whatif_hexval(hex[2 * i]) << 4
		    | whatif_hexval(hex[2 * i + 1]));
	}
	serial.ptr = bytes;
	serial.len = n;
	return n > 0 && n <= sizeof(bytes) && crl_lists(&crl->facts, serial);
}

/* Why each device would be refused (retired first: it needs no CRL), and
 * how many could not be told for want of a recorded serial. */
static size_t
whatif_judge(struct whatif_set *set)
{
	size_t unknown = 0;

	for (size_t i = 0; i < set->count; i++) {
		struct whatif_dev *d = &set->devs[i];

		bool removed = false;

		if (whatif_retired(set->o, d->ca, &removed)) {
			d->reason = removed ? "unknown-ca" : "retired-ca";
			continue;
		}
		for (size_t k = 0; k < set->ncrls; k++) {
			if (strcmp(set->crls[k].ca, d->ca) != 0) {
				continue;
			}
			if (d->serial[0] == '\0') {
				unknown++;
			} else if (whatif_listed(&set->crls[k], d->serial)) {
				d->reason = "revoked";
			}
		}
	}
	return unknown;
}

static bool
whatif_refused(const struct whatif_dev *d)
{
	return d->reason != NULL;
}

static bool
whatif_moved(const struct whatif_dev *d)
{
	return d->retired_ca != NULL && !whatif_refused(d);
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
whatif_text_dev(const struct whatif_dev *d, int64_t now, const char *tail)
{
	char when[40], ago[48];

	parse_format_date(d->last, when, sizeof(when));
	certs_span(now - d->last, ago, sizeof(ago));
	printf("  ");
	certs_put_clean(d->device, 40, 40);
	printf("  last seen %s (%s ago) with ca.%s%s\n", when, ago, d->ca,
	    tail);
}

static void
whatif_text(const struct certs_run *r, const struct whatif_set *set,
    size_t refused, size_t moved, size_t unknown)
{
	const struct certs_opts *o = r->o;
	size_t asked = 0;

	printf("what if ");
	for (size_t i = 0; i < o->what_if_count; i++, asked++) {
		printf(o->what_if_removed[i] ? "%sca.%s were removed"
		    : "%sca.%s were retired", asked ? " and " : "",
		    o->what_if[i]);
	}
	for (size_t i = 0; i < set->ncrls; i++, asked++) {
		printf("%sca.%s had the CRL %s", asked ? " and " : "",
		    set->crls[i].ca, o->what_if_crl[i].file);
	}
	printf(" now (from %s, %zu %s known):\n",
	    r->cfg->gateway.state_file.path, set->count, set->count == 1
	    ? "device" : "devices");
	/* One form for every count, so "N devices? would be refused" is
	 * what a pipeline greps for, 0 included. */
	printf("%zu %s would be refused%s\n", refused, refused == 1 ? "device"
	    : "devices", refused > 0 ? ":" : "");
	for (size_t i = 0; i < set->count; i++) {
		const struct whatif_dev *d = &set->devs[i];
		char tail[64];

		if (whatif_refused(d)) {
			snprintf(tail, sizeof(tail), ": reason=%s", d->reason);
			whatif_text_dev(d, r->now, tail);
		}
	}
	if (moved > 0) {
		printf("%zu %s moved to another CA since (not refused):\n", moved,
		    moved == 1 ? "device has" : "devices have");
		for (size_t i = 0; i < set->count; i++) {
			if (whatif_moved(&set->devs[i])) {
				whatif_text_dev(&set->devs[i], r->now, "");
			}
		}
	}
	if (unknown > 0) {
		printf("%zu %s of the CRL's CA cannot be told: last seen before "
		    "the gateway recorded serials (they are when they next "
		    "connect)\n", unknown, unknown == 1 ? "device" : "devices");
	}
}

static void
whatif_json_dev(struct jsonw *w, const struct whatif_dev *d, bool moved)
{
	jsonw_obj(w);
	jsonw_kstr(w, "device", d->device);
	jsonw_kstr(w, "ca", d->ca);
	jsonw_kdate(w, "last_seen", d->last);
	if (d->serial[0] != '\0') {
		jsonw_kstr(w, "serial", d->serial);
	} else {
		jsonw_key(w, "serial");
		jsonw_null(w);
	}
	if (moved) {
		jsonw_kstr(w, "from", d->retired_ca);
		jsonw_kdate(w, "last_seen_with_from", d->retired_last);
	} else {
		jsonw_kstr(w, "reason", d->reason);
	}
	jsonw_end(w);
}

static bool
whatif_json(const struct certs_run *r, const struct whatif_set *set,
    size_t refused, size_t unknown, int exit_code)
{
	struct jsonw w = {0};
	bool ok;

	jsonw_obj(&w);
	jsonw_kstr(&w, "config", r->o->config);
	jsonw_kdate(&w, "generated_at", r->now);
	for (int removed = 0; removed <= 1; removed++) {
		jsonw_key(&w, removed ? "remove" : "retire");
		jsonw_arr(&w);
		for (size_t i = 0; i < r->o->what_if_count; i++) {
			if (r->o->what_if_removed[i] == (removed == 1)) {
				jsonw_str(&w, r->o->what_if[i]);
			}
		}
		jsonw_end(&w);
	}
	jsonw_key(&w, "crl");
	jsonw_arr(&w);
	for (size_t i = 0; i < set->ncrls; i++) {
		jsonw_obj(&w);
		jsonw_kstr(&w, "ca", set->crls[i].ca);
		jsonw_kstr(&w, "file", r->o->what_if_crl[i].file);
		jsonw_ku64(&w, "revoked_serials", set->crls[i].facts.count);
		jsonw_end(&w);
	}
	jsonw_end(&w);
	jsonw_kstr(&w, "state_file", r->cfg->gateway.state_file.path);
	jsonw_ku64(&w, "devices_known", set->count);
	jsonw_ku64(&w, "refused_count", refused);
	jsonw_key(&w, "refused");
	jsonw_arr(&w);
	for (size_t i = 0; i < set->count; i++) {
		if (whatif_refused(&set->devs[i])) {
			whatif_json_dev(&w, &set->devs[i], false);
		}
	}
	jsonw_end(&w);
	jsonw_key(&w, "moved");
	jsonw_arr(&w);
	for (size_t i = 0; i < set->count; i++) {
		if (whatif_moved(&set->devs[i])) {
			whatif_json_dev(&w, &set->devs[i], true);
		}
	}
	jsonw_end(&w);
	jsonw_ku64(&w, "unknown_count", unknown);
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
	size_t skipped = 0, refused = 0, moved = 0, unknown;
	bool missing = false;
	char why[512];
	int rc = 3;

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
	if (!whatif_load_crls(&set, cfg)) {
		goto out;
	}
	if (!sightfile_read(cfg->gateway.state_file.path, whatif_note, &set,
	    &skipped, &missing, why, sizeof(why))) {
		fprintf(stderr, "certbridge-certs: --what-if: %s\n", why);
		goto out;
	}
	if (set.failed || !whatif_fold(&set)) {
		fprintf(stderr, "certbridge-certs: --what-if: out of memory\n");
		goto out;
	}
	if (missing) {
		fprintf(stderr, "certbridge-certs: --what-if: the state file "
		    "\"%s\" does not exist yet: the gateway writes it within a "
		    "minute of admitting devices (is it running with this "
		    "configuration?)\n", cfg->gateway.state_file.path);
		goto out;
	}
	if (skipped > 0) {
		fprintf(stderr, "certbridge-certs: --what-if: %zu damaged "
		    "line(s) of \"%s\" skipped\n", skipped,
		    cfg->gateway.state_file.path);
	}
	qsort(set.devs, set.count, sizeof(*set.devs), whatif_by_last);
	unknown = whatif_judge(&set);
	for (size_t i = 0; i < set.count; i++) {
		refused += whatif_refused(&set.devs[i]);
		moved += whatif_moved(&set.devs[i]);
	}
	rc = refused > 0 ? 1 : 0;
	if (r->o->json) {
		if (!whatif_json(r, &set, refused, unknown, rc)) {
			fprintf(stderr, "certbridge-certs: out of memory\n");
			rc = 3;
		}
	} else {
		whatif_text(r, &set, refused, moved, unknown);
	}
out:
	whatif_free(&set);
	return rc;
}

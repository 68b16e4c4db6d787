/*
 * certbridge-certs - the certificate inventory of a configuration
 * (docs/rotation.md, "Seeing the next rotation coming"), as a table for
 * people or JSON for scripts.
 *
 *   certbridge-certs -c FILE [--warn 30d] [--crit 7d] [--wide] [--json]
 *   certbridge-certs -c FILE --what-if 'retire NAME' [--json]
 *       (tools/certs_whatif.c: 0 "0 devices would be refused", 1 some
 *       would, 3 the question cannot be answered)
 *
 * Exit codes follow the monitoring-plugin convention, highest wins:
 *   0 OK, 1 WARNING (a certificate or CRL ends, or a CA's retire_after
 *   comes, within --warn; a retire_after passed),
 *   2 CRITICAL (ends or retires within --crit, has ended, or is not valid
 *   yet),
 *   3 UNKNOWN (usage, configuration or file errors, a key file that is not
 *   its certificate's: certinv_check_keys).
 * Certificates of a large root bundle (the system's) are listed but their
 * dates are not judged.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certinv.h"
#include "certs_report.h"
#include "clock.h"
#include "config.h"
#include "jsonw.h"
#include "parse.h"
#include "util.h"
#include "version.h"

#define PROG "certbridge-certs"

enum certs_exit {
	CERTS_OK = 0,
	CERTS_WARNING = 1,
	CERTS_CRITICAL = 2,
	CERTS_UNKNOWN = 3,
};

#define USAGE_LINE "usage: " PROG " -c FILE [--warn 30d] [--crit 7d] [--wide] " \
    "[--json]\n       " PROG " -c FILE --what-if 'retire NAME' [--json]\n"

/* A usage error: the synopsis only, on stderr, and exit 3 (UNKNOWN). */
static int
usage_error(void)
{
	fprintf(stderr, USAGE_LINE "(" PROG " -h for help)\n");
	return -1;
}

static void
usage(FILE *out)
{
	fprintf(out, USAGE_LINE
	    "       " PROG " -h | -V\n"
	    "Lists every certificate and CRL the certbridge configuration FILE "
	    "names,\nwith subject, issuer, validity, days left and SHA-256 "
	    "fingerprint.\n"
	    "  -c, --config FILE  the certbridge INI file\n"
	    "  --warn DURATION    warn when a certificate ends within it "
	    "(default 30d)\n"
	    "  --crit DURATION    critical when it ends within it (default "
	    "7d)\n"
	    "  --wide             every column whole (the table fits 100 "
	    "columns without it)\n"
	    "  --what-if 'retire NAME'\n"
	    "  --what-if 'crl:NAME=FILE'\n"
	    "                     which devices would be refused if [ca.NAME] "
	    "were retired\n"
	    "                     now, or its CRL were FILE, from [gateway] "
	    "state_file (also\n"
	    "                     retire:NAME, remove NAME; repeatable); exit 0 "
	    "none, 1 some,\n"
	    "                     3 cannot tell\n"
	    "  --json             one JSON object instead of the table\n"
	    "Exit: 0 ok, 1 warning, 2 critical (also expired or not yet "
	    "valid),\n      3 unknown (usage, configuration or file "
	    "errors).\n");
}

/* The value of option name at argv[*i], as "name VALUE" or "name=VALUE";
 * NULL when argv[*i] is not that option. *missing is set when the option
 * is there without a value. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strcmp(a, name) == 0) {
		if (*i + 1 >= argc) {
			*missing = true;
			return NULL;
		}
		return argv[++*i];
	}
	if (strncmp(a, name, n) == 0 && a[n] == '=') {
		return a + n + 1;
	}
	return NULL;
}

/* 0: run; 1: done (help or version printed); -1: usage error (printed). */
static int
parse_args(int argc, char **argv, struct certs_opts *o)
{
	char why[PARSE_WHY_LEN];
	int64_t *dst;
	const char *v;
	bool missing = false;

	memset(o, 0, sizeof(*o));
	o->warn_ms = CERTTIME_WARN_DAYS * DAY_MS;
	o->crit_ms = CERTTIME_CRIT_DAYS * DAY_MS;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf(PROG " %s\n", CERTBRIDGE_VERSION);
			return 1;
		}
		missing = false;
		if ((v = opt_value(argc, argv, &i, "--what-if", &missing))
		    != NULL) {
			if (!certs_whatif_add(o, v, why, sizeof(why))) {
				fprintf(stderr, PROG ": %s\n", why);
				return usage_error();
			}
			continue;
		}
		if (missing) {
			fprintf(stderr, PROG ": --what-if needs a value, as in "
			    "--what-if 'retire NAME'\n");
			return usage_error();
		}
		if (strcmp(a, "--wide") == 0) {
			o->wide = true;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		dst = NULL;
		if ((v = opt_value(argc, argv, &i, "-c", &missing)) == NULL
		    && !missing) {
			v = opt_value(argc, argv, &i, "--config", &missing);
		}
		if (v == NULL && !missing && strncmp(a, "-c", 2) == 0
		    && a[2] != '\0') {
			v = a + 2; /* -cFILE */
		}
		if (v == NULL && !missing) {
			dst = &o->warn_ms;
			v = opt_value(argc, argv, &i, "--warn", &missing);
		}
		if (v == NULL && !missing) {
			dst = &o->crit_ms;
			v = opt_value(argc, argv, &i, "--crit", &missing);
		}
		if (missing) {
			fprintf(stderr, PROG ": %s needs a value\n", a);
			return usage_error();
		}
		if (v == NULL) {
			fprintf(stderr, PROG ": unknown argument \"%s\"\n", a);
			return usage_error();
		}
		if (dst == NULL) {
			o->config = v;
			continue;
		}
		if (!parse_duration_ms(v, dst, why)) {
			fprintf(stderr, PROG ": %s: \"%s\": %s\n",
			    dst == &o->warn_ms ? "--warn" : "--crit", v, why);
			return usage_error();
		}
	}
	if (o->config == NULL || o->config[0] == '\0') {
		fprintf(stderr, PROG ": -c FILE is required\n");
		return usage_error();
	}
	return 0;
}

/* ------------------------------------------------------------ strings */


/* A JSON string (common/jsonw does the escaping); NULL prints null. */
static void
json_str(const char *s)
{
	struct jsonw w = {0};

	if (s == NULL) {
		fputs("null", stdout);
		return;
	}
	jsonw_str(&w, s);
	fputs(w.failed ? "null" : w.buf, stdout);
	jsonw_free(&w);
}

static void
json_date(int64_t epoch, bool present)
{
	char d[40];

	if (!present) {
		fputs("null", stdout);
		return;
	}
	parse_format_date(epoch, d, sizeof(d));
	json_str(d);
}

/* Appends to a fixed buffer; text beyond its end is dropped. */
static void CB_PRINTF(3, 4)
append(char *buf, size_t cap, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= cap) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, cap - used, fmt, ap);
	va_end(ap);
}

static const char *
plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* ------------------------------------------------------------ judging */

bool
certs_is_crl(const struct certinv_item *it)
{
	return it->role == CERTINV_CRL;
}

bool
certs_has_end(const struct certinv_item *it)
{
	return !certs_is_crl(it) || it->not_after != 0;
}

enum certinv_level
certs_level(const struct certs_run *r, const struct certinv_item *it)
{
	return certinv_level_of(it, r->now, r->o->warn_ms / 1000,
	    r->o->crit_ms / 1000);
}

const char *
certs_status_name(const struct certs_run *r, const struct certinv_item *it)
{
	return it->in_bundle ? "not-judged" : certinv_level_name(certs_level(r, it));
}

/* "ca.old expires in 20 days", "downstream (certificate 2 of 2) expired
 * 3 days ago", "ca.old CRL is stale since 2026-...", ... */
static void
describe(const struct certs_run *r, const struct certinv_item *it,
    enum certinv_level lv, char *out, size_t cap)
{
	char what[CERTINV_NAME_LEN + 48], s[48], d[40];

	snprintf(what, sizeof(what), "%s%s", it->name, certs_is_crl(it) ? " CRL"
	    : "");
	if (it->of > 1) {
		append(what, sizeof(what), " (certificate %zu of %zu)",
		    it->index, it->of);
	}
	if (lv == CERTINV_NOT_YET_VALID) {
		parse_format_date(it->not_before, d, sizeof(d));
		snprintf(out, cap, "%s is not valid until %s", what, d);
	} else if (lv == CERTINV_EXPIRED && certs_is_crl(it)) {
		parse_format_date(it->not_after, d, sizeof(d));
		snprintf(out, cap, "%s is stale since %s", what, d);
	} else if (lv == CERTINV_EXPIRED) {
		certs_span(r->now - it->not_after, s, sizeof(s));
		snprintf(out, cap, "%s expired %s ago", what, s);
	} else {
		certs_span(it->not_after - r->now, s, sizeof(s));
		snprintf(out, cap, "%s %s %s", what, certs_is_crl(it)
		    ? "must be replaced within" : "expires in", s);
	}
}

/* A [ca.NAME] retire_after stops devices as surely as an expiry: within
 * --warn a warning, within --crit critical. Once past it is a warning
 * (the retirement happened, on purpose or not: the section is due for
 * removal), not a page for ever. */
static enum certinv_level
retire_level(const struct certs_run *r, const struct cfg_ca *ca)
{
	int64_t left;

	if (!ca->has_retire_after) {
		return CERTINV_OK;
	}
	left = ca->retire_after - r->now;
	if (left <= 0) {
		return CERTINV_WARN;
	}
	if (left < r->o->crit_ms / 1000) {
		return CERTINV_CRIT;
	}
	return left < r->o->warn_ms / 1000 ? CERTINV_WARN : CERTINV_OK;
}

/* "ca.old retires in 2 days (retire_after 2027-06-30...)" */
static void
describe_retire(const struct certs_run *r, const struct cfg_ca *ca,
    char *out, size_t cap)
{
	char s[48], d[40];

	parse_format_date(ca->retire_after, d, sizeof(d));
	if (ca->retire_after <= r->now) {
		certs_span(r->now - ca->retire_after, s, sizeof(s));
		snprintf(out, cap, "ca.%s retired %s ago (retire_after %s)",
		    ca->name, s, d);
	} else {
		certs_span(ca->retire_after - r->now, s, sizeof(s));
		snprintf(out, cap, "ca.%s retires in %s (retire_after %s)",
		    ca->name, s, d);
	}
}

/* Names the first LISTED_MAX items (then retirements) whose level makes
 * them one of this group (critical or warning) in the summary. */
static void
summarise_group(struct certs_run *r, bool critical, size_t count)
{
	char one[CERTINV_NAME_LEN + 160];
	size_t named = 0;

	if (critical) {
		append(r->summary, sizeof(r->summary), "%zu critical", count);
	} else {
		append(r->summary, sizeof(r->summary), "%zu %s", count,
		    plural(count, "warning", "warnings"));
	}
	for (size_t i = 0; i < r->inv->count && named < count; i++) {
		const struct certinv_item *it = &r->inv->items[i];
		enum certinv_level lv = certs_level(r, it);

		if (lv == CERTINV_OK || (lv == CERTINV_WARN) == critical) {
			continue;
		}
		if (named == LISTED_MAX) {
			append(r->summary, sizeof(r->summary), ", and %zu more",
			    count - named);
			break;
		}
		describe(r, it, lv, one, sizeof(one));
		append(r->summary, sizeof(r->summary), "%s%s", named == 0
		    ? " (" : ", ", one);
		named++;
	}
	for (size_t i = 0; r->cfg != NULL && i < r->cfg->ca_count
	    && named < count; i++) {
		enum certinv_level lv = retire_level(r, &r->cfg->cas[i]);

		if (lv == CERTINV_OK || (lv == CERTINV_WARN) == critical) {
			continue;
		}
		if (named == LISTED_MAX) {
			append(r->summary, sizeof(r->summary), ", and %zu more",
			    count - named);
			break;
		}
		describe_retire(r, &r->cfg->cas[i], one, sizeof(one));
		append(r->summary, sizeof(r->summary), "%s%s", named == 0
		    ? " (" : ", ", one);
		named++;
	}
	if (named > 0) {
		append(r->summary, sizeof(r->summary), ")");
	}
}

/* Counts one level into r; returns the exit code worst becomes. */
static int
tally(struct certs_run *r, enum certinv_level lv, int worst)
{
	switch (lv) {
	case CERTINV_OK:
		return worst;
	case CERTINV_WARN:
		r->warnings++;
		return worst > CERTS_WARNING ? worst : CERTS_WARNING;
	default:
		r->criticals++;
		return CERTS_CRITICAL;
	}
}

static void
judge(struct certs_run *r)
{
	int worst = CERTS_OK;

	for (size_t i = 0; i < r->inv->count; i++) {
		const struct certinv_item *it = &r->inv->items[i];

		if (it->in_bundle) {
			r->bundle_certs++;
			r->bundles += it->index == 1;
			continue;
		}
		*(certs_is_crl(it) ? &r->crls : &r->certs) += 1;
		worst = tally(r, certs_level(r, it), worst);
	}
	for (size_t i = 0; r->cfg != NULL && i < r->cfg->ca_count; i++) {
		worst = tally(r, retire_level(r, &r->cfg->cas[i]), worst);
	}
	r->errors = r->diag->errors + r->inv->error_count;
	if (!r->cfg_ok && r->errors == 0) {
		r->errors = 1; /* cfg_load failed without a line: memory */
	}
	r->exit_code = r->errors > 0 ? CERTS_UNKNOWN : worst;

	snprintf(r->summary, sizeof(r->summary), PROG ": ");
	if (!r->cfg_ok) {
		append(r->summary, sizeof(r->summary), "configuration error: "
		    "%zu %s in %s; no certificate checked", r->errors,
		    plural(r->errors, "error", "errors"), r->o->config);
		return;
	}
	append(r->summary, sizeof(r->summary), "%zu %s, %zu %s", r->certs,
	    plural(r->certs, "certificate", "certificates"), r->crls,
	    plural(r->crls, "CRL", "CRLs"));
	if (r->bundles > 0) {
		append(r->summary, sizeof(r->summary), ", %zu %s of %zu roots "
		    "(not judged)", r->bundles, plural(r->bundles, "bundle",
		    "bundles"), r->bundle_certs);
	}
	append(r->summary, sizeof(r->summary), ": ");
	summarise_group(r, false, r->warnings);
	append(r->summary, sizeof(r->summary), ", ");
	summarise_group(r, true, r->criticals);
	if (r->errors > 0) {
		append(r->summary, sizeof(r->summary), ", %zu %s%s", r->errors,
		    plural(r->errors, "error", "errors"), r->o->json ? ""
		    : " (listed on stderr)");
	}
}

/* ------------------------------------------------------------ JSON */

static void
json_lines(const char *key, const struct certs_run *r, bool errors)
{
	bool first = true;

	printf(",\n  \"%s\": [", key);
	for (size_t i = 0; i < r->diag->count; i++) {
		if (r->diag->is_error[i] == errors) {
			printf("%s\n    ", first ? "" : ",");
			json_str(r->diag->lines[i]);
			first = false;
		}
	}
	for (size_t i = 0; errors && i < r->inv->error_count; i++) {
		printf("%s\n    ", first ? "" : ",");
		json_str(r->inv->errors[i]);
		first = false;
	}
	printf("%s]", first ? "" : "\n  ");
}

static void
json_item(const struct certs_run *r, const struct certinv_item *it)
{
	printf("    {\"role\": ");
	json_str(certinv_role_name(it->role));
	printf(", \"name\": ");
	json_str(it->name);
	printf(", \"file\": ");
	json_str(it->path);
	printf(", \"line\": %u, \"index\": %zu, \"of\": %zu,\n"
	    "     \"subject\": ", it->line, it->index, it->of);
	json_str(it->subject);
	printf(", \"issuer\": ");
	json_str(it->issuer);
	printf(",\n     \"not_before\": ");
	json_date(it->not_before, it->not_before != 0 || !certs_is_crl(it));
	printf(", \"not_after\": ");
	json_date(it->not_after, certs_has_end(it));
	if (certs_has_end(it)) {
		printf(", \"days_left\": %" PRId64 ", \"seconds_left\": %"
		    PRId64, certinv_days_left(it, r->now),
		    it->not_after - r->now);
	} else {
		printf(", \"days_left\": null, \"seconds_left\": null");
	}
	printf(", \"status\": ");
	json_str(certs_status_name(r, it));
	printf(",\n     \"fingerprint_sha256\": ");
	json_str(certs_is_crl(it) ? NULL : it->fingerprint);
	printf(", \"is_ca\": %s, \"in_bundle\": %s}", it->is_ca ? "true"
	    : "false", it->in_bundle ? "true" : "false");
}

static void
print_json(const struct certs_run *r)
{
	static const char *const status[] = {
		[CERTS_OK] = "ok", [CERTS_WARNING] = "warning",
		[CERTS_CRITICAL] = "critical", [CERTS_UNKNOWN] = "error",
	};
	char d[40];

	parse_format_date(r->now, d, sizeof(d));
	printf("{\n  \"config\": ");
	json_str(r->o->config);
	printf(",\n  \"generated_at\": \"%s\",\n  \"warn_days\": %.10g,\n"
	    "  \"crit_days\": %.10g,\n  \"status\": \"%s\",\n"
	    "  \"exit_code\": %d,\n  \"summary\": ", d,
	    (double)r->o->warn_ms / DAY_MS, (double)r->o->crit_ms / DAY_MS,
	    status[r->exit_code], r->exit_code);
	json_str(r->summary);
	printf(",\n  \"certificates\": [");
	for (size_t i = 0; i < r->inv->count; i++) {
		printf("%s\n", i == 0 ? "" : ",");
		json_item(r, &r->inv->items[i]);
	}
	printf("%s]", r->inv->count > 0 ? "\n  " : "");
	json_lines("errors", r, true);
	json_lines("warnings", r, false);
	printf("\n}\n");
}

/* ------------------------------------------------------------ main */

static int
run(const struct certs_opts *o)
{
	struct cfg_diag diag = {0};
	struct certinv inv = {0};
	struct certs_run r = {0};
	struct cfg *cfg;
	int rc;

	r.o = o;
	r.now = clock_wall_s();
	r.diag = &diag;
	r.inv = &inv;
	cfg = cfg_load(o->config, &diag);
	for (size_t i = 0; i < diag.count; i++) {
		fprintf(stderr, "%s\n", diag.lines[i]);
	}
	r.cfg_ok = cfg != NULL;
	r.cfg = cfg;
	if (o->what_if_count > 0 || o->what_if_crl_count > 0) {
		/* A question about devices, not an inventory: the errors of
		 * the configuration above make it unanswerable. */
		rc = cfg != NULL ? certs_whatif_run(&r) : CERTS_UNKNOWN;
		goto out;
	}
	if (cfg != NULL && (!certinv_build(cfg, &inv)
	    || !certinv_check_keys(cfg, &inv))) {
		fprintf(stderr, PROG ": out of memory\n");
		rc = CERTS_UNKNOWN;
		goto out;
	}
	for (size_t i = 0; i < inv.error_count; i++) {
		fprintf(stderr, "%s\n", inv.errors[i]);
	}
	judge(&r);
	if (o->json) {
		print_json(&r);
	} else {
		certs_print_text(&r);
	}
	rc = r.exit_code;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": cannot write the report\n");
		rc = CERTS_UNKNOWN;
	}
out:
	certinv_free(&inv);
	cfg_free(cfg);
	cfg_diag_free(&diag);
	return rc;
}

int
main(int argc, char **argv)
{
	struct certs_opts o;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0) {
		return rc > 0 ? CERTS_OK : CERTS_UNKNOWN;
	}
	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		fprintf(stderr, PROG ": wolfSSL failed to initialise\n");
		return CERTS_UNKNOWN;
	}
	rc = run(&o);
	wolfSSL_Cleanup();
	return rc;
}

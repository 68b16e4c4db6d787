/*
 * certs_report.h - what certbridge-certs found, shared by its judging and
 * JSON (tools/certbridge-certs.c) and its tables (tools/certs_text.c).
 */
#ifndef CB_CERTS_REPORT_H
#define CB_CERTS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certinv.h"
#include "config.h"

#define DAY_MS (CERTTIME_DAY_S * 1000LL)
#define LISTED_MAX 3    /* problems named in the summary line */

#define CERTS_WHATIF_MAX 8

struct certs_opts {
	const char *config;
	int64_t warn_ms;
	int64_t crit_ms;
	bool json;
	bool wide;          /* every column and every detail, however wide */
	/* --what-if "retire NAME" (or "remove NAME", what_if_removed): the
	 * CAs to imagine retired (or their sections removed). */
	const char *what_if[CERTS_WHATIF_MAX];
	bool what_if_removed[CERTS_WHATIF_MAX];
	size_t what_if_count;
	/* --what-if "crl:NAME=FILE": CRLs to imagine applied. */
	struct {
		const char *ca;
		const char *file;
	} what_if_crl[CERTS_WHATIF_MAX];
	size_t what_if_crl_count;
};

/* What the run found, judged once and shared by both output forms. */
struct certs_run {
	const struct certs_opts *o;
	int64_t now;
	const struct cfg_diag *diag;
	const struct cfg *cfg;       /* NULL when the configuration failed */
	const struct certinv *inv;   /* empty when the configuration failed */
	bool cfg_ok;
	size_t certs, crls, bundles, bundle_certs, warnings, criticals;
	size_t errors;
	int exit_code;
	char summary[2048];
};

bool certs_is_crl(const struct certinv_item *it);
/* Whether the item has an end date (a CRL may have no nextUpdate). */
bool certs_has_end(const struct certinv_item *it);
enum certinv_level certs_level(const struct certs_run *r,
    const struct certinv_item *it);
const char *certs_status_name(const struct certs_run *r,
    const struct certinv_item *it);

/* Prints s for a terminal: control bytes and invalid UTF-8 become "?".
 * When s has more than max characters (max 0: no limit), only its last
 * max - 3 are printed after "...": the end of a distinguished name or a
 * path is its most specific part. Pads with blanks to width characters.
 * Returns whether s was shortened. */
bool certs_put_clean(const char *s, size_t max, size_t width);
/* "20 days", "5 hours", "12 minutes", "less than 2 minutes". */
void certs_span(int64_t s, char *out, size_t cap);

/* The table, then the dates that stop devices, then the summary line:
 * within 100 columns, or everything with opts wide. */
void certs_print_text(const struct certs_run *r);

/* Parses one --what-if value ("retire NAME", "retire:NAME", "remove ...",
 * "crl:NAME=FILE"); false with why filled for anything else. spec must
 * outlive the options (an argv string). */
bool certs_whatif_add(struct certs_opts *o, const char *spec, char *why,
    size_t why_len);
/* Answers the --what-if questions of r->o from the state file of r->cfg
 * (not NULL), as text or JSON. Returns the exit code: 0 no device would be
 * refused, 1 some would, 3 the question cannot be answered (no such CA,
 * no state file), said on stderr. */
int certs_whatif_run(const struct certs_run *r);

#endif

/*
 * testsum.c - the summary line of `certbridge -t` (see testsum.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "testsum.h"

static const char *
testsum_plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* "5 certificates, 2 CAs (nearest expiry 2027-03-01), " and the note on
 * bundled roots, from what the configuration names. */
static void
testsum_counts(const struct cfg *cfg, const struct certinv *inv, char *out,
    size_t cap, char *more, size_t more_cap)
{
	size_t certs = 0, bundled = 0;
	int64_t nearest = 0;
	char when[40] = "";

	for (size_t i = 0; i < inv->count; i++) {
		const struct certinv_item *it = &inv->items[i];

		if (it->role == CERTINV_CRL) {
			continue;
		}
		if (it->in_bundle) {
			bundled++;
			continue;
		}
		certs++;
		if (it->not_after != 0 && (nearest == 0
		    || it->not_after < nearest)) {
			nearest = it->not_after;
		}
	}
	if (nearest != 0) {
		char date[40];

		/* The day of the full date; no gmtime, whose time_t may not
		 * reach the date (32-bit on armhf). */
		parse_format_date(nearest, date, sizeof(date));
		snprintf(when, sizeof(when), " (nearest expiry %.10s)", date);
	}
	snprintf(out, cap, "%zu %s, %zu %s%s, ", certs, testsum_plural(certs,
	    "certificate", "certificates"), cfg->ca_count,
	    testsum_plural(cfg->ca_count, "CA", "CAs"), when);
	more[0] = '\0';
	if (bundled > 0) {
		snprintf(more, more_cap, "; and %zu in root bundles (dates "
		    "not judged)", bundled);
	}
}

void
testsum_line(const char *path, const struct cfg *cfg,
    const struct certinv *inv, size_t errors, size_t warnings, char *out,
    size_t cap)
{
	char counts[160] = "";
	char more[80] = "";

	if (cfg != NULL && inv != NULL) {
		testsum_counts(cfg, inv, counts, sizeof(counts), more,
		    sizeof(more));
	}
	if (cfg == NULL || inv == NULL || errors > 0) {
		snprintf(out, cap, "%s: configuration NOT valid: %s%zu %s, "
		    "%zu %s; certbridge would not start with it (exit 1)",
		    path, counts, errors, testsum_plural(errors, "error",
		    "errors"), warnings, testsum_plural(warnings, "warning",
		    "warnings"));
		return;
	}
	/* "with warnings" up front: the word a pipeline or a tired eye looks
	 * for, before the counts (docs/install.md, "The command line"). */
	snprintf(out, cap, "%s: configuration OK%s: %s%zu %s, %zu %s%s", path,
	    warnings > 0 ? " with warnings" : "", counts, errors,
	    testsum_plural(errors, "error", "errors"), warnings,
	    testsum_plural(warnings, "warning", "warnings"), more);
}

/*
 * certs_text.c - certbridge-certs' tables (see certs_report.h): by
 * default within 100 columns (a serial console at the gateway), with
 * --wide every column whole; then the dates that stop devices, soonest
 * first: a CA's retire_after, a CRL's nextUpdate, the end of a device CA,
 * of the gateway's own chain, of its upstream identity.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs_report.h"
#include "jsonw.h"
#include "parse.h"
#include "util.h"

#define W_ROLE 13       /* "upstream-cert" */
#define W_NAME_MAX 32   /* --wide: longer names push the columns, never cut */
#define W_NAME_NARROW 20
#define W_SUBJECT 40
#define W_STATUS 13     /* "not-yet-valid" */
#define COLUMNS 100     /* the default table's width */
#define INDENT (W_ROLE + 2)

/* ------------------------------------------------------------ strings */

/* The number of characters (code points, or stray bytes) of s. */
static size_t
text_chars(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t total = 0, n;

	for (; *p != '\0'; total++) {
		n = jsonw_utf8_len(p);
		p += n != 0 ? n : 1;
	}
	return total;
}

bool
certs_put_clean(const char *s, size_t max, size_t width)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t total = text_chars(s), chars = 0, skip = 0, n;

	if (max != 0 && total > max) {
		fputs("...", stdout);
		chars = 3;
		skip = total - (max - 3);
	}
	for (size_t i = 0; *p != '\0'; i++) {
		n = jsonw_utf8_len(p);
		if (i < skip) {
			p += n != 0 ? n : 1;
			continue;
		}
		if (n == 0 || *p < 0x20 || *p == 0x7f) {
			putchar('?');
			p++;
		} else {
			fwrite(p, 1, n, stdout);
			p += n;
		}
		chars++;
	}
	for (; chars < width; chars++) {
		putchar(' ');
	}
	return skip > 0;
}


/* "20 days", "5 hours", "12 minutes" (rounded down, at least "1 minute"
 * is never claimed for less: "less than a minute"). */
void
certs_span(int64_t s, char *out, size_t cap)
{
	int64_t v;
	const char *unit;

	if (s < 0) {
		s = -s;
	}
	if (s >= 2 * 86400) {
		v = s / 86400;
		unit = "days";
	} else if (s >= 2 * 3600) {
		v = s / 3600;
		unit = "hours";
	} else if (s >= 120) {
		v = s / 60;
		unit = "minutes";
	} else {
		snprintf(out, cap, "less than 2 minutes");
		return;
	}
	snprintf(out, cap, "%" PRId64 " %s", v, unit);
}



static void
print_row_wide(const struct certs_run *r, const struct certinv_item *it,
    size_t wname)
{
	char d[40];
	bool cut;

	printf("%-*s  ", W_ROLE, certinv_role_name(it->role));
	certs_put_clean(it->name, 0, wname);
	printf("  ");
	if (it->in_bundle) {
		printf("%zu certificates in ", it->of);
		certs_put_clean(it->path, 0, 0);
		printf(" (root bundle: dates not judged; see --json)\n");
		return;
	}
	cut = certs_put_clean(it->subject, W_SUBJECT, W_SUBJECT);
	if (certs_has_end(it)) {
		parse_format_date(it->not_after, d, sizeof(d));
		printf("  %-20s  %5" PRId64, d, certinv_days_left(it, r->now));
	} else {
		printf("  %-20s  %5s", "(no next update)", "-");
	}
	printf("  %-*s  %s\n", W_STATUS, certs_status_name(r, it),
	    certs_is_crl(it) ? "-" : it->fingerprint);

	if (cut && !certs_is_crl(it)) {
		printf("%*ssubject ", W_ROLE + 2, "");
		certs_put_clean(it->subject, 0, 0);
		printf("\n");
	}
	printf("%*s", W_ROLE + 2, "");
	if (certs_is_crl(it)) {
		parse_format_date(it->not_before, d, sizeof(d));
		printf("CRL issued by ");
		certs_put_clean(it->issuer, 0, 0);
		printf(", this update %s\n", d);
	} else {
		parse_format_date(it->not_before, d, sizeof(d));
		if (strcmp(it->subject, it->issuer) == 0) {
			printf("self-issued");
		} else {
			printf("issued by ");
			certs_put_clean(it->issuer, 0, 0);
		}
		printf(", valid from %s%s\n", d, it->is_ca ? ", a CA" : "");
	}
	printf("%*sfile ", W_ROLE + 2, "");
	certs_put_clean(it->path, 0, 0);
	if (it->of > 1) {
		printf(", certificate %zu of %zu", it->index, it->of);
	}
	printf(" (");
	certs_put_clean(r->o->config, 0, 0);
	printf(" line %u)\n", it->line);
}


/* ------------------------------------------------------------ narrow */

/* "2027-03-01" of an epoch. */
static void
day(int64_t epoch, char out[16])
{
	char d[40];

	parse_format_date(epoch, d, sizeof(d));
	snprintf(out, 16, "%.10s", d);
}

/* One detail line under a row: indented, cut to the table's width (its
 * end kept: the most specific part). */
static void
detail(const char *label, const char *text)
{
	size_t room = COLUMNS - INDENT - strlen(label);

	printf("%*s%s", INDENT, "", label);
	certs_put_clean(text, room, 0);
	printf("\n");
}

/* "62:35:9A:7C:B9:0C:1F:18...07:63:EB": enough to compare by eye. */
static void
short_fingerprint(const char *fp, char *out, size_t cap)
{
	size_t n = strlen(fp);

	if (n <= 32) {
		snprintf(out, cap, "%s", fp);
		return;
	}
	snprintf(out, cap, "%.23s...%s", fp, fp + n - 8);
}

static const struct cfg_ca *
ca_of(const struct certs_run *r, const struct certinv_item *it)
{
	if (r->cfg == NULL || it->role != CERTINV_DEVICE_CA
	    || strncmp(it->name, "ca.", 3) != 0) {
		return NULL;
	}
	return cfg_find_ca(r->cfg, it->name + 3);
}

static void
print_row_narrow(const struct certs_run *r, const struct certinv_item *it,
    size_t wname)
{
	char d[16], from[16], line[COLUMNS * 4], fp[48];
	size_t used = INDENT + wname + 2 + 10 + 2 + 5 + 2 + W_STATUS + 2;
	const struct cfg_ca *ca = ca_of(r, it);

	printf("%-*s  ", W_ROLE, certinv_role_name(it->role));
	certs_put_clean(it->name, wname, wname);
	printf("  ");
	if (it->in_bundle) {
		snprintf(line, sizeof(line), "%zu certificates (root bundle: "
		    "dates not judged)", it->of);
		certs_put_clean(line, COLUMNS - INDENT - wname - 2, 0);
		printf("\n");
		detail("file ", it->path);
		return;
	}
	if (certs_has_end(it)) {
		day(it->not_after, d);
		printf("%-10s  %5" PRId64, d, certinv_days_left(it, r->now));
	} else {
		printf("%-10s  %5s", "none", "-");
	}
	printf("  %-*s  ", W_STATUS, certs_status_name(r, it));
	certs_put_clean(it->subject, COLUMNS - used, 0);
	printf("\n");
	day(it->not_before, from);
	if (certs_is_crl(it)) {
		snprintf(line, sizeof(line), ", this update %s", from);
		printf("%*sCRL of ", INDENT, "");
		certs_put_clean(it->issuer, COLUMNS - INDENT - 7 - strlen(line),
		    0);
		printf("%s\n", line);
	} else {
		snprintf(line, sizeof(line), ", from %s%s", from, it->is_ca
		    ? ", a CA" : "");
		if (strcmp(it->subject, it->issuer) == 0) {
			printf("%*sself-issued%s\n", INDENT, "", line);
		} else {
			printf("%*sissued by ", INDENT, "");
			certs_put_clean(it->issuer, COLUMNS - INDENT - 10
			    - strlen(line), 0);
			printf("%s\n", line);
		}
		short_fingerprint(it->fingerprint, fp, sizeof(fp));
		printf("%*ssha256 %s (--wide: all of it)\n", INDENT, "", fp);
	}
	if (ca != NULL && ca->has_retire_after) {
		char left[48];

		day(ca->retire_after, d);
		certs_span(ca->retire_after - r->now, left, sizeof(left));
		printf("%*sretire_after %s (%s %s): then its devices are "
		    "refused\n", INDENT, "", d, ca->retire_after >= r->now
		    ? "in" : "since", left);
	}
	snprintf(line, sizeof(line), "%s line %u", r->o->config, it->line);
	if (it->of > 1) {
		char where[COLUMNS * 4 + 64];

		snprintf(where, sizeof(where), "%s, certificate %zu of %zu",
		    it->path, it->index, it->of);
		detail("file ", where);
	} else {
		detail("file ", it->path);
	}
	detail("set at ", line);
}

/* ------------------------------------------------------------ stops */

struct stop {
	int64_t at;
	char what[160];
};

static int
stop_cmp(const void *a, const void *b)
{
	const struct stop *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

static void CB_PRINTF(5, 6)
stop_add(struct stop *s, size_t *n, size_t cap, int64_t at, const char *fmt,
    ...)
{
	va_list ap;

	if (*n < cap) {
		s[*n].at = at;
		va_start(ap, fmt);
		vsnprintf(s[*n].what, sizeof(s[*n].what), fmt, ap);
		va_end(ap);
		(*n)++;
	}
}

/* The dates after which devices stop getting through, soonest first. */
static void
print_stops(const struct certs_run *r)
{
	size_t cap = r->inv->count + (r->cfg != NULL ? r->cfg->ca_count : 0);
	struct stop *s = cap > 0 ? calloc(cap, sizeof(*s)) : NULL;
	size_t n = 0;

	if (s == NULL) {
		return;
	}
	for (size_t i = 0; r->cfg != NULL && i < r->cfg->ca_count; i++) {
		const struct cfg_ca *ca = &r->cfg->cas[i];

		if (ca->has_retire_after) {
			stop_add(s, &n, cap, ca->retire_after, "ca.%s retire_after: "
			    "its devices are refused (retired-ca)", ca->name);
		}
	}
	for (size_t i = 0; i < r->inv->count; i++) {
		const struct certinv_item *it = &r->inv->items[i];

		if (it->in_bundle || !certs_has_end(it)) {
			continue;
		}
		switch (it->role) {
		case CERTINV_CRL:
			stop_add(s, &n, cap, it->not_after, "%s CRL nextUpdate: "
			    "without a fresher CRL its devices are refused", it->name);
			break;
		case CERTINV_DEVICE_CA:
			stop_add(s, &n, cap, it->not_after, "%s certificate ends: "
			    "its devices are refused", it->name);
			break;
		case CERTINV_DOWNSTREAM:
			stop_add(s, &n, cap, it->not_after, "%s certificate ends: "
			    "devices refuse the gateway", it->name);
			break;
		case CERTINV_UPSTREAM_CERT:
			stop_add(s, &n, cap, it->not_after, "%s certificate ends: "
			    "the broker refuses the gateway", it->name);
			break;
		default:
			break;
		}
	}
	qsort(s, n, sizeof(*s), stop_cmp);
	if (n > 0) {
		printf("\nDATES THAT STOP DEVICES\n");
	}
	for (size_t i = 0; i < n; i++) {
		char d[16], left[48], when[64];

		day(s[i].at, d);
		certs_span(s[i].at - r->now, left, sizeof(left));
		snprintf(when, sizeof(when), s[i].at >= r->now ? "in %s"
		    : "%s ago", left);
		printf("%s  %-16s  ", d, when);
		certs_put_clean(s[i].what, r->o->wide ? 0 : COLUMNS - 30, 0);
		printf("\n");
	}
	free(s);
}

void
certs_print_text(const struct certs_run *r)
{
	size_t wname = 4;
	size_t limit = r->o->wide ? W_NAME_MAX : W_NAME_NARROW;

	for (size_t i = 0; i < r->inv->count; i++) {
		size_t n = strlen(r->inv->items[i].name);

		if (n > wname) {
			wname = n < limit ? n : limit;
		}
	}
	if (r->inv->count > 0 && r->o->wide) {
		printf("%-*s  %-*s  %-*s  %-20s  %5s  %-*s  %s\n", W_ROLE,
		    "ROLE", (int)wname, "NAME", W_SUBJECT, "SUBJECT",
		    "NOT AFTER", "DAYS", W_STATUS, "STATUS",
		    "FINGERPRINT (SHA-256)");
	} else if (r->inv->count > 0) {
		printf("%-*s  %-*s  %-10s  %5s  %-*s  %s\n", W_ROLE, "ROLE",
		    (int)wname, "NAME", "NOT AFTER", "DAYS", W_STATUS, "STATUS",
		    "SUBJECT");
	}
	for (size_t i = 0; i < r->inv->count; i++) {
		const struct certinv_item *it = &r->inv->items[i];

		if (it->in_bundle && it->index != 1) {
			continue;
		}
		if (r->o->wide) {
			print_row_wide(r, it, wname);
		} else {
			print_row_narrow(r, it, wname);
		}
	}
	print_stops(r);
	printf("%s\n", r->summary);
}

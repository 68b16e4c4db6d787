/*
 * certtime.h - certificate time, defined once.
 *
 * How many days a certificate has left, when it is "expiring soon" or
 * "critical", when a CRL is due for replacement, and which files are root
 * bundles whose dates are not judged: every report certbridge makes
 * (-t, the daily expiry watch, /status, /metrics, certbridge-certs) reads
 * these rules from here, so one certificate never shows two different
 * figures.
 */
#ifndef CB_CERTTIME_H
#define CB_CERTTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CERTTIME_DAY_S 86400
/* Closer than this to notAfter: a warning (-t, the expiry watch,
 * /status, certbridge-certs' default --warn). */
#define CERTTIME_WARN_DAYS 30
/* Closer than this: critical (/status, certbridge-certs' default
 * --crit). */
#define CERTTIME_CRIT_DAYS 7
/* A file with at least this many certificates is a root bundle (the
 * system's, say): listed, but its dates are not judged, since expired
 * roots there harm no one. Hand-made files are smaller. */
#define CERTTIME_BUNDLE_MIN 11

enum certtime_level {
	CERTTIME_OK = 0,
	CERTTIME_WARN,          /* within the warning window */
	CERTTIME_CRIT,          /* within the critical window */
	CERTTIME_EXPIRED,       /* past notAfter */
	CERTTIME_NOT_YET_VALID, /* before notBefore */
};

/*
 * The level of a validity period at time now with the given windows
 * (seconds): NOT_YET_VALID when now < not_before; EXPIRED when now >
 * not_after (the notAfter second itself is still valid); CRIT when
 * not_after - now < crit_s; WARN when < warn_s; else OK.
 */
enum certtime_level certtime_level(int64_t not_before, int64_t not_after,
    int64_t now, int64_t warn_s, int64_t crit_s);

/* Whole days from now to not_after, rounded down: 0 during the last day,
 * -1 from the first second after notAfter. */
int64_t certtime_days_left(int64_t not_after, int64_t now);

/* Whether a file of this many certificates is a root bundle. */
bool certtime_is_bundle(size_t certs_in_file);

/* How long before a CRL's nextUpdate it is warned about: a quarter of
 * the CRL's own validity (CRLs are often reissued weekly), at least a
 * day. */
int64_t certtime_crl_warn_window(int64_t this_update, int64_t next_update);

#endif

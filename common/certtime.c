/*
 * certtime.c - certificate time rules (see certtime.h).
 */
#include "certtime.h"

enum certtime_level
certtime_level(int64_t not_before, int64_t not_after, int64_t now,
    int64_t warn_s, int64_t crit_s)
{
	if (now < not_before) {
		return CERTTIME_NOT_YET_VALID;
	}
	if (now > not_after) {
		return CERTTIME_EXPIRED;
	}
	/* now <= not_after here, so the difference cannot overflow. */
	if (not_after - now < crit_s) {
		return CERTTIME_CRIT;
	}
	if (not_after - now < warn_s) {
		return CERTTIME_WARN;
	}
	return CERTTIME_OK;
}

int64_t
certtime_days_left(int64_t not_after, int64_t now)
{
	int64_t left = not_after - now;

	/* Floor, not truncation toward zero: 1 s past notAfter is day -1. */
	return left >= 0 ? left / CERTTIME_DAY_S
	    : -((-left + CERTTIME_DAY_S - 1) / CERTTIME_DAY_S);
}

bool
certtime_is_bundle(size_t certs_in_file)
{
	return certs_in_file >= CERTTIME_BUNDLE_MIN;
}

int64_t
certtime_crl_warn_window(int64_t this_update, int64_t next_update)
{
	int64_t quarter = (next_update - this_update) / 4;

	return quarter > CERTTIME_DAY_S ? quarter : CERTTIME_DAY_S;
}

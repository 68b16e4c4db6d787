/*
 * diag_text.c - terminal-safe text and human spans (see diag_text.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "diag_text.h"

/* The length of the valid UTF-8 sequence at p (at most left bytes) that
 * encodes U+00A0 or above, or 0: overlong forms, surrogates, code points
 * above U+10FFFF and the C1 controls (U+0080..U+009F, which terminals
 * obey) are not kept. */
static size_t
diag_utf8_len(const uint8_t *p, size_t left)
{
	unsigned c = p[0], lo, hi;

	if (c >= 0xC2 && c <= 0xDF && left >= 2) {
		if ((p[1] & 0xC0) != 0x80 || (c == 0xC2 && p[1] < 0xA0)) {
			return 0;
		}
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF && left >= 3) {
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80
		    ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4 && left >= 4) {
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80
		    && (p[3] & 0xC0) == 0x80 ? 4 : 0;
	}
	return 0;
}

char *
diag_escape_bytes(const uint8_t *p, size_t len, char *out, size_t cap)
{
	size_t o = 0, i = 0, fit = 0, n, adv;
	char piece[8];

	if (cap < 4) {
		if (cap > 0) {
			out[0] = '\0';
		}
		return out;
	}
	while (i < len) {
		adv = 1;
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			piece[0] = (char)p[i];
			n = 1;
		} else if (p[i] == '\\') {
			memcpy(piece, "\\\\", 2);
			n = 2;
		} else if ((adv = diag_utf8_len(p + i, len - i)) > 0) {
			memcpy(piece, p + i, adv);
			n = adv;
		} else {
			snprintf(piece, sizeof(piece), "\\x%02X", p[i]);
			n = 4;
			adv = 1;
		}
		/* The last piece boundary where "..." still fits. */
		if (o + 3 < cap) {
			fit = o;
		}
		if (o + n >= cap) {
			memcpy(out + fit, "...", 4);
			return out;
		}
		memcpy(out + o, piece, n);
		o += n;
		i += adv;
	}
	out[o] = '\0';
	return out;
}

char *
diag_escape(const char *s, char *out, size_t cap)
{
	if (s == NULL) {
		snprintf(out, cap, "(none)");
		return out;
	}
	return diag_escape_bytes((const uint8_t *)s, strlen(s), out, cap);
}

void
diag_span(int64_t s, char *out, size_t cap)
{
	static const struct {
		int64_t secs;
		const char *one, *many;
	} units[] = {
		{86400, "day", "days"},
		{3600, "hour", "hours"},
		{60, "minute", "minutes"},
	};
	int64_t v;

	if (s < 0) {
		s = -s;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s >= units[i].secs) {
			v = s / units[i].secs;
			/* 1.5 days reads better as 36 hours. */
			if (v == 1 && s % units[i].secs != 0) {
				continue;
			}
			snprintf(out, cap, "%" PRId64 " %s", v, v == 1
			    ? units[i].one : units[i].many);
			return;
		}
	}
	snprintf(out, cap, "%" PRId64 " %s", s, s == 1 ? "second"
	    : "seconds");
}

void
diag_duration(int64_t usec, char *out, size_t cap)
{
	if (usec < 0) {
		usec = 0;
	}
	if (usec < 10000) {
		snprintf(out, cap, "%" PRId64 ".%" PRId64 " ms", usec / 1000,
		    usec / 100 % 10);
	} else if (usec < 10000000) {
		snprintf(out, cap, "%" PRId64 " ms", usec / 1000);
	} else {
		snprintf(out, cap, "%" PRId64 ".%" PRId64 " s", usec / 1000000,
		    usec / 100000 % 10);
	}
}

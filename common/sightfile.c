/*
 * sightfile.c - the device sightings file (see sightfile.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "sightfile.h"

static void
sightfile_escape(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '%') {
			fprintf(f, "%%%02X", *p);
		} else {
			fputc(*p, f);
		}
	}
}

/* In place; false for a bad escape, an escaped NUL or an empty result. */
static bool
sightfile_unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (*r == '%') {
			int hi = parse_hex_digit(r[1]);
			int lo = hi < 0 ? -1 : parse_hex_digit(r[2]);

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				return false;
			}
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return w != s;
}

void
sightfile_write(FILE *f, const char *ca, const char *device, int64_t first,
    int64_t last, const char *serial)
{
	fprintf(f, "%s\t", ca);
	sightfile_escape(f, device);
	fprintf(f, "\t%" PRId64 "\t%" PRId64, first, last);
	if (serial != NULL && serial[0] != '\0') {
		fprintf(f, "\t%s", serial);
	}
	fputc('\n', f);
}

void
sightfile_serial_hex(const uint8_t *serial, size_t len,
    char out[SIGHTFILE_SERIAL_HEX])
{
	static const char digits[] = "0123456789ABCDEF";

	out[0] = '\0';
	if (len == 0 || len > SIGHTFILE_SERIAL_MAX) {
		return;
	}
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[serial[i] >> 4];
		out[2 * i + 1] = digits[serial[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* A recorded serial: an even number of uppercase hex digits, not too
 * many. */
static bool
sightfile_serial_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2 != 0 || n > 2 * SIGHTFILE_SERIAL_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A'
		    && s[i] <= 'F'))) {
			return false;
		}
	}
	return true;
}

bool
sightfile_read(const char *path,
    void (*each)(void *arg, const struct sightfile_rec *rec), void *arg,
    size_t *skipped, bool *missing, char *why, size_t why_len)
{
	char line[SIGHTFILE_LINE_MAX];
	FILE *f;

	*skipped = 0;
	if (missing != NULL) {
		*missing = false;
	}
	f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT) {
			if (missing != NULL) {
				*missing = true;
			}
			return true;
		}
		snprintf(why, why_len, "cannot read \"%s\": %s", path,
		    strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *ca, *dev, *first, *last, *serial, *end1, *end2;
		char *save = NULL;
		struct sightfile_rec rec;
		long long a, b;

		if (line[0] == '#' || line[0] == '\n') {
			continue;
		}
		ca = strtok_r(line, "\t\n", &save);
		dev = strtok_r(NULL, "\t\n", &save);
		first = strtok_r(NULL, "\t\n", &save);
		last = strtok_r(NULL, "\t\n", &save);
		serial = strtok_r(NULL, "\t\n", &save);
		if (ca == NULL || dev == NULL || first == NULL || last == NULL
		    || !sightfile_unescape(dev) || (serial != NULL
		    && !sightfile_serial_ok(serial))) {
			(*skipped)++;
			continue;
		}
		errno = 0;
		a = strtoll(first, &end1, 10);
		b = strtoll(last, &end2, 10);
		if (errno != 0 || *end1 != '\0' || *end2 != '\0' || a <= 0
		    || b < a) {
			(*skipped)++;
			continue;
		}
		rec.ca = ca;
		rec.device = dev;
		rec.first = a;
		rec.last = b;
		rec.serial = serial != NULL ? serial : "";
		each(arg, &rec);
	}
	fclose(f);
	return true;
}

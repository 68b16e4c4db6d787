/*
 * sightfile.h - the device sightings file ([gateway] state_file): its
 * format, written by the gateway (gateway/sightings.c) and read by the
 * gateway at start and by certbridge-certs --what-if.
 *
 *   # certbridge device sightings v1: ca<TAB>device<TAB>first<TAB>last ...
 *   old<TAB>dev-old-1<TAB>1796000000<TAB>1796003600<TAB>4A0F03
 *
 * One line per (CA, device): the NAME of [ca.NAME], the device identity
 * with every byte at or below space, at or above 0x7f and "%" written as
 * %XX, the first and last admission (epoch seconds, UTC) and the serial
 * number of the certificate last seen (hex of the INTEGER's content bytes,
 * as a CRL lists it; what certbridge-certs --what-if 'crl:...' needs).
 * Lines without a serial (files written before it was kept) stay valid;
 * readers that know only four columns ignore the fifth.
 */
#ifndef CB_SIGHTFILE_H
#define CB_SIGHTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIGHTFILE_HEADER "# certbridge device sightings v1: " \
	"ca<TAB>device<TAB>first<TAB>last (epoch seconds, UTC)" \
	"[<TAB>serial (hex)]\n"
#define SIGHTFILE_LINE_MAX 1024
/* Serials longer than this many bytes (RFC 5280 allows 20) are not
 * recorded. */
#define SIGHTFILE_SERIAL_MAX 32
#define SIGHTFILE_SERIAL_HEX (2 * SIGHTFILE_SERIAL_MAX + 1)

/* One line, as read: ca and device point into the caller's line. */
struct sightfile_rec {
	const char *ca;
	const char *device;   /* unescaped, never empty, no NUL inside */
	int64_t first;
	int64_t last;
	const char *serial;   /* uppercase hex; "" when not recorded */
};

/* Writes one record line (serial NULL or "" for none). */
void sightfile_write(FILE *f, const char *ca, const char *device,
    int64_t first, int64_t last, const char *serial);

/* The hex form of a serial's content bytes into out; "" when it is too
 * long to record. */
void sightfile_serial_hex(const uint8_t *serial, size_t len,
    char out[SIGHTFILE_SERIAL_HEX]);

/* Reads path, calling each(arg, rec) for every good line; a damaged line
 * is skipped and counted in *skipped. A missing file reads as empty (true,
 * *missing set when missing is not NULL). False with why filled when the
 * file exists but cannot be read. */
bool sightfile_read(const char *path,
    void (*each)(void *arg, const struct sightfile_rec *rec), void *arg,
    size_t *skipped, bool *missing, char *why, size_t why_len);

#endif

/*
 * testsum.h - the line `certbridge -t` ends with: what was checked and
 * what was found, in words a field engineer reads at a glance
 * (docs/install.md, "The command line"):
 *
 *   FILE: configuration OK: 4 certificates, 2 CAs (nearest expiry
 *   2027-03-01), 0 errors, 1 warning
 *   FILE: configuration NOT valid: 4 certificates, 2 CAs (nearest expiry
 *   2027-03-01), 2 errors, 0 warnings; certbridge would not start with it
 *   (exit 1)
 */
#ifndef CB_TESTSUM_H
#define CB_TESTSUM_H

#include <stddef.h>

#include "certinv.h"
#include "config.h"

/* cfg and inv are NULL when the INI itself did not load (then only the
 * counts of problems are said); with errors beyond the INI (a key that
 * does not match its certificate, a stale CRL) the certificates and CAs
 * it names are counted all the same. */
void testsum_line(const char *path, const struct cfg *cfg,
    const struct certinv *inv, size_t errors, size_t warnings, char *out,
    size_t cap);

#endif

/*
 * devcheck.h - every [upstream] device_certs pair, read and checked at
 * load (-t, start, reload; docs/configuration.md, "Configuration that
 * would weaken trust"), and kept for the generation in a devstore.
 *
 * A device whose <identity>.key does not belong to its <identity>.crt
 * would fail every upstream handshake, one device at a time, long after the
 * reload that brought the pair in: the load says so instead, with the same
 * proof as for [upstream] cert and key (x509_key_matches). A .crt that does
 * not parse is an error too. Dates are left to the inventory and the expiry
 * watch: one device's expired certificate must not stop the gateway.
 *
 * The pairs proven are the pairs used: their bytes go into the store the
 * generation keeps, and sessions read no file.
 */
#ifndef CB_DEVCHECK_H
#define CB_DEVCHECK_H

#include <stdbool.h>

#include "config.h"
#include "devstore.h"

/* Reads and checks every pair of cfg's device_certs folder (set), reusing
 * the pairs of the previous run whose files did not change; reports each
 * problem at the device_certs line. *store receives the pairs that passed
 * (a new reference; NULL when the folder could not be read or on failing
 * memory). Returns false when a problem was found. */
bool devcheck_run(const struct cfg *cfg, struct cfg_diag *diag,
    struct devstore **store);

/* Drops what is remembered between loads (at exit, or when a load has no
 * device_certs). Generations keep their own references. */
void devcheck_forget(void);

#endif

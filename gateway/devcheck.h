/*
 * devcheck.h - every [upstream] device_certs pair, checked at load (-t,
 * start, reload; docs/configuration.md, "Configuration that would weaken
 * trust").
 *
 * A device whose <identity>.key does not belong to its <identity>.crt
 * would fail every upstream handshake, one device at a time, long after the
 * reload that brought the pair in: the load says so instead, with the same
 * proof as for [upstream] cert and key (x509_key_matches). A .crt that does
 * not parse is an error too. Dates are left to the inventory and the expiry
 * watch: one device's expired certificate must not stop the gateway.
 */
#ifndef CB_DEVCHECK_H
#define CB_DEVCHECK_H

#include <stdbool.h>

#include "config.h"

/* Checks every pair of cfg's device_certs folder (set); reports each
 * problem at the device_certs line. Returns false when one is found. */
bool devcheck_run(const struct cfg *cfg, struct cfg_diag *diag);

/* Drops what is remembered between loads (at exit). */
void devcheck_forget(void);

#endif

/*
 * devcert.h - which client certificate a session presents to the broker.
 *
 * With [upstream] device_certs, a device whose identity has
 * <identity>.crt and <identity>.key in that folder connects upstream as
 * itself; every other device uses [upstream] cert/key. The identity comes
 * from a certificate, but it is still text from outside: it is checked
 * before it is looked up, as it names files (docs/configuration.md).
 */
#ifndef CB_DEVCERT_H
#define CB_DEVCERT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "devstore.h"

/* Longest identity used in a file name. */
#define DEVCERT_IDENTITY_MAX 128

enum devcert_choice {
	DEVCERT_DEVICE = 0, /* the device's own pair from device_certs */
	DEVCERT_SHARED,     /* [upstream] cert/key */
	DEVCERT_ANONYMOUS,  /* no client certificate upstream at all */
	DEVCERT_NONE,       /* device_certs is set, but neither pair exists */
	DEVCERT_UNSAFE,     /* the identity cannot be a file name */
};

/* Decides for a device with identity (NULL or "" when it has none) under
 * cfg, with pairs the ones proven when that configuration loaded (its
 * generation's devstore); *pair is the device's pair for DEVCERT_DEVICE
 * (NULL otherwise). No file is looked at. */
enum devcert_choice devcert_pick(const struct cfg *cfg,
    const struct devstore *pairs, const char *identity,
    const struct devstore_pair **pair);

/* Whether identity is safe as a file name: 1..DEVCERT_IDENTITY_MAX bytes
 * of letters, digits and . _ - @ :, not starting with a dot. */
bool devcert_identity_safe(const char *identity);

/* The identities of folder dir that devcert_pick can use: a safe name with
 * both <identity>.crt and <identity>.key, sorted by name. Returns NULL
 * with *count 0 for an empty folder (why "") or on failure (why filled);
 * free with devcert_pairs_free. For the checks at load time. */
char **devcert_pairs(const char *dir, size_t *count, char *why,
    size_t why_len);
void devcert_pairs_free(char **ids, size_t count);

#endif

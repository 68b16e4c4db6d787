/*
 * certinv.h - the certificate inventory of a configuration.
 *
 * Every certificate and CRL the INI names, with what an operator needs to
 * see a rotation coming: role, where it is configured, subject, issuer,
 * validity, days left, SHA-256 fingerprint. Used by certbridge-certs, by
 * the gateway's daily expiry watch, and (later) by /status and /metrics.
 */
#ifndef CB_CERTINV_H
#define CB_CERTINV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certtime.h"
#include "config.h"
#include "util.h"
#include "x509.h"

enum certinv_role {
	CERTINV_DOWNSTREAM = 0, /* [downstream] cert: presented to devices */
	CERTINV_DEVICE_CA,      /* [ca.NAME] file: trust anchors for devices */
	CERTINV_CRL,            /* [ca.NAME] crl */
	CERTINV_UPSTREAM_CA,    /* [upstream] ca: roots the broker must chain to */
	CERTINV_UPSTREAM_CERT,  /* [upstream] cert: the gateway's identity */
	CERTINV_DEVICE_CERT,    /* [upstream] device_certs/<identity>.crt */
};

/* certtime's levels, named for items (a CRL's nextUpdate is its end). */
enum certinv_level {
	CERTINV_OK = CERTTIME_OK,
	CERTINV_WARN = CERTTIME_WARN,
	CERTINV_CRIT = CERTTIME_CRIT,
	CERTINV_EXPIRED = CERTTIME_EXPIRED,   /* past notAfter / nextUpdate */
	CERTINV_NOT_YET_VALID = CERTTIME_NOT_YET_VALID,
};

/* "device:" and a file name of device_certs without ".crt". */
#define CERTINV_NAME_LEN 272

struct certinv_item {
	enum certinv_role role;
	/* "downstream", "ca.legacy", "upstream", "device:<identity>" */
	char name[CERTINV_NAME_LEN];
	/* The file, as the configuration resolved it; owned by the item, so an
	 * inventory outlives the struct cfg it was built from. */
	char *path;
	unsigned line;          /* the INI line of the key */
	size_t index;           /* 1-based position in its file (a CRL: 1) */
	size_t of;              /* certificates in that file (a CRL: 1) */
	char subject[X509_NAME_LEN];
	char issuer[X509_NAME_LEN];
	int64_t not_before;     /* a CRL: thisUpdate */
	int64_t not_after;      /* a CRL: nextUpdate (0 = none) */
	char fingerprint[X509_FP_HEX_LEN]; /* a CRL: empty */
	bool is_ca;
	/* Part of a large root bundle (the system's): listed, but its dates
	 * are not judged; expired roots there harm no one. */
	bool in_bundle;
};

struct certinv {
	struct certinv_item *items;
	size_t count;
	char **errors;          /* "FILE:LINE: [section] key: why", one per problem */
	size_t error_count;
};

/*
 * Reads every certificate and CRL cfg names, in this order: [downstream]
 * cert, each [ca.NAME] file then its crl, [upstream] ca, [upstream] cert,
 * then every *.crt of [upstream] device_certs sorted by name (files whose
 * name starts with "." are skipped, as the gateway never uses them).
 * Files that cannot be read, hold no certificate or a damaged one, are
 * recorded in inv->errors (the rest is still read); such a file adds no
 * item. Starts from scratch (inv need not be initialised). Returns false
 * only when out of memory, with inv emptied; certinv_free is safe either
 * way, and twice.
 */
bool certinv_build(const struct cfg *cfg, struct certinv *inv);
void certinv_free(struct certinv *inv);

/* Adds to inv->errors each private key file that does not belong to its
 * certificate ([downstream] key, [upstream] key, each sni_key.HOST; keys
 * in a token and the device_certs pairs are left to certbridge -t), in the
 * FILE:LINE form. False only when out of memory. */
bool certinv_check_keys(const struct cfg *cfg, struct certinv *inv);

/* Appends one line to inv->errors; false when out of memory. */
bool certinv_add_error(struct certinv *inv, const char *fmt, ...)
    CB_PRINTF(2, 3);

/*
 * The level of an item at time now with the given windows (seconds):
 * NOT_YET_VALID when now < not_before; EXPIRED when now > not_after (the
 * notAfter second itself is still valid); CRIT when not_after - now <
 * crit_s; WARN when < warn_s; else OK. A CRL without nextUpdate
 * (not_after 0) never expires. An in_bundle item is always OK: it is not
 * judged.
 */
enum certinv_level certinv_level_of(const struct certinv_item *item,
    int64_t now, int64_t warn_s, int64_t crit_s);

/* Whole days from now to not_after, rounded down (negative once expired:
 * -1 during the first day after). 0 for a CRL without nextUpdate. */
int64_t certinv_days_left(const struct certinv_item *item, int64_t now);

/* "downstream", "device-ca", "crl", "upstream-ca", "upstream-cert",
 * "device-cert"; "ok", "warning", "critical", "expired", "not-yet-valid".
 * Never NULL ("unknown" for a value out of range). */
const char *certinv_role_name(enum certinv_role role);
const char *certinv_level_name(enum certinv_level level);

#endif

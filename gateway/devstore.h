/*
 * devstore.h - the [upstream] device_certs pairs of one configuration
 * generation, in memory.
 *
 * Every pair is read and proven when the configuration loads
 * (gateway/devcheck); a session takes its pair from here. So no session
 * reads a file on the event loop (slow storage and a fleet reconnecting at
 * once would stall every session), and the pair a device presents upstream
 * is always the one proven at load, never a file changed since.
 *
 * A store is immutable once built and reference-counted: the generation
 * holds one reference, and so does devcheck, to reuse it at the next load.
 * Each pair is reference-counted too, so a reload that finds a pair's files
 * unchanged shares it with the previous store instead of reading it again.
 */
#ifndef CB_DEVSTORE_H
#define CB_DEVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/stat.h>

/* Which file was read: device, inode, size and ctime. A file replaced
 * (renamed over) has another inode, and one rewritten in place a new
 * ctime, which no one can set back. */
struct devstore_file {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t ctime_s;
	long ctime_ns;
};

/* One pair, read-only. The bytes are what wolfSSL loads from a buffer
 * with WOLFSSL_FILETYPE_ASN1: a DER certificate chain is 30% smaller than
 * its PEM, and wolfSSL 5.5.4 sends every certificate of it. */
struct devstore_pair {
	const char *id;              /* the identity: a safe file name */
	const unsigned char *chain;  /* DER certificates, leaf first */
	size_t chain_len;
	const unsigned char *key;    /* the DER private key */
	size_t key_len;
	struct devstore_file crt_file, key_file; /* the files read */
};

struct devstore;

/* An empty store with room for capacity pairs, holding one reference (the
 * caller's); NULL when out of memory. */
struct devstore *devstore_new(size_t capacity);

/* Adds a copy of pair (its id and bytes). Pairs are added in strictly
 * increasing strcmp order of their ids, at most capacity of them. False
 * when out of memory. */
bool devstore_add(struct devstore *s, const struct devstore_pair *pair);

/* Adds prev's pair for id, shared rather than copied, when prev (may be
 * NULL) has one whose files are still crt_file and key_file. False, with
 * nothing added, otherwise. The order rule of devstore_add applies. */
bool devstore_reuse(struct devstore *s, const struct devstore *prev,
    const char *id, const struct devstore_file *crt_file,
    const struct devstore_file *key_file);

/* The pair for id, NULL when there is none (or s is NULL): a binary
 * search, no system call. */
const struct devstore_pair *devstore_find(const struct devstore *s,
    const char *id);

size_t devstore_count(const struct devstore *s);

/* A file's identity, from its stat. */
void devstore_file_of(const struct stat *st, struct devstore_file *f);

struct devstore *devstore_ref(struct devstore *s);
void devstore_unref(struct devstore *s);

#endif

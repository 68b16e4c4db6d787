/*
 * upcache.c - per-identity upstream TLS sessions (see upcache.h).
 *
 * A hash table of chained entries plus one recency list. One entry is one
 * allocation (record, key, bytes); its cost, counted against the budget,
 * is that allocation plus its share of the bucket array.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "upcache.h"
#include "util.h"

struct upcache_entry {
	TAILQ_ENTRY(upcache_entry) lru;  /* most recently used first */
	struct upcache_entry *next;      /* in its bucket */
	uint32_t hash;
	int64_t until;
	size_t len;                      /* of the session's bytes */
	size_t cost;                     /* counted against the budget */
	const char *key;                 /* in bytes[], after the session */
	unsigned char bytes[];
};

TAILQ_HEAD(upcache_lru, upcache_entry);

struct upcache {
	size_t budget;
	size_t bytes;                    /* entries' costs */
	size_t count;
	size_t nbuckets;                 /* a power of two */
	struct upcache_entry **buckets;
	struct upcache_lru lru;
};

#define UPCACHE_MIN_BUCKETS 64u

/* FNV-1a: keys are identities chosen by whoever issues device
 * certificates, not by the network, and chains stay short anyway because
 * the table grows with its count. */
static uint32_t
upcache_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h = (h ^ *p) * 16777619u;
	}
	return h;
}

struct upcache *
upcache_new(size_t budget)
{
	struct upcache *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return NULL;
	}
	c->buckets = calloc(UPCACHE_MIN_BUCKETS, sizeof(c->buckets[0]));
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	c->nbuckets = UPCACHE_MIN_BUCKETS;
	c->budget = budget;
	TAILQ_INIT(&c->lru);
	return c;
}

void
upcache_free(struct upcache *c)
{
	struct upcache_entry *e;

	if (c == NULL) {
		return;
	}
	while ((e = TAILQ_FIRST(&c->lru)) != NULL) {
		TAILQ_REMOVE(&c->lru, e, lru);
		/* Session secrets: not left behind in freed memory. */
		explicit_bzero(e->bytes, e->len);
		free(e);
	}
	free(c->buckets);
	free(c);
}

static struct upcache_entry **
upcache_slot(struct upcache *c, const char *key, uint32_t hash)
{
	struct upcache_entry **p = &c->buckets[hash & (c->nbuckets - 1)];

	while (*p != NULL && ((*p)->hash != hash || strcmp((*p)->key, key)
	    != 0)) {
		p = &(*p)->next;
	}
	return p;
}

static void
upcache_remove(struct upcache *c, struct upcache_entry **slot)
{
	struct upcache_entry *e = *slot;

	*slot = e->next;
	TAILQ_REMOVE(&c->lru, e, lru);
	c->bytes -= e->cost;
	c->count--;
	explicit_bzero(e->bytes, e->len);
	free(e);
}

/* Doubles the bucket array when entries outnumber buckets; a failed
 * growth only makes chains longer. */
static void
upcache_grow(struct upcache *c)
{
	size_t n = c->nbuckets * 2;
	struct upcache_entry **b, *e, *next;

	if (c->count < c->nbuckets || n > SIZE_MAX / sizeof(*b)) {
		return;
	}
	b = calloc(n, sizeof(*b));
	if (b == NULL) {
		return;
	}
	for (size_t i = 0; i < c->nbuckets; i++) {
		for (e = c->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

bool
upcache_put(struct upcache *c, const char *key, const unsigned char *der,
    size_t len, int64_t until)
{
	uint32_t hash = upcache_hash(key);
	size_t klen = strlen(key) + 1, cost;
	struct upcache_entry **slot = upcache_slot(c, key, hash), *e;

	if (*slot != NULL) {
		upcache_remove(c, slot);
	}
	/* Two bucket pointers per entry at most (the array doubles when
	 * entries outnumber buckets). */
	if (len > c->budget || klen > c->budget) {
		return false;
	}
	cost = sizeof(*e) + len + klen + 2 * sizeof(c->buckets[0]);
	if (cost > c->budget) {
		return false;
	}
	while (c->bytes + cost > c->budget && !TAILQ_EMPTY(&c->lru)) {
		e = TAILQ_LAST(&c->lru, upcache_lru);
		upcache_remove(c, upcache_slot(c, e->key, e->hash));
	}
	e = malloc(sizeof(*e) + len + klen);
	if (e == NULL) {
		return false;
	}
	memcpy(e->bytes, der, len);
	memcpy(e->bytes + len, key, klen);
	e->key = (const char *)e->bytes + len;
	e->len = len;
	e->cost = cost;
	e->hash = hash;
	e->until = until;
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	c->bytes += cost;
	c->count++;
	upcache_grow(c);
	slot = &c->buckets[hash & (c->nbuckets - 1)];
	e->next = *slot;
	*slot = e;
	return true;
}

const unsigned char *
upcache_get(struct upcache *c, const char *key, int64_t now, size_t *len,
    int64_t *until)
{
	struct upcache_entry **slot = upcache_slot(c, key,
	    upcache_hash(key)), *e = *slot;

	if (e == NULL) {
		return NULL;
	}
	if (now >= e->until) {
		upcache_remove(c, slot);
		return NULL;
	}
	/* In use: the last to be dropped for room. */
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	*len = e->len;
	*until = e->until;
	return e->bytes;
}

void
upcache_forget(struct upcache *c, const char *key)
{
	struct upcache_entry **slot = upcache_slot(c, key, upcache_hash(key));

	if (*slot != NULL) {
		upcache_remove(c, slot);
	}
}

size_t
upcache_count(const struct upcache *c)
{
	return c->count;
}

size_t
upcache_bytes(const struct upcache *c)
{
	return c->bytes;
}

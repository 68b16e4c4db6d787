/*
 * hslimit.c - caps on connections still in their handshake (see
 * hslimit.h).
 *
 * Per address counts live in a small chained hash table; an address
 * leaves it when its last pending connection completes, so the table never
 * holds more entries than there are pending connections.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "hslimit.h"
#include "util.h"

#define HSLIMIT_BUCKETS 1024

struct hslimit_node {
	struct hslimit_node *next;
	struct hslimit_key key;
	uint32_t count;
};

struct hslimit {
	struct hslimit_node *buckets[HSLIMIT_BUCKETS];
	uint32_t total;
};

struct hslimit *
hslimit_new(void)
{
	return calloc(1, sizeof(struct hslimit));
}

void
hslimit_free(struct hslimit *h)
{
	if (h == NULL) {
		return;
	}
	for (size_t b = 0; b < HSLIMIT_BUCKETS; b++) {
		while (h->buckets[b] != NULL) {
			struct hslimit_node *n = h->buckets[b];

			h->buckets[b] = n->next;
			free(n);
		}
	}
	free(h);
}

void
hslimit_key_of(const struct sockaddr *sa, struct hslimit_key *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)
		    (const void *)sa;

		memcpy(out->addr, &in6->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)
		    (const void *)sa;

		out->addr[10] = 0xff;
		out->addr[11] = 0xff;
		memcpy(out->addr + 12, &in->sin_addr, 4);
	}
}

/* FNV-1a: addresses are not chosen to collide here by anyone who could
 * gain from it (a collision only lengthens a chain). */
static size_t
hslimit_bucket(const struct hslimit_key *k)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(k->addr); i++) {
		h = (h ^ k->addr[i]) * 16777619u;
	}
	return h % HSLIMIT_BUCKETS;
}

static struct hslimit_node **
hslimit_find(struct hslimit *h, const struct hslimit_key *k)
{
	struct hslimit_node **p = &h->buckets[hslimit_bucket(k)];

	while (*p != NULL && memcmp((*p)->key.addr, k->addr,
	    sizeof(k->addr)) != 0) {
		p = &(*p)->next;
	}
	return p;
}

enum hslimit_verdict
hslimit_take(struct hslimit *h, const struct hslimit_key *k,
    uint32_t max_total, uint32_t max_per_ip)
{
	struct hslimit_node **p, *n;

	if (h->total >= max_total) {
		return HSLIMIT_TOTAL;
	}
	p = hslimit_find(h, k);
	n = *p;
	if (n != NULL && n->count >= max_per_ip) {
		return HSLIMIT_PER_IP;
	}
	if (n == NULL) {
		if (max_per_ip == 0) {
			return HSLIMIT_PER_IP;
		}
		n = calloc(1, sizeof(*n));
		if (n == NULL) {
			/* No room to count it: as if the gateway were full. */
			return HSLIMIT_TOTAL;
		}
		n->key = *k;
		*p = n;
	}
	n->count++;
	h->total++;
	return HSLIMIT_OK;
}

void
hslimit_release(struct hslimit *h, const struct hslimit_key *k)
{
	struct hslimit_node **p = hslimit_find(h, k), *n = *p;

	CB_ASSERT(n != NULL && n->count > 0 && h->total > 0);
	h->total--;
	if (--n->count == 0) {
		*p = n->next;
		free(n);
	}
}

uint32_t
hslimit_pending(const struct hslimit *h)
{
	return h->total;
}

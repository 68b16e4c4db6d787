/*
 * tickets.c - TLS 1.3 session tickets sealed by certbridge, each naming
 * the chain it resumes (see tickets.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include "tickets.h"

#define TICKETS_KEY_LEN   CHACHA20_POLY1305_AEAD_KEYSIZE    /* 32 */
#define TICKETS_NONCE_LEN CHACHA20_POLY1305_AEAD_IV_SIZE    /* 12 */
#define TICKETS_TAG_LEN   CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE /* 16 */
#define TICKETS_ID_LEN    8

struct tickets_entry {
	uint64_t seq;              /* 0: empty */
	int64_t born;              /* monotonic seconds */
	void *value;
};

struct tickets {
	uint8_t key[TICKETS_KEY_LEN];
	uint8_t id[TICKETS_ID_LEN];
	uint64_t next_seq;
	uint64_t oldest;   /* no entry below this sequence holds a value */
	int64_t lifetime_s;
	size_t capacity;
	size_t used;
	void (*release)(void *value);
	struct tickets_entry *ring;
};

static bool
tickets_random(uint8_t *out, size_t len)
{
	while (len > 0) {
		ssize_t n = getrandom(out, len, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return false;
		}
		out += n;
		len -= (size_t)n;
	}
	return true;
}

struct tickets *
tickets_new(size_t capacity, int64_t lifetime_s, void (*release)(void *))
{
	struct tickets *tk;

	if (capacity == 0 || lifetime_s <= 0) {
		return NULL;
	}
	tk = calloc(1, sizeof(*tk));
	if (tk == NULL) {
		return NULL;
	}
	/* calloc: pages of the ring cost memory only once tickets use them. */
	tk->ring = calloc(capacity, sizeof(*tk->ring));
	if (tk->ring == NULL || !tickets_random(tk->key, sizeof(tk->key))
	    || !tickets_random(tk->id, sizeof(tk->id))) {
		free(tk->ring);
		free(tk);
		return NULL;
	}
	tk->capacity = capacity;
	tk->lifetime_s = lifetime_s;
	tk->release = release;
	tk->next_seq = 1;
	tk->oldest = 1;
	return tk;
}

static void
tickets_drop(struct tickets *tk, struct tickets_entry *e)
{
	if (e->seq != 0) {
		if (tk->release != NULL) {
			tk->release(e->value);
		}
		tk->used--;
	}
	memset(e, 0, sizeof(*e));
}

void
tickets_free(struct tickets *tk)
{
	if (tk == NULL) {
		return;
	}
	for (size_t i = 0; i < tk->capacity; i++) {
		tickets_drop(tk, &tk->ring[i]);
	}
	/* The key sealed every live ticket: it goes with the store. */
	memset(tk->key, 0, sizeof(tk->key));
	free(tk->ring);
	free(tk);
}

size_t
tickets_count(const struct tickets *tk)
{
	return tk != NULL ? tk->used : 0;
}

static void
tickets_put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
tickets_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v = v << 8 | p[i];
	}
	return v;
}

/* The associated data: the name and iv as sent, and the sealed length
 * (as wolfSSL's own tickets bind it), so none can be swapped. */
static void
tickets_aad(uint8_t aad[TICKETS_NAME_LEN + TICKETS_IV_LEN + 2],
    const uint8_t *name, const uint8_t *iv, size_t len)
{
	memcpy(aad, name, TICKETS_NAME_LEN);
	memcpy(aad + TICKETS_NAME_LEN, iv, TICKETS_IV_LEN);
	aad[TICKETS_NAME_LEN + TICKETS_IV_LEN] = (uint8_t)(len >> 8);
	aad[TICKETS_NAME_LEN + TICKETS_IV_LEN + 1] = (uint8_t)len;
}

/* Releases the values of tickets past their lifetime, oldest first (the
 * ring is in issue order, and every ticket lives as long), so that what an
 * expired ticket named is not kept until a new ticket happens to reuse its
 * slot. Each entry is passed once: O(1) a ticket, amortised. */
static void
tickets_sweep(struct tickets *tk, int64_t now)
{
	while (tk->oldest < tk->next_seq) {
		struct tickets_entry *e = &tk->ring[tk->oldest % tk->capacity];

		if (e->seq == tk->oldest) {
			if (now - e->born < tk->lifetime_s) {
				return;
			}
			tickets_drop(tk, e);
		}
		tk->oldest++;
	}
}

void
tickets_expire(struct tickets *tk, int64_t now)
{
	if (tk != NULL) {
		tickets_sweep(tk, now);
	}
}

bool
tickets_seal(struct tickets *tk, void *value, int64_t now,
    uint8_t name[TICKETS_NAME_LEN], uint8_t iv[TICKETS_IV_LEN],
    uint8_t mac[TICKETS_MAC_LEN], uint8_t *ticket, size_t len)
{
	uint8_t aad[TICKETS_NAME_LEN + TICKETS_IV_LEN + 2];
	struct tickets_entry *e;
	uint64_t seq;

	if (tk == NULL || len == 0 || len > 0xffff) {
		if (tk != NULL && tk->release != NULL) {
			tk->release(value);
		}
		return false;
	}
	tickets_sweep(tk, now);
	seq = tk->next_seq++;
	memcpy(name, tk->id, TICKETS_ID_LEN);
	tickets_put64(name + TICKETS_ID_LEN, seq);
	/* The nonce is the sequence number: never twice under one key. */
	memset(iv, 0, TICKETS_IV_LEN);
	tickets_put64(iv + TICKETS_NONCE_LEN - 8, seq);
	memset(mac, 0, TICKETS_MAC_LEN);
	tickets_aad(aad, name, iv, len);
	if (wc_ChaCha20Poly1305_Encrypt(tk->key, iv, aad, sizeof(aad),
	    ticket, (word32)len, ticket, mac) != 0) {
		if (tk->release != NULL) {
			tk->release(value);
		}
		return false;
	}
	/* The oldest ticket's entry makes room: that device makes a full
	 * handshake next time. */
	e = &tk->ring[seq % tk->capacity];
	tickets_drop(tk, e);
	e->seq = seq;
	e->born = now;
	e->value = value;
	tk->used++;
	return true;
}

void *
tickets_open(struct tickets *tk, int64_t now,
    const uint8_t name[TICKETS_NAME_LEN], const uint8_t iv[TICKETS_IV_LEN],
    const uint8_t mac[TICKETS_MAC_LEN], uint8_t *ticket, size_t len)
{
	uint8_t aad[TICKETS_NAME_LEN + TICKETS_IV_LEN + 2];
	uint8_t want_iv[TICKETS_IV_LEN] = {0};
	static const uint8_t zeros[TICKETS_MAC_LEN - TICKETS_TAG_LEN];
	struct tickets_entry *e;
	uint64_t seq;

	if (tk == NULL || len == 0 || len > 0xffff
	    || memcmp(name, tk->id, TICKETS_ID_LEN) != 0) {
		return NULL;
	}
	seq = tickets_get64(name + TICKETS_ID_LEN);
	if (seq == 0 || seq >= tk->next_seq) {
		return NULL;
	}
	e = &tk->ring[seq % tk->capacity];
	if (e->seq != seq || now < e->born || now - e->born >= tk->lifetime_s) {
		return NULL;
	}
	tickets_put64(want_iv + TICKETS_NONCE_LEN - 8, seq);
	if (memcmp(iv, want_iv, sizeof(want_iv)) != 0
	    || memcmp(mac + TICKETS_TAG_LEN, zeros, sizeof(zeros)) != 0) {
		return NULL;
	}
	tickets_aad(aad, name, iv, len);
	if (wc_ChaCha20Poly1305_Decrypt(tk->key, iv, aad, sizeof(aad),
	    ticket, (word32)len, mac, ticket) != 0) {
		return NULL;
	}
	return e->value;
}

/*
 * devstore.c - device_certs pairs in memory (see devstore.h).
 *
 * A pair is one allocation (the record, then its chain, key and id), so a
 * folder of 10,000 devices costs 10,000 allocations, and a store is one
 * more: a sorted array of pointers to pairs, which stores of successive
 * generations share.
 */
#include <string.h>

#include "devstore.h"
#include "util.h"

struct devstore_entry {
	struct devstore_pair pair;  /* first: the view devstore_find gives */
	unsigned refs;              /* stores holding this pair */
	unsigned char bytes[];      /* chain, key, id */
};

struct devstore {
	unsigned refs;
	size_t count, capacity;
	struct devstore_entry *entries[]; /* sorted by id */
};

struct devstore *
devstore_new(size_t capacity)
{
	struct devstore *s;

	if (capacity > (SIZE_MAX - sizeof(*s)) / sizeof(s->entries[0])) {
		return NULL;
	}
	s = calloc(1, sizeof(*s) + capacity * sizeof(s->entries[0]));
	if (s == NULL) {
		return NULL;
	}
	s->refs = 1;
	s->capacity = capacity;
	return s;
}

/* Keeps the array sorted without sorting it: devstore_find relies on it. */
static void
devstore_append(struct devstore *s, struct devstore_entry *e)
{
	CB_ASSERT(s->count < s->capacity);
	CB_ASSERT(s->count == 0 || strcmp(s->entries[s->count - 1]->pair.id,
	    e->pair.id) < 0);
	s->entries[s->count++] = e;
}

bool
devstore_add(struct devstore *s, const struct devstore_pair *pair)
{
	size_t id_len = strlen(pair->id) + 1;
	struct devstore_entry *e;
	unsigned char *p;

	if (pair->chain_len > SIZE_MAX / 4 || pair->key_len > SIZE_MAX / 4
	    || id_len > SIZE_MAX / 4) {
		return false;
	}
	e = malloc(sizeof(*e) + pair->chain_len + pair->key_len + id_len);
	if (e == NULL) {
		return false;
	}
	e->pair = *pair;
	e->refs = 1;
	p = e->bytes;
	memcpy(p, pair->chain, pair->chain_len);
	e->pair.chain = p;
	p += pair->chain_len;
	memcpy(p, pair->key, pair->key_len);
	e->pair.key = p;
	p += pair->key_len;
	memcpy(p, pair->id, id_len);
	e->pair.id = (const char *)p;
	devstore_append(s, e);
	return true;
}

static bool
devstore_same_file(const struct devstore_file *a, const struct devstore_file *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size
	    && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* The index of id in s, or s->count. */
static size_t
devstore_index(const struct devstore *s, const char *id)
{
	size_t lo = 0, hi = s->count, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(id, s->entries[mid]->pair.id);
		if (c == 0) {
			return mid;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	return s->count;
}

bool
devstore_reuse(struct devstore *s, const struct devstore *prev,
    const char *id, const struct devstore_file *crt_file,
    const struct devstore_file *key_file)
{
	struct devstore_entry *e;
	size_t i;

	if (prev == NULL || (i = devstore_index(prev, id)) == prev->count) {
		return false;
	}
	e = prev->entries[i];
	if (!devstore_same_file(&e->pair.crt_file, crt_file)
	    || !devstore_same_file(&e->pair.key_file, key_file)) {
		return false;
	}
	e->refs++;
	devstore_append(s, e);
	return true;
}

const struct devstore_pair *
devstore_find(const struct devstore *s, const char *id)
{
	size_t i;

	if (s == NULL || id == NULL || (i = devstore_index(s, id)) == s->count) {
		return NULL;
	}
	return &s->entries[i]->pair;
}

size_t
devstore_count(const struct devstore *s)
{
	return s != NULL ? s->count : 0;
}

void
devstore_file_of(const struct stat *st, struct devstore_file *f)
{
	memset(f, 0, sizeof(*f));
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->ctime_s = (int64_t)st->st_ctim.tv_sec;
	f->ctime_ns = st->st_ctim.tv_nsec;
}

struct devstore *
devstore_ref(struct devstore *s)
{
	s->refs++;
	return s;
}

static void
devstore_entry_unref(struct devstore_entry *e)
{
	CB_ASSERT(e->refs > 0);
	if (--e->refs > 0) {
		return;
	}
	/* A private key does not stay behind in freed memory. */
	explicit_bzero(e->bytes + e->pair.chain_len, e->pair.key_len);
	free(e);
}

void
devstore_unref(struct devstore *s)
{
	if (s == NULL) {
		return;
	}
	CB_ASSERT(s->refs > 0);
	if (--s->refs > 0) {
		return;
	}
	for (size_t i = 0; i < s->count; i++) {
		devstore_entry_unref(s->entries[i]);
	}
	free(s);
}

/*
 * sightings.c - the per-CA device table and its state file (see
 * sightings.h).
 *
 * The file is text, one device per line, so an operator can read it:
 *
 *	# certbridge device sightings v1: ca<TAB>device<TAB>first<TAB>last
 *	legacy	dev-0042	1795861615	1796470015
 *
 * Times are epoch seconds (UTC). Device names are percent-escaped where a
 * byte would break the format (tab, newline, %, control bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sightfile.h"
#include "sightings.h"
#include "util.h"


struct sightings_ca {
	char *name;
	struct sightings_counts counts;
	struct sightings_ca *next;
};

struct sightings_entry {
	struct sightings_ca *ca;
	char *device;
	int64_t first;
	int64_t last;
	/* The serial of the certificate last seen ("" unknown). */
	char serial[SIGHTFILE_SERIAL_HEX];
	struct sightings_entry *next;
};

struct sightings {
	struct sightings_entry **buckets;
	size_t nbuckets;
	size_t count;
	struct sightings_ca *cas;
	bool dirty;
};

static uint64_t
sightings_hash(const char *ca, const char *device)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = ca; *p; p++) {
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	}
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *p = device; *p; p++) {
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	}
	return h;
}

struct sightings *
sightings_new(void)
{
	struct sightings *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		return NULL;
	}
	s->nbuckets = 256;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (s->buckets == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void
sightings_free(struct sightings *s)
{
	if (s == NULL) {
		return;
	}
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct sightings_entry *e = s->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e->device);
			free(e);
		}
	}
	while (s->cas != NULL) {
		struct sightings_ca *c = s->cas;

		s->cas = c->next;
		free(c->name);
		free(c);
	}
	free(s->buckets);
	free(s);
}

static struct sightings_ca *
sightings_ca(struct sightings *s, const char *name, bool create)
{
	struct sightings_ca *c;

	for (c = s->cas; c != NULL; c = c->next) {
		if (strcmp(c->name, name) == 0) {
			return c;
		}
	}
	if (!create || (c = calloc(1, sizeof(*c))) == NULL) {
		return NULL;
	}
	c->name = strdup(name);
	if (c->name == NULL) {
		free(c);
		return NULL;
	}
	c->next = s->cas;
	s->cas = c;
	return c;
}

/* Doubles the table when it holds more entries than buckets; on failure
 * the table just stays denser. */
static void
sightings_grow(struct sightings *s)
{
	size_t n = s->nbuckets * 2;
	struct sightings_entry **b = calloc(n, sizeof(*b));

	if (b == NULL) {
		return;
	}
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct sightings_entry *e = s->buckets[i], *next;

		for (; e != NULL; e = next) {
			size_t at = sightings_hash(e->ca->name, e->device) % n;

			next = e->next;
			e->next = b[at];
			b[at] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/* Records a sighting spanning [first, last]; merges with what is known. */
static void
sightings_put(struct sightings *s, const char *ca_name, const char *device,
    const char *serial, int64_t first, int64_t last)
{
	struct sightings_ca *ca = sightings_ca(s, ca_name, true);
	struct sightings_entry *e;
	size_t at;

	if (ca == NULL) {
		return;
	}
	at = sightings_hash(ca_name, device) % s->nbuckets;
	for (e = s->buckets[at]; e != NULL; e = e->next) {
		if (e->ca == ca && strcmp(e->device, device) == 0) {
			if (first < e->first) {
				e->first = first;
			}
			if (last >= e->last && serial != NULL
			    && serial[0] != '\0') {
				snprintf(e->serial, sizeof(e->serial), "%s",
				    serial);
			}
			if (last > e->last) {
				e->last = last;
			}
			s->dirty = true;
			return;
		}
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->device = strdup(device)) == NULL) {
		free(e);
		return;
	}
	e->ca = ca;
	e->first = first;
	e->last = last;
	snprintf(e->serial, sizeof(e->serial), "%s", serial != NULL ? serial
	    : "");
	e->next = s->buckets[at];
	s->buckets[at] = e;
	s->count++;
	s->dirty = true;
	if (s->count > s->nbuckets) {
		sightings_grow(s);
	}
}

void
sightings_note(struct sightings *s, const char *ca, const char *device,
    const char *serial, int64_t now)
{
	sightings_put(s, ca, device, serial, now, now);
}

void
sightings_count_admission(struct sightings *s, const char *ca)
{
	struct sightings_ca *c = sightings_ca(s, ca, true);

	if (c != NULL) {
		c->counts.admissions++;
	}
}

void
sightings_count_grace(struct sightings *s, const char *ca, bool expired)
{
	struct sightings_ca *c = sightings_ca(s, ca, true);

	if (c == NULL) {
		return;
	}
	if (expired) {
		c->counts.grace_expired++;
	} else {
		c->counts.grace_skew++;
	}
}

static const struct sightings_entry *
sightings_find(const struct sightings *s, const struct sightings_ca *ca,
    const char *device)
{
	size_t at = sightings_hash(ca->name, device) % s->nbuckets;

	for (const struct sightings_entry *e = s->buckets[at]; e != NULL;
	    e = e->next) {
		if (e->ca == ca && strcmp(e->device, device) == 0) {
			return e;
		}
	}
	return NULL;
}

/* Whether e is the device's latest sighting: no other CA saw it later (a
 * tie goes to the CA first in the list, so a device counts once). */
static bool
sightings_latest(const struct sightings *s, const struct sightings_entry *e)
{
	for (const struct sightings_ca *c = s->cas; c != NULL; c = c->next) {
		const struct sightings_entry *o;

		if (c == e->ca || (o = sightings_find(s, c, e->device)) == NULL) {
			continue;
		}
		if (o->last > e->last) {
			return false;
		}
		if (o->last == e->last) {
			/* The first of the two in the list wins the tie. */
			for (const struct sightings_ca *f = s->cas; f != NULL;
			    f = f->next) {
				if (f == e->ca) {
					break;
				}
				if (f == c) {
					return false;
				}
			}
		}
	}
	return true;
}

/* Distinct devices of ca seen at or after since; with latest_only, only
 * those whose latest sighting of all is with ca. */
static size_t
sightings_count_devices(const struct sightings *s, const char *ca,
    int64_t since, bool latest_only)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nbuckets; i++) {
		for (struct sightings_entry *e = s->buckets[i]; e != NULL;
		    e = e->next) {
			if (e->last >= since && strcmp(e->ca->name, ca) == 0
			    && (!latest_only || sightings_latest(s, e))) {
				n++;
			}
		}
	}
	return n;
}

size_t
sightings_devices_now_with(const struct sightings *s, const char *ca,
    int64_t since)
{
	return sightings_count_devices(s, ca, since, true);
}

size_t
sightings_devices_since(const struct sightings *s, const char *ca,
    int64_t since)
{
	return sightings_count_devices(s, ca, since, false);
}

int64_t
sightings_last_seen(const struct sightings *s, const char *ca)
{
	int64_t last = 0;

	for (size_t i = 0; i < s->nbuckets; i++) {
		for (struct sightings_entry *e = s->buckets[i]; e != NULL;
		    e = e->next) {
			if (e->last > last && strcmp(e->ca->name, ca) == 0) {
				last = e->last;
			}
		}
	}
	return last;
}

struct sightings_counts
sightings_counts(const struct sightings *s, const char *ca)
{
	struct sightings_counts none = {0, 0, 0};
	struct sightings_ca *c = sightings_ca((struct sightings *)(uintptr_t)s,
	    ca, false);

	return c != NULL ? c->counts : none;
}

void
sightings_touch(struct sightings *s)
{
	s->dirty = true;
}

bool
sightings_dirty(const struct sightings *s)
{
	return s->dirty;
}

bool
sightings_save(const struct sightings *s, const char *path, char *why,
    size_t why_len)
{
	char tmp[4096];
	FILE *f;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(why, why_len, "cannot write \"%s\": %s", tmp,
		    strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return false;
	}
	fputs(SIGHTFILE_HEADER, f);
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (struct sightings_entry *e = s->buckets[i]; e != NULL;
		    e = e->next) {
			sightfile_write(f, e->ca->name, e->device, e->first,
			    e->last, e->serial);
		}
	}
	/* The rename publishes the file only once it is complete on disk,
	 * so a crash leaves the old state or the new, never half of one. */
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(why, why_len, "cannot write \"%s\": %s", tmp,
		    strerror(errno));
		fclose(f);
		unlink(tmp);
		return false;
	}
	fclose(f);
	if (rename(tmp, path) != 0) {
		snprintf(why, why_len, "cannot rename \"%s\" to \"%s\": %s", tmp,
		    path, strerror(errno));
		unlink(tmp);
		return false;
	}
	((struct sightings *)(uintptr_t)s)->dirty = false;
	return true;
}

static void
sightings_load_one(void *arg, const struct sightfile_rec *rec)
{
	sightings_put(arg, rec->ca, rec->device, rec->serial, rec->first,
	    rec->last);
}

bool
sightings_load(struct sightings *s, const char *path, size_t *skipped,
    char *why, size_t why_len)
{
	if (!sightfile_read(path, sightings_load_one, s, skipped, NULL, why,
	    why_len)) {
		return false;
	}
	s->dirty = false;
	return true;
}

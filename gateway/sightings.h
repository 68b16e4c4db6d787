/*
 * sightings.h - which devices each device CA has admitted, and when.
 *
 * The figure an operator needs before retiring an old CA: how many distinct
 * devices it still admits. Every admission notes (CA name, device) with the
 * first and last time seen; the table lives in memory and, with
 * [gateway] state_file, survives restarts in a small text file written
 * atomically (temporary file, fsync, rename). CAs are keyed by the NAME of
 * [ca.NAME], so counts carry across reloads as long as the section keeps its
 * name.
 */
#ifndef CB_SIGHTINGS_H
#define CB_SIGHTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sightings;

/* The window of the "devices seen" figure (the migration-readiness
 * figure of /metrics, /status and the ca-devices log line). */
#define SIGHTINGS_WINDOW_S (7 * 86400)

/* Per-CA counters kept beside the table (since start, not persisted). */
struct sightings_counts {
	uint64_t admissions;
	uint64_t grace_skew;
	uint64_t grace_expired;
};

struct sightings *sightings_new(void);
void sightings_free(struct sightings *s);

/* Loads path into s (replacing nothing already there: later sightings
 * win). A missing file is fine (first start); a damaged line is skipped
 * and counted. Returns false with why filled when the file exists but
 * cannot be read. */
bool sightings_load(struct sightings *s, const char *path, size_t *skipped,
    char *why, size_t why_len);

/* Writes the table to path atomically; false with why filled on failure
 * (the previous file is then untouched). */
bool sightings_save(const struct sightings *s, const char *path, char *why,
    size_t why_len);

/* Notes an admission at time now (epoch seconds) of a certificate with
 * serial (hex as common/sightfile.h writes it; NULL or "" unknown). */
void sightings_note(struct sightings *s, const char *ca, const char *device,
    const char *serial, int64_t now);
void sightings_count_grace(struct sightings *s, const char *ca, bool expired);
/* Counts one device admitted by ca (its certbridge_device_auth_total). */
void sightings_count_admission(struct sightings *s, const char *ca);

/* Distinct devices of ca last seen at or after since. */
size_t sightings_devices_since(const struct sightings *s, const char *ca,
    int64_t since);
/* The same, counting only devices whose latest sighting of all is with
 * ca: a device that moved to another CA counts for that one alone, so the
 * shares of all CAs add up to the fleet (the status page's bar). */
size_t sightings_devices_now_with(const struct sightings *s, const char *ca,
    int64_t since);
/* The most recent sighting of any device of ca, 0 when none. */
int64_t sightings_last_seen(const struct sightings *s, const char *ca);
struct sightings_counts sightings_counts(const struct sightings *s,
    const char *ca);

/* Marks the table as changed (it must be written, e.g. to a new file). */
void sightings_touch(struct sightings *s);

/* Whether anything changed since the last save. */
bool sightings_dirty(const struct sightings *s);

#endif

/*
 * clock.h - the two clocks certbridge reads.
 *
 * Deadlines and rates use the monotonic clock (a wall-clock step must not
 * expire every session at once); certificate dates and retire_after use the
 * wall clock. Tests may shift either: clock_set_wall_offset() and
 * clock_set_mono_offset().
 */
#ifndef CB_CLOCK_H
#define CB_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

int64_t clock_mono_ms(void);
int64_t clock_wall_s(void);

/* Test seam: seconds added to every clock_wall_s() reading. */
void clock_set_wall_offset(int64_t seconds);

/* Test seam: milliseconds added to every clock_mono_ms() reading, so a
 * test moves deadlines and token buckets forward without sleeping. Only
 * what reads clock_mono_ms() sees it: libevent's own timers still run on
 * the real clock. */
void clock_set_mono_offset(int64_t ms);

/* Test seam: while frozen, clock_mono_ms() keeps the real reading taken
 * when it froze and moves only with clock_set_mono_offset(), so a test
 * that counts tokens or deadlines gets the same count however slowly (or
 * preempted) it runs. */
void clock_freeze_mono(bool frozen);

#endif

/*
 * clock.h - the two clocks certbridge reads.
 *
 * Deadlines and rates use the monotonic clock (a wall-clock step must not
 * expire every session at once); certificate dates and retire_after use the
 * wall clock, which tests may shift with clock_set_wall_offset().
 */
#ifndef CB_CLOCK_H
#define CB_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ms(void);
int64_t clock_wall_s(void);

/* Test seam: seconds added to every clock_wall_s() reading. */
void clock_set_wall_offset(int64_t seconds);

#endif

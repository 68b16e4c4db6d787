/*
 * clock.c - monotonic and wall clock readings (see clock.h).
 */
#include <time.h>

#include "clock.h"

static int64_t wall_offset;
static int64_t mono_offset;
static bool mono_frozen;
static int64_t mono_frozen_at;  /* the real reading when it froze */

static int64_t
clock_mono_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_ms(void)
{
	return (mono_frozen ? mono_frozen_at : clock_mono_real_ms())
	    + mono_offset;
}

int64_t
clock_wall_s(void)
{
	return (int64_t)time(NULL) + wall_offset;
}

void
clock_set_wall_offset(int64_t seconds)
{
	wall_offset = seconds;
}

void
clock_set_mono_offset(int64_t ms)
{
	mono_offset = ms;
}

void
clock_freeze_mono(bool frozen)
{
	if (frozen && !mono_frozen) {
		mono_frozen_at = clock_mono_real_ms();
	}
	mono_frozen = frozen;
}

/*
 * util.h - small helpers every module of certbridge shares.
 *
 * Nothing here allocates or logs; these are the conventions that keep the
 * rest of the code uniform: a free that clears the pointer, assertions that
 * stay on, and cheap checks on the void * that libevent hands back to
 * callbacks.
 */
#ifndef CB_UTIL_H
#define CB_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define CB_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Frees and clears, so a second free or a use after free is a NULL access
 * that crashes loudly instead of corrupting the heap quietly. */
#define CB_FREE(p)                                                             \
	do {                                                                   \
		free(p);                                                       \
		(p) = NULL;                                                    \
	} while (0)

/* "Cannot happen" checks stay on in release builds: a proxy that keeps
 * running with a broken invariant is worse than one that restarts. */
#define CB_ASSERT(cond)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "certbridge: assertion failed: %s "   \
			    "(%s:%d)\n", #cond, __FILE__, __LINE__);           \
			abort();                                               \
		}                                                              \
	} while (0)

/* Structures handed to libevent as void * carry a magic number, checked at
 * each callback entry, so a stale or wrong pointer fails at once. */
#define CB_CAST(var, ptr, magic_value)                                         \
	do {                                                                   \
		(var) = (ptr);                                                 \
		CB_ASSERT((var) != NULL && (var)->magic == (magic_value));     \
	} while (0)

#if defined(__GNUC__)
#define CB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define CB_UNUSED __attribute__((unused))
#else
#define CB_PRINTF(fmt, args)
#define CB_UNUSED
#endif

#endif

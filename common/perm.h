/*
 * perm.h - can a given user read these files and create files in these
 * folders?
 *
 * With [gateway] user, certbridge reads its files as root, then becomes that
 * user; every reload after that reads them again as that user, and the state
 * file is written as that user. perm_check() answers, before that happens,
 * whether the user will be able to. How exact the answer is depends on who
 * asks:
 *
 *   - root: a child process becomes the user exactly as the daemon's
 *     privilege drop does (no supplementary groups, the user's primary
 *     group, its uid) and tries each path with open(2) and access(2).
 *     Exact: ACLs, read-only mounts and every folder on the way count.
 *   - the user itself, with no group besides its primary one (the daemon
 *     after the drop, at a reload): access(2) and open(2) in this process.
 *     Exact.
 *   - anyone else (an operator's own account running -t): the mode bits of
 *     the path and of every folder above it, judged for the user's uid and
 *     primary group. ACLs, capabilities and mount options are not
 *     considered, and a folder this process cannot look into gives
 *     PERM_UNKNOWN. Run -t as root for an exact answer.
 *
 * Supplementary groups are never counted: the daemon drops them
 * (setgroups(0, NULL) in server.c), so a file readable only through one
 * would be unreadable after the drop.
 *
 * user NULL asks about this process as it is (access(2) and open(2)).
 */
#ifndef CB_PERM_H
#define CB_PERM_H

#include <stdbool.h>
#include <stddef.h>

#define PERM_WHY_LEN 256

/* asks[i].err when the answer cannot be known (mode-bit judgement only). */
#define PERM_UNKNOWN (-1)

enum perm_need {
	PERM_READ,   /* open the file for reading */
	PERM_LIST,   /* read the folder and open what is in it (r-x) */
	PERM_CREATE, /* create, replace and rename files in the folder (-wx) */
};

struct perm_ask {
	const char *path;
	enum perm_need need;
	int err;     /* out: 0 allowed, an errno value, or PERM_UNKNOWN */
};

enum perm_how {
	PERM_HOW_SELF = 0, /* this process: exact */
	PERM_HOW_CHILD,    /* a child that became the user: exact */
	PERM_HOW_MODE,     /* mode bits: approximate (see above) */
};

/*
 * Answers every ask for user (NULL: this process), filling asks[i].err and
 * *how. Returns false, with why, when no answer could be had at all: an
 * unknown user, a failed fork, a child that could not become the user or
 * did not finish within 10 seconds (a hung network mount). Blocks; the
 * child, when there is one, is always reaped before this returns.
 */
bool perm_check(const char *user, struct perm_ask *asks, size_t count,
    enum perm_how *how, char why[PERM_WHY_LEN]);

#endif

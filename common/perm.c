/*
 * perm.c - can a given user read these files and create files in these
 * folders? (see perm.h)
 *
 * The child that becomes the user reports one fixed-size record per path
 * through a pipe while the parent reads them as they come, so any number of
 * paths fits through a pipe of any size; the parent waits at most
 * PERM_CHILD_MS in all, then kills the child by its PID and reaps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "clock.h"
#include "perm.h"
#include "util.h"

/* Opening a few hundred files takes milliseconds; this is for a hung
 * network mount, which must not hang -t or a reload for ever. */
#define PERM_CHILD_MS 10000

/* index PERM_SETUP_FAILED: the child could not become the user. */
#define PERM_SETUP_FAILED UINT32_MAX

struct perm_rec {
	uint32_t index;
	int32_t err;
};

/* One path, tried for real by this process as it is. */
static int
perm_try(const struct perm_ask *a)
{
	int fd;

	switch (a->need) {
	case PERM_READ:
		/* O_NONBLOCK: a FIFO named by mistake must not hang us. */
		fd = open(a->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			return errno;
		}
		(void)close(fd);
		return 0;
	case PERM_LIST:
		return faccessat(AT_FDCWD, a->path, R_OK | X_OK, AT_EACCESS)
		    == 0 ? 0 : errno;
	case PERM_CREATE:
		return faccessat(AT_FDCWD, a->path, W_OK | X_OK, AT_EACCESS)
		    == 0 ? 0 : errno;
	}
	return EINVAL;
}

/* Whether this process already is exactly what the privilege drop makes
 * of the user: its uid, its primary group, no other group. */
static bool
perm_is_self(uid_t uid, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (geteuid() != uid || getegid() != gid) {
		return false;
	}
	n = getgroups((int)CB_ARRAY_SIZE(groups), groups);
	if (n < 0) {
		return false; /* more groups than fit: not only the primary */
	}
	for (int i = 0; i < n; i++) {
		if (groups[i] != gid) {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------ mode bits */

/* want: 4 read, 2 write, 1 search/execute, as in a mode's digits. */
static bool
perm_mode_allows(const struct stat *st, uid_t uid, gid_t gid, unsigned want)
{
	unsigned bits;

	if (uid == 0) {
		return true;
	}
	if (st->st_uid == uid) {
		bits = (unsigned)(st->st_mode >> 6) & 7u;
	} else if (st->st_gid == gid) {
		bits = (unsigned)(st->st_mode >> 3) & 7u;
	} else {
		bits = (unsigned)st->st_mode & 7u;
	}
	return (bits & want) == want;
}

/* What stat() failing on a path this process judges for someone else
 * means: gone is gone, anything else cannot be told from here. */
static int
perm_stat_err(int err)
{
	return err == ENOENT || err == ENOTDIR ? err : PERM_UNKNOWN;
}

/* The mode-bit judgement: search permission on every folder from "/" down
 * to the path (after symbolic links are resolved), then the path's own
 * bits. */
static int
perm_by_mode(const struct perm_ask *a, uid_t uid, gid_t gid)
{
	static const unsigned want[] = {
		[PERM_READ] = 4, [PERM_LIST] = 5, [PERM_CREATE] = 3,
	};
	struct stat st;
	char *canon, *s;
	int err = 0;

	canon = realpath(a->path, NULL);
	if (canon == NULL) {
		return errno == ENOMEM ? PERM_UNKNOWN : perm_stat_err(errno);
	}
	if (stat("/", &st) != 0) {
		err = PERM_UNKNOWN;
	} else if (!perm_mode_allows(&st, uid, gid, 1)) {
		err = EACCES;
	}
	for (s = strchr(canon + 1, '/'); err == 0 && s != NULL;
	    s = strchr(s + 1, '/')) {
		*s = '\0';
		if (stat(canon, &st) != 0) {
			err = perm_stat_err(errno);
		} else if (!perm_mode_allows(&st, uid, gid, 1)) {
			err = EACCES;
		}
		*s = '/';
	}
	if (err == 0) {
		if (stat(canon, &st) != 0) {
			err = perm_stat_err(errno);
		} else if (!perm_mode_allows(&st, uid, gid, want[a->need])) {
			err = EACCES;
		}
	}
	free(canon);
	return err;
}

/* ------------------------------------------------------------ the child */

static bool
perm_write_rec(int fd, uint32_t index, int err)
{
	struct perm_rec rec = { index, (int32_t)err };
	const char *p = (const char *)&rec;
	size_t left = sizeof(rec);

	while (left > 0) {
		ssize_t n = write(fd, p, left);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return false;
		}
		p += n;
		left -= (size_t)n;
	}
	return true;
}

/* Becomes the user as server.c's privilege drop does, tries every path,
 * reports each, and leaves with _exit: nothing of the parent's (stdio
 * buffers, wolfSSL, libevent) may run twice. */
static void __attribute__((noreturn))
perm_child(int fd, uid_t uid, gid_t gid, const struct perm_ask *asks,
    size_t count)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		(void)perm_write_rec(fd, PERM_SETUP_FAILED, errno);
		_exit(1);
	}
	for (size_t i = 0; i < count; i++) {
		if (!perm_write_rec(fd, (uint32_t)i, perm_try(&asks[i]))) {
			_exit(1);
		}
	}
	_exit(0);
}

/* Reads the child's records until it closes the pipe or time runs out.
 * Returns how many asks were answered; *setup_err is the child's errno
 * when it could not become the user. */
static size_t
perm_read_child(int fd, struct perm_ask *asks, size_t count, int *setup_err,
    bool *timed_out)
{
	int64_t deadline = clock_mono_ms() + PERM_CHILD_MS;
	struct perm_rec rec;
	size_t have = 0, answered = 0;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int64_t left = deadline - clock_mono_ms();
		ssize_t n;
		int r;

		if (left <= 0) {
			*timed_out = true;
			return answered;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			*timed_out = r == 0;
			return answered;
		}
		n = read(fd, (char *)&rec + have, sizeof(rec) - have);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			continue;
		}
		if (n <= 0) {
			return answered;
		}
		have += (size_t)n;
		if (have < sizeof(rec)) {
			continue;
		}
		have = 0;
		if (rec.index == PERM_SETUP_FAILED) {
			*setup_err = rec.err;
		} else if (rec.index < count && asks[rec.index].err ==
		    PERM_UNKNOWN) {
			asks[rec.index].err = rec.err;
			answered++;
		}
	}
}

static bool
perm_by_child(const char *user, uid_t uid, gid_t gid, struct perm_ask *asks,
    size_t count, char why[PERM_WHY_LEN])
{
	int fds[2], setup_err = 0, status;
	bool timed_out = false;
	size_t answered;
	pid_t pid;

	if (pipe(fds) != 0) {
		snprintf(why, PERM_WHY_LEN, "cannot check what user \"%s\" can "
		    "read: pipe: %s", user, strerror(errno));
		return false;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, PERM_WHY_LEN, "cannot check what user \"%s\" can "
		    "read: fork: %s", user, strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		return false;
	}
	if (pid == 0) {
		(void)close(fds[0]);
		perm_child(fds[1], uid, gid, asks, count);
	}
	(void)close(fds[1]);
	for (size_t i = 0; i < count; i++) {
		asks[i].err = PERM_UNKNOWN;
	}
	answered = perm_read_child(fds[0], asks, count, &setup_err,
	    &timed_out);
	(void)close(fds[0]);
	if (answered < count && setup_err == 0) {
		/* Hung, or a broken pipe: our own child, by its PID (still
		 * ours until reaped just below). */
		(void)kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (setup_err != 0) {
		snprintf(why, PERM_WHY_LEN, "cannot become user \"%s\" to check "
		    "what it can read: %s", user, strerror(setup_err));
		return false;
	}
	if (answered < count) {
		snprintf(why, PERM_WHY_LEN, "the check of what user \"%s\" can "
		    "read %s", user, timed_out ? "did not finish within 10 "
		    "seconds (a hung network mount?)" : "stopped early");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ the API */

bool
perm_check(const char *user, struct perm_ask *asks, size_t count,
    enum perm_how *how, char why[PERM_WHY_LEN])
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	why[0] = '\0';
	*how = PERM_HOW_SELF;
	if (user == NULL) {
		for (size_t i = 0; i < count; i++) {
			asks[i].err = perm_try(&asks[i]);
		}
		return true;
	}
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(why, PERM_WHY_LEN, "no such user \"%s\"%s%s", user,
		    errno ? ": " : "", errno ? strerror(errno) : "");
		return false;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (perm_is_self(uid, gid)) {
		return perm_check(NULL, asks, count, how, why);
	}
	if (geteuid() == 0) {
		*how = PERM_HOW_CHILD;
		return perm_by_child(user, uid, gid, asks, count, why);
	}
	*how = PERM_HOW_MODE;
	for (size_t i = 0; i < count; i++) {
		asks[i].err = perm_by_mode(&asks[i], uid, gid);
	}
	return true;
}

/*
 * filecheck.c - the state file's folder and what [gateway] user can read
 * (see filecheck.h).
 *
 * Every path is collected first, with the section, key and line that named
 * it, then judged in one perm_check() call: as root that is one child
 * process for the whole configuration, not one per file.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "devcert.h"
#include "filecheck.h"
#include "p11uri.h"
#include "perm.h"
#include "util.h"

enum fc_kind {
	FC_INI,        /* the configuration file itself */
	FC_FILE,       /* a certificate, key, CA or CRL file */
	FC_DEVDIR,     /* the device_certs folder */
	FC_DEVFILE,    /* a .crt or .key of a device_certs pair */
	FC_STATE_DIR,  /* the folder of state_file */
	FC_STATE_FILE, /* an existing state file */
};

struct fc_item {
	enum fc_kind kind;
	char sec[48];       /* "downstream", "ca.legacy" */
	const char *key;
	unsigned line;
	char *path;         /* owned; the ask points at it */
};

struct fc {
	const struct cfg *cfg;
	struct cfg_diag *diag;
	const char *user;   /* NULL: the state file only, as this process */
	struct fc_item *items;
	struct perm_ask *asks; /* parallel to items */
	size_t count, cap;
	bool failed;        /* an error was reported */
};

#define FC_NO_STATE "or set state_file = (empty: device sightings in " \
	"memory only)"

static void
fc_add(struct fc *fc, enum fc_kind kind, const char *sec, const char *key,
    unsigned line, const char *path, enum perm_need need)
{
	struct fc_item *items, *it;
	struct perm_ask *asks;
	char *copy;

	if (path == NULL) {
		return;
	}
	if (fc->count == fc->cap) {
		size_t cap = fc->cap ? fc->cap * 2 : 16;

		items = realloc(fc->items, cap * sizeof(*items));
		if (items != NULL) {
			fc->items = items;
		}
		asks = realloc(fc->asks, cap * sizeof(*asks));
		if (asks != NULL) {
			fc->asks = asks;
		}
		if (items == NULL || asks == NULL) {
			goto oom;
		}
		fc->cap = cap;
	}
	if ((copy = strdup(path)) == NULL) {
		goto oom;
	}
	it = &fc->items[fc->count];
	it->kind = kind;
	snprintf(it->sec, sizeof(it->sec), "%s", sec);
	it->key = key;
	it->line = line;
	it->path = copy;
	fc->asks[fc->count].path = copy;
	fc->asks[fc->count].need = need;
	fc->asks[fc->count].err = 0;
	fc->count++;
	return;
oom:
	if (!fc->failed) {
		cfg_diag_add(fc->diag, true, "%s: out of memory", fc->cfg->path);
	}
	fc->failed = true;
}

static void
fc_add_file(struct fc *fc, const char *sec, const char *key,
    const struct cfg_file *f)
{
	/* A key in a token is read by the module, not from a path. */
	if (p11uri_is(f->path)) {
		return;
	}
	fc_add(fc, FC_FILE, sec, key, f->line, f->path, PERM_READ);
}

/* Every file the reload after the privilege drop reads. */
static void
fc_add_user_files(struct fc *fc)
{
	const struct cfg *cfg = fc->cfg;
	const struct cfg_file *dc = &cfg->upstream.device_certs;
	char sec[48], why[256], path[PATH_MAX];
	size_t count = 0;
	char **ids;

	fc_add(fc, FC_INI, "gateway", "user", cfg->gateway.user_line,
	    cfg->path, PERM_READ);
	/* A reload opens the module again only when it names another one,
	 * but reads the PIN file every time. */
	fc_add_file(fc, "gateway", "pkcs11_module", &cfg->gateway.pkcs11_module);
	fc_add_file(fc, "gateway", "pkcs11_pin_file",
	    &cfg->gateway.pkcs11_pin_file);
	fc_add_file(fc, "downstream", "cert", &cfg->downstream.cert);
	fc_add_file(fc, "downstream", "key", &cfg->downstream.key);
	for (size_t i = 0; i < cfg->ca_count; i++) {
		snprintf(sec, sizeof(sec), "ca.%s", cfg->cas[i].name);
		fc_add_file(fc, sec, "file", &cfg->cas[i].file);
		fc_add_file(fc, sec, "crl", &cfg->cas[i].crl);
	}
	fc_add_file(fc, "upstream", "ca", &cfg->upstream.ca);
	fc_add_file(fc, "upstream", "cert", &cfg->upstream.cert);
	fc_add_file(fc, "upstream", "key", &cfg->upstream.key);
	if (dc->path == NULL) {
		return;
	}
	fc_add(fc, FC_DEVDIR, "upstream", "device_certs", dc->line, dc->path,
	    PERM_LIST);
	/* A folder -t cannot list is reported by the TLS checks already. */
	ids = devcert_pairs(dc->path, &count, why, sizeof(why));
	for (size_t i = 0; i < count; i++) {
		snprintf(path, sizeof(path), "%s/%s.crt", dc->path, ids[i]);
		fc_add(fc, FC_DEVFILE, "upstream", "device_certs", dc->line,
		    path, PERM_READ);
		snprintf(path, sizeof(path), "%s/%s.key", dc->path, ids[i]);
		fc_add(fc, FC_DEVFILE, "upstream", "device_certs", dc->line,
		    path, PERM_READ);
	}
	devcert_pairs_free(ids, count);
}

/* The line a state_file problem is reported at: the key's, or for the
 * built-in default the [gateway] header's (1 without one). */
static unsigned
fc_state_line(const struct cfg *cfg)
{
	if (cfg->gateway.state_file.line != 0) {
		return cfg->gateway.state_file.line;
	}
	return cfg->gateway.line != 0 ? cfg->gateway.line : 1;
}

/*
 * What needs no user to judge: the state file is not a folder, and its
 * folder exists. Then its folder must take new files (the state is written
 * to a temporary file and renamed) and an existing state file must be
 * readable: asked of the user with everything else.
 */
static void
fc_add_state(struct fc *fc)
{
	const struct cfg *cfg = fc->cfg;
	const char *path = cfg->gateway.state_file.path, *slash;
	unsigned line = fc_state_line(cfg);
	char dir[PATH_MAX], dflt[PATH_MAX + 40] = "";
	struct stat st;

	if (path == NULL) {
		return;
	}
	if (cfg->gateway.state_file.line == 0) {
		snprintf(dflt, sizeof(dflt), " of the default state_file (\"%s\")",
		    path);
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		cfg_diag_add(fc->diag, true, "%s:%u: [gateway] state_file: \"%s\" "
		    "is a folder; name a file in it, such as "
		    "\"%s/devices.state\"", cfg->path, line, path, path);
		fc->failed = true;
		return;
	}
	slash = strrchr(path, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
		    (int)(slash - path), path);
	}
	if (stat(dir, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
		cfg_diag_add(fc->diag, true, "%s:%u: [gateway] state_file: the "
		    "folder \"%s\"%s does not exist: device sightings would be "
		    "lost at every stop; create it, writable by the user "
		    "certbridge runs as, " FC_NO_STATE, cfg->path, line, dir,
		    dflt);
		fc->failed = true;
		return;
	}
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		cfg_diag_add(fc->diag, true, "%s:%u: [gateway] state_file: \"%s\" "
		    "is not a folder; name a file in a folder, " FC_NO_STATE,
		    cfg->path, line, dir);
		fc->failed = true;
		return;
	}
	fc_add(fc, FC_STATE_DIR, "gateway", "state_file", line, dir,
	    PERM_CREATE);
	if (stat(path, &st) == 0) {
		fc_add(fc, FC_STATE_FILE, "gateway", "state_file", line, path,
		    PERM_READ);
	}
}

/* "user "nobody" ([gateway] user) cannot", "user "nobody" cannot" on the
 * user line itself, or, for this process, "cannot". */
static const char *
fc_who(const struct fc *fc, enum fc_kind kind, char *buf, size_t cap)
{
	if (fc->user == NULL) {
		return "cannot";
	}
	snprintf(buf, cap, "user \"%s\"%s cannot", fc->user, kind == FC_INI ?
	    "" : " ([gateway] user)");
	return buf;
}

/* What goes wrong later, and what to do, for one path. */
static const char *
fc_consequence(const struct fc *fc, const struct fc_item *it)
{
	switch (it->kind) {
	case FC_INI:
		return "every reload after the privilege drop would fail; make "
		    "it readable by that user";
	case FC_FILE:
		return strcmp(it->key, "key") == 0 ? "certbridge reads it "
		    "again as that user at every reload after the privilege "
		    "drop, which would fail; give the key to that user (owned "
		    "by it, mode 0600)" : "certbridge reads it again as that "
		    "user at every reload after the privilege drop, which would "
		    "fail; make it readable by that user";
	case FC_DEVDIR:
		return "after the privilege drop no device would connect "
		    "upstream as itself; make the folder readable by that user";
	case FC_DEVFILE:
		return "after the privilege drop that device would not connect "
		    "upstream as itself; make it readable by that user";
	case FC_STATE_DIR:
		return fc->user != NULL ? "device sightings would be lost at "
		    "every stop; give the folder to that user, " FC_NO_STATE :
		    "device sightings would be lost at every stop; make the "
		    "folder writable by the user certbridge runs as, "
		    FC_NO_STATE;
	case FC_STATE_FILE:
		return "the device sightings in it would be lost; make it "
		    "readable by the user certbridge runs as, or remove it to "
		    "start afresh";
	}
	return "";
}

static void
fc_report(struct fc *fc, size_t i, enum perm_how how)
{
	const struct fc_item *it = &fc->items[i];
	const struct perm_ask *a = &fc->asks[i];
	char who[96];

	if (a->err == 0) {
		return;
	}
	if (a->err == PERM_UNKNOWN) {
		cfg_diag_add(fc->diag, false, "%s:%u: [%s] %s: warning: cannot "
		    "tell whether user \"%s\" can %s \"%s\": this account cannot "
		    "look into every folder above it; run certbridge -t as root "
		    "for an exact answer", fc->cfg->path, it->line, it->sec,
		    it->key, fc->user ? fc->user : "?", a->need == PERM_CREATE ?
		    "create files in" : "read", a->path);
		return;
	}
	cfg_diag_add(fc->diag, true, "%s:%u: [%s] %s: %s %s %s\"%s\" (%s): %s%s",
	    fc->cfg->path, it->line, it->sec, it->key,
	    fc_who(fc, it->kind, who, sizeof(who)), a->need == PERM_CREATE ?
	    "create files in" : "read", it->kind == FC_INI ? "the "
	    "configuration file " : it->kind == FC_DEVDIR ? "the folder " :
	    it->kind == FC_STATE_FILE ? "the state file " : "", a->path,
	    strerror(a->err), fc_consequence(fc, it),
	    how == PERM_HOW_MODE ? " (judged from mode bits: ACLs are not "
	    "considered; run certbridge -t as root for an exact check)" : "");
	fc->failed = true;
}

bool
filecheck_run(const struct cfg *cfg, struct cfg_diag *diag)
{
	struct fc fc = { cfg, diag, NULL, NULL, NULL, 0, 0, false };
	enum perm_how how = PERM_HOW_SELF;
	char why[PERM_WHY_LEN];

	/* An unknown user is the privilege drop's to report (exit 3); its
	 * files cannot be judged for it. */
	if (cfg->gateway.user != NULL && getpwnam(cfg->gateway.user) != NULL) {
		fc.user = cfg->gateway.user;
		fc_add_user_files(&fc);
	}
	fc_add_state(&fc);
	if (fc.count > 0 && !perm_check(fc.user, fc.asks, fc.count, &how,
	    why)) {
		cfg_diag_add(diag, true, "%s:%u: [gateway] user: %s", cfg->path,
		    cfg->gateway.user_line, why);
		fc.failed = true;
	} else {
		for (size_t i = 0; i < fc.count; i++) {
			fc_report(&fc, i, how);
		}
	}
	for (size_t i = 0; i < fc.count; i++) {
		free(fc.items[i].path);
	}
	free(fc.asks);
	free(fc.items);
	return !fc.failed;
}

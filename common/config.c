/*
 * config.c - loading the INI file: reading it, the one inih pass over it,
 * and freeing the result.
 *
 * inih parses the file once, asking a reader of ours for one line at a
 * time and calling the handler for each key = value line before it asks
 * for the next. The handler checks each key against the table in
 * config_keys.c. The reader sees each line just before inih does, for the
 * little inih cannot tell the handler: section headers (Debian's inih is
 * built without INI_CALL_HANDLER_ON_NEW_SECTION), lines inih cannot read
 * (a NUL byte, a line longer than its buffer) and a list continued on the
 * next line. A key line inih refuses never reaches the handler: noticed
 * when inih asks for the next line, it is reported then, so every syntax
 * error is reported, not only the first one inih returns. Problems are
 * queued (config_diag.c) and sorted into file order at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <ini.h>

/* Debian's libinih is built with INI_HANDLER_LINENO: the handler's
 * prototype must match how the library calls it. The Makefile passes
 * -DINI_HANDLER_LINENO=1. */
#if !INI_HANDLER_LINENO
#error "common/config.c needs -DINI_HANDLER_LINENO=1"
#endif

#include "config.h"
#include "config_int.h"

/* A configuration file is a page of text; anything bigger is the wrong file. */
#define CFG_MAX_BYTES (1024 * 1024)
/* inih's line buffer (ini_max_line) holds a line, its "\r\n" and a NUL. */
#define CFG_INI_MAX_LINE 4096
#define CFG_MAX_LINE_CHARS (CFG_INI_MAX_LINE - 3)
#define CA_NAME_MAX 32

/* Values of ld->cur besides a logical section index. */
#define LINE_NO_SECTION (-1) /* before the first header */
#define LINE_SKIP (-2)       /* in an unknown or invalid section */

/* ------------------------------------------------------------ reading */

static char *
read_file(struct cfg_loader *ld, size_t *len_out)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = fopen(ld->path, "rb");
	if (f == NULL) {
		cfg_report(ld, true, 0, "cannot open the configuration file: %s",
		    strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		cfg_report(ld, true, 0, "is a folder; expected the "
		    "configuration file");
		goto fail;
	}
	buf = malloc(CFG_MAX_BYTES + 1);
	if (buf == NULL) {
		ld->lost++;
		goto fail;
	}
	for (;;) {
		size_t n = fread(buf + len, 1, CFG_MAX_BYTES + 1 - len, f);

		len += n;
		if (n == 0 || len > CFG_MAX_BYTES) {
			break;
		}
	}
	if (ferror(f)) {
		cfg_report(ld, true, 0, "cannot read the configuration file: "
		    "%s", strerror(errno));
		goto fail;
	}
	if (len > CFG_MAX_BYTES) {
		cfg_report(ld, true, 0, "larger than %d bytes; is this the "
		    "configuration file?", CFG_MAX_BYTES);
		goto fail;
	}
	buf[len] = '\0';
	(void)fclose(f);
	*len_out = len;
	return buf;
fail:
	free(buf);
	(void)fclose(f);
	return NULL;
}

/* The folder relative paths are resolved against; NULL for the cwd. */
static char *
folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n;
	char *dir;

	if (slash == NULL) {
		return NULL;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	dir = malloc(n + 1);
	if (dir != NULL) {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	return dir;
}

/* ------------------------------------------------------------ headers */

/* inih's rules, so that a header means to us what it means to inih:
 * isspace, and an inline ';' comment only after whitespace. */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	    c == '\r';
}

static char *
trim(char *s)
{
	char *e;

	while (is_space(*s)) {
		s++;
	}
	e = s + strlen(s);
	while (e > s && is_space(e[-1])) {
		*--e = '\0';
	}
	return s;
}

/* The "]" that ends a header, as inih finds it: a ";" after whitespace
 * starts a comment first. Points at the NUL when there is none. */
static char *
header_end(char *s)
{
	bool was_space = false;

	while (*s != '\0' && *s != ']' && !(was_space && *s == ';')) {
		was_space = is_space(*s);
		s++;
	}
	return s;
}

static bool
valid_ca_name(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > CA_NAME_MAX) {
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-')) {
			return false;
		}
	}
	return true;
}

/* Appends [ca.NAME] with its keys' defaults; returns its logical index or
 * LINE_SKIP. */
static int
add_ca(struct cfg_loader *ld, const char *name, unsigned line)
{
	struct cfg *cfg = ld->cfg;
	char secname[8 + CA_NAME_MAX];
	struct cfg_ca *ca;

	if (cfg->ca_count == ld->ca_cap) {
		size_t cap = ld->ca_cap ? ld->ca_cap * 2 : 4;
		struct cfg_sec_state *st;

		ca = realloc(cfg->cas, cap * sizeof(*ca));
		if (ca == NULL) {
			ld->lost++;
			return LINE_SKIP;
		}
		cfg->cas = ca;
		st = realloc(ld->ca_state, cap * sizeof(*st));
		if (st == NULL) {
			ld->lost++;
			return LINE_SKIP;
		}
		ld->ca_state = st;
		ld->ca_cap = cap;
	}
	ca = &cfg->cas[cfg->ca_count];
	memset(ca, 0, sizeof(*ca));
	memset(&ld->ca_state[cfg->ca_count], 0, sizeof(*ld->ca_state));
	ca->name = strdup(name);
	if (ca->name == NULL) {
		ld->lost++;
		return LINE_SKIP;
	}
	ca->line = line;
	ld->ca_state[cfg->ca_count].line = line;
	cfg->ca_count++;
	(void)snprintf(secname, sizeof(secname), "ca.%s", name);
	cfg_key_defaults(ld, CFG_SEC_CA, ca, secname);
	return (int)(CFG_FIXED_SECS + cfg->ca_count - 1);
}

static void
unknown_section(struct cfg_loader *ld, const char *name, unsigned line)
{
	const char *best = NULL;
	size_t i, d, best_d = 3;

	for (i = 0; i < CFG_FIXED_SECS; i++) {
		d = cfg_edit_distance(name, cfg_sec_name((enum cfg_sec)i));
		if (d < best_d && d < strlen(name)) {
			best_d = d;
			best = cfg_sec_name((enum cfg_sec)i);
		}
	}
	if (best != NULL) {
		cfg_report(ld, true, line, "[%.64s]: unknown section; did you "
		    "mean [%s]?", name, best);
	} else {
		cfg_report(ld, true, line, "[%.64s]: unknown section; expected "
		    "[gateway], [downstream], [upstream], [mqtt] or [ca.NAME]",
		    name);
	}
}

/* The first word of a line, up to a blank, "=" or ":": a key, maybe. */
static void
first_word(const char *text, char word[64])
{
	size_t n = 0;

	while (n + 1 < 64 && text[n] != '\0' &&
	    strchr(" \t=:", text[n]) == NULL) {
		word[n] = text[n];
		n++;
	}
	word[n] = '\0';
}

/* A line with a syntax error that starts with a key of its section: note
 * the attempt, so that the key is not also reported missing. */
static void
mark_tried(struct cfg_loader *ld, int sec, const char *word)
{
	int k;

	if (sec < 0) {
		return;
	}
	k = cfg_key_find(sec < CFG_FIXED_SECS ? (enum cfg_sec)sec :
	    CFG_SEC_CA, word);
	if (k >= 0) {
		(sec < CFG_FIXED_SECS ? &ld->fixed[sec] :
		    &ld->ca_state[sec - CFG_FIXED_SECS])->tried[k] = true;
	}
}

/* The logical section a header names, reporting bad and repeated ones. */
static int
header_section(struct cfg_loader *ld, const char *name, unsigned line)
{
	size_t i;

	for (i = 0; i < CFG_FIXED_SECS; i++) {
		if (strcmp(name, cfg_sec_name((enum cfg_sec)i)) == 0) {
			if (ld->fixed[i].line != 0) {
				cfg_report(ld, true, line, "[%s]: duplicate "
				    "section; first at line %u (merge the two)",
				    name, ld->fixed[i].line);
			} else {
				ld->fixed[i].line = line;
			}
			return (int)i;
		}
	}
	if (strcmp(name, "ca") == 0 || strcmp(name, "ca.") == 0) {
		cfg_report(ld, true, line, "[%s]: a CA section needs a name, as "
		    "in [ca.legacy]", name);
		return LINE_SKIP;
	}
	if (strncmp(name, "ca.", 3) == 0) {
		if (!valid_ca_name(name + 3)) {
			cfg_report(ld, true, line, "[%.64s]: bad CA name "
			    "\"%.64s\"; use 1 to %d characters of A-Z a-z 0-9 "
			    "_ -", name, name + 3, CA_NAME_MAX);
			return LINE_SKIP;
		}
		for (i = 0; i < ld->cfg->ca_count; i++) {
			if (strcmp(ld->cfg->cas[i].name, name + 3) == 0) {
				cfg_report(ld, true, line, "[%s]: duplicate "
				    "section; first at line %u (merge the two)",
				    name, ld->cfg->cas[i].line);
				return (int)(CFG_FIXED_SECS + i);
			}
		}
		return add_ca(ld, name + 3, line);
	}
	if ((name[0] == 'c' || name[0] == 'C') &&
	    (name[1] == 'a' || name[1] == 'A') && name[2] != '\0' &&
	    strchr(".-_:", name[2]) != NULL && valid_ca_name(name + 3)) {
		cfg_report(ld, true, line, "[%s]: unknown section; did you mean "
		    "[ca.%s]?", name, name + 3);
		return LINE_SKIP;
	}
	if (*name == '\0') {
		cfg_report(ld, true, line, "[]: empty section name; expected "
		    "[gateway], [downstream], [upstream], [mqtt] or [ca.NAME]");
		return LINE_SKIP;
	}
	unknown_section(ld, name, line);
	return LINE_SKIP;
}

/* A "[...]" line: returns the logical section of the lines that follow. */
static int
scan_header(struct cfg_loader *ld, char *start, unsigned line)
{
	char *end, *name, *rest, word[64];
	int sec;

	end = header_end(start + 1);
	if (*end != ']') {
		*end = '\0';
		name = trim(start + 1);
		cfg_report(ld, true, line, "syntax error: the section header "
		    "\"[%.64s\" has no closing \"]\"; write [%.64s]", name,
		    name);
		/* Keys below would land in the previous section: skip them
		 * rather than report them against the wrong one. */
		return LINE_SKIP;
	}
	*end = '\0';
	name = trim(start + 1);
	rest = trim(end + 1);
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		/* inih ignores it: "[upstream] address = x:1" sets nothing. */
		cfg_report(ld, true, line, "syntax error: unexpected text after "
		    "[%.64s]; put each key on its own line", name);
	} else {
		rest = NULL;
	}
	sec = header_section(ld, name, line);
	if (rest != NULL) {
		first_word(rest, word);
		mark_tried(ld, sec, word);
	}
	return sec;
}

/* ------------------------------------------------------------ lines */

/* The current line is not key = value: reported, and its first word noted
 * as a key tried. */
static void
not_key_value(struct cfg_loader *ld)
{
	cfg_report(ld, true, ld->line, "syntax error: expected key = value or "
	    "[section]%s", ld->indented ? " (a value cannot continue on an "
	    "indented line)" : "");
	mark_tried(ld, ld->cur, ld->word);
}

/* The line inih has just parsed, now that it asks for the next one. A key
 * line it did not hand to the handler has no "=" (or ":") before a
 * comment: inih's verdict, reported here because inih itself returns only
 * the first such line. */
static void
finish_line(struct cfg_loader *ld)
{
	if (ld->key_line && !ld->handled) {
		not_key_value(ld);
	}
	ld->key_line = false;
}

/* A readable line, trimmed: notes what the handler will need and follows
 * section headers. Returns false for a line inih must not see. */
static bool
look_at_line(struct cfg_loader *ld, char *start, bool indented)
{
	bool after_comma = ld->comma;
	const char *sep;

	if (*start == '\0' || *start == ';' || *start == '#') {
		return true; /* blank or comment */
	}
	ld->comma = false;
	if (after_comma && (*start == '[' || strchr(start, '=') == NULL)) {
		/* "listen = a,\n    b": inih would read "b" as a new line
		 * (a section header, even, for "[::]:8883"). */
		cfg_report(ld, true, ld->line, "syntax error: a value cannot "
		    "continue on the next line; write the whole list on one "
		    "line");
		return false;
	}
	if (*start == '[') {
		ld->cur = scan_header(ld, start, ld->line);
		return true;
	}
	/* inih splits key and value at the first "=" or ":" when one comes
	 * before any comment, and then only will it call the handler. */
	sep = strpbrk(start, "=:");
	ld->key_line = true;
	ld->handled = false;
	ld->indented = indented;
	ld->sep = sep != NULL ? *sep : '\0';
	first_word(start, ld->word);
	return true;
}

/* "key = value # note": '#' after blank space starts a comment after a
 * value, as ';' does in inih (Debian's libinih knows only ';' there). A
 * '#' with no blank before it ("pass#word") stays part of the value. */
static void
cut_hash_comment(char *line)
{
	char *p = strchr(line, '=');

	/* From the first character after "=": p[-1] is always in line. */
	for (p = p != NULL ? p + 1 : NULL; p != NULL && *p != '\0'; p++) {
		if (*p == '#' && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

/*
 * inih's reader: one line of the text per call, so that inih's line
 * numbers are ours. Here, not in the handler, are the checks that need the
 * raw line: inih cannot read a NUL byte (it takes C strings) and would cut
 * a line longer than its buffer in two, so such a line is reported and
 * inih gets an empty line in its place, keeping the numbers right; the
 * handler hears only of key lines, never of a section header; and a list
 * continued on the next line must be refused before inih takes "[::]:8883"
 * for a header.
 */
static char *
next_line(char *buf, int size, void *user)
{
	struct cfg_loader *ld = user;
	const char *p = ld->next, *eol;
	char copy[CFG_INI_MAX_LINE], *start;
	size_t n;

	finish_line(ld);
	if (p >= ld->end) {
		return NULL;
	}
	eol = memchr(p, '\n', (size_t)(ld->end - p));
	n = eol != NULL ? (size_t)(eol - p) : (size_t)(ld->end - p);
	ld->next = eol != NULL ? eol + 1 : ld->end;
	ld->line++;
	buf[0] = '\0';
	if (memchr(p, '\0', n) != NULL) {
		cfg_report(ld, true, ld->line, "syntax error: NUL byte; is "
		    "this a text file?");
		return buf;
	}
	if (n > CFG_MAX_LINE_CHARS || n >= (size_t)size) {
		cfg_report(ld, true, ld->line, "syntax error: line is longer "
		    "than %d characters", CFG_MAX_LINE_CHARS);
		return buf;
	}
	memcpy(copy, p, n);
	copy[n] = '\0';
	start = copy;
	if (ld->line == 1 && n >= 3 && memcmp(copy, "\xEF\xBB\xBF", 3) == 0) {
		start += 3; /* inih skips the BOM too (ini_allow_bom) */
	}
	if (look_at_line(ld, trim(start), is_space(copy[0]))) {
		memcpy(buf, p, n);
		buf[n] = '\0';
		if (ld->key_line && ld->sep == '=') {
			cut_hash_comment(buf);
		}
	}
	return buf;
}

/* ------------------------------------------------------------ handler */

static void
key_outside(struct cfg_loader *ld, const char *name, unsigned line)
{
	char where[96] = "";
	size_t used = 0, i;

	for (i = 0; i <= CFG_SEC_CA && used < sizeof(where); i++) {
		if (cfg_key_find((enum cfg_sec)i, name) >= 0) {
			used += (size_t)snprintf(where + used,
			    sizeof(where) - used, "%s[%s]", used ? " or " : "",
			    i == CFG_SEC_CA ? "ca.NAME" :
			    cfg_sec_name((enum cfg_sec)i));
		}
	}
	if (used > 0) {
		cfg_report(ld, true, line, "%.64s: key before the first "
		    "[section]; it belongs in %s", name, where);
	} else {
		cfg_report(ld, true, line, "%.64s: unknown key before the "
		    "first [section]", name);
	}
}

/* The syntax inih accepts and certbridge does not; false when reported. */
static bool
key_syntax_ok(struct cfg_loader *ld, const char *name)
{
	if (ld->sep == ':') {
		/* inih takes "key: value"; a missing "=" in
		 * "listen 0.0.0.0:8883" must not become a key. */
		if (strpbrk(name, " \t") != NULL) {
			not_key_value(ld);
			return false;
		}
		cfg_report(ld, true, ld->line, "syntax error: expected key = "
		    "value; \":\" does not separate a key from its value");
		mark_tried(ld, ld->cur, ld->word);
		return false;
	}
	if (*name == '\0') {
		cfg_report(ld, true, ld->line, "syntax error: missing the key "
		    "name before \"=\"");
		return false;
	}
	return true;
}

static int
on_key(void *user, const char *section, const char *name,
    const char *value, int lineno)
{
	struct cfg_loader *ld = user;
	struct cfg_sec_state *st;
	struct cfg_ca *ca = NULL;
	enum cfg_sec sec;
	char secname[8 + CA_NAME_MAX];
	unsigned line = ld->line;
	int s = ld->cur, k;

	(void)section; /* ours is exact; inih's is cut at 49 characters */
	(void)lineno;  /* counts the reader's lines: ld->line */
	if (!ld->key_line || value == NULL) {
		return 1;
	}
	ld->handled = true;
	if (!key_syntax_ok(ld, name)) {
		return 1;
	}
	ld->comma = *value != '\0' && value[strlen(value) - 1] == ',';
	if (s == LINE_SKIP) {
		return 1;
	}
	if (s == LINE_NO_SECTION) {
		key_outside(ld, name, line);
		return 1;
	}
	if (s < CFG_FIXED_SECS) {
		sec = (enum cfg_sec)s;
		st = &ld->fixed[s];
		(void)snprintf(secname, sizeof(secname), "%s", cfg_sec_name(sec));
	} else {
		sec = CFG_SEC_CA;
		ca = &ld->cfg->cas[s - CFG_FIXED_SECS];
		st = &ld->ca_state[s - CFG_FIXED_SECS];
		(void)snprintf(secname, sizeof(secname), "ca.%s", ca->name);
	}
	if (sec == CFG_SEC_DOWNSTREAM && cfg_sni_is_key(name)) {
		cfg_sni_key(ld, name, value, line);
		return 1;
	}
	k = cfg_key_find(sec, name);
	if (k < 0) {
		cfg_key_unknown(ld, sec, secname, name, line);
		return 1;
	}
	if (st->seen[k] != 0) {
		cfg_key_report(ld, true, line, secname, name, "duplicate key; "
		    "already set at line %u (remove one)", st->seen[k]);
		return 1;
	}
	st->seen[k] = line;
	cfg_key_apply(ld, (enum cfg_key_id)k, ca, secname, value, line);
	return 1;
}

/* ------------------------------------------------------------ load/free */

/* inih's knobs are process globals in Debian's build: set all that matter
 * before every parse, so nobody else's setting leaks in. The one pass needs
 * every line: inih must not stop at the first error. */
static void
ini_setup(void)
{
	ini_max_line = CFG_INI_MAX_LINE;
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_inline_comments = true;
	ini_use_stack = true;
	ini_stop_on_first_error = false;
	ini_allow_no_value = false;
}

static void
parse_text(struct cfg_loader *ld, const char *text, size_t len)
{
	ld->next = text;
	ld->end = text + len;
	ld->cur = LINE_NO_SECTION;
	ini_setup();
	/* inih's own result is the line of the first syntax error, reported
	 * already with every other one. */
	if (ini_parse_stream(next_line, ld, on_key, ld) < 0) {
		ld->lost++;
	}
	finish_line(ld);
	cfg_check_all(ld);
}

struct cfg *
cfg_load(const char *path, struct cfg_diag *diag)
{
	struct cfg_loader ld;
	size_t errors = diag->errors, len = 0, i;
	char *text;

	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.cfg = calloc(1, sizeof(*ld.cfg));
	ld.dir = folder_of(path);
	if (ld.cfg == NULL || (ld.cfg->path = strdup(path)) == NULL ||
	    (strchr(path, '/') != NULL && ld.dir == NULL)) {
		ld.lost++;
	} else {
		for (i = 0; i < CFG_FIXED_SECS; i++) {
			cfg_key_defaults(&ld, (enum cfg_sec)i, ld.cfg,
			    cfg_sec_name((enum cfg_sec)i));
		}
		if ((text = read_file(&ld, &len)) != NULL) {
			parse_text(&ld, text, len);
			free(text);
		}
	}
	cfg_flush(&ld, diag);
	free(ld.ca_state);
	free(ld.dir);
	if (diag->errors > errors) {
		cfg_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

void
cfg_free(struct cfg *cfg)
{
	size_t i;

	if (cfg == NULL) {
		return;
	}
	free(cfg->path);
	for (i = 0; i < CFG_FIXED_SECS; i++) {
		cfg_key_free((enum cfg_sec)i, cfg);
	}
	for (i = 0; i < cfg->ca_count; i++) {
		free(cfg->cas[i].name);
		cfg_key_free(CFG_SEC_CA, &cfg->cas[i]);
	}
	free(cfg->cas);
	cfg_sni_free(cfg);
	free(cfg);
}

const struct cfg_ca *
cfg_find_ca(const struct cfg *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->ca_count; i++) {
		if (strcmp(cfg->cas[i].name, name) == 0) {
			return &cfg->cas[i];
		}
	}
	return NULL;
}

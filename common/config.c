/*
 * config.c - loading the INI file: reading it, the pre-scan of headers and
 * syntax, the inih handler, and freeing the result.
 *
 * inih calls us only for key = value lines, and reports just the first
 * syntax error. So the file is read here first and scanned line by line the
 * way inih will read it: that finds every section header (with its line, for
 * unknown, repeated and empty sections and for "required key is missing"),
 * every syntax error, and which section each line belongs to. Then inih
 * parses the same bytes and the handler checks each key against the table in
 * config_keys.c. Problems are queued (config_diag.c) and sorted into file
 * order at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <ini.h>

/* The handler needs the line number; without it every message would point
 * nowhere. The Makefile passes -DINI_HANDLER_LINENO=1. */
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

/* Values of ld->line_sec besides a logical section index. */
#define LINE_NO_SECTION (-1) /* before the first header */
#define LINE_SKIP (-2)       /* in an unknown or invalid section */
#define LINE_BAD (-3)        /* a syntax error, already reported */

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

/* ------------------------------------------------------------ pre-scan */

/* inih's rules, so that the scan agrees with what inih will do: isspace,
 * and an inline ';' comment only after whitespace. */
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

static char *
find_chars_or_comment(char *s, const char *chars)
{
	bool was_space = false;

	while (*s != '\0' && (chars == NULL || strchr(chars, *s) == NULL) &&
	    !(was_space && *s == ';')) {
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

/* Appends [ca.NAME]; returns its logical index or LINE_SKIP. */
static int
add_ca(struct cfg_loader *ld, const char *name, unsigned line)
{
	struct cfg *cfg = ld->cfg;
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
	/* expired_grace defaults to 0 and clock_skew to "not set": the
	 * memset above is the default. */
	cfg->ca_count++;
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

/* A line with a syntax error that starts with a key of its section: note
 * the attempt, so that the key is not also reported missing. */
static void
mark_tried(struct cfg_loader *ld, int sec, const char *text)
{
	char word[64];
	size_t n = 0;
	int k;

	if (sec < 0) {
		return;
	}
	while (n + 1 < sizeof(word) && text[n] != '\0' &&
	    strchr(" \t=:", text[n]) == NULL) {
		word[n] = text[n];
		n++;
	}
	word[n] = '\0';
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
	char *end, *name, *rest;
	int sec;

	end = find_chars_or_comment(start + 1, "]");
	if (*end != ']') {
		cfg_report(ld, true, line, "syntax error: expected key = value "
		    "or [section]");
		/* Keys below would land in the previous section: skip them
		 * rather than report them against the wrong one. */
		return LINE_SKIP;
	}
	*end = '\0';
	name = trim(start + 1);
	rest = trim(end + 1);
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		cfg_report(ld, true, line, "syntax error: unexpected text after "
		    "[%.64s]; put each key on its own line", name);
	} else {
		rest = NULL;
	}
	sec = header_section(ld, name, line);
	if (rest != NULL) {
		mark_tried(ld, sec, rest);
	}
	return sec;
}

enum scan_key {
	SCAN_KEY_BAD = 0,
	SCAN_KEY_OK,
	SCAN_KEY_OK_COMMA, /* the value ends with ",": a list cut short? */
};

/* A line that is neither blank, comment nor header: must be key = value. */
static enum scan_key
scan_key_line(struct cfg_loader *ld, char *start, bool indented,
    unsigned line)
{
	char *end = find_chars_or_comment(start, "=:"), *value;

	if (*end == '=') {
		*end = '\0';
		if (*trim(start) == '\0') {
			cfg_report(ld, true, line, "syntax error: missing the "
			    "key name before \"=\"");
			return SCAN_KEY_BAD;
		}
		value = end + 1;
		*find_chars_or_comment(value, NULL) = '\0';
		value = trim(value);
		return *value != '\0' && value[strlen(value) - 1] == ',' ?
		    SCAN_KEY_OK_COMMA : SCAN_KEY_OK;
	}
	if (*end == ':') {
		/* inih would take "key: value"; a missing "=" in
		 * "listen 0.0.0.0:8883" must not become a key. */
		*end = '\0';
		start = trim(start);
		if (strpbrk(start, " \t") == NULL) {
			cfg_report(ld, true, line, "syntax error: expected key "
			    "= value; \":\" does not separate a key from its "
			    "value");
			return SCAN_KEY_BAD;
		}
	}
	cfg_report(ld, true, line, "syntax error: expected key = value or "
	    "[section]%s", indented ? " (a value cannot continue on an "
	    "indented line)" : "");
	return SCAN_KEY_BAD;
}

/* One line, already trimmed: updates the current section *cur and returns
 * the line's section for the handler (LINE_BAD for a syntax error). */
static int
scan_line(struct cfg_loader *ld, char *start, bool indented, unsigned line,
    int *cur, bool *comma)
{
	enum scan_key kind;
	bool after_comma = *comma;

	if (*start == '\0' || *start == ';' || *start == '#') {
		return *cur; /* blank or comment */
	}
	*comma = false;
	if (after_comma && (*start == '[' || strchr(start, '=') == NULL)) {
		/* "listen = a,\n    b": inih would read "b" as a new line
		 * (a section header, even, for "[::]:8883"). */
		cfg_report(ld, true, line, "syntax error: a value cannot "
		    "continue on the next line; write the whole list on one "
		    "line");
		return LINE_BAD;
	}
	if (*start == '[') {
		*cur = scan_header(ld, start, line);
		/* A header the pre-scan refused was reported already: inih's
		 * own complaint about the same line must not repeat it. */
		return *cur == LINE_SKIP ? LINE_BAD : *cur;
	}
	kind = scan_key_line(ld, start, indented, line);
	if (kind == SCAN_KEY_BAD) {
		mark_tried(ld, *cur, start);
		return LINE_BAD;
	}
	*comma = kind == SCAN_KEY_OK_COMMA;
	return *cur;
}

/*
 * Scans text the way inih will read it. Fills ld->line_sec and rewrites
 * lines inih must not see (too long, or holding a NUL) as empty lines into
 * out, so that inih's line numbers stay ours. out has room for len + 1.
 */
static bool
prescan(struct cfg_loader *ld, const char *text, size_t len, char *out)
{
	char buf[CFG_INI_MAX_LINE];
	const char *p = text, *endp = text + len;
	size_t lines = 1, i;
	unsigned line = 0;
	int cur = LINE_NO_SECTION;
	bool comma = false; /* the last key line's value ended with "," */
	char *o = out;

	for (i = 0; i < len; i++) {
		lines += text[i] == '\n';
	}
	ld->line_sec = calloc(lines + 1, sizeof(*ld->line_sec));
	if (ld->line_sec == NULL) {
		ld->lost++;
		return false;
	}
	ld->line_count = lines;
	while (p < endp) {
		const char *eol = memchr(p, '\n', (size_t)(endp - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(endp - p);
		bool unreadable = true; /* by inih: becomes an empty line */
		char *start;
		int sec = cur;

		line++;
		if (memchr(p, '\0', n) != NULL) {
			cfg_report(ld, true, line, "syntax error: NUL byte; is "
			    "this a text file?");
			sec = LINE_BAD;
		} else if (n > CFG_MAX_LINE_CHARS) {
			cfg_report(ld, true, line, "syntax error: line is longer "
			    "than %d characters", CFG_MAX_LINE_CHARS);
			sec = LINE_BAD;
		} else {
			unreadable = false;
			memcpy(buf, p, n);
			buf[n] = '\0';
			start = buf;
			if (line == 1 && n >= 3 && memcmp(buf, "\xEF\xBB\xBF",
			    3) == 0) {
				start += 3;
			}
			start = trim(start);
			sec = scan_line(ld, start, is_space(buf[0]), line,
			    &cur, &comma);
		}
		ld->line_sec[line] = sec;
		if (!unreadable) {
			memcpy(o, p, n);
			o += n;
		}
		if (eol != NULL) {
			*o++ = '\n';
		}
		p = eol ? eol + 1 : endp;
	}
	*o = '\0';
	return true;
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

static int
on_key(void *user, const char *section, const char *name,
    const char *value, int lineno)
{
	struct cfg_loader *ld = user;
	struct cfg_sec_state *st;
	struct cfg_ca *ca = NULL;
	enum cfg_sec sec;
	char secname[8 + CA_NAME_MAX];
	unsigned line;
	int s, k;

	(void)section; /* ours is exact; inih's is cut at 49 characters */
	if (lineno <= 0 || (size_t)lineno > ld->line_count || value == NULL) {
		return 1;
	}
	line = (unsigned)lineno;
	s = ld->line_sec[line];
	if (s == LINE_BAD || s == LINE_SKIP) {
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

static bool
set_defaults(struct cfg *cfg)
{
	cfg->gateway.admin_listen = strdup("127.0.0.1:9883");
	cfg->gateway.log_level = CFG_LOG_INFO;
	cfg->gateway.log_format = CFG_LOG_TEXT;
	cfg->gateway.max_connections = 10000;
	cfg->gateway.shutdown_grace_ms = 10 * 1000;
	cfg->gateway.state_file.path =
	    strdup("/var/lib/certbridge/devices.state");
	cfg->gateway.rejudge = true;

	cfg->downstream.listen.addrs = calloc(1,
	    sizeof(*cfg->downstream.listen.addrs));
	if (cfg->downstream.listen.addrs != NULL) {
		(void)snprintf(cfg->downstream.listen.addrs[0].host,
		    sizeof(cfg->downstream.listen.addrs[0].host), "0.0.0.0");
		(void)snprintf(cfg->downstream.listen.addrs[0].port,
		    sizeof(cfg->downstream.listen.addrs[0].port), "8883");
		cfg->downstream.listen.count = 1;
	}
	cfg->downstream.client_auth = CFG_AUTH_REQUIRED;
	cfg->downstream.tls_min = 12;
	cfg->downstream.tls_max = 13;
	cfg->downstream.clock_skew_ms = 5 * 60 * 1000;
	cfg->downstream.handshake_timeout_ms = 10 * 1000;
	cfg->downstream.session_tickets = true;
	cfg->downstream.max_handshakes = 1000;
	cfg->downstream.max_handshakes_per_ip = 64;

	cfg->upstream.tls_min = 12;
	cfg->upstream.tls_max = 13;
	cfg->upstream.connect_timeout_ms = 10 * 1000;
	cfg->upstream.connect_rate = 50;

	cfg->mqtt.identity = CFG_IDENTITY_CN;
	cfg->mqtt.clientid = CFG_CLIENTID_CHECK;
	cfg->mqtt.username = CFG_USERNAME_KEEP;
	cfg->mqtt.max_packet_size = 1024 * 1024;
	cfg->mqtt.max_connect_size = 64 * 1024;

	return cfg->gateway.admin_listen != NULL &&
	    cfg->gateway.state_file.path != NULL &&
	    cfg->downstream.listen.addrs != NULL;
}

/* inih's knobs are process globals in Debian's build: set all that matter
 * before every parse, so nobody else's setting leaks in. */
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
	char *clean;
	int rc;

	clean = malloc(len + 1);
	if (clean == NULL) {
		ld->lost++;
		return;
	}
	if (prescan(ld, text, len, clean)) {
		ini_setup();
		rc = ini_parse_string(clean, on_key, ld);
		if (rc > 0 && (size_t)rc <= ld->line_count &&
		    ld->line_sec[rc] != LINE_BAD) {
			/* The pre-scan should have seen every error inih
			 * sees; never let one pass silently. */
			cfg_report(ld, true, (unsigned)rc, "syntax error: "
			    "expected key = value or [section]");
		} else if (rc < 0) {
			ld->lost++;
		}
		cfg_check_all(ld);
	}
	free(clean);
}

struct cfg *
cfg_load(const char *path, struct cfg_diag *diag)
{
	struct cfg_loader ld;
	size_t errors = diag->errors, len = 0;
	char *text;

	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.cfg = calloc(1, sizeof(*ld.cfg));
	if (ld.cfg == NULL || (ld.cfg->path = strdup(path)) == NULL ||
	    !set_defaults(ld.cfg)) {
		ld.lost++;
	} else {
		ld.dir = folder_of(path);
		if (strchr(path, '/') != NULL && ld.dir == NULL) {
			ld.lost++;
		} else if ((text = read_file(&ld, &len)) != NULL) {
			parse_text(&ld, text, len);
			free(text);
		}
	}
	cfg_flush(&ld, diag);
	free(ld.line_sec);
	free(ld.ca_state);
	free(ld.dir);
	if (diag->errors > errors) {
		cfg_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

void
cfg_ca_clear(struct cfg_ca *ca)
{
	CB_FREE(ca->name);
	CB_FREE(ca->file.path);
	CB_FREE(ca->crl.path);
}

void
cfg_free(struct cfg *cfg)
{
	size_t i;

	if (cfg == NULL) {
		return;
	}
	free(cfg->path);
	free(cfg->gateway.admin_listen);
	free(cfg->gateway.user);
	free(cfg->gateway.state_file.path);
	free(cfg->downstream.listen.addrs);
	free(cfg->downstream.cert.path);
	free(cfg->downstream.key.path);
	free(cfg->downstream.ciphers);
	free(cfg->downstream.plain_listen.addrs);
	for (i = 0; i < cfg->ca_count; i++) {
		cfg_ca_clear(&cfg->cas[i]);
	}
	free(cfg->cas);
	free(cfg->upstream.sni);
	free(cfg->upstream.ca.path);
	free(cfg->upstream.cert.path);
	free(cfg->upstream.key.path);
	free(cfg->upstream.device_certs.path);
	free(cfg->upstream.alpn);
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

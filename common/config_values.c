/*
 * config_values.c - checking one value by its type: the words of every
 * message that says a value is wrong, the file and folder checks, relative
 * path resolution, and the list-shaped values (listen, alpn).
 *
 * The numeric and date grammars live in parse.c; this file turns their
 * "why" into a line for the operator: bad <what> "<value>": <why>.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "config.h"
#include "config_int.h"
#include "p11uri.h"
#include "parse.h"

/* What a type is called in "bad <noun> "value": ...". */
static const char *const type_noun[] = {
	[KT_TEXT] = "value",
	[KT_HOSTPORT] = "address",
	[KT_HOSTPORT_LIST] = "address",
	[KT_FILE] = "file",
	[KT_KEY] = "key",
	[KT_PATH] = "path",
	[KT_DIR] = "folder",
	[KT_ENUM] = "value",
	[KT_UINT] = "number",
	[KT_DURATION] = "duration",
	[KT_DATE] = "date",
	[KT_SIZE] = "size",
	[KT_BOOL] = "value",
	[KT_TLS_VERSIONS] = "TLS versions",
	[KT_USER] = "user name",
	[KT_HOSTNAME] = "server name",
	[KT_ALPN] = "protocol list",
};

/* ------------------------------------------------------------ reporting */

/* Reports "bad <noun> "value": why". */
static void
bad(struct cfg_loader *ld, const struct cfg_key_def *def, const char *sec,
    const char *value, unsigned line, const char *why)
{
	cfg_key_report(ld, true, line, sec, def->name, "bad %s \"%.80s%s\": "
	    "%s", type_noun[def->type], value, strlen(value) > 80 ? "..." : "",
	    why);
}

static void
oom(struct cfg_loader *ld)
{
	ld->lost++;
}

/* ------------------------------------------------------------ files */

/* Relative to the configuration file's folder. */
char *
cfg_resolve(struct cfg_loader *ld, const char *value)
{
	char *out;
	size_t n;

	if (value[0] == '/' || ld->dir == NULL) {
		out = strdup(value);
	} else {
		n = strlen(ld->dir) + strlen(value) + 2;
		out = malloc(n);
		if (out != NULL) {
			(void)snprintf(out, n, "%s%s%s", ld->dir,
			    strcmp(ld->dir, "/") == 0 ? "" : "/", value);
		}
	}
	if (out == NULL) {
		oom(ld);
	}
	return out;
}

/* A file certbridge will read: exists, is not a folder, opens for reading.
 * O_NONBLOCK so that a FIFO named by mistake cannot hang the check. */
void
cfg_check_file(struct cfg_loader *ld, const char *sec, const char *key,
    const char *path, unsigned line)
{
	struct stat st;
	int fd;

	if (stat(path, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			cfg_key_report(ld, true, line, sec, key, "file \"%s\" "
			    "does not exist", path);
		} else {
			cfg_key_report(ld, true, line, sec, key, "cannot access "
			    "\"%s\": %s", path, strerror(errno));
		}
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		cfg_key_report(ld, true, line, sec, key, "\"%s\" is a folder; "
		    "expected a file", path);
		return;
	}
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		cfg_key_report(ld, true, line, sec, key, "cannot read \"%s\": "
		    "%s", path, strerror(errno));
		return;
	}
	(void)close(fd);
}

static void
check_dir(struct cfg_loader *ld, const char *sec, const char *key,
    const char *path, unsigned line)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			cfg_key_report(ld, true, line, sec, key, "folder \"%s\" "
			    "does not exist", path);
		} else {
			cfg_key_report(ld, true, line, sec, key, "cannot access "
			    "\"%s\": %s", path, strerror(errno));
		}
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		cfg_key_report(ld, true, line, sec, key, "\"%s\" is not a "
		    "folder", path);
		return;
	}
	if (access(path, R_OK | X_OK) != 0) {
		cfg_key_report(ld, true, line, sec, key, "cannot read folder "
		    "\"%s\": %s", path, strerror(errno));
	}
}

/* ------------------------------------------------------------ words */

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static bool
check_user(const char *s, char why[PARSE_WHY_LEN])
{
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++) {
		if (!name_char(s[i])) {
			break;
		}
	}
	if (i < n || n > 32 || s[0] == '-') {
		(void)snprintf(why, PARSE_WHY_LEN, "expected a user name of "
		    "at most 32 letters, digits, \".\", \"_\" or \"-\"");
		return false;
	}
	return true;
}

static bool
check_server_name(const char *s, char why[PARSE_WHY_LEN])
{
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++) {
		if (!name_char(s[i]) || (s[i] == '.' && (i == 0 ||
		    s[i - 1] == '.'))) {
			break;
		}
	}
	if (i < n || n > 253) {
		(void)snprintf(why, PARSE_WHY_LEN, "expected a DNS name such "
		    "as broker.example.com");
		return false;
	}
	return true;
}

/* The next comma-separated item at p, blanks around it trimmed: sets
 * [*start, *end) and returns where the item stops (at ',' or the end). */
static const char *
list_item(const char *p, const char **start, const char **end)
{
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	*start = p;
	while (*p != '\0' && *p != ',') {
		p++;
	}
	*end = p;
	while (*end > *start && ((*end)[-1] == ' ' || (*end)[-1] == '\t')) {
		(*end)--;
	}
	return p;
}

/* "a, b" -> "a,b": protocol names of 1..255 printable bytes. */
static bool
parse_alpn(const char *s, char **out, char why[PARSE_WHY_LEN])
{
	char *norm = malloc(strlen(s) + 1), *o = norm;
	const char *p = s;

	if (norm == NULL) {
		(void)snprintf(why, PARSE_WHY_LEN, "out of memory");
		return false;
	}
	for (;;) {
		const char *start, *end;

		p = list_item(p, &start, &end);
		if (end == start || end - start > 255) {
			(void)snprintf(why, PARSE_WHY_LEN, "%s; expected "
			    "protocol names separated by commas, as in "
			    "x-amzn-mqtt-ca", end == start ? "empty name "
			    "(stray comma?)" : "a name is longer than 255 bytes");
			free(norm);
			return false;
		}
		for (; start < end; start++) {
			if (*start <= ' ' || *start > '~') {
				(void)snprintf(why, PARSE_WHY_LEN, "a protocol "
				    "name holds a space or a control "
				    "character; separate names with commas");
				free(norm);
				return false;
			}
			*o++ = *start;
		}
		if (*p == '\0') {
			break;
		}
		*o++ = ',';
		p++;
	}
	*o = '\0';
	*out = norm;
	return true;
}

/* ------------------------------------------------------------ lists */

static bool
same_addr(const struct parse_hostport *a, const struct parse_hostport *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0;
}

static bool
parse_list(struct cfg_loader *ld, const struct cfg_key_def *def,
    const char *sec, const char *value, unsigned line, struct cfg_value *v)
{
	char why[PARSE_WHY_LEN], item[512];
	const char *p = value;
	size_t cap = 1, i, n;

	for (i = 0; value[i] != '\0'; i++) {
		cap += value[i] == ',';
	}
	v->list = calloc(cap, sizeof(*v->list));
	if (v->list == NULL) {
		oom(ld);
		return false;
	}
	for (;;) {
		const char *start, *end;

		p = list_item(p, &start, &end);
		n = (size_t)(end - start);
		if (n == 0) {
			bad(ld, def, sec, value, line, "empty item (stray "
			    "comma?); expected host:port items separated by "
			    "commas");
			return false;
		}
		if (n >= sizeof(item)) {
			n = sizeof(item) - 1;
		}
		memcpy(item, start, n);
		item[n] = '\0';
		if (!parse_hostport(item, &v->list[v->count], why)) {
			bad(ld, def, sec, item, line, why);
			return false;
		}
		for (i = 0; i < v->count; i++) {
			if (same_addr(&v->list[i], &v->list[v->count])) {
				bad(ld, def, sec, value, line, "an address is "
				    "listed twice");
				return false;
			}
		}
		v->count++;
		if (*p == '\0') {
			return true;
		}
		p++;
	}
}

/* ------------------------------------------------------------ apply */

static void
tls_warning(struct cfg_loader *ld, const char *sec, const char *key, int lo,
    unsigned line)
{
	if (lo < 12) {
		cfg_key_report(ld, false, line, sec, key, "TLS %s obsolete and "
		    "weak; allow %s only for devices that cannot do TLS 1.2",
		    lo == 10 ? "1.0 and 1.1 are" : "1.1 is",
		    lo == 10 ? "them" : "it");
	}
}

bool
cfg_value_parse(struct cfg_loader *ld, const struct cfg_key_def *def,
    const char *sec, const char *value, unsigned line, struct cfg_value *v)
{
	char why[PARSE_WHY_LEN] = "";
	bool ok = true;

	switch (def->type) {
	case KT_TEXT:
		v->str = strdup(value);
		break;
	case KT_HOSTPORT:
		ok = parse_hostport(value, &v->hp, why);
		if (ok) {
			v->str = strdup(value);
		}
		break;
	case KT_HOSTPORT_LIST:
		return parse_list(ld, def, sec, value, line, v);
	case KT_KEY:
		if (p11uri_is(value)) {
			struct p11uri uri;
			char uwhy[P11URI_WHY_LEN];

			if (!p11uri_parse(value, &uri, uwhy)) {
				cfg_key_report(ld, true, line, sec, def->name,
				    "bad PKCS#11 URI: %s", uwhy);
			}
			/* Kept as written even when refused, so the
			 * checks after this one name it. */
			v->str = strdup(value);
			return v->str != NULL;
		}
		/* FALLTHROUGH */
	case KT_FILE:
	case KT_PATH:
	case KT_DIR:
		v->str = cfg_resolve(ld, value);
		if (v->str == NULL) {
			return false;
		}
		if (def->type == KT_FILE || def->type == KT_KEY) {
			cfg_check_file(ld, sec, def->name, v->str, line);
		} else if (def->type == KT_DIR) {
			check_dir(ld, sec, def->name, v->str, line);
		}
		return true;
	case KT_ENUM:
		v->e = parse_enum(value, def->words, why);
		ok = v->e >= 0;
		break;
	case KT_UINT:
		ok = parse_uint(value, def->min, def->max, &v->u, why);
		break;
	case KT_DURATION:
		ok = parse_duration_ms(value, &v->i, why);
		if (ok && v->i == 0 && (def->flags & KF_NONZERO)) {
			(void)snprintf(why, sizeof(why), "must be more than 0; "
			    "expected a duration such as 10s");
			ok = false;
		}
		break;
	case KT_DATE:
		ok = parse_date(value, &v->i, why);
		break;
	case KT_SIZE:
		ok = parse_size(value, def->max, &v->u, why);
		if (ok && v->u < def->min) {
			(void)snprintf(why, sizeof(why), "too small; at least "
			    "%llu bytes", (unsigned long long)def->min);
			ok = false;
		}
		break;
	case KT_BOOL:
		ok = parse_bool(value, &v->b, why);
		break;
	case KT_TLS_VERSIONS:
		ok = parse_tls_versions(value, &v->lo, &v->hi, why);
		if (ok) {
			tls_warning(ld, sec, def->name, v->lo, line);
		}
		break;
	case KT_USER:
		ok = check_user(value, why);
		if (ok) {
			v->str = strdup(value);
		}
		break;
	case KT_HOSTNAME:
		ok = check_server_name(value, why);
		if (ok) {
			v->str = strdup(value);
		}
		break;
	case KT_ALPN:
		ok = parse_alpn(value, &v->str, why);
		break;
	}
	if (!ok) {
		bad(ld, def, sec, value, line, why);
		return false;
	}
	if (v->str == NULL && (def->type == KT_TEXT ||
	    def->type == KT_HOSTPORT || def->type == KT_USER ||
	    def->type == KT_HOSTNAME || def->type == KT_ALPN)) {
		oom(ld);
		return false;
	}
	return true;
}

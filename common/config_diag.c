/*
 * config_diag.c - the problems found in a configuration: struct cfg_diag
 * (the public list, in file order) and the loader's queue behind it.
 *
 * Every problem is one complete line, "FILE:LINE: [section] key: what is
 * wrong", so the caller prints them as they are. The loader finds problems
 * in several passes (section headers, keys, rules between keys); it queues
 * them with their line and sorts them once at the end, so the operator reads
 * them top to bottom.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

struct cfg_pending {
	unsigned line;
	size_t seq;
	bool is_error;
	char *text;
};

/* ------------------------------------------------------------ diagnostics */

static char *prefixed(const char *prefix, const char *fmt, va_list ap)
    CB_PRINTF(2, 0);

char *
cfg_vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (s != NULL) {
		(void)vsnprintf(s, (size_t)n + 1, fmt, ap);
	}
	return s;
}

void
cfg_diag_add(struct cfg_diag *diag, bool is_error, const char *fmt, ...)
{
	va_list ap;
	char *line, **lines;
	bool *flags;

	/* The count of errors is kept even when memory runs out, so a load
	 * that found an error never reports success. */
	if (is_error) {
		diag->errors++;
	}
	va_start(ap, fmt);
	line = cfg_vformat(fmt, ap);
	va_end(ap);
	if (line == NULL) {
		return;
	}
	lines = realloc(diag->lines, (diag->count + 1) * sizeof(*lines));
	if (lines == NULL) {
		free(line);
		return;
	}
	diag->lines = lines;
	flags = realloc(diag->is_error, (diag->count + 1) * sizeof(*flags));
	if (flags == NULL) {
		free(line);
		return;
	}
	diag->is_error = flags;
	diag->lines[diag->count] = line;
	diag->is_error[diag->count] = is_error;
	diag->count++;
}

void
cfg_diag_free(struct cfg_diag *diag)
{
	size_t i;

	if (diag == NULL) {
		return;
	}
	for (i = 0; i < diag->count; i++) {
		free(diag->lines[i]);
	}
	CB_FREE(diag->lines);
	CB_FREE(diag->is_error);
	diag->count = 0;
	diag->errors = 0;
}

static void
queue(struct cfg_loader *ld, bool is_error, unsigned line, char *text)
{
	struct cfg_pending *p;

	if (text == NULL) {
		ld->lost++;
		return;
	}
	if (ld->pend_count == ld->pend_cap) {
		size_t cap = ld->pend_cap ? ld->pend_cap * 2 : 16;

		p = realloc(ld->pend, cap * sizeof(*p));
		if (p == NULL) {
			free(text);
			ld->lost++;
			return;
		}
		ld->pend = p;
		ld->pend_cap = cap;
	}
	p = &ld->pend[ld->pend_count];
	p->line = line;
	p->seq = ld->pend_count;
	p->is_error = is_error;
	p->text = text;
	ld->pend_count++;
}

static char *
prefixed(const char *prefix, const char *fmt, va_list ap)
{
	char *body, *all;
	size_t n;

	body = cfg_vformat(fmt, ap);
	if (body == NULL) {
		return NULL;
	}
	n = strlen(prefix) + strlen(body) + 1;
	all = malloc(n);
	if (all != NULL) {
		(void)snprintf(all, n, "%s%s", prefix, body);
	}
	free(body);
	return all;
}

void
cfg_report(struct cfg_loader *ld, bool is_error, unsigned line,
    const char *fmt, ...)
{
	char prefix[64];
	char *where, *text = NULL;
	va_list ap;
	size_t n;

	if (line > 0) {
		(void)snprintf(prefix, sizeof(prefix), ":%u: ", line);
	} else {
		(void)snprintf(prefix, sizeof(prefix), ": ");
	}
	n = strlen(ld->path) + strlen(prefix) + 1;
	where = malloc(n);
	if (where != NULL) {
		(void)snprintf(where, n, "%s%s", ld->path, prefix);
		va_start(ap, fmt);
		text = prefixed(where, fmt, ap);
		va_end(ap);
		free(where);
	}
	queue(ld, is_error, line, text);
}

void
cfg_key_report(struct cfg_loader *ld, bool is_error, unsigned line,
    const char *sec, const char *key, const char *fmt, ...)
{
	char *where, *text = NULL;
	va_list ap;
	size_t n;

	n = strlen(ld->path) + strlen(sec) + strlen(key) + 48;
	where = malloc(n);
	if (where != NULL) {
		(void)snprintf(where, n, "%s:%u: [%s] %s: %s", ld->path, line,
		    sec, key, is_error ? "" : "warning: ");
		va_start(ap, fmt);
		text = prefixed(where, fmt, ap);
		va_end(ap);
		free(where);
	}
	queue(ld, is_error, line, text);
}

static int
pending_cmp(const void *a, const void *b)
{
	const struct cfg_pending *x = a, *y = b;

	if (x->line != y->line) {
		return x->line < y->line ? -1 : 1;
	}
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void
cfg_flush(struct cfg_loader *ld, struct cfg_diag *diag)
{
	size_t i;

	if (ld->pend_count > 1) {
		qsort(ld->pend, ld->pend_count, sizeof(*ld->pend),
		    pending_cmp);
	}
	for (i = 0; i < ld->pend_count; i++) {
		cfg_diag_add(diag, ld->pend[i].is_error, "%s",
		    ld->pend[i].text);
		free(ld->pend[i].text);
	}
	CB_FREE(ld->pend);
	ld->pend_count = 0;
	if (ld->lost > 0) {
		cfg_diag_add(diag, true, "%s: out of memory while checking "
		    "the configuration (%zu problems not shown)", ld->path,
		    ld->lost);
	}
}

/* The line number a "PATH:N: ..." line is about; 0 when it names none. */
static unsigned long
diag_line_of(const char *text, const char *path)
{
	size_t n = strlen(path);
	char *end;
	unsigned long line;

	if (strncmp(text, path, n) != 0 || text[n] != ':') {
		return 0;
	}
	line = strtoul(text + n + 1, &end, 10);
	return *end == ':' ? line : 0;
}

void
cfg_diag_sort(struct cfg_diag *diag, const char *path)
{
	/* Insertion sort: stable, and the lists are a handful of lines. */
	for (size_t i = 1; i < diag->count; i++) {
		char *text = diag->lines[i];
		bool err = diag->is_error[i];
		unsigned long key = diag_line_of(text, path);
		size_t j = i;

		while (j > 0 && diag_line_of(diag->lines[j - 1], path) > key) {
			diag->lines[j] = diag->lines[j - 1];
			diag->is_error[j] = diag->is_error[j - 1];
			j--;
		}
		diag->lines[j] = text;
		diag->is_error[j] = err;
	}
}

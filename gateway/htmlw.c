/*
 * htmlw.c - HTML text escaping (see htmlw.h).
 */
#include <stdio.h>
#include <string.h>

#include "htmlw.h"
#include "jsonw.h"

void
htmlw_textn(struct evbuffer *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < n) {
		unsigned char c = p[i];
		const char *ent = NULL;
		char hex[5];
		size_t u;

		switch (c) {
		case '&': ent = "&amp;"; break;
		case '<': ent = "&lt;"; break;
		case '>': ent = "&gt;"; break;
		case '"': ent = "&quot;"; break;
		case '\'': ent = "&#39;"; break;
		default: break;
		}
		if (ent == NULL && c >= 0x20 && c < 0x7f) {
			i++;
			run++;
			continue;
		}
		if (ent == NULL && c >= 0x80) {
			/* At most 4 bytes, copied with a NUL after them:
			 * jsonw_utf8_len stops at a NUL, and nothing past n
			 * is read (s need not be NUL-terminated). */
			unsigned char seq[5] = {0};

			memcpy(seq, p + i, n - i < 4 ? n - i : 4);
			u = jsonw_utf8_len(seq);
			/* A C1 control (U+0080..U+009F) is shown as its
			 * bytes, as the logs and /status show it. */
			if (u > 0 && !(u == 2 && seq[0] == 0xc2
			    && seq[1] < 0xa0)) {
				i += u;
				run += u;
				continue;
			}
		}
		evbuffer_add(out, p + i - run, run);
		run = 0;
		if (ent != NULL) {
			evbuffer_add(out, ent, strlen(ent));
		} else {
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			evbuffer_add(out, hex, 4);
		}
		i++;
	}
	evbuffer_add(out, p + i - run, run);
}

void
htmlw_text(struct evbuffer *out, const char *s)
{
	if (s != NULL) {
		htmlw_textn(out, s, strlen(s));
	}
}

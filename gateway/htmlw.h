/*
 * htmlw.h - writing HTML into an evbuffer, beside common/jsonw.h: the
 * status page's markup is the caller's constant text, and every string
 * that comes from outside (a certificate's subject, a device's identity, a
 * peer address, a file path) goes through htmlw_text.
 */
#ifndef CB_HTMLW_H
#define CB_HTMLW_H

#include <stddef.h>

#include <event2/buffer.h>

/* Text, safe as element content and as a quoted attribute value: & < > "
 * and ' become entities; a control byte (NUL included), DEL, a C1
 * control's two bytes, or a byte that starts no valid UTF-8 sequence shows
 * as the four characters \xNN, so an odd byte reads as what it is; other
 * valid UTF-8 passes. */
void htmlw_textn(struct evbuffer *out, const char *s, size_t n);
/* The same for a NUL-terminated string (NULL writes nothing). */
void htmlw_text(struct evbuffer *out, const char *s);

#endif

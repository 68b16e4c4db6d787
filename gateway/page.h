/*
 * page.h - the status page a field engineer reads in a browser: GET / on
 * the admin endpoint (docs/operations.md, "The status page"). One HTML
 * document with its CSS and SVG inside, no script, made from the same data
 * as /status; every outside string escaped (htmlw.h).
 */
#ifndef CB_PAGE_H
#define CB_PAGE_H

#include <event2/buffer.h>

struct runtime;

/* Writes the page to out. */
void page_html(const struct runtime *rt, struct evbuffer *out);

#endif

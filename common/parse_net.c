/*
 * parse_net.c - the network value types of the INI file: host:port
 * addresses and TLS version ranges (see parse.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "parse.h"
#include "parse_int.h"

#define HOSTPORT_EXAMPLE "host:port, as in 0.0.0.0:8883, [::]:8883 or " \
	"broker.example.com:8883"
#define TLS_EXAMPLE "a version range such as 1.2-1.3, or one version " \
	"such as 1.3"

/* "1.0" .. "1.3" at *p; advances *p past the token. Returns 10 + the minor
 * number (1.2 -> 12), or -1 (with why set) when it is not a TLS version. */
static int
tls_version(const char **p, char why[PARSE_WHY_LEN])
{
	const char *s = *p;
	size_t n = 0;

	while (s[n] != '\0' && s[n] != '-' && s[n] != ' ' && s[n] != '\t') {
		n++;
	}
	*p = s + n;
	if (n == 3 && s[0] == '1' && s[1] == '.' && s[2] >= '0' &&
	    s[2] <= '3') {
		return 10 + (s[2] - '0');
	}
	if (n == 0) {
		parse_why(why, "expected " TLS_EXAMPLE);
	} else {
		parse_why(why, "unknown TLS version \"%.*s\"; expected 1.0, 1.1, "
		    "1.2 or 1.3", (int)(n > 16 ? 16 : n), s);
	}
	return -1;
}

static const char *
skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	return p;
}

bool
parse_tls_versions(const char *s, int *out_min, int *out_max,
    char why[PARSE_WHY_LEN])
{
	const char *p = s;
	int lo, hi;

	if (*s == '\0') {
		parse_why(why, "empty; expected " TLS_EXAMPLE);
		return false;
	}
	lo = tls_version(&p, why);
	if (lo < 0) {
		return false;
	}
	p = skip_blank(p);
	if (*p == '\0') {
		*out_min = lo;
		*out_max = lo;
		return true;
	}
	if (*p != '-') {
		parse_why(why, "expected " TLS_EXAMPLE);
		return false;
	}
	p = skip_blank(p + 1);
	hi = tls_version(&p, why);
	if (hi < 0) {
		return false;
	}
	if (*skip_blank(p) != '\0') {
		parse_why(why, "expected " TLS_EXAMPLE);
		return false;
	}
	if (lo > hi) {
		parse_why(why, "write the lowest version first, as in 1.2-1.3");
		return false;
	}
	*out_min = lo;
	*out_max = hi;
	return true;
}

/* ------------------------------------------------------------ host:port */

/* A DNS name or an IPv4 address: letters, digits, '-', '_' and dots, no
 * empty label; an all-numeric dotted name must be a real IPv4 address. */
static bool
check_host_name(const char *h, size_t n, char why[PARSE_WHY_LEN])
{
	char buf[256];
	struct in_addr a4;
	bool numeric = true;
	size_t i;

	if (n > 253) {
		parse_why(why, "host name is longer than 253 characters");
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (i == 0 || h[i - 1] == '.') {
				parse_why(why, "empty label in host name \"%.*s\"",
				    (int)(n > 64 ? 64 : n), h);
				return false;
			}
			continue;
		}
		if (!parse_is_digit(c)) {
			numeric = false;
		}
		if (!parse_is_alpha(c) && !parse_is_digit(c) && c != '-' && c != '_') {
			if (c == ' ' || c == '\t') {
				parse_why(why, "space in host name; expected "
				    HOSTPORT_EXAMPLE);
			} else {
				parse_why(why, "invalid character \"%c\" in host "
				    "name; expected " HOSTPORT_EXAMPLE, c);
			}
			return false;
		}
	}
	if (numeric) {
		memcpy(buf, h, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET, buf, &a4) != 1) {
			parse_why(why, "\"%s\" is not an IPv4 address", buf);
			return false;
		}
	}
	return true;
}

/* The inside of "[...]": an IPv6 address, optionally with a %zone. */
static bool
check_ipv6(const char *h, size_t n, char why[PARSE_WHY_LEN])
{
	char buf[256];
	struct in6_addr a6;
	const char *zone;
	size_t addr_len = n, i;

	if (n == 0 || n >= sizeof(buf)) {
		parse_why(why, "expected an IPv6 address between \"[\" and \"]\"");
		return false;
	}
	zone = memchr(h, '%', n);
	if (zone != NULL) {
		addr_len = (size_t)(zone - h);
		if (addr_len + 1 == n) {
			parse_why(why, "empty zone after \"%%\" in IPv6 address");
			return false;
		}
		for (i = addr_len + 1; i < n; i++) {
			if (!parse_is_alpha(h[i]) && !parse_is_digit(h[i]) && h[i] != '-' &&
			    h[i] != '_' && h[i] != '.') {
				parse_why(why, "invalid character \"%c\" in IPv6 "
				    "zone", h[i]);
				return false;
			}
		}
	}
	memcpy(buf, h, addr_len);
	buf[addr_len] = '\0';
	if (inet_pton(AF_INET6, buf, &a6) != 1) {
		parse_why(why, "\"%s\" is not an IPv6 address", buf);
		return false;
	}
	return true;
}

bool
parse_hostport(const char *s, struct parse_hostport *out,
    char why[PARSE_WHY_LEN])
{
	const char *host, *port;
	size_t host_len;
	uint64_t v;

	if (*s == '\0') {
		parse_why(why, "empty; expected " HOSTPORT_EXAMPLE);
		return false;
	}
	if ((host = strstr(s, "://")) != NULL) {
		/* "mqtts://broker:8883/": the field engineer's URL habit. The
		 * scheme says nothing here (TLS is set by the section). */
		const char *rest = host + 3;
		size_t len = strcspn(rest, "/");

		parse_why(why, "a URL scheme is not part of an address: write "
		    "\"%.*s\" (host:port)", (int)(len < 200 ? len : 200), rest);
		return false;
	}
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL) {
			parse_why(why, "missing \"]\" after the IPv6 address; "
			    "expected [address]:port, as in [::1]:8883");
			return false;
		}
		host = s + 1;
		host_len = (size_t)(close - host);
		if (!check_ipv6(host, host_len, why)) {
			return false;
		}
		if (close[1] != ':') {
			parse_why(why, "%s; expected [address]:port, as in "
			    "[::1]:8883", close[1] == '\0' ? "missing the port"
			    : "unexpected text after \"]\"");
			return false;
		}
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL) {
			parse_why(why, "missing the port; expected "
			    HOSTPORT_EXAMPLE);
			return false;
		}
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			parse_why(why, "put an IPv6 address in brackets, as in "
			    "[::1]:8883");
			return false;
		}
		host = s;
		host_len = (size_t)(colon - s);
		if (host_len == 0) {
			parse_why(why, "missing the host; expected "
			    HOSTPORT_EXAMPLE);
			return false;
		}
		if (!check_host_name(host, host_len, why)) {
			return false;
		}
		port = colon + 1;
	}
	if (*port == '\0') {
		parse_why(why, "missing the port after \":\"; expected "
		    HOSTPORT_EXAMPLE);
		return false;
	}
	if (!parse_is_digit(*port) || !parse_read_digits(&port, &v) || *port != '\0' ||
	    v < 1 || v > 65535) {
		parse_why(why, "the port must be a number from 1 to 65535");
		return false;
	}
	if (host_len >= sizeof(out->host)) {
		parse_why(why, "host name is too long");
		return false;
	}
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	(void)snprintf(out->port, sizeof(out->port), "%u", (unsigned)v);
	return true;
}

/*
 * tickets.h - the TLS 1.3 session tickets certbridge gives devices, and
 * what each one resumes.
 *
 * A resumption runs no verify callback, so the gateway must remember the
 * chain a ticket was issued for to judge the device again when the ticket
 * comes back (docs/architecture.md, "Dual trust: one decision, in one
 * place"). wolfSSL's own tickets find that chain in a small process-wide
 * session cache, which forgets it after a few dozen newer tickets: a
 * device then resumed with no certificate at all. Here every ticket names
 * an entry of its generation's ring, and a ticket whose entry is gone
 * (overwritten, expired, another generation) is declined: the device
 * makes a full handshake and is judged from the certificate it sends.
 *
 * Tickets are sealed with ChaCha20-Poly1305 under a key drawn when the
 * store is made (one store per configuration generation, so a reload
 * makes every older ticket fail). The 16-byte key name carries the
 * store's random identifier and the entry's sequence number; the nonce is
 * the sequence number, unique under the key. The store does not know what
 * it keeps: values are the caller's, released through the function given
 * at creation when their entry is overwritten or the store freed.
 */
#ifndef CB_TICKETS_H
#define CB_TICKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TICKETS_NAME_LEN 16   /* wolfSSL's WOLFSSL_TICKET_NAME_SZ */
#define TICKETS_IV_LEN   16   /* WOLFSSL_TICKET_IV_SZ */
#define TICKETS_MAC_LEN  32   /* WOLFSSL_TICKET_MAC_SZ */

/* How long a ticket resumes, in seconds: also the lifetime hint the
 * gateway sends with it (RFC 8446 section 4.6.1). */
#define TICKETS_LIFETIME_S 300

struct tickets;

/* A store of capacity entries (the newest tickets; older ones are
 * declined) whose tickets resume for lifetime_s seconds. NULL when out of
 * memory or when no random key could be drawn. */
struct tickets *tickets_new(size_t capacity, int64_t lifetime_s,
    void (*release)(void *value));
/* Releases every value still kept. NULL is fine. */
void tickets_free(struct tickets *tk);

/* Seals the len bytes of ticket in place under a new entry holding value
 * (which the store owns from then on, also on failure) and fills name, iv
 * and mac. now is in monotonic seconds. */
bool tickets_seal(struct tickets *tk, void *value, int64_t now,
    uint8_t name[TICKETS_NAME_LEN], uint8_t iv[TICKETS_IV_LEN],
    uint8_t mac[TICKETS_MAC_LEN], uint8_t *ticket, size_t len);

/* Opens a ticket sealed by tickets_seal, in place. Returns the value of
 * its entry (still the store's), or NULL when the ticket is not one of
 * this store's, was altered, or its entry is overwritten or expired. */
void *tickets_open(struct tickets *tk, int64_t now,
    const uint8_t name[TICKETS_NAME_LEN], const uint8_t iv[TICKETS_IV_LEN],
    const uint8_t mac[TICKETS_MAC_LEN], uint8_t *ticket, size_t len);

/* Frees what expired tickets named: sealing does so as it goes, this is
 * for a gateway where no new ticket comes (a quiet night after a storm),
 * so memory returns to its baseline. */
void tickets_expire(struct tickets *tk, int64_t now);

/* How many entries hold a value (for tests and the bench). */
size_t tickets_count(const struct tickets *tk);

#endif

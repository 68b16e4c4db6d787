/*
 * x509.h - certificate files and facts, on wolfSSL.
 *
 * Loads PEM bundles (several certificates) or a single DER certificate with
 * an error that says which certificate of the file is bad and why, and reads
 * the facts operators and logs need: subject, issuer, CN, validity as epoch
 * seconds, SHA-256 fingerprint. Shared by the gateway and the tools.
 */
#ifndef CB_X509_H
#define CB_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/stat.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define X509_WHY_LEN 256
#define X509_NAME_LEN 256
#define X509_FP_HEX_LEN (32 * 3) /* "AB:CD:..." with terminator */

struct x509_list {
	WOLFSSL_X509 **certs;
	size_t count;
};

/* Loads every certificate of a PEM file, or the one certificate of a DER
 * file. Fails (false, why filled) when the file cannot be read, holds no
 * certificate, or any block in it does not parse. */
bool x509_load_file(const char *path, struct x509_list *out,
    char why[X509_WHY_LEN]);
void x509_list_free(struct x509_list *list);

/* The whole of a certificate or key file (a regular file of at most
 * 4 MiB), NUL-terminated after len bytes; file (when not NULL) gets the
 * fstat of the very file read, so a caller can tell later whether it
 * changed. NULL with why filled on failure; free() the result. */
char *x509_read_file(const char *path, size_t *len, struct stat *file,
    char why[X509_WHY_LEN]);

/* The DER of every certificate of list, leaf first, back to back in one
 * malloc'd buffer (what wolfSSL_use_certificate_chain_buffer_format takes
 * as WOLFSSL_FILETYPE_ASN1); NULL when out of memory. */
unsigned char *x509_list_der(const struct x509_list *list, size_t *len);

/* x509_load_file on bytes already read (buf NUL-terminated after len, as
 * x509_read_file gives them); path only names them in why. */
bool x509_load_buffer(const char *path, const char *buf, size_t len,
    struct x509_list *out, char why[X509_WHY_LEN]);

/* Checks that the private key at key_path (PEM or DER, unencrypted)
 * parses and belongs to cert: for RSA and EC keys a signature made with it
 * must verify with cert's public key (wolfSSL_CTX_check_private_key passes
 * the EC key of any other certificate in 5.5.4). why names the key file
 * and the certificate's subject. */
bool x509_key_matches(WOLFSSL_X509 *cert, const char *key_path,
    char why[X509_WHY_LEN]);

/* The private key in buf (the bytes of key_path: PEM of any kind wolfSSL
 * reads, or DER) as the DER wolfSSL loads with WOLFSSL_FILETYPE_ASN1, in
 * *der (malloc'd, *der_len bytes). False with why filled when it is
 * neither (an encrypted key is named so). */
bool x509_key_der(const char *key_path, const char *buf, size_t len,
    unsigned char **der, size_t *der_len, char why[X509_WHY_LEN]);

/* x509_key_matches on a DER key (from x509_key_der): the proof is made on
 * the very bytes a caller will later hand to wolfSSL. */
bool x509_key_matches_der(WOLFSSL_X509 *cert, const char *key_path,
    const unsigned char *der, size_t der_len, char why[X509_WHY_LEN]);

/* "/CN=Device CA 2019/O=Acme" style one-line names. */
void x509_subject(WOLFSSL_X509 *cert, char out[X509_NAME_LEN]);
void x509_issuer(WOLFSSL_X509 *cert, char out[X509_NAME_LEN]);
/* The subject's common name; empty when there is none. */
void x509_cn(WOLFSSL_X509 *cert, char out[X509_NAME_LEN]);

/* Validity in seconds since the epoch; false when the field is unreadable. */
bool x509_not_before(WOLFSSL_X509 *cert, int64_t *out);
bool x509_not_after(WOLFSSL_X509 *cert, int64_t *out);

bool x509_fingerprint(WOLFSSL_X509 *cert, uint8_t out[32]);
/* "AB:CD:..." uppercase, colon separated. */
void x509_fingerprint_hex(WOLFSSL_X509 *cert, char out[X509_FP_HEX_LEN]);

/* Whether cert is self-signed-looking (subject == issuer). */
bool x509_is_self_issued(WOLFSSL_X509 *cert);

/* Whether the DER encodings are identical. */
bool x509_same(WOLFSSL_X509 *a, WOLFSSL_X509 *b);

/* A CRL file (PEM or DER) as the DER of its CRL, for wolfSSL to load and
 * crl_parse to read. */
struct x509_crl_file {
	unsigned char *data;   /* DER, also when the file is PEM */
	size_t len;
	int format;            /* always WOLFSSL_FILETYPE_ASN1 */
	int64_t this_update;   /* epoch seconds */
	int64_t next_update;   /* epoch seconds; 0 when the CRL names none */
	char issuer[X509_NAME_LEN]; /* the CRL issuer, "/O=.../CN=..." */
};

/* Reads a CRL and its dates: a DER file, or a PEM file with exactly one
 * "BEGIN X509 CRL" block, decoded to DER. False with why filled when the
 * file cannot be read, a PEM block has no END line or damaged base64, or
 * no CRL parses. Dates are read even from a stale CRL, so the error can
 * say since when it is stale. */
bool x509_crl_read(const char *path, struct x509_crl_file *out,
    char why[X509_WHY_LEN]);
void x509_crl_free(struct x509_crl_file *crl);

/* The subject alternative names of cert a verifier matches a host against,
 * as "DNS:localhost, IP:127.0.0.1" (IPv6 in its short form), in the order
 * wolfSSL returns them (not necessarily the order written); other SAN
 * types are left out. Empty when there are none. The names are the
 * certificate's bytes: escape them before printing. */
void x509_san_text(WOLFSSL_X509 *cert, char *out, size_t cap);

#endif

/*
 * p11uri.h - PKCS#11 URIs (RFC 7512) naming a private key in a token, as
 * written for [downstream] key and [upstream] key (docs/configuration.md,
 * "Keys in hardware").
 *
 * Only what finds one key is taken: the token (token, manufacturer, model,
 * serial, slot-id) and the object (object = its label, id, type=private).
 * The PIN never comes from the URI (pin-value, pin-source are refused: the
 * INI is read by more people than the PIN file) and neither does the module
 * (module-name, module-path: [gateway] pkcs11_module says which).
 */
#ifndef CERTBRIDGE_P11URI_H
#define CERTBRIDGE_P11URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define P11URI_WHY_LEN 256
/* CK_TOKEN_INFO's fields are 32 bytes (16 for model and serial), padded with
 * spaces; a label (CKA_LABEL) has no bound in the standard, this one is
 * generous for what tools write. */
#define P11URI_TOKEN_MAX 32
#define P11URI_SERIAL_MAX 16
#define P11URI_MODEL_MAX 16
#define P11URI_LABEL_MAX 128
#define P11URI_ID_MAX 64

struct p11uri {
	char token[P11URI_TOKEN_MAX + 1];
	char manufacturer[P11URI_TOKEN_MAX + 1];
	char model[P11URI_MODEL_MAX + 1];
	char serial[P11URI_SERIAL_MAX + 1];
	char object[P11URI_LABEL_MAX + 1];
	uint8_t id[P11URI_ID_MAX];
	size_t id_len;
	unsigned long slot_id;
	bool has_token, has_manufacturer, has_model, has_serial, has_slot_id;
	bool has_object, has_id;
};

/* Whether s is written as a PKCS#11 URI (the scheme, in any case). */
bool p11uri_is(const char *s);

/* Parses s into out. False with why in the operator's terms (which
 * attribute, what is wrong, what to write) when s is not a URI that names
 * one private key: no token attribute, neither object nor id, a type other
 * than private, an attribute given twice or unknown, a bad %-escape, a NUL
 * byte, a value too long for its field, or a PIN or module in the URI. */
bool p11uri_parse(const char *s, struct p11uri *out,
    char why[P11URI_WHY_LEN]);

#endif

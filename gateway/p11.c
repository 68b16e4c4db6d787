/*
 * p11.c - private keys in PKCS#11 tokens (see p11.h).
 *
 * wolfSSL's PKCS#11 layer, in the order that works with the modules
 * certbridge is tested with (docs/configuration.md, "Keys in hardware"):
 * wc_Pkcs11_Initialize loads the module; the slot of a token is found here
 * (by label, serial, ...) rather than by wc_Pkcs11Token_InitName, which
 * SoftHSM2 does not answer; the PIN lives in a writable buffer that
 * outlives the token (wolfSSL keeps the pointer and wipes it at
 * wc_Pkcs11Token_Final); the token is registered as a crypto device and a
 * context names the key with wolfSSL_CTX_use_PrivateKey_Label/_Id and that
 * device (never wolfSSL_CTX_SetDevId, which would send every operation of
 * the context to the token).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11.h"
#include "p11uri.h"
#include "util.h"

#ifdef HAVE_PKCS11
#include <wolfssl/wolfcrypt/cryptocb.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/wc_pkcs11.h>

/* Return values and flags wolfSSL's PKCS#11 header leaves out. */
#define P11_CKF_LOGIN_REQUIRED 0x00000004UL
#define P11_CKR_PIN_INCORRECT 0x000000A0UL
#define P11_CKR_PIN_LEN_RANGE 0x000000A2UL
#define P11_CKR_PIN_LOCKED 0x000000A4UL
#define P11_CKR_USER_ALREADY_LOGGED_IN 0x00000100UL

#define P11_PIN_MAX 256
#define P11_SLOTS_MAX 64
/* wolfSSL's crypto devices are numbered by the caller; these stay clear
 * of INVALID_DEVID (-2) and of the small numbers examples use. */
#define P11_DEVID_BASE 0x43420000

/* One loaded module, shared by every generation that names its path. */
struct p11_module {
	struct p11_module *next;
	char *path;
	Pkcs11Dev dev;
	unsigned refs;
};

/* One opened, logged-in token: a wolfSSL crypto device. Shared by the
 * generations with the same module, slot and PIN. */
struct p11_token {
	struct p11_token *next;
	struct p11_module *mod;
	CK_SLOT_ID slot;
	Pkcs11Token tok;
	int devid;
	unsigned refs;
	/* Writable and as long-lived as tok (wolfSSL keeps the pointer and
	 * wipes it at wc_Pkcs11Token_Final); pin_copy is ours to compare. */
	unsigned char pin[P11_PIN_MAX];
	unsigned char pin_copy[P11_PIN_MAX];
	int pin_len;
};

struct p11 {
	struct p11_module *mod;
	struct p11_token *tokens[2];  /* the downstream and upstream keys' */
	size_t token_count;
	unsigned char pin[P11_PIN_MAX];
	int pin_len;                  /* 0: no PIN file, no login */
	/* A slot that refused this PIN: the second key on it is not tried
	 * again (a token may lock after three wrong PINs). */
	bool refused;
	CK_SLOT_ID refused_slot;
	char refused_why[256];
};

static struct p11_module *modules;
static struct p11_token *tokens;
static int next_devid = P11_DEVID_BASE;

bool
p11_available(void)
{
	return true;
}

static struct p11_module *
p11_module_get(const struct cfg *cfg, struct cfg_diag *diag)
{
	const struct cfg_file *f = &cfg->gateway.pkcs11_module;
	struct p11_module *m;
	CK_RV rv = CKR_OK;
	int ret;

	for (m = modules; m != NULL; m = m->next) {
		if (strcmp(m->path, f->path) == 0) {
			m->refs++;
			return m;
		}
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->path = strdup(f->path)) == NULL) {
		free(m);
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		return NULL;
	}
	ret = wc_Pkcs11_Initialize_ex(&m->dev, f->path, NULL, &rv);
	if (ret != 0) {
		cfg_diag_add(diag, true, "%s:%u: [gateway] pkcs11_module: "
		    "\"%s\" is not a PKCS#11 module wolfSSL can load (%s, "
		    "C_Initialize 0x%lx); name the module's .so, such as "
		    "/usr/lib/softhsm/libsofthsm2.so", cfg->path, f->line,
		    f->path, ret == BAD_PATH_ERROR ? "dlopen failed"
		    : "initialization failed", (unsigned long)rv);
		free(m->path);
		free(m);
		return NULL;
	}
	m->refs = 1;
	m->next = modules;
	modules = m;
	return m;
}

static void
p11_module_put(struct p11_module *m)
{
	struct p11_module **p;

	if (m == NULL || --m->refs > 0) {
		return;
	}
	for (p = &modules; *p != NULL; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	wc_Pkcs11_Finalize(&m->dev);
	free(m->path);
	free(m);
}

/* The PIN file's first line, without its line end. */
static bool
p11_read_pin(const struct cfg *cfg, struct cfg_diag *diag, struct p11 *p)
{
	const struct cfg_file *f = &cfg->gateway.pkcs11_pin_file;
	unsigned char buf[P11_PIN_MAX + 2];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		cfg_diag_add(diag, true, "%s:%u: [gateway] pkcs11_pin_file: "
		    "cannot read \"%s\": %s", cfg->path, f->line, f->path,
		    strerror(errno));
		return false;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		cfg_diag_add(diag, false, "%s:%u: [gateway] pkcs11_pin_file: "
		    "warning: the PIN file \"%s\" can be read by %s (mode "
		    "%04o); chmod 600 it, owned by the user certbridge runs as",
		    cfg->path, f->line, f->path, (st.st_mode & S_IRWXO)
		    ? "others" : "its group", (unsigned)(st.st_mode & 07777));
	}
	n = read(fd, buf, sizeof(buf));
	(void)close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
		n--;
	}
	if (n <= 0 || n > P11_PIN_MAX || memchr(buf, '\n', (size_t)n)
	    != NULL) {
		cfg_diag_add(diag, true, "%s:%u: [gateway] pkcs11_pin_file: "
		    "\"%s\" must hold the token's user PIN on one line (1 to "
		    "%d bytes)", cfg->path, f->line, f->path, P11_PIN_MAX);
		explicit_bzero(buf, sizeof(buf));
		return false;
	}
	memcpy(p->pin, buf, (size_t)n);
	p->pin_len = (int)n;
	explicit_bzero(buf, sizeof(buf));
	return true;
}

struct p11 *
p11_new(const struct cfg *cfg, struct cfg_diag *diag, bool *ok)
{
	struct p11 *p;

	*ok = true;
	if (!p11uri_is(cfg->downstream.key.path)
	    && !p11uri_is(cfg->upstream.key.path)) {
		return NULL;
	}
	*ok = false;
	if (cfg->gateway.pkcs11_module.path == NULL) {
		return NULL; /* reported by the configuration check */
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		return NULL;
	}
	if (cfg->gateway.pkcs11_pin_file.path != NULL
	    && !p11_read_pin(cfg, diag, p)) {
		free(p);
		return NULL;
	}
	p->mod = p11_module_get(cfg, diag);
	if (p->mod == NULL) {
		explicit_bzero(p->pin, sizeof(p->pin));
		free(p);
		return NULL;
	}
	*ok = true;
	return p;
}

/* The length of a CK_TOKEN_INFO field without its blank padding. */
static size_t
p11_field_len(const CK_UTF8CHAR *field, size_t cap)
{
	while (cap > 0 && (field[cap - 1] == ' ' || field[cap - 1] == '\0')) {
		cap--;
	}
	return cap;
}

/* A blank-padded field equals a URI value. */
static bool
p11_field_is(const CK_UTF8CHAR *field, size_t cap, const char *want)
{
	size_t n = strlen(want);

	return p11_field_len(field, cap) == n && memcmp(field, want, n) == 0;
}

static void
p11_label_text(const CK_UTF8CHAR *field, size_t cap, char *out)
{
	size_t len = p11_field_len(field, cap);

	for (size_t i = 0; i < len; i++) {
		out[i] = field[i] >= 0x20 && field[i] < 0x7f
		    ? (char)field[i] : '?';
	}
	out[len] = '\0';
}

/* The one slot whose token the URI names; why says what the module has
 * when none or several match. */
static bool
p11_find_slot(struct p11_module *m, const struct p11uri *u, CK_SLOT_ID *out,
    CK_FLAGS *flags, char *why, size_t cap)
{
	CK_SLOT_ID slots[P11_SLOTS_MAX];
	CK_ULONG n = P11_SLOTS_MAX;
	CK_TOKEN_INFO info;
	size_t found = 0, used = 0;
	char seen[512] = "";
	CK_RV rv;

	rv = m->dev.func->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		snprintf(why, cap, "the module lists no slots (C_GetSlotList "
		    "0x%lx)", (unsigned long)rv);
		return false;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		char label[33];

		if (m->dev.func->C_GetTokenInfo(slots[i], &info) != CKR_OK) {
			continue;
		}
		p11_label_text(info.label, sizeof(info.label), label);
		if (used + 40 < sizeof(seen)) {
			used += (size_t)snprintf(seen + used, sizeof(seen) - used,
			    "%s\"%s\"", used ? ", " : "", label);
		}
		if ((u->has_token && !p11_field_is(info.label,
		    sizeof(info.label), u->token))
		    || (u->has_manufacturer && !p11_field_is(
		    info.manufacturerID, sizeof(info.manufacturerID),
		    u->manufacturer))
		    || (u->has_model && !p11_field_is(info.model,
		    sizeof(info.model), u->model))
		    || (u->has_serial && !p11_field_is(info.serialNumber,
		    sizeof(info.serialNumber), u->serial))
		    || (u->has_slot_id && slots[i] != u->slot_id)) {
			continue;
		}
		if (found++ == 0) {
			*out = slots[i];
			*flags = info.flags;
		}
	}
	if (found == 1) {
		return true;
	}
	if (found == 0) {
		snprintf(why, cap, "no token of the module matches the URI; it "
		    "has %s (initialize one with softhsm2-util --init-token, "
		    "or check token= against pkcs11-tool -L)", n == 0
		    ? "no initialized token" : seen);
	} else {
		snprintf(why, cap, "%zu tokens match the URI (%s); add "
		    "serial=... to name one", found, seen);
	}
	return false;
}

static const char *
p11_login_why(CK_RV rv)
{
	switch (rv) {
	case P11_CKR_PIN_INCORRECT:
		return "the PIN is wrong (CKR_PIN_INCORRECT); put the token's "
		    "user PIN in the PIN file (a wrong PIN retried may lock "
		    "the token)";
	case P11_CKR_PIN_LOCKED:
		return "the token's user PIN is locked (CKR_PIN_LOCKED); the "
		    "security officer must unlock it";
	case P11_CKR_PIN_LEN_RANGE:
		return "the PIN's length is outside what the token allows "
		    "(CKR_PIN_LEN_RANGE)";
	default:
		return NULL;
	}
}

/* Logs in once on a session of our own, for the token's own words on a
 * bad PIN (wolfSSL reports every failure as one hardware error). */
static bool
p11_try_login(struct p11_module *m, CK_SLOT_ID slot, unsigned char *pin,
    int pin_len, char *why, size_t cap)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;
	const char *text;

	rv = m->dev.func->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
	    &s);
	if (rv != CKR_OK) {
		snprintf(why, cap, "the token opens no session (C_OpenSession "
		    "0x%lx)", (unsigned long)rv);
		return false;
	}
	rv = m->dev.func->C_Login(s, CKU_USER, pin, (CK_ULONG)pin_len);
	(void)m->dev.func->C_CloseSession(s);
	if (rv == CKR_OK || rv == P11_CKR_USER_ALREADY_LOGGED_IN) {
		return true;
	}
	text = p11_login_why(rv);
	if (text != NULL) {
		snprintf(why, cap, "%s", text);
	} else {
		snprintf(why, cap, "the token refuses the login (C_Login "
		    "0x%lx)", (unsigned long)rv);
	}
	return false;
}

static void
p11_token_put(struct p11_token *t)
{
	struct p11_token **p;

	if (t == NULL || --t->refs > 0) {
		return;
	}
	for (p = &tokens; *p != NULL; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	wc_CryptoCb_UnRegisterDevice(t->devid);
	wc_Pkcs11Token_Final(&t->tok);
	explicit_bzero(t->pin, sizeof(t->pin));
	explicit_bzero(t->pin_copy, sizeof(t->pin_copy));
	p11_module_put(t->mod);
	free(t);
}

/* The opened token the URI names, shared when one with the same module,
 * slot and PIN is open already. */
static struct p11_token *
p11_token_get(struct p11 *p, const struct p11uri *u, char *why, size_t cap)
{
	CK_SLOT_ID slot = 0;
	CK_FLAGS flags = 0;
	struct p11_token *t;
	int init_slot;

	if (!p11_find_slot(p->mod, u, &slot, &flags, why, cap)) {
		return NULL;
	}
	if ((flags & P11_CKF_LOGIN_REQUIRED) && p->pin_len == 0) {
		snprintf(why, cap, "the token needs its user PIN: write it in a "
		    "file (mode 0600) and name it in [gateway] "
		    "pkcs11_pin_file");
		return NULL;
	}
	for (t = tokens; t != NULL; t = t->next) {
		if (t->mod != p->mod || t->slot != slot) {
			continue;
		}
		if (t->pin_len == p->pin_len && memcmp(t->pin_copy, p->pin,
		    (size_t)p->pin_len) == 0) {
			t->refs++;
			return t;
		}
		/* A token's login is one for the whole process: logging in
		 * with another PIN would either be a no-op (already logged
		 * in, so nothing is checked) or, through wolfSSL, close the
		 * sessions the running keys sign with. The running
		 * configuration keeps serving; a new PIN takes a restart. */
		snprintf(why, cap, "the token is open with the running "
		    "configuration's PIN and pkcs11_pin_file now holds another; "
		    "a new PIN cannot be checked or taken without logging the "
		    "running keys out: restart certbridge to use it");
		return NULL;
	}
	if (p->refused && p->refused_slot == slot) {
		snprintf(why, cap, "%s", p->refused_why);
		return NULL;
	}
	if (p->pin_len > 0 && !p11_try_login(p->mod, slot, p->pin,
	    p->pin_len, why, cap)) {
		p->refused = true;
		p->refused_slot = slot;
		snprintf(p->refused_why, sizeof(p->refused_why), "%s", why);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	memcpy(t->pin, p->pin, (size_t)p->pin_len);
	memcpy(t->pin_copy, p->pin, (size_t)p->pin_len);
	t->pin_len = p->pin_len;
	t->slot = slot;
	t->devid = next_devid++;
	/* wolfSSL takes the slot as an int: one above INT_MAX is passed as
	 * -1 (wolfSSL's "first slot with a token", to pass its check) and
	 * set right after. */
	init_slot = slot <= (CK_SLOT_ID)INT_MAX ? (int)slot : -1;
	if ((p->pin_len > 0 ? wc_Pkcs11Token_Init(&t->tok, &p->mod->dev,
	    init_slot, NULL, t->pin, t->pin_len)
	    : wc_Pkcs11Token_Init_NoLogin(&t->tok, &p->mod->dev, init_slot,
	    NULL)) != 0) {
		snprintf(why, cap, "wolfSSL cannot set up the token");
		explicit_bzero(t, sizeof(*t));
		free(t);
		return NULL;
	}
	t->tok.slotId = slot;
	if (wc_Pkcs11Token_Open(&t->tok, 0) != 0) {
		snprintf(why, cap, "wolfSSL cannot open a session on the token");
		wc_Pkcs11Token_Final(&t->tok);
		explicit_bzero(t, sizeof(*t));
		free(t);
		return NULL;
	}
	if (wc_CryptoCb_RegisterDevice(t->devid, wc_Pkcs11_CryptoDevCb,
	    &t->tok) != 0) {
		snprintf(why, cap, "wolfSSL has no room for another crypto "
		    "device (older configurations still hold theirs while "
		    "their sessions last)");
		wc_Pkcs11Token_Final(&t->tok);
		explicit_bzero(t, sizeof(*t));
		free(t);
		return NULL;
	}
	t->mod = p->mod;
	t->mod->refs++;
	t->refs = 1;
	t->next = tokens;
	tokens = t;
	return t;
}

/* The key's type (CKK_EC, CKK_RSA), found by the URI's id or label; why
 * says so when no private key or several match. */
static bool
p11_find_key(struct p11_token *t, struct p11uri *u, bool by_label,
    bool by_id, CK_KEY_TYPE *type, char *why, size_t cap)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[3] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
	};
	CK_ATTRIBUTE get = { CKA_KEY_TYPE, type, sizeof(*type) };
	CK_FUNCTION_LIST *f = t->mod->dev.func;
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0, count = 1;
	CK_RV rv;

	if (by_label) {
		tmpl[count++] = (CK_ATTRIBUTE){ CKA_LABEL, u->object,
		    strlen(u->object) };
	}
	if (by_id) {
		tmpl[count++] = (CK_ATTRIBUTE){ CKA_ID, u->id,
		    u->id_len };
	}
	rv = f->C_FindObjectsInit(t->tok.handle, tmpl, count);
	if (rv == CKR_OK) {
		rv = f->C_FindObjects(t->tok.handle, found, 2, &n);
		(void)f->C_FindObjectsFinal(t->tok.handle);
	}
	if (rv != CKR_OK) {
		snprintf(why, cap, "the token cannot be searched "
		    "(C_FindObjects 0x%lx)", (unsigned long)rv);
		return false;
	}
	if (n != 1) {
		snprintf(why, cap, n == 0 ? "the token holds no private key "
		    "with this %s (pkcs11-tool --list-objects shows what it "
		    "holds; a key without the PIN is not shown)"
		    : "more than one private key matches this %s; give each "
		    "key its own id and name it with id=", by_label && by_id
		    ? "label and id" : by_label ? "label" : "id");
		return false;
	}
	rv = f->C_GetAttributeValue(t->tok.handle, found[0], &get, 1);
	if (rv != CKR_OK) {
		snprintf(why, cap, "the key's type cannot be read "
		    "(C_GetAttributeValue 0x%lx)", (unsigned long)rv);
		return false;
	}
	if (*type != CKK_EC && *type != CKK_RSA) {
		snprintf(why, cap, "the key is neither EC nor RSA (key type "
		    "0x%lx)", (unsigned long)*type);
		return false;
	}
	return true;
}

/* A signature made by the token that verifies with the certificate's
 * public key: the one proof that this key is the certificate's (a label
 * can name any key). */
static bool
p11_prove(struct p11_token *t, struct p11uri *u, CK_KEY_TYPE type,
    WOLFSSL_X509 *leaf, char *why, size_t cap)
{
	static const char msg[] = "certbridge: does the token's key sign "
	    "for this certificate?";
	unsigned char hash[WC_SHA256_DIGEST_SIZE], spki[2048];
	unsigned char sig[512], out[512];
	int spki_len = (int)sizeof(spki), verified = 0, n = -1;
	word32 sig_len = sizeof(sig), at = 0;
	bool decoded = false;
	WC_RNG rng;

	if (wolfSSL_X509_get_pubkey_buffer(leaf, spki, &spki_len)
	    != WOLFSSL_SUCCESS || wc_Sha256Hash((const byte *)msg,
	    sizeof(msg) - 1, hash) != 0 || wc_InitRng(&rng) != 0) {
		snprintf(why, cap, "the certificate's public key cannot be "
		    "read");
		return false;
	}
	if (type == CKK_EC) {
		ecc_key priv, pub;

		n = u->has_id ? wc_ecc_init_id(&priv, u->id,
		    (int)u->id_len, NULL, t->devid) : wc_ecc_init_label(&priv,
		    u->object, NULL, t->devid);
		if (n == 0) {
			n = wc_ecc_sign_hash(hash, sizeof(hash), sig, &sig_len,
			    &rng, &priv);
			wc_ecc_free(&priv);
		}
		if (wc_ecc_init(&pub) == 0) {
			decoded = wc_EccPublicKeyDecode(spki, &at, &pub,
			    (word32)spki_len) == 0;
			if (decoded && n == 0 && wc_ecc_verify_hash(sig,
			    sig_len, hash, sizeof(hash), &verified, &pub)
			    != 0) {
				verified = 0;
			}
			wc_ecc_free(&pub);
		}
	} else {
		RsaKey priv, pub;

		n = u->has_id ? wc_InitRsaKey_Id(&priv, u->id,
		    (int)u->id_len, NULL, t->devid) : wc_InitRsaKey_Label(&priv,
		    u->object, NULL, t->devid);
		if (n == 0) {
			n = wc_RsaSSL_Sign(hash, sizeof(hash), sig, sizeof(sig),
			    &priv, &rng);
			wc_FreeRsaKey(&priv);
		}
		if (wc_InitRsaKey(&pub, NULL) == 0) {
			decoded = wc_RsaPublicKeyDecode(spki, &at, &pub,
			    (word32)spki_len) == 0;
			verified = decoded && n > 0 && wc_RsaSSL_Verify(sig,
			    (word32)n, out, sizeof(out), &pub)
			    == (int)sizeof(hash) && memcmp(out, hash,
			    sizeof(hash)) == 0;
			n = n > 0 ? 0 : n;
			wc_FreeRsaKey(&pub);
		}
	}
	wc_FreeRng(&rng);
	if (!decoded) {
		snprintf(why, cap, "the token's key is %s, but the certificate "
		    "holds another type of key", type == CKK_EC ? "an EC key"
		    : "an RSA key");
	} else if (n != 0) {
		snprintf(why, cap, "the token did not sign with the key "
		    "(wolfSSL error %d)", n);
	} else if (verified != 1) {
		snprintf(why, cap, "the token's key does not belong to the "
		    "certificate (its signature does not verify with the "
		    "certificate's public key)");
	}
	return decoded && n == 0 && verified == 1;
}

/* Holds t for this generation (released by p11_free). */
static void
p11_hold(struct p11 *p, struct p11_token *t)
{
	CB_ASSERT(p->token_count < CB_ARRAY_SIZE(p->tokens));
	p->tokens[p->token_count++] = t;
}

bool
p11_use_key(struct p11 *p, WOLFSSL_CTX *ctx, const struct cfg *cfg,
    struct cfg_diag *diag, const char *where, const struct cfg_file *key,
    WOLFSSL_X509 *leaf)
{
	struct p11uri u;
	struct p11_token *t;
	CK_KEY_TYPE type = 0;
	char why[640];
	bool ok;

	if (p == NULL || !p11uri_parse(key->path, &u, why)) {
		return false; /* told by the configuration check */
	}
	t = p11_token_get(p, &u, why, sizeof(why));
	if (t == NULL) {
		ok = false;
	} else {
		p11_hold(p, t);
		/* The key wolfSSL will find (by id when there is one) must be
		 * the one the whole URI names. */
		ok = p11_find_key(t, &u, u.has_object, u.has_id, &type, why,
		    sizeof(why)) && (!u.has_object || !u.has_id
		    || p11_find_key(t, &u, false, true, &type, why,
		    sizeof(why))) && p11_prove(t, &u, type, leaf, why,
		    sizeof(why));
	}
	if (ok && (u.has_id ? wolfSSL_CTX_use_PrivateKey_Id(ctx, u.id,
	    (long)u.id_len, t->devid) : wolfSSL_CTX_use_PrivateKey_Label(ctx,
	    u.object, t->devid)) != WOLFSSL_SUCCESS) {
		snprintf(why, sizeof(why), "wolfSSL cannot use the key (out "
		    "of memory)");
		ok = false;
	}
	if (!ok) {
		cfg_diag_add(diag, true, "%s:%u: %s: %s: %s", cfg->path,
		    key->line, where, key->path, why);
	}
	return ok;
}

void
p11_free(struct p11 *p)
{
	if (p == NULL) {
		return;
	}
	for (size_t i = 0; i < p->token_count; i++) {
		p11_token_put(p->tokens[i]);
	}
	p11_module_put(p->mod);
	explicit_bzero(p->pin, sizeof(p->pin));
	free(p);
}

#else /* !HAVE_PKCS11 */

bool
p11_available(void)
{
	return false;
}

struct p11 *
p11_new(const struct cfg *cfg, struct cfg_diag *diag, bool *ok)
{
	*ok = !p11uri_is(cfg->downstream.key.path)
	    && !p11uri_is(cfg->upstream.key.path);
	if (!*ok) {
		cfg_diag_add(diag, true, "%s:%u: [gateway] pkcs11_module: this "
		    "certbridge's wolfSSL has no PKCS#11 support; build with "
		    "the project's wolfSSL (make, the default) or Debian's",
		    cfg->path, cfg->gateway.pkcs11_module.line);
	}
	return NULL;
}

bool
p11_use_key(struct p11 *p, WOLFSSL_CTX *ctx, const struct cfg *cfg,
    struct cfg_diag *diag, const char *where, const struct cfg_file *key,
    WOLFSSL_X509 *leaf)
{
	(void)p;
	(void)ctx;
	(void)cfg;
	(void)diag;
	(void)where;
	(void)key;
	(void)leaf;
	return false;
}

void
p11_free(struct p11 *p)
{
	(void)p;
}

#endif

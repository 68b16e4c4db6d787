#!/bin/sh
# wolfssl-build.sh - the wolfSSL certbridge is built with by default.
#
#   tools/wolfssl-build.sh OUTDIR      prints the install prefix on stdout
#
# Builds Debian's own source of the wolfSSL that libwolfssl-dev installs (the
# same upstream tarball and the same Debian security patches, pinned below by
# version and by the SHA-256 of the .dsc), configured for what certbridge uses
# and with the target's assembly, as a static library:
#
#   OUTDIR/<version>-<arch>-<hash>/include/wolfssl/...
#   OUTDIR/<version>-<arch>-<hash>/lib/libwolfssl.a
#   OUTDIR/<version>-<arch>-<hash>/BUILDINFO       what went into it
#
# <hash> covers the pinned version and .dsc, the configure flags, CFLAGS and
# the compiler: change any of them and the next run builds a new prefix; run
# again with nothing changed and the cached one is reused (no network, about
# 0.1 s, nothing printed on stderr). Sources are kept in OUTDIR/src (checked
# against the pin on every use), Debian's package lists in OUTDIR/apt
# (nothing under OUTDIR is named *.d). The system's apt configuration and
# state are never written: the source package is fetched with a private
# sources list (deb-src lines derived from the machine's own Debian deb
# lines) and a private lists/cache directory.
#
# The Makefile runs it at every make (build/wolfssl.prefix, WOLFSSL_CACHE)
# and compiles with -isystem PREFIX/include (wolfSSL's headers are not held
# to certbridge's -Wshadow) and links PREFIX/lib/libwolfssl.a. The flags and
# why each is there, and how to move the pin after a Debian security update:
# docs/wolfssl.md.
#
# Environment: WOLFSSL_CFLAGS (default "-O2 -g -fstack-protector-strong"),
# WOLFSSL_JOBS (default: number of cores), WOLFSSL_EXTRA_CONFIGURE (more
# configure flags, for experiments; part of the hash), WOLFSSL_HOST (a GNU
# triplet: a cross build for that target with $WOLFSSL_HOST-gcc, as
# `make cross` asks; aarch64-linux-gnu or arm-linux-gnueabihf), and
# WOLFSSL_ARM_CRYPTO=no (an arm64 target without the ARMv8 crypto
# extensions: C code instead of their instructions). Needs dpkg-dev,
# autoconf, automake, libtool, make, gcc; as root, the missing ones are
# installed with apt-get.
set -eu

# ------------------------------------------------------------------ the pin
# The version of Debian 12's libwolfssl-dev this is built from, and the
# SHA-256 of its .dsc (which lists the SHA-256 of the tarballs; dpkg-source
# checks those when unpacking). To move the pin: apt-get source --print-uris
# wolfssl=NEWVERSION (with this script's private apt options) shows both.
WOLFSSL_DEB_VERSION=5.5.4-2+deb12u3
WOLFSSL_DSC_SHA256=41cc3bce69a14214cc16f03f87e1292d8a2f95c03bbf94f49ca36b010989a81a
# Bump when the build steps change in a way the flags do not show.
RECIPE=3

die() { echo "wolfssl-build: $*" >&2; exit 1; }
say() { echo "wolfssl-build: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR (prints the install prefix)"
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

# ------------------------------------------------------------------ version
# The build must be the wolfSSL that certbridge is otherwise built and tested
# against: refuse a mismatch rather than quietly building another version.
installed=$(dpkg-query -W -f='${Version}' libwolfssl-dev 2>/dev/null || true)
if [ -n "$installed" ] && [ "$installed" != "$WOLFSSL_DEB_VERSION" ]; then
	die "libwolfssl-dev $installed is installed but this script pins \
$WOLFSSL_DEB_VERSION: move the pin (WOLFSSL_DEB_VERSION and \
WOLFSSL_DSC_SHA256) to $installed"
fi
[ -n "$installed" ] || say "note: libwolfssl-dev is not installed; building the pinned $WOLFSSL_DEB_VERSION"
UPSTREAM_VERSION=${WOLFSSL_DEB_VERSION%%-*}

# ------------------------------------------------------------------ flags
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
HOST=${WOLFSSL_HOST:-}
HOST_FLAGS=""
if [ -n "$HOST" ]; then
	case "$HOST" in
	aarch64-linux-gnu) ARCH=arm64 ;;
	arm-linux-gnueabihf) ARCH=armhf ;;
	*) die "WOLFSSL_HOST=$HOST: certbridge cross-builds for aarch64-linux-gnu and arm-linux-gnueabihf" ;;
	esac
	CC=${CC:-$HOST-gcc}
	export CC
	HOST_FLAGS="--host=$HOST"
fi

# Every flag and why (docs/wolfssl.md has the same, for operators).
CONFIGURE_FLAGS="
--enable-static
--disable-shared
--with-pic
--disable-examples
--disable-crypttests
--disable-dependency-tracking
--enable-reproducible-build
--enable-opensslextra
--enable-opensslall
--disable-ocsp
--enable-context-extra-user-data
--disable-sessioncerts
--enable-crl
--enable-ip-alt-name
--enable-tls13
--enable-tlsv12
--enable-oldtls
--enable-sni
--enable-alpn
--enable-session-ticket
--enable-maxfragment
--enable-extended-master
--enable-supportedcurves
--enable-ecc
--enable-curve25519
--enable-ed25519
--enable-ecccustcurves
--enable-brainpool
--enable-rsa
--enable-rsapss
--enable-aesgcm
--enable-aescbc
--enable-chacha
--enable-poly1305
--enable-sp=yes
--enable-sp-math-all
--disable-dh
--disable-postauth
--disable-pkcs12
--disable-sys-ca-certs
--enable-pkcs11
"
# What each one is for (the list above stays machine-readable):
#
# Library shape
#   --enable-static --disable-shared  one libwolfssl.a, linked into the
#       daemon and the tools; nothing to install next to them.
#   --with-pic  position-independent objects: Debian's gcc links PIE by
#       default, and a non-PIC archive would not link into one.
#   --disable-examples --disable-crypttests  build only the library.
#   --enable-reproducible-build  deterministic archive (as Debian's).
#
# The OpenSSL-compatibility API certbridge calls
#   --enable-opensslextra  wolfSSL_X509_* (load_certificate_buffer, d2i, dup,
#       get_der, names, NAME_oneline/get_text_by_NID/cmp, notBefore/After,
#       ASN1_TIME_to_tm, digest, get_pubkey, verify, check_issued,
#       check_host, check_ip_asc, get_isCA, get_ext_d2i + GENERAL_NAME),
#       X509_STORE_CTX_* in verify callbacks, X509_VERIFY_PARAM_set1_ip_asc,
#       wolfSSL_get0_param, X509_CRL (d2i, last/nextUpdate, issuer), EVP
#       (PKEY_id, DigestSign/Verify, sha256, MD_CTX), BIO_new_mem_buf,
#       PEM_read_bio_PrivateKey, d2i_AutoPrivateKey, get_ciphers_compat,
#       CIPHER_get_name, set_min/max_proto_version, ERR_* strings,
#       get_peer_certificate. It also defines WOLFSSL_ALWAYS_VERIFY_CB and
#       WOLFSSL_VERIFY_CB_ALL_CERTS, which trust.c relies on: the verify
#       callback runs for every certificate, including when wolfSSL itself
#       accepted the chain (that is where the device is judged).
#   --enable-opensslall  OPENSSL_ALL: in 5.5.4 two of the calls above exist
#       only under it: wolfSSL_d2i_AutoPrivateKey (x509.c, a DER key file)
#       and wolfSSL_get_ciphers_compat (tlsctx.c, judging the suites a
#       cipher list enabled). It also brings WOLFSSL_ERROR_CODE_OPENSSL and
#       WOLFSSL_CERT_NAME_ALL, as in Debian's build, so return codes and
#       name printing match what certbridge is tested against. Without
#       those two calls (docs/wolfssl.md) --enable-opensslextra would be enough.
#   --disable-ocsp  opensslall turns OCSP on by default; certbridge uses
#       CRLs only.
#   --enable-context-extra-user-data  HAVE_EX_DATA: wolfSSL_get_ex_new_index,
#       wolfSSL_[CTX_]set/get_ex_data, X509_STORE_CTX_get_ex_data (the
#       verdict, the trust and the diag peer hang off the WOLFSSL).
#       opensslextra alone does not define it in 5.5.4.
#   --disable-sessioncerts  no SESSION_CERTS: a WOLFSSL_SESSION (one in
#       every connection) would hold a static copy of the peer's chain, 9 x
#       2 KB. certbridge reads the chains it needs in its verify callbacks
#       from X509_STORE_CTX certs/totalCerts, which wolfSSL fills either way
#       (trust.c for devices, tlsclient.c for the broker), and remembers
#       what a device's TLS 1.3 ticket resumes itself (gateway/tickets.c).
#   --enable-crl  wolfSSL_CertManager{New,LoadCABuffer,EnableCRL,
#       LoadCRLBuffer,CheckCRL,Free}, wolfSSL_d2i_X509_CRL.
#   --enable-ip-alt-name  WOLFSSL_IP_ALT_NAME: IP-address SANs are decoded
#       (GEN_IPADD in x509_san_text, X509_check_ip_asc for an upstream given
#       by address). Debian's build gets this from OPENSSL_ALL.
#
# TLS
#   --enable-tls13 --enable-tlsv12  the default versions (1.2-1.3).
#   --enable-oldtls  KEPT: `tls_versions = 1.1` is documented
#       (docs/configuration.md) and tested (test_downstream). TLS 1.0 stays
#       off, as in Debian's build (no --enable-tlsv10).
#   --enable-sni  wolfSSL_UseSNI towards the broker.
#   --enable-alpn  wolfSSL_UseALPN ([upstream] alpn).
#   --enable-session-ticket  TLS 1.3 tickets for devices (session_tickets),
#       wolfSSL_CTX_no_ticket_TLSv13, wolfSSL_CTX_NoTicketTLSv12.
#   --enable-maxfragment  answers a device's max_fragment_length extension
#       (constrained TLS stacks such as mbedTLS ask for small records); as
#       Debian's build. certbridge does not call it, its devices may.
#   --enable-extended-master --enable-supportedcurves  defaults, explicit.
#
# Algorithms
#   --enable-ecc --enable-curve25519  ECDSA certificates and ECDHE; X25519 is
#       the key share most clients send first (Debian has it too).
#   --enable-ed25519  Ed25519 certificates (x509.c checks Ed25519 gateway
#       keys through a throwaway context; devices may present them).
#   --enable-ecccustcurves --enable-brainpool  device certificates on
#       brainpool curves (common in European industrial PKIs) verify as with
#       Debian's build. Code size only; no per-connection cost.
#   --enable-rsa --enable-rsapss  RSA certificates (brokers often have them;
#       test_config_trust uses RSA-2048); TLS 1.3 signs with RSA-PSS.
#   --enable-aesgcm --enable-aescbc --enable-chacha --enable-poly1305  the
#       suites certbridge's default lists name (CBC only for TLS 1.0/1.1).
#   --disable-dh  no DHE suites: certbridge's lists are ECDHE only, and an
#       INI list naming only DHE suites is refused by -t ("wolfSSL accepts
#       none of ..."). Removes FFDHE from the TLS 1.3 groups offered.
#   --disable-postauth  (also the default) without TLS 1.3 post-handshake
#       auth, wolfSSL frees the Arrays (3.4 KB) and the handshake hashes
#       (1.2 KB) after a TLS 1.3 handshake; Debian's build keeps them for
#       the whole connection.
#   --disable-pkcs12 --disable-sys-ca-certs  not used (PEM/DER files only;
#       [upstream] ca is always a file).
#   --enable-pkcs11  HAVE_PKCS11 and WOLF_CRYPTO_CB: a `key = pkcs11:...`
#       stays in its token (SoftHSM2, a TPM through tpm2-pkcs11); wolfSSL
#       dlopens the module named by [gateway] pkcs11_module and signs through
#       it (docs/configuration.md, "Keys in hardware"). Debian's has it too.
#   Not enabled (Debian's has them): DTLS (5 KB more in every WOLFSSL),
#       FP_ECC (a 12 MB fixed-point cache; SP replaces it), KEEP_PEER_CERT/
#       KEEP_OUR_CERT as separate options (opensslextra keeps what is used),
#       NULL/anon/RC4/DES/Camellia/MD2/MD4/RIPEMD/BLAKE2/SRP/PKCS7/OCSP/
#       ed448/curve448/SipHash/CMAC/AES modes other than GCM and CBC, key and
#       certificate generation, the nginx/haproxy/openvpn/... layers.
#
# Maths and assembly
#   --enable-sp=yes  single-precision code for P-256/384/521 and RSA
#       2048/3072/4096 (replaces the generic maths for these sizes).
#   --enable-sp-math-all  generic sp_int for any other size.
#   x86-64: --enable-sp-asm --enable-aesni --enable-intelasm: assembly for
#       SP, AES-NI/PCLMUL for AES-GCM, AVX1/AVX2 ChaCha20/Poly1305/SHA-2;
#       the library checks CPUID at run time and falls back to C.
#   arm64: --enable-sp-asm --enable-armasm (ARMv8 crypto extensions; not
#       built or tested yet: only amd64 was, on Debian 12).
#   Other architectures: C only.
#
# Not used, on purpose: --enable-smallstack (moves big stack buffers to the
# heap: more malloc per handshake, nothing gained on an 8 MB main stack),
# --enable-staticmemory, LARGE_STATIC_BUFFERS (16 KB of static I/O buffer in
# every WOLFSSL; the default 5-byte static buffers grow only while a record
# is in flight and are shrunk back after).
#
# Defines with no configure flag of their own (they land in options.h too):
#   WOLFSSL_FPKI  without it, 5.5.4 refuses any certificate whose URI SAN is
#       not "scheme://..." (wolfSSL logs "Alt Name must be absolute URI"): a device
#       certificate with URI:urn:dev:1 would not even load, and
#       `identity = san-uri` is documented. Debian's build has it (from
#       --enable-all); its other effect is parsing FASC-N/UUID other names.
#   WOLFSSL_ALT_CERT_CHAINS  a peer's chain is accepted at the first CA
#       certbridge trusts even when the peer sent certificates above it that
#       chain to no trusted root: a broker sending its root cross-signed by
#       an older root (AWS IoT, the old Let's Encrypt chain), a device
#       sending a corporate root above the intermediate a [ca.NAME] file
#       holds. Debian's build has it (through OPENSSL_COMPATIBLE_DEFAULTS);
#       without it both are refused. It cannot be had in a verify callback
#       instead: a callback that forgives an unknown issuer above the anchor
#       makes wolfSSL add that unverified CA to the context as a signer
#       (only with ALT_CERT_CHAINS does wolfSSL not add it as a signer),
#       trusted by every later handshake. (With SESSION_CERTS it would also
#       keep a second 9 x 2 KB chain in every WOLFSSL_SESSION.) Pinned by
#       tests/integration/test_wolfssl_parity.py.
#   Not defined, on purpose (Debian's build has both):
#   OPENSSL_COMPATIBLE_DEFAULTS  certbridge does not depend on it: without
#       it the verify callback's X509_STORE_CTX_get_error() is wolfSSL's own
#       ASN_*_E number rather than an X509_V_ERR one, and common/
#       judge_vcode.c gives both the same meaning. Its other effects, and
#       what certbridge does about them (docs/architecture.md, "wolfSSL
#       facts"): WOLFSSL_CTX_new's defaults (verify none, min SSL 3,
#       SSL_MODE_AUTO_RETRY, grouped handshake messages) - certbridge sets
#       verify and versions on every context and groups messages itself;
#       a v1 client certificate is reported (ASN_VERSION_E) - judged as
#       before, by certbridge's own reading; TLS 1.3 PSK without a
#       certificate allowed - certbridge configures no PSK; and through
#       configure: WOLFSSL_ALT_CERT_CHAINS (above, defined by itself),
#       WOLFSSL_TRUST_PEER_CERT (a CA file's certificates also trusted as
#       exact peer certificates: certbridge refuses non-CA certificates in
#       its CA files, so nothing depends on it), NO_SESSION_CACHE_REF
#       (wolfSSL_get_session semantics; certbridge does not call it) and
#       WOLFSSL_TLS13_NO_PEEK_HANDSHAKE_DONE (wolfSSL_peek; not called).
#   WOLFSSL_CIPHER_INTERNALNAME  without it (or WOLFSSL_QT, Debian's way),
#       wolfSSL_CIPHER_get_name() returns IANA's suite names ("TLS_AES_128_GCM_SHA256") instead of wolfSSL's
#       ("TLS13-AES128-GCM-SHA256"); gateway/tlsctx.c turns either into
#       wolfSSL's before judging a cipher list. Logs are unaffected
#       (wolfSSL_get_cipher_name gives wolfSSL's names in every build).
#   _FORTIFY_SOURCE=2  Debian builds wolfSSL with dpkg-buildflags' hardening
#       CPPFLAGS, and its options.h hands _FORTIFY_SOURCE=2 on to every file
#       that includes it: certbridge's own code is fortified today only
#       through that. Kept so that nothing changes for certbridge's objects.
#   WOLFSSL_GETRANDOM  seeds come from getrandom(2) instead of opening
#       /dev/urandom: Debian's build opens it about 11 times per device
#       session (each TLS connection's random generator, each key), a
#       descriptor each time, which fails first when certbridge runs near
#       its descriptor limit (docs/benchmarks.md). getrandom blocks only
#       until the kernel's pool is first initialised at boot.
DEFINES="-D_FORTIFY_SOURCE=2 -DWOLFSSL_FPKI -DWOLFSSL_ALT_CERT_CHAINS -DWOLFSSL_GETRANDOM"

# certbridge's patches to Debian's source, applied in name order after
# dpkg-source -x; each says why at its top (docs/wolfssl.md, "The patches").
PATCH_DIR=$(cd "$(dirname "$0")" && pwd)/wolfssl-patches
PATCHES_SHA256=$(cat "$PATCH_DIR"/*.patch 2>/dev/null | sha256sum | cut -c1-64)

case "$ARCH" in
amd64 | x86_64)
	ARCH_FLAGS="--enable-sp-asm --enable-aesni --enable-intelasm"
	;;
arm64 | aarch64)
	# The ARMv8 crypto extensions are used without a run-time check in
	# 5.5.4: a core without them (the Raspberry Pi 4's Cortex-A72 in the
	# BCM2711) stops on an illegal instruction; WOLFSSL_ARM_CRYPTO=no
	# builds for it (docs/install.md, "ARM gateways").
	if [ "${WOLFSSL_ARM_CRYPTO:-yes}" = no ]; then
		ARCH_FLAGS="--enable-sp-asm"
	else
		ARCH_FLAGS="--enable-sp-asm --enable-armasm"
	fi
	;;
*)
	ARCH_FLAGS=""
	;;
esac
CFLAGS_W=${WOLFSSL_CFLAGS:--O2 -g -fstack-protector-strong}
EXTRA=${WOLFSSL_EXTRA_CONFIGURE:-}
# One line, single spaces (word splitting is the point here).
# shellcheck disable=SC2086,SC2116
ALL_FLAGS=$(echo $CONFIGURE_FLAGS $ARCH_FLAGS $HOST_FLAGS $EXTRA)
CC_ID=$(${CC:-cc} --version 2>/dev/null | head -n 1)

KEY_TEXT="recipe=$RECIPE
patches=$PATCHES_SHA256
version=$WOLFSSL_DEB_VERSION
dsc_sha256=$WOLFSSL_DSC_SHA256
arch=$ARCH
cc=$CC_ID
cflags=$CFLAGS_W
defines=$DEFINES
configure=$ALL_FLAGS"
HASH=$(printf '%s\n' "$KEY_TEXT" | sha256sum | cut -c1-12)
KEY="$UPSTREAM_VERSION-${WOLFSSL_DEB_VERSION#*-}-$ARCH-$HASH"
# '+' is legal in a path but awkward in -I/-L flags: keep the key plain.
KEY=$(printf '%s' "$KEY" | tr '+~' '__')
PREFIX="$OUT/$KEY"

# A prefix is reused only when its BUILDINFO starts with this exact key
# text (so a hash collision or a half-written prefix is rebuilt). BUILDINFO
# is written last, so the check needs no lock: a cached run never waits for
# another key being built in the same OUTDIR.
key_lines=$(printf '%s\n' "$KEY_TEXT" | wc -l)
cached() {
	[ -f "$PREFIX/lib/libwolfssl.a" ] && [ -f "$PREFIX/BUILDINFO" ] \
	    && [ "$(head -n "$key_lines" "$PREFIX/BUILDINFO")" = "$KEY_TEXT" ]
}
if cached; then
	echo "$PREFIX"
	exit 0
fi

# One build at a time per OUTDIR; whoever waited may find it built.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$OUT/.lock"
	flock 9
fi
if cached; then
	echo "$PREFIX"
	exit 0
fi

# ------------------------------------------------------------------ tools
need=""
command -v dpkg-source >/dev/null 2>&1 || need="$need dpkg-dev"
command -v autoreconf >/dev/null 2>&1 || need="$need autoconf"
command -v automake >/dev/null 2>&1 || need="$need automake"
command -v libtoolize >/dev/null 2>&1 || need="$need libtool"
command -v make >/dev/null 2>&1 || need="$need make"
command -v patch >/dev/null 2>&1 || need="$need patch"
if [ -n "$need" ]; then
	[ "$(id -u)" -eq 0 ] || die "missing:$need (apt-get install$need)"
	say "installing:$need"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $need >/dev/null
fi

# ------------------------------------------------------------------ source
SRC="$OUT/src"
DSC="$SRC/wolfssl_$WOLFSSL_DEB_VERSION.dsc"
mkdir -p "$SRC"

dsc_ok() {
	[ -f "$DSC" ] && [ "$(sha256sum < "$DSC" | cut -d' ' -f1)" = "$WOLFSSL_DSC_SHA256" ]
}

# deb-src entries for the Debian archives among the machine's deb entries
# (tools/debian-sources.sh).
# shellcheck source=tools/debian-sources.sh
. "$(cd "$(dirname "$0")" && pwd)/debian-sources.sh"
derive_sources() {
	apt_dir=$1
	mkdir -p "$apt_dir/sources.parts"
	debian_deb_lines | sed 's/^deb /deb-src /' > "$apt_dir/sources.list"
	[ -s "$apt_dir/sources.list" ] \
	    || die "no Debian deb entries in /etc/apt/sources.list(.d) to derive deb-src from"
}

fetch_source() {
	APT="$OUT/apt"
	mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
	rm -rf "$APT/sources.parts"
	derive_sources "$APT"
	set -- -o Dir::Etc::SourceList="$APT/sources.list" \
	    -o Dir::Etc::SourceParts="$APT/sources.parts" \
	    -o Dir::State::Lists="$APT/lists" \
	    -o Dir::Cache="$APT/cache" \
	    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
	say "fetching Debian's wolfssl $WOLFSSL_DEB_VERSION source (private apt lists in $APT)"
	apt-get "$@" -qq update >&2
	dl="$OUT/.dl.$$"
	rm -rf "$dl"
	mkdir -p "$dl"
	# apt downloads as the unprivileged _apt user when it can write here.
	if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
		chown _apt "$dl"
	fi
	(cd "$dl" && apt-get "$@" -qq source --download-only \
	    "wolfssl=$WOLFSSL_DEB_VERSION" >&2) \
	    || die "apt-get source wolfssl=$WOLFSSL_DEB_VERSION failed: the mirror may have dropped this version; move the pin"
	[ "$(sha256sum < "$dl/wolfssl_$WOLFSSL_DEB_VERSION.dsc" | cut -d' ' -f1)" \
	    = "$WOLFSSL_DSC_SHA256" ] \
	    || die "wolfssl_$WOLFSSL_DEB_VERSION.dsc does not have the pinned SHA-256"
	for f in "$dl"/*; do
		mv -f "$f" "$SRC/"
	done
	rm -rf "$dl"
}

dsc_ok || fetch_source
dsc_ok || die "no verified .dsc in $SRC"
say "source: $DSC (SHA-256 matches the pin)"

# ------------------------------------------------------------------ build
WORK="$OUT/.work-$KEY"
STAGE="$OUT/.stage-$KEY"
rm -rf "$WORK" "$STAGE"
mkdir -p "$WORK"
LOG="$WORK.log"
: > "$LOG"
say "building $KEY (log: $LOG)"
t0=$(date +%s)

# dpkg-source checks the tarballs against the .dsc's checksums (and applies
# Debian's patches, the security fixes among them).
(cd "$WORK" && dpkg-source -x "$DSC" wolfssl) >> "$LOG" 2>&1 \
    || die "dpkg-source -x failed (checksums?): see $LOG"
cd "$WORK/wolfssl"
for p in "$PATCH_DIR"/*.patch; do
	[ -f "$p" ] || continue
	patch -p1 --forward --batch < "$p" >> "$LOG" 2>&1 \
	    || die "$(basename "$p") does not apply to wolfssl $WOLFSSL_DEB_VERSION: see $LOG"
done
./autogen.sh >> "$LOG" 2>&1 || die "autogen.sh failed: see $LOG"
# shellcheck disable=SC2086
CFLAGS="$CFLAGS_W" CPPFLAGS="$DEFINES" ./configure --prefix="$PREFIX" $ALL_FLAGS >> "$LOG" 2>&1 \
    || die "configure failed: see $LOG"
JOBS=${WOLFSSL_JOBS:-$(nproc 2>/dev/null || echo 2)}
make -j"$JOBS" >> "$LOG" 2>&1 || die "make failed: see $LOG"
make install DESTDIR="$STAGE" >> "$LOG" 2>&1 || die "make install failed: see $LOG"
t1=$(date +%s)

# Into place: the staged tree was installed for $PREFIX.
rm -rf "$PREFIX"
mv "$STAGE$PREFIX" "$PREFIX"
rm -rf "$STAGE"
rm -f "$PREFIX"/lib/*.la
{
	printf '%s\n' "$KEY_TEXT"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$((t1 - t0)) jobs=$JOBS"
	echo "--- configure summary"
	sed -n '/^   \* /p' "$LOG" | grep -v ': *no$' || true
} > "$PREFIX/BUILDINFO"
cd "$OUT"
rm -rf "$WORK"
mv "$LOG" "$PREFIX/build.log"
say "built in $((t1 - t0)) s: $PREFIX"
echo "$PREFIX"

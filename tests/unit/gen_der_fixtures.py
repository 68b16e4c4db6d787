#!/usr/bin/python3
"""gen_der_fixtures.py OUTDIR - real certificates and CRLs for the DER
readers' unit tests (test_certfacts, test_crl), made with tools/mkpki.py.

Keys are fresh on every run; everything a test compares (names, serials,
dates, extensions) is fixed here, and the tests hold the same values.
Hand-written DER covers the malformed cases; these files cover what real
encoders (python3-cryptography, i.e. OpenSSL) write.
"""

import datetime
import ipaddress
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tools"))

import mkpki  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

UTC = datetime.timezone.utc
# UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5): the
# leaves' validity crosses the pivot so both forms are read.
NOT_BEFORE = datetime.datetime(2024, 2, 29, 12, 34, 56, tzinfo=UTC)
NOT_AFTER = datetime.datetime(2050, 1, 1, 0, 0, 0, tzinfo=UTC)
CRL_THIS = datetime.datetime(2025, 3, 1, 0, 0, 0, tzinfo=UTC)
CRL_NEXT = datetime.datetime(2025, 3, 31, 0, 0, 0, tzinfo=UTC)
# Serials the tests look for; the second needs a leading 00 in DER.
SERIAL_LEAF = 0x1001
SERIAL_REVOKED_LOW = 0x1234
SERIAL_REVOKED_HIGH = 0x80AABBCCDDEEFF01


def der(obj):
    return obj.public_bytes(serialization.Encoding.DER)


def write(outdir, name, data):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)


def cn(value):
    # _validate=False lets a test write what a hostile CA could: a NUL, or
    # more than the 64 characters X.520 allows.
    return x509.NameAttribute(NameOID.COMMON_NAME, value, _validate=False)


def org(value="certbridge lab"):
    return x509.NameAttribute(NameOID.ORGANIZATION_NAME, value)


def cert(issuer, subject, serial=None, bc=None, ku=None, sans=None):
    """A certificate with exactly the extensions asked for. bc: (ca,
    path_length) or None; ku: set of KeyUsage argument names or None."""
    key = mkpki.new_key()
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer.cert.subject)
         .public_key(key.public_key())
         .serial_number(serial or mkpki._serial())
         .not_valid_before(NOT_BEFORE)
         .not_valid_after(NOT_AFTER))
    if bc is not None:
        b = b.add_extension(x509.BasicConstraints(ca=bc[0], path_length=bc[1]),
                            critical=True)
    if ku is not None:
        names = ("digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement", "key_cert_sign",
                 "crl_sign", "encipher_only", "decipher_only")
        b = b.add_extension(x509.KeyUsage(**{n: n in ku for n in names}),
                            critical=True)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return mkpki.Issued(b.sign(issuer.key, hashes.SHA256()), key)


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + content


def crl_without_next_update(issuer):
    """cryptography insists on a nextUpdate, so this TBSCertList (v2, no
    entries, no extensions) is written by hand and signed with the
    issuer's key: a real, verifiable CRL of the optional form."""
    alg = tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d040302")))  # ecdsa-sha256
    tbs = tlv(0x30, tlv(0x02, b"\x01") + alg + der(issuer.cert.subject)
              + tlv(0x17, CRL_THIS.strftime("%y%m%d%H%M%SZ").encode()))
    sig = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return tlv(0x30, tbs + alg + tlv(0x03, b"\x00" + sig))


def crl(issuer, serials, idp=False, this=CRL_THIS, next_=CRL_NEXT):
    b = (x509.CertificateRevocationListBuilder()
         .issuer_name(issuer.cert.subject)
         .last_update(this)
         .next_update(next_)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer.key.public_key()), critical=False)
         .add_extension(x509.CRLNumber(7), critical=False))
    if idp:
        b = b.add_extension(x509.IssuingDistributionPoint(
            full_name=[x509.UniformResourceIdentifier("http://crl.example/a.crl")],
            relative_name=None, only_contains_user_certs=True,
            only_contains_ca_certs=False, only_some_reasons=None,
            indirect_crl=False, only_contains_attribute_certs=False),
            critical=True)
    for s in serials:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(s)
            .revocation_date(CRL_THIS).build())
    return b.sign(issuer.key, hashes.SHA256())


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_der_fixtures.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    ca = mkpki.make_ca("DER Test CA")
    any_ku = {"digital_signature"}

    write(out, "ca.der", der(ca.cert))
    write(out, "leaf.der", der(cert(
        ca, x509.Name([org(), cn("dev-1")]), serial=SERIAL_LEAF,
        bc=(False, None), ku=any_ku,
        sans=[x509.DNSName("dev-1.example"), x509.IPAddress(
            ipaddress.ip_address("192.0.2.1")),
            x509.UniformResourceIdentifier("urn:dev:1")]).cert))
    write(out, "nul-cn.der", der(cert(
        ca, x509.Name([org(), cn("dev-old-1\x00.attacker")]),
        bc=(False, None), ku=any_ku).cert))
    write(out, "two-cn.der", der(cert(
        ca, x509.Name([cn("dev-1"), org(), cn("dev-2")]),
        bc=(False, None), ku=any_ku).cert))
    # A multi-valued RDN: { O, CN } in one SET.
    write(out, "multi-rdn.der", der(cert(
        ca, x509.Name([x509.RelativeDistinguishedName([org(), cn("dev-3")])]),
        bc=(False, None), ku=any_ku).cert))
    write(out, "long-cn.der", der(cert(
        ca, x509.Name([cn("x" * 300)]), bc=(False, None), ku=any_ku).cert))
    write(out, "leaf-ca-true.der", der(cert(
        ca, x509.Name([cn("dev-ca")]), bc=(True, None), ku=any_ku).cert))
    write(out, "no-ku.der", der(cert(
        ca, x509.Name([cn("dev-noku")]), bc=(False, None)).cert))
    write(out, "pathlen.der", der(mkpki.make_ca(
        "DER Test Int", issuer=ca, path_length=3).cert))
    write(out, "ku-decipher.der", der(cert(
        ca, x509.Name([cn("dev-ka")]), ku={"key_agreement", "decipher_only"}
    ).cert))
    write(out, "no-ext.der", der(cert(ca, x509.Name([cn("dev-bare")])).cert))

    two = crl(ca, [SERIAL_REVOKED_LOW, SERIAL_REVOKED_HIGH])
    write(out, "crl-two.der", der(two))
    write(out, "crl-two.pem", two.public_bytes(serialization.Encoding.PEM))
    write(out, "crl-idp.der", der(crl(ca, [SERIAL_REVOKED_LOW], idp=True)))
    write(out, "crl-empty.der", crl_without_next_update(ca))
    # wolfSSL 5.5.4 refuses to load a CRL whose nextUpdate has passed (or
    # that has none), so the one it must load is current (for ten years).
    write(out, "crl-current.pem", crl(
        ca, [SERIAL_REVOKED_LOW], this=mkpki.now() - datetime.timedelta(hours=1),
        next_=mkpki.now() + datetime.timedelta(days=3650)).public_bytes(
            serialization.Encoding.PEM))


if __name__ == "__main__":
    main()

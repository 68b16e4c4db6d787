#!/usr/bin/python3
"""mkpki.py - the certbridge test PKI generator (python3-cryptography).

Used by the integration tests, `make run` (tools/lab.sh) and the docker lab.
Every key is EC P-256 (fast to generate, and what small devices use).

As a module (tests do `sys.path.insert(0, "<repo>/tools"); import mkpki`):

    root = mkpki.make_ca("Example Root")                       # self-signed
    inter = mkpki.make_ca("Example Int", issuer=root)           # intermediate
    leaf = mkpki.make_leaf("dev-1", issuer=inter, usage="client",
                           not_before=mkpki.rel("+2h"))         # not yet valid
    mkpki.write_pair("/tmp/pki", "dev-1", leaf, chain=[inter])  # .pem .key -chain.pem
    crl = mkpki.make_crl(inter, revoked=[leaf])
    mkpki.write_crl("/tmp/pki/int.crl", crl)

    An "issued" object (Issued) holds .cert and .key; make_* take one as issuer.

As a command (dates: ISO 8601 UTC `2027-06-30[T12:00:00Z]`, or relative to
now: `-2d`, `+2h`, `+30m`, `+10s`, `now`):

    mkpki.py lab OUTDIR [--force] [--broker-name NAME]...
    mkpki.py ca   --out DIR --name NAME --cn CN [--issuer DIR/NAME] [--not-before D] [--not-after D]
    mkpki.py leaf --out DIR --name NAME --cn CN --issuer DIR/NAME [--usage server|client|both]
                  [--dns N]... [--ip A]... [--uri U]... [--not-before D] [--not-after D] [--chain]
    mkpki.py crl  --out FILE --issuer DIR/NAME [--revoke CERT.pem]... [--der]

`--issuer DIR/NAME` names the pair DIR/NAME.pem + DIR/NAME.key. Certificates
are written 0644, private keys 0600.

`mkpki.py lab OUTDIR` writes the standard lab layout (see LAB_LAYOUT / lab());
it is idempotent: when OUTDIR/.complete exists and every certificate that is
meant to be valid stays valid for more than 7 days, nothing is rewritten
(only dev-future is re-issued once its notBefore has passed, so it stays a
not-yet-valid certificate). `--broker-name NAME` (repeatable) adds DNS:NAME to
the SANs of the broker and gateway leaves, which otherwise carry only
localhost and 127.0.0.1: the docker lab (docker/compose.yaml) reaches them by
service name (`broker`, `certbridge`). A lab whose leaves lack a requested name
is regenerated.
"""

import argparse
import datetime
import ipaddress
import os
import re
import secrets
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc

# Default lifetimes.
CA_DAYS = 3650
LEAF_DAYS = 397
# Backdating of notBefore, so a freshly issued certificate is valid at once
# even for a peer whose clock is a little behind.
BACKDATE = datetime.timedelta(minutes=5)


class Issued:
    """A certificate and its private key."""

    def __init__(self, cert, key):
        self.cert = cert
        self.key = key

    @property
    def cn(self):
        attrs = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return attrs[0].value if attrs else ""

    def __repr__(self):
        return "Issued(%r, %s..%s)" % (self.cn, not_before(self.cert),
                                       not_after(self.cert))


# ---------------------------------------------------------------- dates


def now():
    return datetime.datetime.now(UTC).replace(microsecond=0)


_REL = re.compile(r"^([+-])(\d+)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rel(spec):
    """A datetime relative to now: rel("-2d"), rel("+2h"), rel("now")."""
    return parse_date(spec)


def parse_date(spec):
    """ISO 8601 UTC ('2027-06-30', '2027-06-30T12:00:00Z'), 'now', or a
    relative offset like '-2d', '+2h', '+30m', '+10s'."""
    if isinstance(spec, datetime.datetime):
        return spec if spec.tzinfo else spec.replace(tzinfo=UTC)
    s = spec.strip()
    if s == "now":
        return now()
    m = _REL.match(s)
    if m:
        secs = int(m.group(2)) * _UNITS[m.group(3)]
        return now() + datetime.timedelta(seconds=secs if m.group(1) == "+" else -secs)
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.astimezone(UTC)


def not_before(cert):
    return cert.not_valid_before.replace(tzinfo=UTC)


def not_after(cert):
    return cert.not_valid_after.replace(tzinfo=UTC)


# ---------------------------------------------------------------- building


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn, org="certbridge lab"):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _serial():
    # Positive, at most 20 octets, never zero.
    return secrets.randbits(150) | 1


def _validity(nb, na, days):
    nb = parse_date(nb) if nb is not None else now() - BACKDATE
    if na is None:
        na = nb + datetime.timedelta(days=days)
    else:
        na = parse_date(na)
    if na <= nb:
        raise ValueError("notAfter %s is not after notBefore %s" % (na, nb))
    return nb, na


def _builder(subject, issuer_name, pub, nb, na):
    """A certificate builder with the fields every certificate has."""
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(pub)
            .serial_number(_serial())
            .not_valid_before(nb)
            .not_valid_after(na))


def make_ca(cn, issuer=None, not_before=None, not_after=None, days=CA_DAYS,
            path_length=None, key=None, org="certbridge lab"):
    """A CA certificate: self-signed root when issuer is None, else an
    intermediate signed by issuer (an Issued). Returns an Issued."""
    key = key or new_key()
    nb, na = _validity(not_before, not_after, days)
    subject = _name(cn, org)
    pub = key.public_key()
    b = (_builder(subject, issuer.cert.subject if issuer else subject, pub, nb, na)
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=True, content_commitment=False, key_encipherment=False,
             data_encipherment=False, key_agreement=False, key_cert_sign=True,
             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    if issuer is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False)
    signer = issuer.key if issuer else key
    return Issued(b.sign(signer, hashes.SHA256()), key)


def make_leaf(cn, issuer, usage="server", dns=(), ips=(), uris=(),
              not_before=None, not_after=None, days=LEAF_DAYS, key=None,
              org="certbridge lab"):
    """An end-entity certificate signed by issuer (an Issued).

    usage: "server" (EKU serverAuth), "client" (clientAuth) or "both".
    dns / ips / uris: subjectAltName entries (strings). not_before /
    not_after: datetime, ISO string or relative ("-2d", "+2h"); any dates are
    allowed, in the past or the future. Returns an Issued."""
    if issuer is None:
        raise ValueError("a leaf needs an issuer")
    key = key or new_key()
    nb, na = _validity(not_before, not_after, days)
    pub = key.public_key()
    ekus = {"server": [ExtendedKeyUsageOID.SERVER_AUTH],
            "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
            "both": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]}
    if usage not in ekus:
        raise ValueError("usage must be server, client or both, not %r" % usage)
    b = (_builder(_name(cn, org), issuer.cert.subject, pub, nb, na)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=True, content_commitment=False, key_encipherment=False,
             data_encipherment=False, key_agreement=False, key_cert_sign=False,
             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(ekus[usage]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
         .add_extension(
             x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
             critical=False))
    sans = ([x509.DNSName(d) for d in dns]
            + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            + [x509.UniformResourceIdentifier(u) for u in uris])
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(b.sign(issuer.key, hashes.SHA256()), key)


def cn_name(*cns, bmp=False):
    """A subject of the given CNs, in order, with no other attribute and no
    checks: NUL or control bytes, 300 characters, two CNs, a BMPString
    (bmp=True) are all allowed (tests of how certbridge reads names)."""
    from cryptography.x509.name import _ASN1Type
    kind = _ASN1Type.BMPString if bmp else _ASN1Type.UTF8String
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, c, _validate=False, _type=kind)
                      for c in cns])


_ODD_KEY_USAGE = {
    "device": {"digital_signature"},
    "encipher": {"key_encipherment"},
    "certsign": {"digital_signature", "key_cert_sign"},
    "certsign-only": {"key_cert_sign"},
    "crlsign-only": {"crl_sign"},
    "none": None,
}


def make_odd_leaf(issuer, subject, sans=(), ca=False, key_usage="device", not_before=None,
                  not_after=None, days=30, key=None, signer=None):
    """A client certificate with a subject (an x509.Name, see cn_name) and
    extensions a test chooses, including what no sane CA issues: CA:TRUE on
    a device, key_usage "device" (digitalSignature), "encipher"
    (keyEncipherment only), "certsign" (digitalSignature + keyCertSign),
    "certsign-only" and "crlsign-only" (a CA's bits alone) or "none" (no
    keyUsage), any SANs (x509.GeneralName objects), and signer:
    another Issued whose key signs it while the issuer name stays issuer's
    (a forgery). Always carries SKI and AKI. Returns an Issued."""
    key = key or new_key()
    nb, na = _validity(not_before, not_after, days)
    pub = key.public_key()
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer.cert.subject).public_key(pub)
         .serial_number(_serial()).not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                        critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer.key.public_key()), critical=False))
    bits = _ODD_KEY_USAGE[key_usage]
    if bits is not None:
        flags = {f: f in bits for f in (
            "digital_signature", "content_commitment", "key_encipherment",
            "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
            "encipher_only", "decipher_only")}
        b = b.add_extension(x509.KeyUsage(**flags), critical=True)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return Issued(b.sign((signer or issuer).key, hashes.SHA256()), key)


def make_crl(issuer, revoked=(), last_update=None, next_update=None):
    """A CRL signed by issuer (an Issued) revoking the given certificates
    (x509.Certificate or Issued; serial numbers as int also accepted)."""
    lu = parse_date(last_update) if last_update is not None else now() - BACKDATE
    nu = parse_date(next_update) if next_update is not None else lu + datetime.timedelta(days=30)
    b = (x509.CertificateRevocationListBuilder()
         .issuer_name(issuer.cert.subject)
         .last_update(lu)
         .next_update(nu)
         .add_extension(
             x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
             critical=False)
         .add_extension(x509.CRLNumber(secrets.randbits(31)), critical=False))
    for r in revoked:
        if isinstance(r, Issued):
            r = r.cert
        serial = r if isinstance(r, int) else r.serial_number
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(lu).build())
    return b.sign(issuer.key, hashes.SHA256())


# ---------------------------------------------------------------- files


def _atomic_write(path, data, mode):
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".mkpki-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.chmod(path, mode)  # regardless of umask


def cert_pem(*certs):
    out = b""
    for c in certs:
        if isinstance(c, Issued):
            c = c.cert
        out += c.public_bytes(serialization.Encoding.PEM)
    return out


def key_pem(key):
    if isinstance(key, Issued):
        key = key.key
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_cert(path, *certs):
    """Writes one or more certificates (in order) as PEM, mode 0644."""
    _atomic_write(path, cert_pem(*certs), 0o644)


def write_key(path, key):
    """Writes a private key as unencrypted PKCS#8 PEM, mode 0600."""
    _atomic_write(path, key_pem(key), 0o600)


def write_crl(path, crl, der=False):
    enc = serialization.Encoding.DER if der else serialization.Encoding.PEM
    _atomic_write(path, crl.public_bytes(enc), 0o644)


def write_pair(outdir, name, issued, chain=None):
    """Writes OUTDIR/NAME.pem and OUTDIR/NAME.key; with chain (a list of
    intermediates, nearest first) also OUTDIR/NAME-chain.pem = leaf + chain.
    Returns the path of NAME.pem."""
    outdir = os.fspath(outdir)
    write_key(os.path.join(outdir, name + ".key"), issued.key)
    write_cert(os.path.join(outdir, name + ".pem"), issued.cert)
    if chain is not None:
        write_cert(os.path.join(outdir, name + "-chain.pem"), issued.cert, *chain)
    return os.path.join(outdir, name + ".pem")


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def load_certs(path):
    """All certificates of a PEM file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for m in re.finditer(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                         data, re.S):
        out.append(x509.load_pem_x509_certificate(m.group(0)))
    return out


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def load_pair(prefix):
    """Loads PREFIX.pem + PREFIX.key as an Issued (PREFIX may end in .pem)."""
    prefix = os.fspath(prefix)
    if prefix.endswith(".pem"):
        prefix = prefix[:-4]
    return Issued(load_cert(prefix + ".pem"), load_key(prefix + ".key"))


# ---------------------------------------------------------------- the lab

LAB_NAMES = {
    "ca-old": "certbridge lab Device CA 2019",
    "ca-new": "certbridge lab Device CA 2026",
    "ca-new-int": "certbridge lab Device Issuing CA 2026",
    "cloud-root": "certbridge lab Cloud Root CA",
    "cloud-int": "certbridge lab Cloud Intermediate CA 2026",
    "cloud-client-ca": "certbridge lab Cloud Client CA",
    "rogue-ca": "certbridge lab Rogue CA",
}

# Files of the standard layout, for checks and for users.
LAB_LAYOUT = [
    "ca-old.pem", "ca-old.key",
    "ca-new.pem", "ca-new.key", "ca-new-int.pem", "ca-new-int.key",
    "cloud-root.pem", "cloud-root.key", "cloud-int.pem", "cloud-int.key",
    "broker.pem", "broker.key", "broker-chain.pem",
    "cloud-client-ca.pem", "cloud-client-ca.key",
    "gateway-upstream.pem", "gateway-upstream.key",
    "gateway.pem", "gateway.key", "gateway-chain.pem",
    "dev-old-1.pem", "dev-old-1.key",
    "dev-new-1.pem", "dev-new-1.key", "dev-new-1-chain.pem",
    "rogue-ca.pem", "rogue-ca.key", "dev-unknown.pem", "dev-unknown.key",
    "dev-expired.pem", "dev-expired.key",
    "dev-future.pem", "dev-future.key",
]

# Certificates deliberately not valid now, left out of the freshness check.
_LAB_INVALID_BY_DESIGN = {"dev-expired.pem", "dev-future.pem"}
_FRESH_MARGIN = datetime.timedelta(days=7)
# dev-future is re-issued when its notBefore is less than this far ahead
# (the lab's clock_skew default is 5m; keep a margin above it).
_FUTURE_MIN_AHEAD = datetime.timedelta(minutes=30)


def _issue_dev_future(outdir, ca_old):
    dev = make_leaf("dev-future", ca_old, usage="client",
                    not_before=now() + datetime.timedelta(hours=2),
                    not_after=now() + datetime.timedelta(days=LEAF_DAYS))
    write_pair(outdir, "dev-future", dev)


# The leaves that --broker-name names go into.
_LAB_NAMED_LEAVES = ("broker.pem", "gateway.pem")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _lab_names(broker_names):
    """The extra DNS names, checked, without duplicates, in order."""
    out = []
    for n in broker_names or ():
        if not _DNS_NAME.match(n):
            raise ValueError("--broker-name %r is not a DNS host name" % n)
        if n != "localhost" and n not in out:
            out.append(n)
    return out


def _dns_sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return ext.value.get_values_for_type(x509.DNSName)


def lab_is_fresh(outdir, broker_names=()):
    """True when OUTDIR holds a complete lab whose certificates (except the
    deliberately invalid ones) stay valid for more than 7 days, and whose
    broker and gateway leaves carry every name of broker_names."""
    if not os.path.exists(os.path.join(outdir, ".complete")):
        return False
    limit = now() + _FRESH_MARGIN
    try:
        for f in LAB_LAYOUT:
            p = os.path.join(outdir, f)
            if not os.path.isfile(p):
                return False
            if f.endswith(".pem") and f not in _LAB_INVALID_BY_DESIGN:
                for c in load_certs(p):
                    if not_after(c) <= limit or not_before(c) > now():
                        return False
        names = _lab_names(broker_names)
        if names:
            for f in _LAB_NAMED_LEAVES:
                have = _dns_sans(load_cert(os.path.join(outdir, f)))
                if any(n not in have for n in names):
                    return False
    except (OSError, ValueError):
        return False
    return True


def lab(outdir, force=False, quiet=True, broker_names=()):
    """Writes the standard lab layout into outdir (created if needed).
    Returns outdir. Does nothing when the lab there is complete and fresh
    (see lab_is_fresh), unless force. broker_names: extra DNS SANs for the
    broker and gateway leaves (besides localhost and 127.0.0.1)."""
    outdir = os.path.abspath(os.fspath(outdir))
    names = _lab_names(broker_names)
    os.makedirs(outdir, exist_ok=True)
    marker = os.path.join(outdir, ".complete")
    if not force and lab_is_fresh(outdir, names):
        # Keep dev-future in the future (it is meant to be not-yet-valid).
        try:
            fut = load_cert(os.path.join(outdir, "dev-future.pem"))
            if not_before(fut) - now() < _FUTURE_MIN_AHEAD:
                _issue_dev_future(outdir, load_pair(os.path.join(outdir, "ca-old")))
                if not quiet:
                    print("mkpki: re-issued %s/dev-future.pem (notBefore +2h)" % outdir)
            if not quiet:
                print("mkpki: %s is complete and valid; nothing to do" % outdir)
            return outdir
        except (OSError, ValueError):
            pass  # regenerate everything below
    if os.path.exists(marker):
        os.unlink(marker)

    ip = "127.0.0.1"
    # Device CAs: the 2019 root every legacy device trusts, and the 2026 root
    # with an issuing intermediate for the new fleet.
    ca_old = make_ca(LAB_NAMES["ca-old"])
    ca_new = make_ca(LAB_NAMES["ca-new"])
    ca_new_int = make_ca(LAB_NAMES["ca-new-int"], issuer=ca_new, path_length=0)
    # The cloud: root, intermediate, broker leaf; and the CA the broker
    # trusts for client certificates, with the gateway's upstream identity.
    cloud_root = make_ca(LAB_NAMES["cloud-root"])
    cloud_int = make_ca(LAB_NAMES["cloud-int"], issuer=cloud_root, path_length=0)
    broker = make_leaf("localhost", cloud_int, usage="server", dns=["localhost"] + names,
                       ips=[ip])
    cloud_client_ca = make_ca(LAB_NAMES["cloud-client-ca"])
    gw_up = make_leaf("certbridge-gateway", cloud_client_ca, usage="client")
    # The gateway's device-facing certificate, under the old device CA so
    # devices that trust only ca-old.pem accept it.
    gw = make_leaf("localhost", ca_old, usage="server", dns=["localhost"] + names, ips=[ip])
    # Devices.
    dev_old = make_leaf("dev-old-1", ca_old, usage="client")
    dev_new = make_leaf("dev-new-1", ca_new_int, usage="client")
    rogue = make_ca(LAB_NAMES["rogue-ca"])
    dev_unknown = make_leaf("dev-unknown", rogue, usage="client")
    dev_expired = make_leaf("dev-expired", ca_old, usage="client",
                            not_before=now() - datetime.timedelta(days=367),
                            not_after=now() - datetime.timedelta(days=2))

    write_pair(outdir, "ca-old", ca_old)
    write_pair(outdir, "ca-new", ca_new)
    write_pair(outdir, "ca-new-int", ca_new_int)
    write_pair(outdir, "cloud-root", cloud_root)
    write_pair(outdir, "cloud-int", cloud_int)
    write_pair(outdir, "broker", broker, chain=[cloud_int])
    write_pair(outdir, "cloud-client-ca", cloud_client_ca)
    write_pair(outdir, "gateway-upstream", gw_up)
    write_pair(outdir, "gateway", gw, chain=[])  # gateway-chain.pem: the leaf (ca-old is the root)
    write_pair(outdir, "dev-old-1", dev_old)
    write_pair(outdir, "dev-new-1", dev_new, chain=[ca_new_int])
    write_pair(outdir, "rogue-ca", rogue)
    write_pair(outdir, "dev-unknown", dev_unknown)
    write_pair(outdir, "dev-expired", dev_expired)
    _issue_dev_future(outdir, ca_old)

    with open(marker, "w") as f:
        f.write("certbridge lab PKI, generated %s by tools/mkpki.py\n" % now().isoformat())
    os.chmod(marker, 0o644)
    if not quiet:
        print("mkpki: wrote the lab PKI to %s" % outdir)
    return outdir


# ---------------------------------------------------------------- CLI


def _cmd_lab(a):
    lab(a.outdir, force=a.force, quiet=False, broker_names=a.broker_name)


def _cmd_ca(a):
    issuer = load_pair(a.issuer) if a.issuer else None
    ca = make_ca(a.cn, issuer=issuer, not_before=a.not_before, not_after=a.not_after,
                 path_length=a.path_length)
    print(write_pair(a.out, a.name, ca, chain=[issuer.cert] if issuer and a.chain else None))


def _cmd_leaf(a):
    issuer = load_pair(a.issuer)
    leaf = make_leaf(a.cn, issuer, usage=a.usage, dns=a.dns, ips=a.ip, uris=a.uri,
                     not_before=a.not_before, not_after=a.not_after)
    chain = None
    if a.chain:
        # The issuer and, when it is an intermediate, what its own chain
        # file holds after it (ISSUER-chain.pem), never the root.
        chain = [issuer.cert]
        ip = a.issuer[:-4] if a.issuer.endswith(".pem") else a.issuer
        if os.path.exists(ip + "-chain.pem"):
            chain = load_certs(ip + "-chain.pem")
        chain = [c for c in chain if c.subject != c.issuer]
    print(write_pair(a.out, a.name, leaf, chain=chain))


def _cmd_crl(a):
    issuer = load_pair(a.issuer)
    revoked = []
    for p in a.revoke:
        revoked.extend(load_certs(p)[:1])
    write_crl(a.out, make_crl(issuer, revoked, next_update=a.next_update), der=a.der)
    print(a.out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="mkpki.py", description="certbridge test PKI generator")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("lab", help="write the standard lab layout into OUTDIR")
    s.add_argument("outdir")
    s.add_argument("--force", action="store_true", help="regenerate even if complete")
    s.add_argument("--broker-name", action="append", default=[], metavar="NAME",
                   help="also put DNS:NAME in the broker and gateway leaves (repeatable)")
    s.set_defaults(func=_cmd_lab)

    def dates(s):
        s.add_argument("--not-before", help="ISO 8601 UTC or relative (-2d, +2h); default now-5m")
        s.add_argument("--not-after", help="ISO 8601 UTC or relative; default from notBefore")

    s = sub.add_parser("ca", help="a root CA, or an intermediate with --issuer")
    s.add_argument("--out", required=True)
    s.add_argument("--name", required=True, help="file name prefix")
    s.add_argument("--cn", required=True)
    s.add_argument("--issuer", help="DIR/NAME of the signing CA (NAME.pem + NAME.key)")
    s.add_argument("--path-length", type=int)
    s.add_argument("--chain", action="store_true", help="also write NAME-chain.pem")
    dates(s)
    s.set_defaults(func=_cmd_ca)

    s = sub.add_parser("leaf", help="an end-entity certificate")
    s.add_argument("--out", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--cn", required=True)
    s.add_argument("--issuer", required=True)
    s.add_argument("--usage", choices=["server", "client", "both"], default="client")
    s.add_argument("--dns", action="append", default=[])
    s.add_argument("--ip", action="append", default=[])
    s.add_argument("--uri", action="append", default=[])
    s.add_argument("--chain", action="store_true",
                   help="also write NAME-chain.pem (leaf + intermediates, no root)")
    dates(s)
    s.set_defaults(func=_cmd_leaf)

    s = sub.add_parser("crl", help="a CRL revoking the given certificates")
    s.add_argument("--out", required=True)
    s.add_argument("--issuer", required=True)
    s.add_argument("--revoke", action="append", default=[], help="a certificate PEM file")
    s.add_argument("--next-update")
    s.add_argument("--der", action="store_true")
    s.set_defaults(func=_cmd_crl)

    # "--not-before -2d": argparse would take -2d for an option.
    argv = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(argv) - 1):
        if argv[i] in ("--not-before", "--not-after", "--next-update") \
                and argv[i + 1].startswith("-"):
            argv[i:i + 2] = [argv[i] + "=" + argv[i + 1], ""]
    a = p.parse_args([x for x in argv if x != ""])
    try:
        a.func(a)
    except (OSError, ValueError) as e:
        print("mkpki: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

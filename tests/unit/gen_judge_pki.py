#!/usr/bin/python3
"""gen_judge_pki.py OUTDIR - the certificates tests/unit/test_judge.c judges.

Made with tools/mkpki.py (python3-cryptography), fresh at every build, with
dates relative to now. The time they were made is written to "now" (epoch
seconds), and test_judge.c judges at that time (plus offsets), so a
certificate that expired 1 h ago here is 1 h past its end there however
long the unit tests before it took (a minute under a sanitizer). Every file
is PEM; names are what test_judge.c loads.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import mkpki  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def name(*cns, bmp=False):
    return mkpki.cn_name(*cns, bmp=bmp)


def leaf(issuer, subject, sans=(), ca=False, key_usage="device", nb=None, na=None,
         key=None, signer=None):
    return mkpki.make_odd_leaf(issuer, subject, sans=sans, ca=ca, key_usage=key_usage,
                               not_before=nb, not_after=na, key=key, signer=signer)


def main(out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "now"), "w") as f:
        f.write("%d\n" % int(mkpki.now().timestamp()))

    def put(fname, *certs):
        mkpki.write_cert(os.path.join(out, fname + ".pem"), *certs)

    ca_a = mkpki.make_ca("Judge CA A")
    ca_a_pl0 = mkpki.make_ca("Judge CA A", key=ca_a.key, path_length=0)
    ca_b = mkpki.make_ca("Judge CA B")
    ca_b_int = mkpki.make_ca("Judge CA B Issuing", issuer=ca_b, path_length=0)
    ca_b_int_old = mkpki.make_ca("Judge CA B Old Issuing", issuer=ca_b,
                                 not_before="-400d", not_after="-1d")
    rogue = mkpki.make_ca("Judge Rogue")
    for f, c in [("ca-a", ca_a), ("ca-a-pl0", ca_a_pl0), ("ca-b", ca_b),
                 ("ca-b-int", ca_b_int), ("rogue", rogue)]:
        put(f, c.cert)
    put("ca-b-bundle", ca_b.cert, ca_b_int.cert)

    def dev(fname, issuer, chain=(), **kw):
        i = leaf(issuer, name(kw.pop("cn", fname)), **kw)
        put(fname, i.cert, *chain)
        return i

    revoked = [
        dev("revoked", ca_a),
        dev("revoked-expired", ca_a, nb="-10d", na="-1h"),
        dev("revoked-future", ca_a, nb="+2m", na="+30d"),
    ]
    dev("ok", ca_a)
    dev("expired-1h", ca_a, nb="-10d", na="-1h")
    dev("expired-3d", ca_a, nb="-10d", na="-3d")
    dev("future-2m", ca_a, nb="+2m", na="+30d")
    dev("future-2h", ca_a, nb="+2h", na="+30d")
    dev("ca-true", ca_a, ca=True)
    dev("certsign", ca_a, key_usage="certsign")
    dev("encipher", ca_a, key_usage="encipher")
    dev("no-ku", ca_a, key_usage="none")
    evil = leaf(ca_a, name("evil"), ca=True)
    dev("minted-ku", evil, chain=[evil.cert], cn="dev-a")
    evil_signer = leaf(ca_a, name("evil-signer"), ca=True, key_usage="certsign")
    dev("minted-pl", evil_signer, chain=[evil_signer.cert], cn="dev-a")
    notca = leaf(ca_a, name("not-a-ca"))
    dev("minted-notca", notca, chain=[notca.cert], cn="dev-a")
    # Names ca_a as its issuer but is signed by rogue's key.
    put("forged", leaf(ca_a, name("forged"), signer=rogue).cert)
    dev("unknown", rogue)
    dev("b-ok", ca_b_int, chain=[ca_b_int.cert])
    dev("b-leaf-only", ca_b_int)
    dev("b-old-int", ca_b_int_old, chain=[ca_b_int_old.cert])
    # Leaf + the root itself sent along.
    dev("b-with-root", ca_b_int, chain=[ca_b_int.cert, ca_b.cert])

    # Identities.
    for fname, subj in [
        ("id-nul", name("dev-a\x00.evil")),
        ("id-two", name("dev-a", "dev-b")),
        ("id-long", name("x" * 300)),
        ("id-255", name("y" * 255)),
        ("id-ctl", name("dev\x1b[0m")),
        ("id-del", name("dev\x7f")),
        ("id-c1", name("dev\u0085x")),
        ("id-utf8", name("ger\u00e4t-1")),
        ("id-bmp", name("bmp-\u00e4", bmp=True)),
        ("id-bmp-nul", name("bmp\x00x", bmp=True)),
        # 300 bytes as UTF-8: too long, yet shown as UTF-8, not UCS-2.
        ("id-bmp-long", name("\u20ac" * 100, bmp=True)),
        ("id-empty", name("")),
        ("id-no-cn", x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "only O")])),
    ]:
        put(fname, leaf(ca_a, subj).cert)
    put("id-san-one", leaf(ca_a, name("san1"), sans=[
        x509.DNSName("one.example"), x509.UniformResourceIdentifier("urn:dev:one")]).cert)
    put("id-san-two", leaf(ca_a, name("san2"), sans=[
        x509.DNSName("a.example"), x509.DNSName("b.example")]).cert)
    put("id-san-nul", leaf(ca_a, name("san3"), sans=[x509.DNSName("dev-a\x00.example")]).cert)

    # CRLs.
    mkpki.write_crl(os.path.join(out, "crl-a.pem"), mkpki.make_crl(ca_a, revoked=revoked))
    mkpki.write_crl(os.path.join(out, "crl-a-empty.pem"), mkpki.make_crl(ca_a))
    mkpki.write_crl(os.path.join(out, "crl-a-stale.pem"), mkpki.make_crl(
        ca_a, revoked=revoked, last_update="-10d", next_update="-1d"))
    mkpki.write_crl(os.path.join(out, "crl-b-root.pem"), mkpki.make_crl(
        ca_b, revoked=[ca_b_int]))
    with open(os.path.join(out, ".done"), "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main(sys.argv[1])

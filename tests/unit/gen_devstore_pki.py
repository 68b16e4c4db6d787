#!/usr/bin/python3
"""gen_devstore_pki.py OUTDIR - the device_certs pairs test_gw_devstore.c loads.

Made with tools/mkpki.py (python3-cryptography) at every build, like the
judge's certificates. The test copies these files into folders of its own,
then changes them between loads; the names here are what it copies.

  dev-a.crt/.key    leaf + intermediate (EC P-256), PKCS#8 PEM key
  dev-a2.crt/.key   another pair for dev-a (a replacement)
  dev-b.crt/.key    leaf + intermediate, SEC1 "EC PRIVATE KEY" PEM key
  dev-r.crt/.key    RSA-2048 leaf + intermediate, PKCS#1 PEM key
  dev-d.crt/.key    one DER certificate and a DER (PKCS#8) key
  stray.key         an EC key of no certificate here
  up-ca.pem         the root that issued the intermediate
  server.crt/.key   a server certificate from that root, for a handshake
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import mkpki  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def key_bytes(key, fmt, enc=serialization.Encoding.PEM):
    return key.private_bytes(enc, fmt, serialization.NoEncryption())


def main(out):
    os.makedirs(out, exist_ok=True)
    root = mkpki.make_ca("Devstore Upstream Root")
    inter = mkpki.make_ca("Devstore Upstream Issuing", issuer=root, path_length=0)
    mkpki.write_cert(os.path.join(out, "up-ca.pem"), root.cert)

    def pair(name, cn, key=None, fmt=serialization.PrivateFormat.PKCS8):
        leaf = mkpki.make_leaf(cn, inter, usage="client", key=key)
        mkpki.write_cert(os.path.join(out, name + ".crt"), leaf.cert, inter.cert)
        write(os.path.join(out, name + ".key"), key_bytes(leaf.key, fmt), 0o600)
        return leaf

    pair("dev-a", "dev-a-up")
    pair("dev-a2", "dev-a-up-2")
    pair("dev-b", "dev-b-up", fmt=serialization.PrivateFormat.TraditionalOpenSSL)
    pair("dev-r", "dev-r-up", key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
         fmt=serialization.PrivateFormat.TraditionalOpenSSL)
    d = mkpki.make_leaf("dev-d-up", inter, usage="client")
    write(os.path.join(out, "dev-d.crt"), d.cert.public_bytes(serialization.Encoding.DER))
    write(os.path.join(out, "dev-d.key"), key_bytes(d.key, serialization.PrivateFormat.PKCS8,
                                                    serialization.Encoding.DER), 0o600)
    mkpki.write_key(os.path.join(out, "stray.key"), mkpki.new_key())
    srv = mkpki.make_leaf("localhost", root, usage="server", dns=["localhost"])
    mkpki.write_cert(os.path.join(out, "server.crt"), srv.cert)
    mkpki.write_key(os.path.join(out, "server.key"), srv.key)
    with open(os.path.join(out, ".done"), "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main(sys.argv[1])

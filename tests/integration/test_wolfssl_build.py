"""The wolfSSL certbridge links (docs/wolfssl.md):

- the default build links the project's own static wolfSSL, so the binaries
  need no libwolfssl at run time; `make WOLFSSL=system` links Debian's;
- the own build carries the target's assembly and none of what
  docs/wolfssl.md says is left out;
- tools/wolfssl-build.sh refuses to build a version other than the
  installed libwolfssl-dev (the pin must follow Debian's security updates),
  reuses its cache without rebuilding or fetching, and every configure flag
  and define it uses is explained in docs/wolfssl.md.

The own build's library is found through build/wolfssl.prefix, which the
Makefile writes; CB_WOLFSSL (own or system) says which one the binaries
under test were built with.
"""

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "wolfssl-build.sh"
DOC = ROOT / "docs" / "wolfssl.md"
BUILD = Path(os.environ.get("CB_BUILD", ROOT / "build"))
WOLFSSL = os.environ.get("CB_WOLFSSL", "own")
BINARIES = ["certbridge", "certbridge-certs", "certbridge-diag"]


def script_text():
    return SCRIPT.read_text()


def script_var(name):
    m = re.search(r'^%s="([^"]*)"' % name, script_text(), re.M)
    assert m, "tools/wolfssl-build.sh has no %s=\"...\"" % name
    return m.group(1)


def own_prefix():
    p = ROOT / "build" / "wolfssl.prefix"
    if not p.is_file():
        pytest.skip("the own wolfSSL build is not made yet (make build)")
    prefix = Path(p.read_text().strip())
    assert (prefix / "lib" / "libwolfssl.a").is_file(), prefix
    return prefix


def ldd(path):
    r = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("name", BINARIES)
def test_binaries_link_the_chosen_wolfssl(name):
    binary = BUILD / name
    assert binary.is_file(), "%s is not built" % binary
    out = ldd(binary)
    if WOLFSSL == "system":
        assert re.search(r"libwolfssl\.so\.\d+ => /", out), out
    else:
        assert "libwolfssl" not in out, "%s links a shared wolfSSL:\n%s" % (name, out)
        # ... and has it inside: the symbols the daemon calls are defined.
        r = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert re.search(r" T wolfSSL_CTX_new$", r.stdout, re.M), "no wolfSSL inside %s" % name


def options_h():
    return (own_prefix() / "include" / "wolfssl" / "options.h").read_text()


def defined(opts, name):
    return re.search(r"^#define %s\b" % re.escape(name), opts, re.M) is not None


def test_own_build_has_the_targets_assembly_and_drops_the_unused():
    opts = options_h()
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()
    if arch == "amd64":
        for want in ("WOLFSSL_AESNI", "USE_INTEL_SPEEDUP", "WOLFSSL_SP_X86_64_ASM"):
            assert defined(opts, want), "options.h lacks %s" % want
    for want in ("HAVE_CRL", "HAVE_SNI", "HAVE_ALPN", "HAVE_SESSION_TICKET",
                 "WOLFSSL_FPKI", "WOLFSSL_TLS13", "HAVE_EX_DATA", "HAVE_PKCS11",
                 "WOLF_CRYPTO_CB"):
        assert defined(opts, want), "options.h lacks %s, which certbridge uses" % want
    # docs/wolfssl.md, "Left out on purpose".
    # SESSION_CERTS: a static 9 x 2 KB peer chain in every connection;
    # certbridge keeps what it needs itself (docs/wolfssl.md).
    for gone in ("WOLFSSL_DTLS", "HAVE_OCSP", "HAVE_PKCS7", "HAVE_NULL_CIPHER",
                 "HAVE_ANON", "HAVE_CAMELLIA", "WOLFSSL_POST_HANDSHAKE_AUTH", "FP_ECC",
                 "SESSION_CERTS"):
        assert not defined(opts, gone), "options.h defines %s" % gone
    for absent in ("NO_DH", "NO_RC4", "NO_DES3", "NO_PSK", "NO_PKCS12"):
        assert defined(opts, absent), "options.h lacks %s" % absent


def test_every_flag_and_define_is_explained_in_the_docs():
    doc = DOC.read_text()
    flags = script_var("CONFIGURE_FLAGS").split()
    assert len(flags) > 20, flags
    # The arch flags are in the script's case statement.
    flags += re.findall(r'ARCH_FLAGS="([^"]+)"', script_text())[0].split()
    for f in flags:
        assert f in doc, "docs/wolfssl.md does not explain %s" % f
    for d in script_var("DEFINES").split():
        name = d[2:].split("=")[0]
        assert name in doc, "docs/wolfssl.md does not explain %s" % name


def fake_dpkg_query(folder, version):
    """A dpkg-query that reports libwolfssl-dev at VERSION, first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "dpkg-query"
    f.write_text("#!/bin/sh\nprintf '%%s' '%s'\n" % version)
    f.chmod(f.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (folder, env.get("PATH", "/usr/bin:/bin"))
    return env


def test_a_libwolfssl_dev_other_than_the_pin_is_refused(tmp_path):
    pinned = re.search(r"^WOLFSSL_DEB_VERSION=(\S+)$", script_text(), re.M).group(1)
    env = fake_dpkg_query(tmp_path / "bin", "5.5.4-2+deb12u99")
    r = subprocess.run(["sh", str(SCRIPT), str(tmp_path / "cache")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert "5.5.4-2+deb12u99 is installed but this script pins %s" % pinned in r.stderr
    assert "move the pin" in r.stderr
    # Refused before anything was fetched or built.
    assert not (tmp_path / "cache" / "src").exists()


def test_the_cache_is_reused_without_a_build_or_a_fetch():
    prefix = own_prefix()
    cache = prefix.parent
    before = (prefix / "lib" / "libwolfssl.a").stat().st_mtime_ns
    # No network: an empty proxy that refuses would make a fetch fail.
    env = dict(os.environ, http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    r = subprocess.run(["sh", str(SCRIPT), str(cache)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(prefix)
    assert r.stderr == "", "a cached run should print nothing on stderr: %r" % r.stderr
    assert (prefix / "lib" / "libwolfssl.a").stat().st_mtime_ns == before
    info = (prefix / "BUILDINFO").read_text()
    assert "configure=" in info and "dsc_sha256=" in info

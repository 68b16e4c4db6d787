"""bench_haproxy.py - HAProxy as tools/bench.py's reference proxy: Debian's
haproxy installed when missing (its own service never left running), and
one HAProxy in TCP mode doing what certbridge does on the bench: TLS in
with the device certificates verified against the device CAs, TLS out to
the same mosquitto with the gateway's client certificate. Started and
stopped by its PID, like every process of the bench.
"""

import os
import shutil
import subprocess
from pathlib import Path

import benchkit
from benchkit import BenchError, log

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def _service_pids():
    """PIDs of haproxy processes that are not ours (the Debian service, if
    an install started it): their parent is not this process."""
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        if comm == "haproxy" and ppid != me:
            out.append(int(d))
    return out


def ensure_installed():
    """The haproxy binary, installed with apt-get when missing. Debian's
    package enables and starts haproxy.service on install: a policy-rc.d
    that answers 101 (where none exists already) keeps invoke-rc.d from
    starting it, and the unit is then stopped and disabled anyway, so that
    no HAProxy of the package's stays bound to port 80 or elsewhere."""
    found = shutil.which("haproxy")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("haproxy is not installed and installing it needs root: "
                         "apt-get install -y --no-install-recommends haproxy")
    before = set(_service_pids())
    made_policy = False
    if not POLICY_RC_D.exists():
        POLICY_RC_D.write_text("#!/bin/sh\n# tools/bench.py: no service starts during its "
                               "install of haproxy\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
        made_policy = True
    log("installing haproxy (apt-get install -y --no-install-recommends haproxy)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        p = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends",
                            "-o", "DPkg::Lock::Timeout=300", "haproxy"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=env, timeout=900)
    finally:
        if made_policy:
            POLICY_RC_D.unlink()
    if p.returncode != 0:
        raise BenchError("apt-get install haproxy failed:\n%s" % (p.stdout + p.stderr)[-2000:])
    if shutil.which("systemctl") and Path("/run/systemd/system").exists():
        subprocess.run(["systemctl", "disable", "--now", "haproxy.service"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    stray = set(_service_pids()) - before
    if stray:
        # The service started despite the above (a system without
        # policy-rc.d support): stop exactly the PIDs that appeared.
        log("stopping the haproxy service the install started: PIDs %s" % sorted(stray))
        subprocess.run(["systemctl", "stop", "haproxy.service"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    found = shutil.which("haproxy")
    if not found:
        raise BenchError("haproxy installed but not on PATH")
    return found


def version(binary):
    try:
        p = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
        # "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"
        return "HAProxy " + p.stdout.split()[2]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


HAPROXY_CONF = """# written by tools/bench.py: HAProxy doing what certbridge does on the bench
global
    nbthread 2
    maxconn {maxconn}
    # no log: HAProxy logs nothing per connection here (certbridge logs at info)

defaults
    mode tcp
    timeout connect 10s
    # idle sessions are held for minutes (MQTT keepalive {keepalive} s)
    timeout client {idle}s
    timeout server {idle}s

frontend devices
    # mTLS in: the device's certificate verified against the device CAs
    bind 127.0.0.1:{port} ssl crt {front_pem} ca-file {device_cas} verify required
    default_backend broker

backend broker
    # TLS out with the gateway's client certificate; the broker's verified
    # against the cloud root, for the name certbridge checks (sni = localhost)
    server mosquitto 127.0.0.1:{broker_port} ssl crt {upstream_pem} ca-file {cloud_root} verify required sni str(localhost) verifyhost localhost{reuse}
"""


def write_pems(pki, workdir):
    """HAProxy's crt files hold the certificate chain and the key in one
    PEM; its device ca-file is both device CAs certbridge trusts."""
    d = Path(workdir)
    front = d / "haproxy-front.pem"
    front.write_bytes((pki / "gateway-chain.pem").read_bytes() + (pki / "gateway.key").read_bytes())
    up = d / "haproxy-upstream.pem"
    up.write_bytes((pki / "gateway-upstream.pem").read_bytes()
                   + (pki / "gateway-upstream.key").read_bytes())
    cas = d / "haproxy-device-cas.pem"
    cas.write_bytes((pki / "ca-old.pem").read_bytes() + (pki / "ca-new.pem").read_bytes())
    for f in (front, up):
        f.chmod(0o600)
    return front, up, cas


def start_haproxy(binary, pki, workdir, broker_port, maxconn, keepalive, reuse, name="haproxy"):
    """One HAProxy in the foreground (-db: one process, its threads), a child
    of ours. reuse=False adds no-ssl-reuse: every upstream connection is a
    full TLS handshake, as certbridge makes (HAProxy's default resumes the
    last TLS session to the server)."""
    port = benchkit.free_port()
    front, up, cas = write_pems(pki, workdir)
    cfg = Path(workdir) / (name + ".cfg")
    cfg.write_text(HAPROXY_CONF.format(
        maxconn=maxconn, keepalive=keepalive, idle=max(3600, 2 * keepalive), port=port,
        front_pem=front, device_cas=cas, broker_port=broker_port, upstream_pem=up,
        cloud_root=pki / "cloud-root.pem", reuse="" if reuse else " no-ssl-reuse"))
    p = benchkit.Proc(name, [binary, "-db", "-f", str(cfg)], workdir, port)
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True,
                           timeout=30)
    if check.returncode != 0:
        raise BenchError("haproxy -c refused %s:\n%s" % (cfg, check.stdout + check.stderr))
    return p.start()

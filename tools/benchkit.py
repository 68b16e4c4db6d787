#!/usr/bin/python3
"""benchkit.py - the parts of a lab that tools/bench.py and tools/soak.py
drive: their processes (mosquitto and certbridge, started here and stopped by
PID), free ports, the MQTT bytes a load generator sends, and what /proc says
of a process (memory, CPU, descriptors).
"""

import asyncio
import os
import platform
import pwd
import re
import resource
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- /proc


def proc_mem(pid):
    """Memory of a process in KiB: VmRSS, RssAnon, VmHWM from status;
    Private_Dirty, Pss from smaps_rollup when the kernel has it."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "VmHWM"):
                out[k] = int(v.split()[0])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Private_Dirty", "Pss"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def proc_cpu(pid):
    """user+sys CPU seconds of a process (utime, stime of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_tree(pid):
    """pid and its descendants (a program that forks workers, such as
    HAProxy in master-worker mode, is measured as the sum of them)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
            except OSError:
                continue
            children.setdefault(int(s[s.rindex(")") + 2:].split()[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_mem(pid):
    """proc_mem summed over proc_tree(pid)."""
    out = {}
    for p in proc_tree(pid):
        for k, v in proc_mem(p).items():
            out[k] = out.get(k, 0) + v
    return out


def tree_cpu(pid):
    return sum(proc_cpu(p) for p in proc_tree(pid))


def tree_fds(pid):
    return sum(proc_fds(p) for p in proc_tree(pid))


def settle_rss(pid, quiet_s=0.6, timeout=10.0, mem=proc_mem):
    """Polls VmRSS (mem(pid): proc_mem, or tree_mem for a process and its
    children) until it stays unchanged for quiet_s (bounded)."""
    deadline = time.monotonic() + timeout
    last = mem(pid)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        cur = mem(pid)
        if cur.get("VmRSS") != last.get("VmRSS"):
            last, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return cur
    return mem(pid)


def wait_fds_below(pid, limit, timeout=30.0, fds=proc_fds):
    deadline = time.monotonic() + timeout
    n = fds(pid)
    while n > limit and time.monotonic() < deadline:
        time.sleep(0.1)
        n = fds(pid)
    return n


def hold_sessions(hard):
    """Sessions certbridge can hold under a descriptor limit: two each,
    plus its own (about 10) and room for the descriptor wolfSSL opens for
    a moment per handshake (9,960 where the hard limit is 20,000)."""
    return max(1, (hard - 80) // 2)


# ---------------------------------------------------------------- machine


def machine_info(certbridge_bin):
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["mem_gib"] = round(int(line.split()[1]) / 1048576, 1)
    except OSError:
        pass
    try:
        info["os"] = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except (OSError, AttributeError):
        pass
    for key, pkg in (("wolfssl", "libwolfssl35"), ("mosquitto", "mosquitto"),
                     ("libevent", "libevent-2.1-7"), ("haproxy", "haproxy")):
        info[key] = deb_version(pkg)
    info["wolfssl"] = wolfssl_of(certbridge_bin, info["wolfssl"])
    try:
        p = subprocess.run([certbridge_bin, "-V"], capture_output=True, text=True, timeout=10)
        info["certbridge"] = (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        info["certbridge"] = "?"
    info["client"] = "Python %s asyncio, %s" % (platform.python_version(), ssl.OPENSSL_VERSION)
    return info


def deb_version(pkg):
    """The installed version of a Debian package, or "?"."""
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                           capture_output=True, text=True, timeout=10)
        return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def wolfssl_of(binary, deb):
    """Which wolfSSL a certbridge binary runs with: Debian's shared library
    (the package version, deb) or a static one linked in, named by the
    prefix tools/wolfssl-build.sh built it in (its headers' path stays in
    the debug info)."""
    try:
        p = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10)
        if "libwolfssl" in p.stdout:
            return "%s (Debian's shared library)" % deb
        data = Path(binary).read_bytes()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(rb"/([0-9][\w.+~-]*)/include/wolfssl", data)
    return "static %s (tools/wolfssl-build.sh)" % (m.group(1).decode() if m else "?")


# ---------------------------------------------------------------- processes


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def listening(port):
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                for line in fh.readlines()[1:]:
                    p = line.split()
                    if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


class Proc:
    """A child process of ours, logging to a file, stopped by its PID. A
    subclass may set preexec_fn (run in the child before exec, as
    staticmethod) and Error (what start() raises)."""

    preexec_fn = None
    Error = BenchError

    def __init__(self, name, argv, workdir, port):
        self.name, self.argv, self.port = name, argv, port
        self.log_path = Path(workdir) / (name + ".log")
        self.proc = None

    def start(self, timeout=15.0):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=str(self.log_path.parent), preexec_fn=self.preexec_fn)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.Error("%s exited with %s before listening; log %s:\n%s"
                                 % (self.name, self.proc.returncode, self.log_path, self.tail()))
            if listening(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise self.Error("%s did not listen on %d within %.0fs" % (self.name, self.port, timeout))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.proc.returncode

    def kill(self):
        """SIGKILL our child by its PID if it still runs, reap it, and close
        its log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        try:
            self._log.close()
        except (AttributeError, OSError):
            pass

    def tail(self, n=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


MOSQUITTO_CONF = """# written by tools/bench.py: the broker of tests/integration/cbtest.py, with
# less logging (log_type all would log every PUBLISH) and, unless
# --broker-nagle, set_tcp_nodelay true (see docs/benchmarks.md: with Nagle on,
# bursts of small messages stall for the 40 ms delayed-ACK timer)
per_listener_settings false
allow_anonymous false
persistence false
user {user}
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages false

listener {port} 127.0.0.1
protocol mqtt
cafile {cafile}
certfile {certfile}
keyfile {keyfile}
require_certificate true
use_identity_as_username true
"""


def mosquitto_conf(pki, port, certfile=None, keyfile=None):
    """MOSQUITTO_CONF for the lab PKI, listening on port; the broker's own
    certificate chain and key are the lab's unless given."""
    return MOSQUITTO_CONF.format(
        user=pwd.getpwuid(os.geteuid()).pw_name, port=port,
        cafile=pki / "cloud-client-ca.pem", certfile=certfile or pki / "broker-chain.pem",
        keyfile=keyfile or pki / "broker.key")


def start_broker(pki, workdir, args):
    port = free_port()
    conf = Path(workdir) / "mosquitto.conf"
    text = mosquitto_conf(pki, port)
    if not args.broker_nagle:
        text += "set_tcp_nodelay true\n"
    # The QoS 1 run keeps at most 100 messages in flight, yet mosquitto 2.0.11
    # once dropped QoS 1 messages to the subscriber under its default limit of
    # 1000 queued ("Outgoing messages are being dropped"): a broker that drops
    # would make the figures count messages never relayed.
    text += "max_queued_messages 100000\n"
    if args.broker_tls13_ciphers:
        text += "ciphers_tls1.3 %s\n" % args.broker_tls13_ciphers
    conf.write_text(text)
    return Proc("mosquitto", ["mosquitto", "-c", str(conf)], workdir, port).start()


def gateway_ini(pki, port, broker_port, args, log_level):
    return """; written by tools/bench.py
[gateway]
admin_listen =
state_file =
log_level = {log_level}
max_connections = {maxconn}
shutdown_grace = 2s

[downstream]
listen = 127.0.0.1:{port}
cert = {pki}/gateway-chain.pem
key = {pki}/gateway.key
client_auth = required
; The load generator is one address with many connections in flight.
max_handshakes_per_ip = 1000000
{ciphers}

[ca.old]
file = {pki}/ca-old.pem

[ca.new]
file = {pki}/ca-new.pem

[upstream]
address = 127.0.0.1:{broker_port}
sni = localhost
ca = {pki}/cloud-root.pem
cert = {pki}/gateway-upstream.pem
key = {pki}/gateway-upstream.key
connect_rate = {rate}
{resumption}
[mqtt]
; Every session of the load generator shows the same certificate: they are
; told apart by client id (with identity = cn, a newer one would take an
; older one's place in the connect queue).
identity = none
clientid = keep
username = keep
max_packet_size = 1M
""".format(ciphers=("ciphers = " + args.downstream_ciphers) if args.downstream_ciphers else "",
           log_level=log_level, maxconn=max(10000, args.sessions + 1000, args.rate_sessions + 1000),
           port=port, pki=pki, broker_port=broker_port, rate=args.connect_rate,
           # bench.py sets it (full handshakes on both legs unless asked);
           # the soak runs the product's default.
           resumption=("session_resumption = %s\n" % args.session_resumption)
           if getattr(args, "session_resumption", None) else "")


def start_gateway(binary, pki, workdir, broker_port, args, log_level=None, name="certbridge"):
    port = free_port()
    ini = Path(workdir) / (name + ".ini")
    ini.write_text(gateway_ini(pki, port, broker_port, args, log_level or args.log_level))
    return Proc(name, [binary, "-c", str(ini)], workdir, port).start()


# ---------------------------------------------------------------- MQTT 3.1.1


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def connect_packet(client_id, keepalive):
    cid = client_id.encode()
    body = (b"\x00\x04MQTT\x04\x02" + struct.pack(">H", keepalive)
            + struct.pack(">H", len(cid)) + cid)
    return b"\x10" + varint(len(body)) + body


def subscribe_packet(topic, pid=1, qos=0):
    t = topic.encode()
    body = struct.pack(">H", pid) + struct.pack(">H", len(t)) + t + bytes([qos])
    return b"\x82" + varint(len(body)) + body


def publish_packet(topic, payload, qos=0, pid=0, dup=False):
    tb = topic.encode()
    body = struct.pack(">H", len(tb)) + tb + (struct.pack(">H", pid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1) | (0x08 if dup and qos else 0)]) + varint(len(body)) + body


def puback_packet(pid):
    return b"\x40\x02" + struct.pack(">H", pid)


def split_packets(mv, on_packet):
    """Calls on_packet(mv, first byte, start of body, end of body) for each
    complete MQTT packet at the start of the memoryview mv; returns how many
    bytes they take (where the first incomplete packet starts)."""
    pos, end = 0, len(mv)
    while end - pos >= 2:
        rl, mult, i = 0, 1, pos + 1
        while True:
            if i >= end:
                return pos
            b = mv[i]
            rl += (b & 0x7F) * mult
            mult <<= 7
            i += 1
            if not b & 0x80:
                break
        if end - i < rl:
            return pos
        on_packet(mv, mv[pos], i, i + rl)
        pos = i + rl
    return pos


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


class Session:
    __slots__ = ("reader", "writer")

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer


class Client:
    """How the load generator connects to one target."""

    def __init__(self, port, cafile, cert, key, sources=0):
        """sources: connect from 127.0.0.2 .. 127.0.0.(sources+1) in turn
        (0: the kernel's choice, 127.0.0.1), so that many sessions do not
        share one source address's ephemeral ports."""
        self.port, self.sources, self.opened = port, sources, 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(str(cafile))
        ctx.load_cert_chain(str(cert), str(key))
        self.ctx = ctx
        self.cipher = None  # (name, version, bits) of the first session

    async def open(self, client_id, keepalive, timeout=30.0):
        """TCP + TLS + CONNECT + CONNACK. Returns (Session, seconds)."""
        t0 = time.perf_counter()

        async def run():
            src = None
            if self.sources:
                src = ("127.0.0.%d" % (2 + self.opened % self.sources), 0)
                self.opened += 1
            r, w = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.ctx,
                                                 server_hostname="localhost", limit=1 << 20,
                                                 local_addr=src)
            try:
                w.write(connect_packet(client_id, keepalive))
                ack = await r.readexactly(4)
            except BaseException:
                w.transport.abort()
                raise
            if self.cipher is None:
                self.cipher = w.get_extra_info("cipher")
            if ack[0] != 0x20 or ack[1] != 2 or ack[3] != 0:
                w.transport.abort()
                raise BenchError("CONNACK %s for %s" % (ack.hex(), client_id))
            return Session(r, w)

        s = await asyncio.wait_for(run(), timeout)
        return s, time.perf_counter() - t0

    async def close(self, s):
        try:
            s.writer.write(DISCONNECT)
            s.writer.close()
            await asyncio.wait_for(s.writer.wait_closed(), 5.0)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError):
            s.writer.transport.abort()


async def open_many(client, n, concurrency, prefix, keepalive, on_progress=None):
    """Opens n sessions, at most `concurrency` in flight. Returns (sessions,
    latencies, errors, elapsed seconds)."""
    sessions, lat, errors = [], [], []
    nxt = 0

    async def worker():
        nonlocal nxt
        while nxt < n:
            i = nxt
            nxt += 1
            try:
                s, dt = await client.open("%s-%d" % (prefix, i), keepalive)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError,
                    BenchError) as e:
                errors.append("%s: %s" % (type(e).__name__, e))
                continue
            sessions.append(s)
            lat.append(dt)
            if on_progress:
                on_progress(len(sessions))

    t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(min(concurrency, n))])
    return sessions, lat, errors, time.perf_counter() - t0


async def close_many(client, sessions, concurrency=200):
    it = iter(list(sessions))

    async def worker():
        for s in it:
            await client.close(s)

    await asyncio.gather(*[worker() for _ in range(concurrency)])
    sessions.clear()


def pctl(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]

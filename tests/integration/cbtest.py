"""cbtest.py - helpers shared by the certbridge integration tests.

- Pki: the mkpki lab layout in a folder, with device credentials.
- Broker: a TLS mosquitto (client certificates required) on 127.0.0.1.
- Gateway: certbridge itself, with a generated INI.
- mosquitto_pub / MosquittoSub / PahoClient: MQTT clients with bounded waits.

Every process is started by us, tracked in PROCS, and stopped by its PID
(SIGTERM, then SIGKILL after a bounded wait); nothing here ever kills by name.
Every wait is a bounded polling loop; nothing sleeps to "let things settle".

Environment:
  CERTBRIDGE          the certbridge binary (default <repo>/build/certbridge)
  CB_VALGRIND=1       run certbridge under valgrind; a non-zero exit at stop
                      (errors, definite leaks) fails the test
  CB_TIMEOUT_FACTOR   multiply every timeout (default 1, 8 under valgrind)
"""

import json
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import mkpki  # noqa: E402

VALGRIND = os.environ.get("CB_VALGRIND", "") == "1"
TIME_FACTOR = float(os.environ.get("CB_TIMEOUT_FACTOR", "8" if VALGRIND else "1"))


# Under AddressSanitizer (quarantine, shadow memory) or valgrind, RSS says
# nothing about the program's own buffers: there a test checks behaviour
# only, and its memory bound is checked by the plain build's run.
RSS_MEANINGFUL = not (os.environ.get("CB_SANITIZE") or os.environ.get("CB_VALGRIND"))


def t(seconds):
    """A timeout scaled for slow runs (valgrind, sanitizers)."""
    return seconds * TIME_FACTOR


def uid():
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------- ports

_given_ports = set()
_port_lock = threading.Lock()


def free_port():
    """A TCP port free on 127.0.0.1 now (bind to port 0); never the same
    one twice in a session."""
    with _port_lock:
        for _ in range(50):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            finally:
                s.close()
            if port not in _given_ports:
                _given_ports.add(port)
                return port
    raise RuntimeError("no free port found")


def _listening_ports():
    """Ports in LISTEN state on this host, from /proc/net/tcp{,6}; None
    when /proc is not readable (then we probe with connect())."""
    ports = set()
    found = False
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                lines = fh.readlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "0A":
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports if found else None


def port_listening(port):
    """True when something listens on port. Reads /proc so that waiting
    does not open connections (which would show up in the logs under
    test); falls back to a TCP connect."""
    ports = _listening_ports()
    if ports is not None:
        return port in ports
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- PKI


class Creds:
    """What a client presents: cert (may be a chain file) and key, or None
    for a client without certificate; cafile: what it trusts."""

    def __init__(self, name, cert, key, cafile):
        self.name = name
        self.cert = cert
        self.key = key
        self.cafile = cafile

    def __repr__(self):
        return "Creds(%s)" % self.name


class Pki:
    """The mkpki lab layout in a folder."""

    DEVICE_TRUST = "ca-old.pem"  # legacy devices trust only the 2019 CA

    def __init__(self, folder):
        self.dir = Path(folder).resolve()

    def __call__(self, name):
        """Absolute path (str) of a file of the layout."""
        p = self.dir / name
        return str(p)

    def device(self, name):
        """Credentials of a lab device (dev-old-1, dev-new-1 with its chain,
        dev-unknown, dev-expired, dev-future), or a certificate-less client
        for None."""
        if name is None:
            return Creds("no-cert", None, None, self(self.DEVICE_TRUST))
        cert = self(name + "-chain.pem")
        if not os.path.exists(cert):
            cert = self(name + ".pem")
        return Creds(name, cert, self(name + ".key"), self(self.DEVICE_TRUST))

    def upstream_client(self):
        """The gateway's upstream identity, as a direct broker client."""
        return Creds("gateway-upstream", self("gateway-upstream.pem"),
                     self("gateway-upstream.key"), self("cloud-root.pem"))

    def pair(self, name):
        """mkpki.Issued loaded from NAME.pem + NAME.key."""
        return mkpki.load_pair(self(name))


def make_pki(folder):
    mkpki.lab(folder)
    return Pki(folder)


# ---------------------------------------------------------------- processes

PROCS = []  # every Proc ever started in this session, in order


def _tail(text, lines=150):
    ls = text.splitlines()
    if len(ls) > lines:
        ls = ["[... %d earlier lines ...]" % (len(ls) - lines)] + ls[-lines:]
    return "\n".join(ls)


class Proc:
    """A child process we own, logging to a file."""

    kind = "process"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / (self.kind + ".log")
        self.proc = None
        self.started_at = None
        self.stopped_at = None
        self.rc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv, env=None):
        self._log_fh = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                     stderr=subprocess.STDOUT, env=env, cwd=str(self.workdir),
                                     start_new_session=True)
        self.started_at = time.monotonic()
        self.stopped_at = None
        self.rc = None
        if self not in PROCS:
            PROCS.append(self)

    def _wait_port(self, port, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stopped_at = time.monotonic()
                raise RuntimeError("%s exited with code %s before listening on %d\n%s"
                                   % (self.kind, self.proc.returncode, port, self.report()))
            if port_listening(port):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("%s did not listen on port %d within %.0fs\n%s"
                           % (self.kind, port, timeout, self.report()))

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals our child by its PID, waits at most timeout, then kills it
        by its PID. Returns the exit code (negative: killed by a signal)."""
        if self.proc is None:
            return self.rc
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        self.rc = self.proc.returncode
        try:
            self._log_fh.close()
        except (AttributeError, OSError):
            pass
        return self.rc

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """The current end of the log, for wait_log(..., since=mark)."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _text_since(self, since):
        """Complete lines only: a line the process is writing while we
        read must not be parsed half-written (its last fields missing)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return ""
        return data[:data.rfind(b"\n") + 1].decode(errors="replace")

    def wait_log(self, regex, timeout=5.0, since=0):
        """Polls the log (from byte offset since) until regex matches;
        returns the match. Fails with the log tail after timeout."""
        rx = re.compile(regex, re.M) if isinstance(regex, str) else regex
        deadline = time.monotonic() + t(timeout)
        while True:
            m = rx.search(self._text_since(since))
            if m:
                return m
            if time.monotonic() >= deadline:
                raise AssertionError("%s log: no match for %r within %.1fs\n%s"
                                     % (self.kind, rx.pattern, t(timeout), self.report()))
            time.sleep(0.05)

    def report(self):
        return "---- %s (pid %s) log %s ----\n%s" % (self.kind, self.pid, self.log_path,
                                                   _tail(self.log_text()))


def alive_during(t0, t1):
    """Processes that ran at some point between t0 and t1 (monotonic)."""
    return [p for p in PROCS if p.started_at is not None and p.started_at <= t1
            and (p.stopped_at is None or p.stopped_at >= t0)]


def stop_all():
    """Stops every process of ours still running (end of session)."""
    for p in PROCS:
        if p.running():
            p.stop(timeout=3)


# ---------------------------------------------------------------- broker


class Broker(Proc):
    """mosquitto 2.0 with one TLS listener on 127.0.0.1 that requires a
    client certificate from cafile and uses its CN as the username.

    It runs in the foreground (not -d) so that we own its PID; restart()
    brings it back on the same port, e.g. with a rotated certificate."""

    kind = "broker"

    def __init__(self, pki, workdir, port=None, certfile=None, keyfile=None, cafile=None,
                 extra_conf=""):
        super().__init__(workdir)
        self.pki = pki
        self.port = port or free_port()
        self.certfile = certfile or pki("broker-chain.pem")
        self.keyfile = keyfile or pki("broker.key")
        self.cafile = cafile or pki("cloud-client-ca.pem")
        self.extra_conf = extra_conf
        self.conf_path = self.workdir / "mosquitto.conf"

    def conf_text(self, auth, identity_line):
        """The broker configuration, with its authentication lines (auth)
        and its use_identity_as_username line as the caller wants them."""
        user = pwd.getpwuid(os.geteuid()).pw_name
        return """# written by tests/integration/cbtest.py
per_listener_settings false
{auth}persistence false
user {user}
log_dest stderr
log_type all
connection_messages true
log_timestamp true
log_timestamp_format %Y-%m-%dT%H:%M:%S

listener {port} 127.0.0.1
protocol mqtt
cafile {cafile}
certfile {certfile}
keyfile {keyfile}
require_certificate true
{identity}
{extra}
""".format(auth=auth, user=user, port=self.port, cafile=self.cafile,
           certfile=self.certfile, keyfile=self.keyfile, identity=identity_line,
           extra=self.extra_conf)

    def write_conf(self):
        # mosquitto 2.0 notes:
        # - as root it drops privileges to user "mosquitto" unless `user`
        #   names the current user, and then cannot read our 0600 keys.
        # - with allow_anonymous false, use_identity_as_username counts as
        #   authenticated; no password file or ACL is needed (no acl_file
        #   means every authenticated client may use every topic).
        # - a listener line without an address binds every interface.
        self.conf_path.write_text(self.conf_text(
            "allow_anonymous false\n", "use_identity_as_username true"))

    def start(self, timeout=10.0):
        self.write_conf()
        with open(self.log_path, "ab") as f:
            f.write(b"==== cbtest: starting mosquitto on port %d, certfile %s\n"
                    % (self.port, self.certfile.encode()))
        self._spawn(["mosquitto", "-c", str(self.conf_path)])
        self._wait_port(self.port, t(timeout))
        return self

    def restart(self, certfile=None, keyfile=None, cafile=None, timeout=10.0):
        """Stops this mosquitto and starts a new one on the same port, with
        other certificate files if given."""
        self.stop()
        if certfile:
            self.certfile = str(certfile)
        if keyfile:
            self.keyfile = str(keyfile)
        if cafile:
            self.cafile = str(cafile)
        # The port must be free again before the new process binds it.
        deadline = time.monotonic() + t(timeout)
        while port_listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.start(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        return super().stop(sig, t(timeout))

    def peer_cert(self, cafile=None, timeout=5.0):
        """The DER leaf certificate the broker presents now, as
        seen by a verifying TLS client with the upstream identity."""
        c = self.pki.upstream_client()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile or c.cafile)
        ctx.load_cert_chain(c.cert, c.key)
        with socket.create_connection(("127.0.0.1", self.port), timeout=t(timeout)) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as ss:
                return ss.getpeercert(binary_form=True)


# ---------------------------------------------------------------- gateway


def line_of(path, section, key=None):
    """1-based line of [section] (key None) or of `key =` inside it, in an
    INI file."""
    cur = None
    for i, line in enumerate(open(path).read().splitlines(), 1):
        s = line.strip()
        m = re.match(r"^\[(.+)\]$", s)
        if m:
            cur = m.group(1)
            if key is None and cur == section:
                return i
            continue
        if cur == section and key is not None and re.match(r"^%s\s*=" % re.escape(key), s):
            return i
    raise AssertionError("no %s in [%s] of %s" % (key, section, path))


def ini_text(sections):
    out = ["; written by tests/integration/cbtest.py"]
    for sec, keys in sections.items():
        if keys is None:
            continue
        out.append("")
        out.append("[%s]" % sec)
        for k, v in keys.items():
            if v is None:
                continue
            out.append("%s = %s" % (k, v))
    return "\n".join(out) + "\n"


_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def _unquote(v):
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        try:
            return json.loads(v)
        except ValueError:
            return re.sub(r"\\(.)", r"\1", v[1:-1])
    return v


def parse_fields(line):
    """The fields of one log line (text key=value, or JSON) as a dict of
    strings; {} when the line is neither."""
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
            return {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in obj.items()}
        except ValueError:
            return {}
    return {m.group(1): _unquote(m.group(2)) for m in _FIELD.finditer(line)}


def _field_matches(value, want):
    if value is None:
        return False
    if isinstance(want, re.Pattern):
        return want.search(value) is not None
    if callable(want):
        return bool(want(value))
    return value == str(want)


class Gateway(Proc):
    """certbridge with a generated INI (absolute paths), talking to
    upstream_port. overrides: {section: {key: value}}; a value None removes
    the key, a section None removes the section."""

    kind = "gateway"

    def __init__(self, pki, workdir, upstream_port, overrides=None, binary=None,
                 admin=False, env=None):
        super().__init__(workdir)
        # Extra environment variables for the daemon (NOTIFY_SOCKET ...).
        self.env = env
        self.pki = pki
        self.binary = binary or certbridge_binary()
        self.port = free_port()
        self.admin_port = free_port() if admin else None
        self.upstream_port = upstream_port
        self.overrides = overrides or {}
        self.conf_path = self.workdir / "certbridge.ini"
        self.vg_log = self.workdir / "valgrind.log"

    def sections(self):
        p = self.pki
        s = {
            "gateway": {
                "admin_listen": "127.0.0.1:%d" % self.admin_port if self.admin_port else "",
                "state_file": "",
                "log_level": "debug",
                # Short, so that stop() does not wait long for lingering
                # test sessions.
                "shutdown_grace": "2s",
            },
            "downstream": {
                "listen": "127.0.0.1:%d" % self.port,
                "cert": p("gateway-chain.pem"),
                "key": p("gateway.key"),
            },
            "ca.old": {"file": p("ca-old.pem")},
            "ca.new": {"file": p("ca-new.pem")},
            "upstream": {
                "address": "127.0.0.1:%d" % self.upstream_port,
                "sni": "localhost",
                "ca": p("cloud-root.pem"),
                "cert": p("gateway-upstream.pem"),
                "key": p("gateway-upstream.key"),
            },
            "mqtt": {
                "identity": "cn",
                "clientid": "keep",
                "max_packet_size": "2M",
            },
        }
        for sec, keys in self.overrides.items():
            if keys is None:
                s[sec] = None
                continue
            if s.get(sec) is None:
                s[sec] = {}
            s[sec].update(keys)
        return s

    def write_conf(self):
        self.conf_path.write_text(ini_text(self.sections()))

    def argv(self):
        cmd = [self.binary, "-c", str(self.conf_path)]
        if VALGRIND:
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--log-file=%s" % self.vg_log] + cmd
        return cmd

    def start(self, timeout=10.0):
        self.write_conf()
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        self._spawn(self.argv(), env=env)
        self._wait_port(self.port, t(timeout))
        return self

    def reload(self):
        """SIGHUP: reload the configuration and certificates."""
        assert self.running(), "gateway is not running\n" + self.report()
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """SIGTERM, wait (shutdown_grace plus a margin), then SIGKILL by PID.
        Returns the exit code. Under CB_VALGRIND=1 a non-zero code fails."""
        if timeout is None:
            timeout = t(10.0)
        was_running = self.running()
        rc = super().stop(sig, timeout)
        if VALGRIND and was_running and rc != 0:
            raise AssertionError("certbridge under valgrind exited with %s\n%s"
                                 % (rc, self.report()))
        return rc

    def report(self):
        r = super().report()
        if VALGRIND and self.vg_log.exists():
            r += "\n---- valgrind log %s ----\n%s" % (self.vg_log,
                                                     _tail(self.vg_log.read_text(errors="replace")))
        return r

    # -- structured log access

    def events(self, event=None, since=0, **match):
        """Parsed log lines (dicts) from byte offset since, with event= and
        every field of match equal (a str), matching (a compiled regex) or
        accepted (a callable)."""
        out = []
        for line in self._text_since(since).splitlines():
            f = parse_fields(line)
            if not f:
                continue
            if event is not None and f.get("event") != event:
                continue
            if all(_field_matches(f.get(k), v) for k, v in match.items()):
                f["_line"] = line
                out.append(f)
        return out

    def wait_event(self, event, timeout=5.0, since=0, **match):
        """The first matching event (see events()), polling until timeout."""
        deadline = time.monotonic() + t(timeout)
        while True:
            ev = self.events(event, since, **match)
            if ev:
                return ev[0]
            if time.monotonic() >= deadline:
                want = " ".join(["event=%s" % event] + ["%s=%s" % (k, getattr(v, "pattern", v))
                                                         for k, v in match.items()])
                raise AssertionError("gateway log: no line with %s within %.1fs\n%s"
                                     % (want, t(timeout), self.report()))
            time.sleep(0.05)


def certbridge_binary():
    b = os.environ.get("CERTBRIDGE")
    if b:
        return b
    return str(REPO / "build" / "certbridge")


# ---------------------------------------------------------------- mosquitto clients

VERSIONS = ("311", "5")
_MOSQ_V = {"311": "mqttv311", "5": "mqttv5", "31": "mqttv31"}


def _mosq_base(port, creds, version, client_id, host="127.0.0.1"):
    a = ["-h", host, "-p", str(port), "-V", _MOSQ_V[version], "--cafile", creds.cafile]
    if creds.cert:
        a += ["--cert", creds.cert, "--key", creds.key]
    if client_id:
        a += ["-i", client_id]
    return a


class Result:
    def __init__(self, rc, stdout, stderr, timed_out=False):
        self.rc, self.stdout, self.stderr, self.timed_out = rc, stdout, stderr, timed_out

    def __repr__(self):
        return "Result(rc=%s, timed_out=%s, stderr=%r)" % (self.rc, self.timed_out,
                                                           self.stderr[-500:])


def mosquitto_pub(port, creds, topic, payload=b"hello", qos=0, version="311",
                  client_id=None, timeout=10.0, extra=()):
    """Runs mosquitto_pub once (payload from a temporary file, any bytes).
    Returns a Result; rc None when it had to be killed after timeout."""
    with tempfile.NamedTemporaryFile(prefix="cbtest-payload-") as f:
        f.write(payload)
        f.flush()
        argv = (["mosquitto_pub"] + _mosq_base(port, creds, version, client_id)
                + ["-t", topic, "-q", str(qos), "-f", f.name] + list(extra))
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=t(timeout))
        except subprocess.TimeoutExpired as e:  # run() killed it (its PID)
            return Result(None, e.stdout or b"", (e.stderr or b"").decode(errors="replace"), True)
    return Result(p.returncode, p.stdout, p.stderr.decode(errors="replace"))


class MosquittoSub:
    """mosquitto_sub in the background, -d for the SUBACK, payloads printed
    as hex (-F %x) so any bytes survive. Use as a context manager:

        with MosquittoSub(port, creds, topic, qos=1) as sub:
            sub.wait_subscribed()
            ... publish ...
            msgs = sub.wait_messages()      # [(qos, payload_bytes)]
    """

    _PUB = re.compile(r"received PUBLISH \(d(\d), q(\d), r(\d), m(\d+),")
    _HEX = re.compile(r"^[0-9a-f]+$")

    def __init__(self, port, creds, topic, qos=0, version="311", count=1, client_id=None,
                 timeout=15.0):
        self.count = count
        self.timeout = t(timeout)
        # stdbuf: mosquitto_sub's stdout is block-buffered on a pipe, and the
        # SUBACK debug line must reach us before anything is published.
        self.argv = (["stdbuf", "-oL", "mosquitto_sub"] + _mosq_base(port, creds, version, client_id)
                     + ["-t", topic, "-q", str(qos), "-C", str(count), "-d", "-F", "%x",
                        "-W", str(int(self.timeout) + 1)])
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def output(self):
        with self.cond:
            return _tail("\n".join(l if len(l) < 300 else l[:300] + "..." for l in self.lines), 60)

    def wait_subscribed(self, timeout=10.0):
        """Waits for the SUBACK; returns the granted QoS / reason code."""
        deadline = time.monotonic() + t(timeout)
        with self.cond:
            while True:
                for i, line in enumerate(self.lines):
                    if "received SUBACK" in line:
                        for nxt in self.lines[i + 1:]:
                            m = re.match(r"Subscribed \(mid: \d+\): (\d+)", nxt)
                            if m:
                                return int(m.group(1))
                if self.eof:
                    raise AssertionError("mosquitto_sub ended without SUBACK (rc %s):\n%s"
                                         % (self.proc.wait(), self.output()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("mosquitto_sub: no SUBACK within %.1fs:\n%s"
                                         % (t(timeout), self.output()))
                self.cond.wait(min(left, 0.2))

    def messages(self):
        """[(qos, payload)] received so far, in order."""
        with self.cond:
            lines = list(self.lines)
        qos = [int(m.group(2)) for m in (self._PUB.search(l) for l in lines) if m]
        payloads = [bytes.fromhex(l) for l in lines
                    if self._HEX.match(l) and len(l) % 2 == 0]
        return list(zip(qos, payloads))

    def wait_messages(self, timeout=None):
        """Waits until count messages arrived (mosquitto_sub -C exits) and
        returns them; fails with the output after timeout."""
        timeout = self.timeout if timeout is None else t(timeout)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.reader.join(timeout=5)
        msgs = self.messages()
        if len(msgs) < self.count:
            raise AssertionError("mosquitto_sub: %d of %d messages within %.1fs (rc %s):\n%s"
                                 % (len(msgs), self.count, timeout, self.proc.poll(),
                                    self.output()))
        return msgs

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()  # our child, by PID
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        return False


# ---------------------------------------------------------------- paho

try:
    import paho.mqtt.client as mqtt
except ImportError:  # reported by the tests that need it
    mqtt = None

_PAHO_V = {"311": "MQTTv311", "5": "MQTTv5", "31": "MQTTv31"}


def connack_value(code):
    """An int from paho's CONNACK code (int for 3.1.1, ReasonCodes for 5)."""
    if code is None:
        return None
    return getattr(code, "value", code)


class PahoClient:
    """A paho-mqtt 1.6.1 client driven by our own network thread, so that
    TLS errors (ssl.SSLError is not a ConnectionError, and paho's own loop
    thread dies on it) end up in .error instead of a traceback.

        c = PahoClient(port, creds, "5")
        assert c.connect() == 0          # the CONNACK code (None: none came)
        c.subscribe("t/x", qos=1)
        c.publish("t/x", b"..", qos=1)   # waits for PUBACK/PUBCOMP
        msg = c.wait_message()
        c.close()
    """

    def __init__(self, port, creds, version="311", client_id=None, host="127.0.0.1",
                 keepalive=30, clean=True):
        if mqtt is None:
            raise RuntimeError("paho-mqtt is not importable; use /usr/bin/python3")
        self.port, self.creds, self.version, self.host = port, creds, version, host
        self.client_id = client_id or "cbtest-%s" % uid()
        proto = getattr(mqtt, _PAHO_V[version])
        kw = {"client_id": self.client_id, "protocol": proto}
        if version != "5":
            kw["clean_session"] = clean
        self.c = mqtt.Client(**kw)
        self.c.tls_set(ca_certs=creds.cafile, certfile=creds.cert, keyfile=creds.key,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # paho 1.6.1 has no connect_timeout setter (added in 2.0); the TLS
        # handshake itself is bounded by keepalive (socket timeout).
        self.c._connect_timeout = t(5.0)
        self.keepalive = keepalive
        self.connack = None          # int once a CONNACK arrived
        self.connack_props = None
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.error = None            # text of a socket/TLS error, if any
        self.messages = queue.Queue()
        self._got_connack = threading.Event()
        self._subacks = {}
        self._sub_cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = None
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe

    # callbacks (signatures differ between 3.1.1 and 5)
    def _on_connect(self, client, userdata, flags, rc, props=None):
        self.connack = connack_value(rc)
        self.connack_props = props
        self._got_connack.set()

    def _on_disconnect(self, client, userdata, rc, props=None):
        self.disconnect_rc = connack_value(rc)
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _on_subscribe(self, client, userdata, mid, granted, props=None):
        with self._sub_cond:
            self._subacks[mid] = [connack_value(g) for g in granted]
            self._sub_cond.notify_all()

    def _loop(self):
        while not self._stop.is_set():
            try:
                rc = self.c.loop(timeout=0.05)
            except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
                self.error = "%s: %s" % (type(e).__name__, e)
                rc = -1
            if rc != 0:
                if self.error is None and rc != -1:
                    self.error = "loop: %s" % mqtt.error_string(rc)
                self.disconnected.set()
                return

    def connect(self, timeout=10.0):
        """Connects (TCP, TLS, CONNECT) and waits for the CONNACK or the end
        of the connection. Returns the CONNACK code as an int, or None when
        there was none (then .error says why)."""
        try:
            self.c.connect(self.host, self.port, keepalive=self.keepalive)
        except (OSError, ValueError) as e:
            self.error = "%s: %s" % (type(e).__name__, e)
            self.disconnected.set()
            return None
        self._thread = threading.Thread(target=self._loop, daemon=True)
        # paho 1.6.1 writes from the calling thread (publish, subscribe,
        # disconnect) unless it believes its own loop thread runs: two
        # threads would then use one SSL socket at once. Tell it ours runs.
        self.c._thread = self._thread
        self._thread.start()
        deadline = time.monotonic() + t(timeout)
        while time.monotonic() < deadline:
            if self._got_connack.wait(0.05):
                break
            if self.disconnected.is_set():
                break
        if not self._got_connack.is_set() and self.error is None:
            self.error = ("connection closed without CONNACK" if self.disconnected.is_set()
                          else "no CONNACK within %.1fs" % t(timeout))
        return self.connack

    def subscribe(self, topic, qos=0, timeout=10.0):
        """Subscribes and waits for the SUBACK; returns the granted QoS
        (or v5 reason code) of the topic."""
        rc, mid = self.c.subscribe(topic, qos=qos)
        assert rc == 0, "subscribe: %s" % mqtt.error_string(rc)
        deadline = time.monotonic() + t(timeout)
        with self._sub_cond:
            while mid not in self._subacks:
                left = deadline - time.monotonic()
                if left <= 0 or self.disconnected.is_set():
                    raise AssertionError("no SUBACK for %s within %.1fs (error: %s)"
                                         % (topic, t(timeout), self.error))
                self._sub_cond.wait(min(left, 0.1))
            return self._subacks[mid][0]

    def publish(self, topic, payload, qos=0, timeout=10.0, retain=False):
        """Publishes and waits until paho considers it done (sent for QoS 0,
        PUBACK for 1, PUBCOMP for 2)."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == 0, "publish: %s" % mqtt.error_string(info.rc)
        info.wait_for_publish(timeout=t(timeout))
        if not info.is_published():
            raise AssertionError("publish of %d bytes at QoS %d not completed within %.1fs "
                                 "(error: %s)" % (len(payload), qos, t(timeout), self.error))
        return info

    def wait_message(self, timeout=10.0):
        try:
            return self.messages.get(timeout=t(timeout))
        except queue.Empty:
            raise AssertionError("no message within %.1fs (error: %s)"
                                 % (t(timeout), self.error)) from None

    def close(self, timeout=5.0):
        """DISCONNECT (when connected) and stop the network thread."""
        if self._thread is not None and self.connack == 0 and not self.disconnected.is_set():
            try:
                self.c.disconnect()
            except (OSError, ValueError):
                pass
            self.disconnected.wait(t(timeout))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(t(timeout))
            self.c._thread = None
        try:
            self.c.socket() and self.c.socket().close()
        except (OSError, AttributeError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def paho_connect(port, creds, version="311", client_id=None, timeout=10.0):
    """Connects once and disconnects; returns (connack_code_or_None, error)."""
    c = PahoClient(port, creds, version, client_id)
    try:
        code = c.connect(timeout)
        return code, c.error
    finally:
        c.close()


# ---------------------------------------------------------------- round trips


def roundtrip_cli(port, pub, sub, payload, qos=1, version="311", topic=None):
    """mosquitto_sub (creds sub) subscribes, mosquitto_pub (creds pub)
    publishes payload; returns the (qos, payload) received."""
    topic = topic or "cbtest/%s" % uid()
    with MosquittoSub(port, sub, topic, qos=qos, version=version,
                      client_id="%s-sub-%s" % (sub.name, uid())) as s:
        granted = s.wait_subscribed()
        assert granted == qos, "SUBACK granted %s, asked %s\n%s" % (granted, qos, s.output())
        r = mosquitto_pub(port, pub, topic, payload, qos=qos, version=version,
                          client_id="%s-pub-%s" % (pub.name, uid()))
        assert r.rc == 0, "mosquitto_pub failed: %r" % r
        msgs = s.wait_messages()
    return msgs[0]


def roundtrip_paho(port, pub, sub, payload, qos=1, version="311", topic=None):
    """Like roundtrip_cli with paho clients; returns (qos, payload)."""
    topic = topic or "cbtest/%s" % uid()
    with PahoClient(port, sub, version, client_id="%s-sub-%s" % (sub.name, uid())) as s, \
            PahoClient(port, pub, version, client_id="%s-pub-%s" % (pub.name, uid())) as p:
        assert s.connect() == 0, "subscriber CONNACK %s (%s)" % (s.connack, s.error)
        granted = s.subscribe(topic, qos)
        assert granted == qos, "SUBACK granted %s, asked %s" % (granted, qos)
        assert p.connect() == 0, "publisher CONNACK %s (%s)" % (p.connack, p.error)
        p.publish(topic, payload, qos=qos, timeout=20.0)
        m = s.wait_message(timeout=20.0)
        assert m.topic == topic
        return m.qos, bytes(m.payload)


def assert_same_bytes(got, want, what="payload"):
    """Compares payloads with a short message (no megabyte reprs)."""
    if got == want:
        return
    if len(got) != len(want):
        raise AssertionError("%s: %d bytes received, %d sent" % (what, len(got), len(want)))
    i = next(i for i in range(len(got)) if got[i] != want[i])
    raise AssertionError("%s: %d bytes, first difference at offset %d (%r != %r)"
                         % (what, len(got), i, got[i:i + 8], want[i:i + 8]))


ROUNDTRIPS = {"cli": roundtrip_cli, "paho": roundtrip_paho}


def tls_probe(port, creds, timeout=5.0, server_hostname="localhost",
              max_version=None):
    """A bare TLS client: handshake, then one read (TLS 1.3 reports a
    refused client certificate only there). Returns (local_port, error or
    None)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if max_version is not None:
        ctx.maximum_version = max_version
    ctx.load_verify_locations(creds.cafile)
    if creds.cert:
        ctx.load_cert_chain(creds.cert, creds.key)
    s = socket.create_connection(("127.0.0.1", port), timeout=t(timeout))
    local = s.getsockname()[1]
    try:
        ss = ctx.wrap_socket(s, server_hostname=server_hostname)
        try:
            ss.settimeout(0.5 * TIME_FACTOR)
            try:
                data = ss.recv(1)
                err = None if data else "closed"
            except socket.timeout:
                err = None  # still open: the handshake was accepted
            return local, err
        finally:
            ss.close()
    except (OSError, ssl.SSLError) as e:
        return local, "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()



# ---------------------------------------------------------------- added for test_identity / test_storm


class AuthBroker(Broker):
    """A mosquitto that requires a client certificate from cafile but
    judges the CONNECT's username itself (use_identity_as_username false):
    with users {name: password} a password file (mosquitto_passwd -b) and
    allow_anonymous false; with users None, anonymous clients are allowed,
    so the log's "New client connected ... u'NAME'" shows exactly the
    username the CONNECT carried (none: no u'' part)."""

    def __init__(self, pki, workdir, users=None, **kw):
        super().__init__(pki, workdir, **kw)
        self.users = users
        self.passwd_path = self.workdir / "passwd"

    def write_conf(self):
        auth = "allow_anonymous true\n"
        if self.users is not None:
            self.passwd_path.write_text("")
            os.chmod(self.passwd_path, 0o600)
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(self.passwd_path), name, password],
                               check=True, capture_output=True, timeout=t(20))
            auth = "allow_anonymous false\npassword_file %s\n" % self.passwd_path
        self.conf_path.write_text(self.conf_text(auth, "use_identity_as_username false"))


_NEW_CLIENT = re.compile(r"New client connected from \S+ as (\S+) \(p(\d+), c(\d+), k(\d+)"
                         r"(?:, u'([^']*)')?\)\.")


def broker_clients(broker, since=0):
    """[(client id, username or None)] of every "New client connected"
    line in a mosquitto log (from byte offset since), in order."""
    return [(m.group(1), m.group(5)) for m in _NEW_CLIENT.finditer(broker._text_since(since))]


def wait_broker_client(broker, client_id, since=0, timeout=10.0):
    """Waits for mosquitto's "New client connected ... as CLIENT_ID" line;
    returns the username it shows (None: the CONNECT had none)."""
    deadline = time.monotonic() + t(timeout)
    while True:
        for cid, user in broker_clients(broker, since):
            if cid == client_id:
                return user
        if time.monotonic() >= deadline:
            raise AssertionError("broker log: no client %r connected within %.1fs\n%s"
                                 % (client_id, t(timeout), broker.report()))
        time.sleep(0.05)


class PahoSession(PahoClient):
    """A PahoClient whose connect() passes clean_start / properties (MQTT
    5) to paho, and that keeps the CONNACK flags (session present)."""

    def __init__(self, *a, username=None, password=None, **kw):
        super().__init__(*a, **kw)
        self.flags = None
        if username is not None or password is not None:
            self.c.username_pw_set(username, password)

    def _on_connect(self, client, userdata, flags, rc, props=None):
        self.flags = dict(flags)
        super()._on_connect(client, userdata, flags, rc, props)

    @property
    def session_present(self):
        return None if self.flags is None else int(self.flags.get("session present", 0))

    def connect(self, timeout=10.0, **connect_kw):
        orig = self.c.connect

        def patched(host, port, keepalive=60):
            return orig(host, port, keepalive=keepalive, **connect_kw)

        self.c.connect = patched
        try:
            return super().connect(timeout)
        finally:
            del self.c.connect


# ---------------------------------------------------------------- admin endpoint and /proc
# (added for test_admin.py / test_hygiene.py)


def admin_request(port, path, method="GET", body=None, headers=None, timeout=10.0):
    """One HTTP/1.1 request to the admin endpoint on 127.0.0.1:port.
    Returns (status, {lower-case header name: value}, body bytes)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=t(timeout))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def metric_key(metric, /, **labels):
    """The key of one sample in metric_samples(): (sample name, sorted
    label pairs). (metric is positional: "name" is a label of ours.)"""
    return (metric, tuple(sorted(labels.items())))


def metric_samples(text):
    """{metric_key: value} of a Prometheus text exposition, read with
    prometheus_client's parser (sample names keep their _total)."""
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            k = (s.name, tuple(sorted(s.labels.items())))
            assert k not in out, "series %r appears twice" % (k,)
            out[k] = s.value
    return out


def scrape(port, timeout=10.0):
    """GET /metrics; returns (raw text, metric_samples)."""
    status, headers, body = admin_request(port, "/metrics", timeout=timeout)
    assert status == 200, (status, body[:300])
    text = body.decode("utf-8")
    return text, metric_samples(text)


def admin_status(port, timeout=10.0):
    """GET /status, parsed."""
    status, headers, body = admin_request(port, "/status", timeout=timeout)
    assert status == 200, (status, body[:300])
    return json.loads(body)


def fd_count(pid):
    """Open descriptors of a process of ours (/proc/PID/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_until(what, fn, timeout=10.0, interval=0.05):
    """Polls fn() until it returns a true value (returned); fails after
    timeout (scaled) with what and the last value."""
    deadline = time.monotonic() + t(timeout)
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.1fs (last: %r)" % (what, t(timeout), v))
        time.sleep(interval)


# ---------------------------------------------------------------- files for [gateway] user
# (added for test_config_trust.py / test_hygiene.py)

# The lab files a default Gateway reads, by the keys that name them.
GATEWAY_FILES = {
    ("downstream", "cert"): "gateway-chain.pem",
    ("downstream", "key"): "gateway.key",
    ("ca.old", "file"): "ca-old.pem",
    ("ca.new", "file"): "ca-new.pem",
    ("upstream", "ca"): "cloud-root.pem",
    ("upstream", "cert"): "gateway-upstream.pem",
    ("upstream", "key"): "gateway-upstream.key",
}


class UserTree:
    """A folder under /tmp that user can reach (pytest's own temporary
    tree is mode 0700, root's), holding copies of the lab files a Gateway
    reads: certificates 0644 root, keys 0600 owned by user, so that
    certbridge with [gateway] user = user can read them after the drop.
    A Gateway whose workdir is inside (gateway_dir()) writes its INI there
    too, readable by user. remove() deletes the tree."""

    def __init__(self, pki, user="nobody"):
        self.pw = pwd.getpwnam(user)
        self.dir = Path(tempfile.mkdtemp(prefix="cbtest-%s-" % user))
        os.chmod(self.dir, 0o755)
        for name in GATEWAY_FILES.values():
            dst = self.dir / name
            shutil.copyfile(pki(name), dst)
            if name.endswith(".key"):
                os.chown(dst, self.pw.pw_uid, self.pw.pw_gid)
                os.chmod(dst, 0o600)
            else:
                os.chmod(dst, 0o644)

    def __call__(self, name):
        return str(self.dir / name)

    def gateway_dir(self, name="gw"):
        d = self.dir / name
        d.mkdir(mode=0o755)
        os.chmod(d, 0o755)
        return d

    def overrides(self, user=True):
        """Gateway overrides naming the copies (and [gateway] user)."""
        over = {}
        for (sec, key), name in GATEWAY_FILES.items():
            over.setdefault(sec, {})[key] = self(name)
        if user:
            over["gateway"] = {"user": self.pw.pw_name}
        return over

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

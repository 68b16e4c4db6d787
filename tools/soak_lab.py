"""soak_lab.py - one scenario's lab for tools/soak.py: its mosquitto and
certbridge (children of ours, stopped by their PID), and what certbridge
shows of itself: its key=value log lines, its /metrics, its descriptors and
RSS.
"""

import asyncio
import http.client
import os
import re
import resource
import sys
import time

import benchkit

MIB = 1024.0  # proc_mem figures are KiB


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


class SoakError(Exception):
    """The suite itself cannot run (not an assertion about certbridge)."""


# ---------------------------------------------------------------- processes


def nofile_to_hard():
    """The soft descriptor limit up to the hard one (also the children's
    preexec_fn); returns the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class SoakProc(benchkit.Proc):
    """benchkit.Proc, with the child's RLIMIT_NOFILE raised to the hard limit."""

    preexec_fn = staticmethod(nofile_to_hard)
    Error = SoakError


_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_line(line):
    """The key=value fields of one certbridge text log line."""
    out = {}
    for m in _FIELD.finditer(line):
        v = m.group(2)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[m.group(1)] = v
    return out


def scrape_metrics(port, timeout=5.0):
    """{(name, frozenset(label pairs)): value} from certbridge's /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        if r.status != 200:
            raise SoakError("GET /metrics: HTTP %d" % r.status)
    finally:
        c.close()
    out = {}
    for line in body.splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric(samples, name, **labels):
    """Sum of the samples of name whose labels include labels."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


BROKER_EXTRA = "set_tcp_nodelay true\n"


class Lab:
    """One scenario's mosquitto and certbridge, on fixed ports so that either
    can be restarted in place."""

    def __init__(self, suite, name, gateway=None, broker_extra=""):
        self.suite = suite
        self.pki = suite.pki
        self.dir = suite.workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.broker_port = benchkit.free_port()
        self.port = benchkit.free_port()
        self.admin_port = benchkit.free_port()
        self.gw_over = gateway or {}
        self.broker_extra = broker_extra
        self.broker = None
        self.gw = None
        self.broker_starts = 0

    # -- broker

    def start_broker(self, certfile=None, keyfile=None):
        conf = self.dir / "mosquitto.conf"
        text = benchkit.mosquitto_conf(self.pki, self.broker_port, certfile, keyfile)
        conf.write_text(text + BROKER_EXTRA + self.broker_extra)
        self.broker_starts += 1
        deadline = time.monotonic() + 10
        while benchkit.listening(self.broker_port) and time.monotonic() < deadline:
            time.sleep(0.02)  # the previous one's socket
        self.broker = SoakProc("mosquitto", ["mosquitto", "-c", str(conf)], self.dir,
                               self.broker_port).start()
        return self.broker

    # -- gateway

    def ini(self):
        g = {"max_connections": 2000, "handshake_timeout": "10s", "max_handshakes": None,
             "max_handshakes_per_ip": None, "connect_rate": None, "connect_timeout": None}
        g.update(self.gw_over)
        opt = lambda k: "" if g[k] is None else "%s = %s\n" % (k, g[k])  # noqa: E731
        p = self.pki
        return ("; written by tools/soak.py\n"
                "[gateway]\nadmin_listen = 127.0.0.1:%d\nstate_file =\nlog_level = info\n"
                "%sshutdown_grace = 2s\n\n"
                "[downstream]\nlisten = 127.0.0.1:%d\ncert = %s/gateway-chain.pem\n"
                "key = %s/gateway.key\nclient_auth = required\n%s%s%s\n"
                "[ca.old]\nfile = %s/ca-old.pem\n\n[ca.new]\nfile = %s/ca-new.pem\n\n"
                "[upstream]\naddress = 127.0.0.1:%d\nsni = localhost\nca = %s/cloud-root.pem\n"
                "cert = %s/gateway-upstream.pem\nkey = %s/gateway-upstream.key\n%s%s\n"
                "[mqtt]\nidentity = cn\nclientid = check\nusername = keep\n"
                "max_packet_size = 1M\n"
                % (self.admin_port, opt("max_connections"), self.port, p, p,
                   opt("handshake_timeout"), opt("max_handshakes"),
                   opt("max_handshakes_per_ip"), p, p, self.broker_port, p, p, p,
                   opt("connect_rate"), opt("connect_timeout")))

    def start_gateway(self):
        ini = self.dir / "certbridge.ini"
        ini.write_text(self.ini())
        self.gw = SoakProc("certbridge", [self.suite.binary, "-c", str(ini)], self.dir,
                           self.port).start()
        deadline = time.monotonic() + 10
        while not benchkit.listening(self.admin_port):
            if time.monotonic() > deadline:
                raise SoakError("certbridge's admin endpoint did not listen")
            time.sleep(0.02)
        return self.gw

    def start(self):
        self.start_broker()
        self.start_gateway()
        return self

    def stop(self):
        rc = {}
        for p in (self.gw, self.broker):
            if p is not None:
                rc[p.name] = p.stop()
        return rc

    # -- certbridge observations

    def lines(self):
        try:
            data = self.gw.log_path.read_bytes()
        except OSError:
            return []
        text = data[:data.rfind(b"\n") + 1].decode("utf-8", "replace")
        return text.splitlines()

    def events(self, event=None, **match):
        out = []
        for line in self.lines():
            f = parse_line(line)
            if not f or (event is not None and f.get("event") != event):
                continue
            if all(f.get(k) == v for k, v in match.items()):
                out.append(f)
        return out

    def metrics(self):
        return scrape_metrics(self.admin_port)

    async def ametrics(self):
        return await asyncio.to_thread(scrape_metrics, self.admin_port)

    def fds(self):
        return benchkit.proc_fds(self.gw.pid)

    def rss(self):
        return benchkit.proc_mem(self.gw.pid)["VmRSS"]

    async def settle_rss(self, quiet_s=1.0, timeout=15.0):
        return (await asyncio.to_thread(benchkit.settle_rss, self.gw.pid, quiet_s, timeout))["VmRSS"]

    async def wait_fds(self, limit, timeout=20.0):
        return await asyncio.to_thread(benchkit.wait_fds_below, self.gw.pid, limit, timeout)

    def fd_list(self):
        """certbridge's descriptors: [(number, what it points to)]."""
        d = "/proc/%d/fd" % self.gw.pid
        out = []
        for f in os.listdir(d):
            try:
                out.append((int(f), os.readlink(d + "/" + f)))
            except OSError:
                pass
        return sorted(out)

    async def wait_event(self, event, count=1, timeout=10.0, **match):
        deadline = time.monotonic() + timeout
        while True:
            ev = self.events(event, **match)
            if len(ev) >= count or time.monotonic() > deadline:
                return ev
            await asyncio.sleep(0.05)

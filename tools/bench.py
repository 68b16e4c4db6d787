#!/usr/bin/python3
"""bench.py - certbridge benchmarks, side by side with HAProxy in the same run.

    /usr/bin/python3 tools/bench.py --build build          # what `make bench` runs
    /usr/bin/python3 tools/bench.py --quick                # small numbers, to iterate
    /usr/bin/python3 tools/bench.py --json results.json    # also write the figures as JSON

Everything runs on this machine, on 127.0.0.x, on free ports: a fresh lab PKI
(tools/mkpki.py), a TLS mosquitto that requires client certificates, and in
front of it one of these targets, each on fresh processes:

  certbridge     mTLS in (device certificates verified against the device
                 CAs), a new TLS connection with a client certificate out
  haproxy        Debian's HAProxy in TCP mode doing the same (bind ... ssl crt
                 ... ca-file ... verify required; server ... ssl crt ...
                 verify required no-ssl-reuse: a full handshake upstream too)
  haproxy-reuse  the same HAProxy with its default upstream TLS session reuse
                 (the setup figures only)
  direct         no proxy: the load generator connects to mosquitto itself

The targets are measured in --runs interleaved runs (the order turns each
run), and every figure is the median of the runs: other work on the machine
then weighs on every target alike. Figures per device session (see
docs/benchmarks.md for what they mean):
  1. memory: RSS of the proxy (all its processes) before and after opening
     --sessions idle MQTT sessions (TLS 1.3, client certificate, CONNECT,
     CONNACK), per session;
  2. setup: --rate-sessions sessions with --concurrency in flight: the
     proxy's CPU per connect, sessions/s, p50/p99 latency;
  3. QoS 1: one publisher, one subscriber, --qos1-messages messages; the
     proxy's CPU per message;
  4. (--phases throughput) QoS 0 bulk and small-message throughput, and
     message latency, every payload checked at the receiver.
Then certbridge alone holds as many idle sessions as the descriptor limit
allows (--hold-sessions).

HAProxy is installed with apt-get when missing (as root; its own service is
kept from running). Processes are started by this script and stopped by their
PID, never by name. Only figures are printed, nothing is asserted: the exit
status is non-zero only when the benchmark itself could not run, or sessions
failed or messages were lost.
"""

import argparse
import asyncio
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, str(REPO / "tools"))
import bench_haproxy  # noqa: E402
import bench_report  # noqa: E402
import mkpki  # noqa: E402
from bench_phases import phase_memory, phase_rate, phase_throughput  # noqa: E402
from benchkit import (  # noqa: E402
    BenchError, Client, hold_sessions, log, machine_info, proc_mem, start_broker, start_gateway,
)

KINDS = ("certbridge", "haproxy", "haproxy-reuse", "direct")


# ---------------------------------------------------------------- targets


def probe_upstream_cipher(binary, pki, workdir, broker, args):
    """One session through a debug-level certbridge, to read the TLS version
    and cipher of both of its sides from its log (info does not log the
    upstream one)."""
    gw = start_gateway(binary, pki, workdir, broker.port, args, "debug", "certbridge-probe")
    try:
        client = Client(gw.port, pki / "ca-old.pem", pki / "dev-old-1.pem", pki / "dev-old-1.key")

        async def one():
            s, _ = await client.open("bench-probe", 60)
            await client.close(s)

        asyncio.run(one())
        time.sleep(0.2)
    finally:
        gw.stop()
    text = gw.log_path.read_text(errors="replace")
    out = {}
    for line in text.splitlines():
        for ev, key in (("device-admitted", "device->certbridge"),
                        ("upstream-connected", "certbridge->mosquitto")):
            if "event=%s" % ev in line:
                f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                out[key] = "%s %s" % (f.get("tls", "?"), f.get("cipher", "?"))
    return out


def start_target(kind, args, bins, pki, wd):
    """mosquitto and the proxy of kind; returns (procs, client), the proxy
    first in procs."""
    procs = [start_broker(pki, wd, args)]
    broker = procs[0]
    device = (pki / "ca-old.pem", pki / "dev-old-1.pem", pki / "dev-old-1.key")
    if kind == "certbridge":
        procs.insert(0, start_gateway(bins["certbridge"], pki, wd, broker.port, args))
    elif kind.startswith("haproxy"):
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        maxconn = min(max(args.sessions, args.rate_sessions) + 1000, (soft - 200) // 2)
        procs.insert(0, bench_haproxy.start_haproxy(bins["haproxy"], pki, wd, broker.port,
                                                    maxconn, args.keepalive,
                                                    kind == "haproxy-reuse"))
    else:
        # The broker trusts only cloud-client-ca: a direct client presents
        # the identity certbridge itself presents upstream (P-256 leaf
        # under a root, like dev-old-1) and trusts the cloud root.
        device = (pki / "cloud-root.pem", pki / "gateway-upstream.pem",
                  pki / "gateway-upstream.key")
    return procs, Client(procs[0].port, *device, sources=args.sources)


def run_target(kind, args, bins, pki, wd, runid, phases):
    wd.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        procs, client = start_target(kind, args, bins, pki, wd)
        target = {"name": kind, "procs": procs, "client": client}
        res = {"pids": {p.name: p.pid for p in procs}}
        try:
            run_phases(target, args, runid, res, phases)
        except OSError as e:  # /proc of a process that is gone, typically
            for p in procs:
                if not p.alive():
                    raise BenchError("%s died during the run (exit %s); log %s:\n%s"
                                     % (p.name, p.proc.returncode, p.log_path,
                                        p.tail())) from None
            raise BenchError("%s: %s" % (type(e).__name__, e)) from None
        res["client_cipher"] = client.cipher
        res["final_mem"] = {p.name: proc_mem(p.pid) for p in procs}
        for p in procs:
            if not p.alive():
                raise BenchError("%s died during the run; log %s:\n%s"
                                 % (p.name, p.log_path, p.tail()))
        return res
    finally:
        for p in procs:
            rc = p.stop()
            if rc not in (0, None) and not (p.name == "haproxy" and rc in (-15, 130, 143)):
                log("%s exited with %s (log %s)" % (p.name, rc, p.log_path))


def run_phases(target, args, runid, res, phases):
    kind = target["name"]
    if "memory" in phases:
        log("%s: memory, %d idle sessions x %d rounds" % (kind, args.sessions, args.rounds))
        res["memory"] = asyncio.run(phase_memory(target, args, runid))
    if "rate" in phases:
        log("%s: setup rate, %d sessions, %d in flight"
            % (kind, args.rate_sessions, args.concurrency))
        res["rate"] = asyncio.run(phase_rate(target, args, runid))
    if "qos1" in phases and args.qos1_messages:
        log("%s: QoS 1, %d messages" % (kind, args.qos1_messages))
        res["qos1"] = asyncio.run(phase_throughput(target, args, runid, args.small_size,
                                                   args.qos1_messages, args.qos1_window,
                                                   "q1", qos=1))
    if "throughput" in phases:
        log("%s: throughput" % kind)
        res["bulk"] = asyncio.run(phase_throughput(target, args, runid, args.bulk_size,
                                                   args.bulk_messages, args.bulk_window))
        res["small"] = asyncio.run(phase_throughput(target, args, runid, args.small_size,
                                                    args.small_messages, args.small_window))
        if args.latency_messages:
            res["latency"] = asyncio.run(phase_throughput(
                target, args, runid, args.small_size, args.latency_messages, 1, "lat"))


def target_phases(kind, args):
    """HAProxy's upstream reuse changes the setup only: the reuse target
    runs the rate phase alone."""
    if kind == "haproxy-reuse":
        return [p for p in args.phases if p == "rate"]
    return args.phases


def run_hold(args, bins, pki, workdir, runid, n, hard):
    """certbridge alone holding n idle sessions (as many as the descriptor
    limit allows unless asked for fewer)."""
    old = args.sessions
    args.sessions = n
    try:
        res = run_target("certbridge", args, bins, pki, workdir / "hold", runid + "h",
                         ["memory"])
    finally:
        args.sessions = old
    m = res["memory"][0]
    cb = m["proc"]["certbridge"]
    return {"asked": n, "held": m["sessions"], "hard": hard,
            "why": "%d sessions at most" % hold_sessions(hard),
            "kib": cb.get("VmRSS_kib_per_session"), "rss_before": cb["before"]["VmRSS"],
            "rss_after": cb["after"]["VmRSS"], "seconds": m["open_seconds"],
            "fds": cb["fds_open"], "failed": m["failed"],
            "first_failure": (m.get("failures") or [None])[0]}


# ---------------------------------------------------------------- main


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(need, soft)
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        nr_open = 1048576
    want = min(want, nr_open)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        want = min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones."""

    def _get_help_string(self, action):
        if action.default in (None, "", False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


# --quick: every count small, one run, to iterate on the bench itself.
QUICK = {"runs": 1, "sessions": 200, "rate_sessions": 200, "latency_sessions": 20,
         "warmup": 20, "qos1_messages": 5000, "bulk_messages": 100, "small_messages": 5000,
         "latency_messages": 200, "hold_sessions": "500"}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench.py", description="certbridge benchmarks, side by side with HAProxy; "
        "see docs/benchmarks.md", formatter_class=_HelpFormatter)
    p.add_argument("--build", default="build", help="folder holding the certbridge binary")
    p.add_argument("--binary", help="the certbridge binary (default: BUILD/certbridge)")
    p.add_argument("--quick", action="store_true",
                   help="small numbers and one run (explicit options still win): %s"
                   % ", ".join("%s=%s" % kv for kv in QUICK.items()))
    p.add_argument("--targets", default="certbridge,haproxy,haproxy-reuse",
                   help="comma-separated subset of %s" % ",".join(KINDS))
    p.add_argument("--runs", type=int, default=3,
                   help="interleaved runs of every target; figures are their medians")
    p.add_argument("--phases", default="memory,rate,qos1",
                   help="comma-separated subset of memory,rate,qos1,throughput")
    p.add_argument("--sessions", type=int, default=2000, help="idle sessions for the memory figure")
    p.add_argument("--rounds", type=int, default=1,
                   help="open and close the idle sessions this many times per run (growth check)")
    p.add_argument("--hold", type=float, default=0.0,
                   help="seconds to keep the idle sessions open before closing (RSS re-read)")
    p.add_argument("--hold-sessions", default="max",
                   help="sessions certbridge holds at the end: 'max' (as many as the "
                        "descriptor limit allows, two descriptors each), a number, or 0 to skip")
    p.add_argument("--keepalive", type=int, default=600, help="MQTT keepalive of the sessions")
    p.add_argument("--rate-sessions", type=int, default=2000,
                   help="sessions for the setup figures")
    p.add_argument("--concurrency", type=int, default=50, help="sessions being set up at once")
    p.add_argument("--latency-sessions", type=int, default=200,
                   help="sessions set up one at a time for the unloaded latency (0: skip)")
    p.add_argument("--warmup", type=int, default=50, help="sessions opened and closed first")
    p.add_argument("--sources", type=int, default=50,
                   help="the load generator connects from 127.0.0.2 .. 127.0.0.(N+1) in turn")
    p.add_argument("--connect-rate", type=int, default=100000,
                   help="certbridge [upstream] connect_rate during the benchmark")
    p.add_argument("--session-resumption", choices=("yes", "no"), default="no",
                   help="certbridge [upstream] session_resumption; no: every upstream "
                   "handshake is full, as the F1 figures assume (docs/benchmarks.md)")
    p.add_argument("--qos1-messages", type=int, default=50000, help="QoS 1 messages measured")
    p.add_argument("--qos1-window", type=int, default=100,
                   help="QoS 1 messages in flight (sent, not yet received; mosquitto queues "
                        "at most 1000 for a subscriber)")
    p.add_argument("--bulk-size", type=int, default=65536, help="bulk payload size (bytes)")
    p.add_argument("--bulk-messages", type=int, default=2000, help="bulk messages measured")
    p.add_argument("--bulk-window", type=int, default=32,
                   help="bulk messages in flight (sent, not yet received)")
    p.add_argument("--small-size", type=int, default=100,
                   help="small (and QoS 1) payload size (bytes)")
    p.add_argument("--small-messages", type=int, default=100000,
                   help="small messages measured")
    p.add_argument("--small-window", type=int, default=1000,
                   help="small messages in flight (sent, not yet received)")
    p.add_argument("--latency-messages", type=int, default=2000,
                   help="small messages sent one at a time for the latency figure (0: skip)")
    p.add_argument("--check-every", type=int, default=1,
                   help="compare the full content of every Nth payload (length and sequence "
                        "are checked for all)")
    p.add_argument("--downstream-ciphers", default="",
                   help="certbridge [downstream] ciphers (wolfSSL names; default: certbridge's "
                        "own list); e.g. TLS13-CHACHA20-POLY1305-SHA256 first")
    p.add_argument("--broker-tls13-ciphers", default="",
                   help="mosquitto ciphers_tls1.3 (OpenSSL names), for every target alike; "
                        "default: mosquitto's own")
    p.add_argument("--broker-nagle", action="store_true",
                   help="leave mosquitto's set_tcp_nodelay at its default (false)")
    p.add_argument("--log-level", default="info", choices=["error", "warn", "info", "debug"],
                   help="certbridge log_level (info: what operators run)")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON ('-': stdout)")
    p.add_argument("--workdir", help="keep PKI, configurations and logs here (otherwise a "
                                     "temporary folder, removed after a successful run)")
    if "--quick" in argv:
        p.set_defaults(**QUICK)
    a = p.parse_args(argv)
    a.phases = [x.strip() for x in a.phases.split(",") if x.strip()]
    for ph in a.phases:
        if ph not in ("memory", "rate", "qos1", "throughput"):
            p.error("unknown phase %r" % ph)
    a.targets = [x.strip() for x in a.targets.split(",") if x.strip()]
    for t in a.targets:
        if t not in KINDS:
            p.error("unknown target %r" % t)
    if a.hold_sessions != "max" and not a.hold_sessions.isdigit():
        p.error("--hold-sessions: 'max' or a number")
    if a.sessions < 2 or a.rate_sessions < 1 or a.concurrency < 1 or a.rounds < 1 or a.runs < 1:
        p.error("--sessions >= 2; --rate-sessions, --concurrency, --rounds, --runs >= 1")
    if min(a.bulk_size, a.small_size) < 8 or max(a.bulk_size, a.small_size) > 1000000:
        p.error("payload sizes must be 8..1000000 bytes (certbridge max_packet_size is 1M)")
    if not 1 <= a.sources <= 250:
        p.error("--sources 1..250")
    return a


def git_rev():
    try:
        p = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
        return p.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def find_binaries(args):
    """{'certbridge': path, 'haproxy': path} for the targets asked; raises
    SystemExit(2) when one is missing."""
    binary = args.binary
    if not binary:
        b = Path(args.build)
        if not b.is_absolute() and not b.exists():
            b = REPO / b
        binary = str((b / "certbridge").resolve())
    bins = {"certbridge": binary}
    if "certbridge" in args.targets and not os.access(binary, os.X_OK):
        log("%s is not built: run 'make build' first" % binary)
        raise SystemExit(2)
    if not shutil.which("mosquitto"):
        log("mosquitto is not installed")
        raise SystemExit(2)
    if any(t.startswith("haproxy") for t in args.targets):
        try:
            bins["haproxy"] = bench_haproxy.ensure_installed()
        except BenchError as e:
            log(str(e))
            raise SystemExit(2)
    return bins


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bins = find_binaries(args)
    # The load generator holds every socket itself; certbridge holds two per
    # session. Children inherit the limit.
    most = max(args.sessions, args.rate_sessions)
    soft, hard = raise_nofile(max(65536, 2 * most + 4096))
    if args.hold_sessions == "max":
        hold = hold_sessions(soft) if "certbridge" in args.targets else 0
    else:
        hold = int(args.hold_sessions)
    if 2 * most + 64 > soft:
        log("warning: RLIMIT_NOFILE is %d (hard limit %d) and cannot be raised here; "
            "a proxy holds 2 descriptors per session, so about %d sessions at most "
            "will get through it" % (soft, hard, (soft - 64) // 2))

    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    info = machine_info(bins["certbridge"])
    info["git"] = git_rev()
    if "haproxy" in bins:
        info["haproxy_v"] = bench_haproxy.version(bins["haproxy"])
    runid = os.urandom(3).hex()
    tmp = None
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="cbbench-")
        workdir = Path(tmp)
    t_start = time.monotonic()
    results = {"started": started, "machine": info, "args": vars(args), "tls": {}, "runs": []}
    rc = 0
    try:
        pki = Path(mkpki.lab(str(workdir / "pki")))
        log("PKI in %s; work folder %s" % (pki, workdir))
        if "certbridge" in args.targets:
            pw = workdir / "probe"
            pw.mkdir(exist_ok=True)
            broker = start_broker(pki, pw, args)
            try:
                results["tls"].update(probe_upstream_cipher(bins["certbridge"], pki, pw, broker,
                                                            args))
            finally:
                broker.stop()
        for r in range(args.runs):
            # Interleaved: each run measures every target, in an order that
            # turns from run to run.
            order = args.targets[r % len(args.targets):] + args.targets[:r % len(args.targets)]
            log("run %d of %d: %s" % (r + 1, args.runs, ", ".join(order)))
            run = {}
            for kind in order:
                run[kind] = run_target(kind, args, bins, pki, workdir / ("%s-%d" % (kind, r)),
                                       "%s%d" % (runid, r), target_phases(kind, args))
                cc = run[kind].get("client_cipher")
                if cc and kind != "certbridge":
                    results["tls"]["device->%s" % kind] = "%s %s" % (cc[1], cc[0])
            results["runs"].append(run)
        if hold:
            log("certbridge: holding %d idle sessions (descriptor limit %d)" % (hold, soft))
            results["hold"] = run_hold(args, bins, pki, workdir, runid, hold, soft)
    except BenchError as e:
        log("failed: %s" % e)
        rc = 1
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except BaseException:
        if tmp:
            log("logs kept in %s" % tmp)
        raise
    results["seconds"] = round(time.monotonic() - t_start, 1)
    if rc == 0:
        bench_report.print_report(results, args)
        print("total run time %.0fs; details: --json FILE" % results["seconds"])
        rc = check_complete(results)
    if tmp and rc == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp:
        log("PKI, configurations and logs kept in %s" % tmp)
    if args.json:
        text = json.dumps(results, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return rc


def check_complete(results):
    """1 when sessions failed or messages were lost (the figures still
    printed), else 0. The hold counts sessions refused at the descriptor
    limit as figures, not failures."""
    failed, broken = 0, []
    for i, run in enumerate(results["runs"]):
        for k, res in run.items():
            failed += (res.get("rate") or {}).get("failed", 0)
            failed += sum(m["failed"] for m in (res.get("memory") or []))
            for ph in ("bulk", "small", "latency", "qos1"):
                t = res.get(ph)
                if t and (t["bad_content"] or t["bad_length"] or t["lost"] or not t["complete"]):
                    broken.append("%s %s run %d" % (k, ph, i + 1))
    if failed or broken:
        log("WARNING: %d sessions failed; lost, incomplete or corrupted messages in %s"
            % (failed, broken or "none"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""soak.py - certbridge reliability suite: faults injected while messages flow.

    /usr/bin/python3 tools/soak.py --quick      # scenarios 1-7, small scale, ~2 min
    /usr/bin/python3 tools/soak.py              # 1-7 larger, plus 8 (10,000 sessions, 10 min)
    /usr/bin/python3 tools/soak.py --quick --only 1,4   # a subset

Everything runs on this machine on 127.0.0.x and free ports: a fresh lab PKI
(tools/mkpki.py) with one client certificate per simulated device, a TLS
mosquitto that requires client certificates (the broker of tools/bench.py),
and certbridge in front of it. Each scenario starts its own mosquitto and
certbridge, warms certbridge up with the load it is about to carry, takes a
baseline (descriptors, RSS), injects one fault while messages flow, and then
asserts:

  - every device connection got a defined outcome: a CONNACK code, a close
    that certbridge logged with a reason= (key=value log, one line per
    event), or a close at accept counted by certbridge's limit counters
    (certbridge_limit_refusals_total on the admin endpoint);
  - no QoS 1 message was lost: every message whose PUBACK the publisher
    received was delivered, byte for byte as sent (sequence number and
    checksum), in order per publisher (QoS 1 may deliver a message again,
    never altered and never after a later one seen for the first time);
  - certbridge's descriptors return to the baseline and its RSS to within
    the stated margin of the baseline (after a settle period);
  - the scenario's own promise (see each scenario's docstring).

Scenarios: 1 broker SIGKILL + restart, 2 broker certificate rotation,
3 50 reloads under load, 4 TLS slowloris, 5 CONNECT slowloris, 6 connection
flood past max_connections, 7 slow readers, 8 (full mode only) 10,000
sessions held for 10 minutes with PINGREQ at their keepalive.

The results table (markdown) is printed at the end and written to --out.
The exit status is 0 only when every assertion held. Processes are started by
this script and stopped by their PID, never by name. Work folder (PKI,
configurations, every log): --workdir (emptied at start).
See docs/reliability.md.

This file is the entry point: the scenarios' scale, the command line, the
suite runner and the results table. The rest is in tools/: soak_lab.py
(mosquitto and certbridge, their logs and metrics), soak_devices.py (the
simulated devices), soak_checks.py (a scenario's run and its assertions),
soak_faults.py (scenarios 1, 2, 3, 6) and soak_slow.py (4, 5, 7, 8).
"""

import argparse
import asyncio
import datetime
import os
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, str(REPO / "tools"))
import benchkit  # noqa: E402
import mkpki  # noqa: E402
from soak_checks import Run  # noqa: E402
from soak_devices import Fleet  # noqa: E402
from soak_faults import (scenario_broker_kill, scenario_flood, scenario_reloads,  # noqa: E402
                         scenario_rotation)
from soak_lab import Lab, SoakError, log, nofile_to_hard, parse_line  # noqa: E402
from soak_slow import (scenario_connect_slowloris, scenario_hold,  # noqa: E402
                       scenario_slow_reader, scenario_tls_slowloris)

# Assertions that reveal a certbridge bug found by this suite are tagged with
# a key of KNOWN_BUGS: while the key is listed here, a failure of that
# assertion is reported as "known bug" and does not fail the run. Delete the
# entry (or run with --strict) once the bug is fixed, to re-enable it.
KNOWN_BUGS = {
}


# ---------------------------------------------------------------- the scenarios and their scale

SCENARIOS = {
    1: (scenario_broker_kill, lambda p: "broker SIGKILL mid-stream, restarted after %g s"
        % p["down"], {}, ""),
    2: (scenario_rotation, "broker leaf + intermediate rotated (same root), broker restarted",
        {}, ""),
    3: (scenario_reloads, lambda p: "%d reloads (SIGHUP) under load" % p["reloads"], {}, ""),
    4: (scenario_tls_slowloris, "TLS slowloris (ClientHello 1 byte/s)", {}, ""),
    5: (scenario_connect_slowloris, "CONNECT slowloris (after TLS, CONNECT 1 byte/s)", {}, ""),
    6: (scenario_flood, "connection flood past max_connections", {}, ""),
    7: (scenario_slow_reader, "slow readers (subscribers stop reading)", {},
        "max_queued_messages 100000\n"),
    8: (scenario_hold, "sessions held", {}, ""),
}

SLOW_GW = {"handshake_timeout": "3s", "max_handshakes_per_ip": 64}

QUICK = {
    1: {"devices": 20, "churn": 5, "rate": 20, "before": 2.5, "down": 2.0, "after": 2.5,
        "margin": 4096},
    2: {"devices": 20, "churn": 5, "rate": 20, "before": 2.5, "after": 2.5,
        "margin": 4096},
    3: {"devices": 20, "rate": 20, "before": 1.0, "after": 1.0, "reloads": 50,
        "spacing": 0.02, "margin": 4096},
    4: {"addrs": 1, "per_addr": 200, "waves": 1, "valid": 3, "warm": 20, "margin": 4096,
        "gateway": SLOW_GW},
    5: {"addrs": 1, "per_addr": 30, "waves": 1, "valid": 3, "warm": 20, "margin": 4096,
        "gateway": SLOW_GW},
    6: {"flood_s": 2, "concurrency": 50, "rate": 10, "before": 1.0, "after": 1.0,
        "margin": 4096, "gateway": {"max_connections": 50}},
    7: {"pairs": 2, "stall": 5, "warm_stall": 2, "q0_size": 32768, "q0_rate": 4e6, "q1": 300,
        "rcvbuf": 65536, "per_session_kib": 1024, "fixed_kib": 4096, "drain_timeout": 60,
        "margin": 4096},
}

# The full run: the quick one at a larger scale, plus scenario 8.
FULL_CHANGES = {
    1: {"devices": 100, "churn": 20, "before": 10, "down": 5, "after": 10, "margin": 8192},
    2: {"devices": 100, "churn": 20, "before": 10, "after": 10, "margin": 8192},
    3: {"devices": 100, "before": 5, "after": 5, "spacing": 0.2, "margin": 8192},
    4: {"addrs": 4, "waves": 2, "valid": 10, "warm": 100, "margin": 8192},
    5: {"addrs": 2, "per_addr": 60, "waves": 2, "valid": 10, "warm": 100, "margin": 8192},
    6: {"flood_s": 10, "concurrency": 100, "before": 5, "after": 5, "margin": 8192,
        "gateway": {"max_connections": 200}},
    7: {"pairs": 8, "stall": 15, "warm_stall": 5, "q0_rate": 1e6, "q1": 800,
        "drain_timeout": 120, "margin": 8192},
    8: {"sessions": None, "hold": 600, "ping": 45, "keepalive": 60, "concurrency": 50,
        "silent": 5, "min_held_frac": 0.99, "margin": 16384, "margin_frac": 0.02,
        "timeout": 1500, "gateway": {"max_connections": None, "connect_rate": 2000}},
}

PARAMS = {
    "quick": QUICK,
    "full": {n: {**QUICK.get(n, {}), **c} for n, c in FULL_CHANGES.items()},
}


# ---------------------------------------------------------------- driver


class Suite:
    def __init__(self, args):
        self.args = args
        self.binary = args.binary
        self.workdir = args.workdir
        self.runid = os.urandom(2).hex()
        self.pki = None
        self.fleet = None
        self.known_bugs = KNOWN_BUGS


def run_scenario(suite, num):
    fn, title, gw, broker_extra = SCENARIOS[num]
    p = PARAMS[suite.mode][num]
    lab = Lab(suite, "s%d" % num, gateway=dict(gw, **p.get("gateway", {})),
              broker_extra=broker_extra)
    run = Run(suite, num, title(p) if callable(title) else title, lab)
    log("scenario %d: %s" % (num, run.row["fault"]))
    t0 = time.monotonic()
    try:
        lab.start()
        run.pid0 = lab.gw.pid
        asyncio.run(asyncio.wait_for(fn(run, p), p.get("timeout", 600)))
    except asyncio.TimeoutError:
        run.check(False, "scenario did not finish within %ds" % p.get("timeout", 600))
    except SoakError as e:
        run.check(False, "could not run: %s" % e)
    except Exception as e:  # a bug of the suite: report it, go on
        traceback.print_exc()
        run.check(False, "suite error: %s: %s" % (type(e).__name__, e))
    finally:
        rc = lab.stop()
        if rc.get("certbridge") not in (0, None):
            run.check(False, "certbridge exited with %s at stop" % rc.get("certbridge"))
            # A crash names its cause on stderr, which is the log file: an
            # assertion or a sanitizer report is not a key=value line.
            lines = lab.lines()
            odd = [ln for ln in lines if ln and "ts" not in parse_line(ln)]
            for ln in odd[-20:] or lines[-10:]:
                log("  certbridge: %s" % ln)
    run.seconds = time.monotonic() - t0
    ok = not run.failures
    run.row["result"] = ("PASS" if ok else "FAIL") + (" (known bugs: %d)" % len(run.known)
                                                      if run.known else "")
    log("scenario %d: %s in %.1fs%s" % (num, "passed" if ok else "FAILED", run.seconds,
                                       "" if ok else ": " + "; ".join(run.failures)))
    return run


def table(runs):
    cols = [("#", None), ("fault", "fault"), ("load held", "load"), ("outcome", "outcome"),
            ("lost", "lost"), ("leaked", "leaked"), ("result", "result")]
    out = ["| " + " | ".join(c for c, _ in cols) + " |",
           "| " + " | ".join("---" for _ in cols) + " |"]
    for r in runs:
        cells = [str(r.num)] + [str(r.row.get(k, "")).replace("|", "/") for _, k in cols[1:]]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="soak.py", description="certbridge reliability suite; "
                                "see docs/reliability.md")
    p.add_argument("--quick", action="store_true",
                   help="scenarios 1-7 at small scale (about 2 minutes)")
    p.add_argument("--only", help="comma-separated scenario numbers")
    p.add_argument("--build", default="build", help="folder holding the certbridge binary")
    p.add_argument("--binary", help="the certbridge binary (default: BUILD/certbridge)")
    p.add_argument("--workdir", help="PKI, configurations and logs (default BUILD/soak/work; "
                                     "emptied at start if an earlier run made it)")
    p.add_argument("--out", help="write the results table here (default BUILD/soak/results.md)")
    p.add_argument("--hold", type=float, help="scenario 8: seconds to hold the sessions "
                                              "(default 600)")
    p.add_argument("--sessions", type=int, help="scenario 8: max_connections, the sessions "
                   "opened (5 of them the silent control sessions); default: as many as the "
                   "descriptor limit allows")
    p.add_argument("--strict", action="store_true",
                   help="known certbridge bugs (KNOWN_BUGS) fail the run too")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    build = Path(args.build)
    if not build.is_absolute():
        build = (Path.cwd() / build) if (Path.cwd() / build).exists() else REPO / build
    args.binary = str(Path(args.binary or build / "certbridge").resolve())
    args.workdir = Path(args.workdir or build / "soak" / "work").resolve()
    args.out = Path(args.out or build / "soak" / "results.md").resolve()
    if not os.access(args.binary, os.X_OK):
        log("%s is not built: run 'make build' first" % args.binary)
        return 2
    if not shutil.which("mosquitto"):
        log("mosquitto is not installed")
        return 2
    hard = nofile_to_hard()
    suite = Suite(args)
    suite.mode = "quick" if args.quick else "full"
    nums = sorted(SCENARIOS) if not args.only else [int(x) for x in args.only.split(",")]
    skipped = [n for n in nums if n not in PARAMS[suite.mode]]
    if skipped:
        log("scenario(s) %s: full mode only" % ",".join(map(str, skipped)))
    nums = [n for n in nums if n in PARAMS[suite.mode]]
    if args.hold is not None and 8 in PARAMS[suite.mode]:
        PARAMS[suite.mode][8]["hold"] = args.hold
    if 8 in PARAMS[suite.mode]:
        p8 = PARAMS[suite.mode][8]
        p8["gateway"]["max_connections"] = args.sessions or benchkit.hold_sessions(hard)
        if args.hold is not None:
            p8["timeout"] = max(p8["timeout"], args.hold + 900)
    marker = args.workdir / ".soak-workdir"
    if args.workdir.exists() and any(args.workdir.iterdir()):
        if not marker.exists():
            log("%s is not empty and was not made by soak.py: not touching it" % args.workdir)
            return 2
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by tools/soak.py; emptied at its next run\n")
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    t0 = time.monotonic()
    suite.pki = Path(mkpki.lab(str(args.workdir / "pki")))
    suite.fleet = Fleet(suite.pki)
    info = benchkit.machine_info(args.binary)
    log("%s mode, scenarios %s; work folder %s; descriptor limit %d (hard %d)"
        % (suite.mode, ",".join(map(str, nums)), args.workdir,
           resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard))
    runs = []
    for n in nums:
        runs.append(run_scenario(suite, n))
    total = time.monotonic() - t0
    failed = [r for r in runs if r.failures]
    head = ("certbridge reliability suite (tools/soak.py%s), %s\n\n"
            "machine: %s x %s, %s GiB, %s, kernel %s; descriptor hard limit %d\n"
            "versions: %s; wolfSSL %s; libevent %s; mosquitto %s; load generator %s\n"
            "run time %.0f s; %s\n"
            % (" --quick" if args.quick else "", started.isoformat(), info.get("nproc"),
               info.get("cpu", "?"), info.get("mem_gib", "?"), info.get("os", "?"),
               info.get("kernel"), hard, info.get("certbridge"), info.get("wolfssl"),
               info.get("libevent"), info.get("mosquitto"), info.get("client"), total,
               "every assertion held" if not failed else
               "FAILED: scenario(s) %s" % ", ".join(str(r.num) for r in failed)))
    text = head + "\n" + table(runs) + "\n"
    notes = []
    for r in runs:
        for f in r.failures:
            notes.append("- scenario %d FAILED: %s" % (r.num, f))
        for k in r.known:
            notes.append("- scenario %d: %s" % (r.num, k))
        for nt in r.notes:
            notes.append("- scenario %d: %s" % (r.num, nt))
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    log("results in %s; logs in %s" % (args.out, args.workdir))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

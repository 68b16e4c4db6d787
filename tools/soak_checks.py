"""soak_checks.py - what one scenario of tools/soak.py observes and
asserts (Run), the baseline it asserts against (warm_up, take_baseline),
and the checks scenarios share: messages (check_echo), leaks (check_leaks),
certbridge alive, refusal lines.
"""

import asyncio
import collections
import datetime
import time

from soak_devices import EchoDevice, echo_round
from soak_lab import MIB, SoakError, log, metric, parse_line


class Run:
    """What one scenario observes: its attempts, figures and assertions."""

    def __init__(self, suite, num, title, lab):
        self.suite, self.num, self.title, self.lab = suite, num, title, lab
        self.tag = "s%d-%s" % (num, suite.runid)
        self.fleet = suite.fleet
        self.attempts = []
        self.failures = []
        self.known = []
        self.notes = []
        self.row = {"fault": title, "load": "", "outcome": "", "lost": "", "leaked": ""}
        self.t0 = time.monotonic()

    def check(self, ok, what, bug=None):
        """An assertion. bug: a key of soak.py's KNOWN_BUGS; while listed, a
        failure is reported but does not fail the run."""
        if ok:
            return True
        if bug and bug in self.suite.known_bugs and not self.suite.args.strict:
            self.known.append("%s [known bug %s]" % (what, bug))
            log("  KNOWN BUG %s: %s" % (bug, what))
        else:
            self.failures.append(what)
            log("  FAILED: %s" % what)
        return False

    def note(self, text):
        self.notes.append(text)
        log("  " + text)

    def names(self, prefix, n, start=0):
        return ["soak-%s-%s-%d" % (self.tag, prefix, i) for i in range(start, start + n)]

    # -- outcomes

    def judge_outcomes(self):
        """Matches each attempt with certbridge's end line for its peer
        (session-closed, session-revoked, or handshake-failed side=downstream,
        in log order). An attempt with
        no line was closed at accept (a limit); their number is returned for
        comparison with certbridge's counters."""
        ends = collections.defaultdict(list)
        for line in self.lab.lines():
            f = parse_line(line)
            # handshake-failed side=upstream is the broker side's cause;
            # the session-closed line after it ends the device's connection.
            if f.get("peer") and (f.get("event") in ("session-closed", "session-revoked") or (
                    f.get("event") == "handshake-failed" and f.get("side") == "downstream")):
                ends[f["peer"]].append(f)
        by_peer = collections.defaultdict(list)
        for a in self.attempts:
            if a.peer is None:
                a.outcome = "no TCP connection (%s)" % a.error
                continue
            by_peer[a.peer].append(a)
        at_accept = 0
        for peer, atts in by_peer.items():
            atts.sort(key=lambda x: x.t0)
            ev = ends.get(peer, [])
            # Attempts closed at accept leave no line: when there are fewer
            # lines than attempts, those without a CONNACK or with the
            # earliest end are the ones closed at accept.
            if len(ev) < len(atts):
                ranked = sorted(atts, key=lambda x: (x.connack is not None,
                                                     (x.t_end or 0) - x.t0))
                silent = set(id(x) for x in ranked[:len(atts) - len(ev)])
            else:
                silent = set()
            it = iter(ev)
            for a in atts:
                if id(a) in silent:
                    a.outcome = "closed at accept"
                    at_accept += 1
                    continue
                f = next(it, None)
                a.reason, a.state = f.get("reason"), f.get("state")
                a.outcome = ("CONNACK %d, " % a.connack if a.connack is not None else "") \
                    + "reason=%s" % a.reason
            extra = list(it)
            self.check(not extra, "certbridge logged %d end lines for peer %s, which had %d "
                       "connections" % (len(ev), peer, len(atts)))
        return at_accept

    def check_defined(self, allowed_reasons, roles=None, allow_accept=False):
        """Every attempt (of roles) ended with a CONNACK code or a logged
        reason in allowed_reasons (or, with allow_accept, at accept)."""
        bad = collections.Counter()
        for a in self.attempts:
            if roles is not None and a.role not in roles:
                continue
            if a.outcome == "closed at accept":
                if not allow_accept:
                    bad["%s: closed at accept with no log line" % a.role] += 1
                continue
            if a.reason is None:
                bad["%s: %s" % (a.role, a.outcome)] += 1
            elif a.reason not in allowed_reasons:
                bad["%s: reason=%s (%s)" % (a.role, a.reason, a.error or a.closed_by)] += 1
        self.check(not bad, "connections without a defined outcome, or with an unexpected "
                   "one: %s" % dict(bad))
        return bad


def fmt_kib(kib):
    return "%+.1f MiB" % (kib / MIB)


def fmt_n(n):
    return "{:,}".format(n)


# ---------------------------------------------------------------- baseline and shared checks

FD_SLACK = 2  # a descriptor or two may come and go (an admin scrape, /dev/urandom)


async def wait_idle(lab, timeout=20.0):
    """Until certbridge reports no device connection (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        m = await lab.ametrics()
        n = metric(m, "certbridge_connections")
        if n == 0 or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.1)


async def warm_up(run, n):
    """Brings certbridge to the heap it needs for n sessions moving
    messages at once (wolfSSL's one-time ECC cache, allocator arenas,
    libevent tables), so that the baseline taken next is a fair one."""
    devs = [EchoDevice(run, 900000 + i, name, rate=50, role="warm-up")
            for i, name in enumerate(run.names("w", n))]
    await echo_round(run, devs, run.lab.port, until_acked=5, timeout=90)
    bad = [d.name for d in devs if not d.done]
    if bad:
        raise SoakError("warm-up: %d devices did not complete (%s)" % (len(bad), bad[0]))


async def take_baseline(run):
    lab = run.lab
    n = await wait_idle(lab)
    if n:
        raise SoakError("certbridge still reports %d connections after the warm-up" % n)
    await lab.wait_fds(0, timeout=1.0)
    run.base_fds = lab.fds()
    run.base_fd_list = lab.fd_list()
    run.base_rss = await lab.settle_rss()
    run.t_fault = time.monotonic()
    log("  baseline: %d descriptors, RSS %.1f MiB" % (run.base_fds, run.base_rss / MIB))


async def check_leaks(run, margin_kib):
    """Descriptors back to the baseline (+FD_SLACK) and RSS within margin
    of the baseline, once every session has ended."""
    lab = run.lab
    n = await wait_idle(lab, timeout=30)
    run.check(n == 0, "certbridge still reports %d connections at the end" % n)
    # Its own accounting back to zero too: a handshake slot or a queue place
    # that is never given back would refuse devices later.
    m = await lab.ametrics()
    for name in ("certbridge_handshakes_pending", "certbridge_upstream_connect_queue"):
        run.check(metric(m, name) == 0, "%s is %d at the end" % (name, metric(m, name)))
    fds = await lab.wait_fds(run.base_fds + FD_SLACK, timeout=20)
    fds = await lab.wait_fds(run.base_fds, timeout=3)
    if fds > run.base_fds:
        extra = [f for f in lab.fd_list() if f not in run.base_fd_list]
        run.note("descriptors above the baseline at the end: %s" % extra[:10])
    rss = await lab.settle_rss()
    run.end_fds, run.end_rss = fds, rss
    run.check(fds <= run.base_fds + FD_SLACK, "descriptors %d -> %d (allowed +%d)"
              % (run.base_fds, fds, FD_SLACK))
    run.check(rss - run.base_rss <= margin_kib, "RSS %.1f -> %.1f MiB, margin %.1f MiB"
              % (run.base_rss / MIB, rss / MIB, margin_kib / MIB))
    run.row["leaked"] = "fds %d -> %d; RSS %s (margin %.0f MiB)" % (
        run.base_fds, fds, fmt_kib(rss - run.base_rss), margin_kib / MIB)


def check_refusal_lines(run, limit, refused):
    """event=connection-refused for limit: at most one line a second, and
    their count= never adds up to more than were refused."""
    lines = run.lab.events("connection-refused", reason="limit", limit=limit)
    run.check(lines, "no event=connection-refused reason=limit limit=%s" % limit)
    ts = []
    for e in lines:
        try:
            ts.append(datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp())
        except (KeyError, ValueError):
            run.check(False, "connection-refused line without a readable ts=: %s" % e)
    close = sum(1 for a, b in zip(ts, ts[1:]) if b - a < 0.99)
    run.check(close == 0, "%d connection-refused lines for %s less than a second after the "
              "previous one" % (close, limit))
    counted = sum(int(e.get("count", 0)) for e in lines)
    run.check(0 < counted <= refused, "connection-refused count= adds up to %d, %d were "
              "refused" % (counted, refused))
    return lines, counted


def check_alive(run):
    lab = run.lab
    run.check(lab.gw.alive(), "certbridge exited (%s); log %s" % (
        lab.gw.proc.returncode, lab.gw.log_path))
    errors = [l for l in lab.lines() if " level=error " in l]
    run.check(not errors, "certbridge logged %d error lines, first: %s"
              % (len(errors), errors[0][:300] if errors else ""))


def check_echo(run, devs):
    """No PUBACK'd message missing, none altered, none out of order."""
    lost = sum(d.lost() for d in devs)
    acked = sum(len(d.acked) for d in devs)
    bad = sum(d.bad + d.foreign for d in devs)
    ooo = sum(d.stream.out_of_order for d in devs)
    dups = sum(d.stream.dups for d in devs)
    unfinished = [d for d in devs if not d.done]
    run.check(lost == 0, "%d of %d PUBACK'd messages never delivered" % (lost, acked))
    run.check(bad == 0, "%d messages altered or misdelivered" % bad)
    run.check(ooo == 0, "%d messages delivered out of order" % ooo)
    run.check(not unfinished, "%d devices did not finish: %s" % (
        len(unfinished), "; ".join("%s: %s" % (d.name, d.failed or "unfinished")
                                   for d in unfinished[:3])))
    run.row["lost"] = "0 of %s" % fmt_n(acked) if lost == 0 else "**%d** of %s" % (
        lost, fmt_n(acked))
    if dups:
        run.row["lost"] += " (%d redelivered)" % dups
    return acked

"""bench_report.py - tools/bench.py's tables: each figure the median of the
interleaved runs (with their range), certbridge beside HAProxy with the
ratio and the target of docs/benchmarks.md, the detail for every target
measured, and the sessions certbridge held at the descriptor limit.
"""

import statistics
import sys

PROXY = {"certbridge": "certbridge", "haproxy": "haproxy", "haproxy-reuse": "haproxy",
         "direct": None}

LABEL = {"certbridge": "certbridge", "haproxy": "HAProxy", "haproxy-reuse": "HAProxy, reuse",
         "direct": "direct"}

# The targets of F1 (docs/benchmarks.md): certbridge / HAProxy at most this.
TARGETS = {"kib": 0.5, "cpu_connect": 0.5, "cpu_msg": 1.0}


def fmt(v, spec="%.1f"):
    if v is None:
        return "-"
    return spec % v


def _div(a, b, scale=1.0):
    return a / b * scale if a is not None and b else None


def figures(kind, res):
    """The figures of one run of one target: {name: value or None}."""
    proxy = PROXY[kind]
    f = {}
    mem = (res.get("memory") or [{}])[0]
    pm = (mem.get("proc") or {})
    if mem:
        f["held"] = mem.get("sessions")
        f["failed_open"] = mem.get("failed")
    if proxy and proxy in pm:
        f["kib"] = pm[proxy].get("VmRSS_kib_per_session")
        f["kib_pd"] = pm[proxy].get("Private_Dirty_kib_per_session")
        f["rss_before"] = (pm[proxy].get("before") or {}).get("VmRSS")
        f["rss_after"] = (pm[proxy].get("after") or {}).get("VmRSS")
    if "mosquitto" in pm:
        f["mosq_kib"] = pm["mosquitto"].get("VmRSS_kib_per_session")
    rate = res.get("rate") or {}
    if rate:
        cpu = rate.get("cpu") or {}
        f["rate"] = rate.get("rate")
        f["p50"] = (rate.get("latency_ms") or {}).get(50)
        f["p99"] = (rate.get("latency_ms") or {}).get(99)
        f["p50_1"] = (rate.get("unloaded_latency_ms") or {}).get(50)
        f["p99_1"] = (rate.get("unloaded_latency_ms") or {}).get(99)
        if proxy:
            f["cpu_connect"] = _div(cpu.get(proxy), rate.get("sessions"), 1e3)
        f["mosq_cpu_connect"] = _div(cpu.get("mosquitto"), rate.get("sessions"), 1e3)
        f["client_cpu_connect"] = _div(cpu.get("client"), rate.get("sessions"), 1e3)
    q = res.get("qos1") or {}
    if q:
        cpu = q.get("cpu") or {}
        if proxy:
            f["cpu_msg"] = _div(cpu.get(proxy), q.get("received"), 1e6)
        f["mosq_cpu_msg"] = _div(cpu.get("mosquitto"), q.get("received"), 1e6)
        f["qos1_rate"] = q.get("msgs_per_s")
    for key in ("bulk", "small"):
        b = res.get(key) or {}
        if b:
            f[key + "_mbs"] = b.get("mb_per_s")
            f[key + "_msgs"] = b.get("msgs_per_s")
            byt = (b.get("received") or 0) * (b.get("payload") or 0)
            if proxy:
                f[key + "_cpu_gb"] = _div((b.get("cpu") or {}).get(proxy), byt, 1e9)
    lat = (res.get("latency") or {}).get("latency_ms") or {}
    f["msg_p50"], f["msg_p99"] = lat.get(50), lat.get(99)
    return f


def medians(runs):
    """[{name: value}] -> {name: (median, low, high, n)} over the runs that
    have the figure."""
    out = {}
    for k in {k for r in runs for k in r}:
        v = [r[k] for r in runs if r.get(k) is not None]
        if v:
            out[k] = (statistics.median(v), min(v), max(v), len(v))
    return out


def cell(m, key, spec="%.1f", ranged=True):
    v = m.get(key)
    if v is None:
        return "-"
    med, lo, hi, n = v
    if ranged and n > 1:
        return "%s (%s-%s)" % (spec % med, spec % lo, spec % hi)
    return spec % med


def summarize(results):
    """{target: {figure: (median, low, high, n)}} over results["runs"]."""
    per = {}
    for run in results.get("runs", []):
        for kind, res in run.items():
            per.setdefault(kind, []).append(figures(kind, res))
    return {kind: medians(v) for kind, v in per.items()}


def side_by_side(summary, args):
    """The rows of F1: figure, certbridge, HAProxy, ratio, target."""
    c, h = summary.get("certbridge", {}), summary.get("haproxy", {})
    rows = []
    spec = (("kib", "KiB held / session, both legs (%d idle)" % args.sessions, "%.1f"),
            ("cpu_connect", "CPU ms / proxied connect, full handshakes both legs", "%.2f"),
            ("cpu_msg", "CPU us / relayed QoS 1 message", "%.1f"),
            ("p99", "connect p99 at %d in flight (ms)" % args.concurrency, "%.0f"))
    for key, label, sp in spec:
        cv, hv = c.get(key), h.get(key)
        ratio = cv[0] / hv[0] if cv and hv and hv[0] else None
        tgt = TARGETS.get(key)
        if tgt is None:
            verdict = ""
        elif ratio is None:
            verdict = "target <= %.1fx: not measured" % tgt
        else:
            verdict = "target <= %.1fx %s" % (tgt, "met" if ratio <= tgt else "not met")
        rows.append((label, cell(c, key, sp, False), cell(h, key, sp, False),
                     fmt(ratio, "%.2fx"), verdict))
    return rows


DETAIL = (
    ("held", "idle sessions held (memory phase)", "%.0f"),
    ("kib", "proxy KiB / session (VmRSS delta, both legs)", "%.1f"),
    ("kib_pd", "proxy KiB / session (Private_Dirty)", "%.1f"),
    ("mosq_kib", "mosquitto KiB / session", "%.1f"),
    ("rate", "setup rate (sessions/s)", "%.0f"),
    ("p50", "connect p50 (ms)", "%.1f"),
    ("p99", "connect p99 (ms)", "%.1f"),
    ("p50_1", "connect p50, one at a time (ms)", "%.2f"),
    ("p99_1", "connect p99, one at a time (ms)", "%.2f"),
    ("cpu_connect", "proxy CPU ms / connect", "%.2f"),
    ("mosq_cpu_connect", "mosquitto CPU ms / connect", "%.2f"),
    ("client_cpu_connect", "load generator CPU ms / connect", "%.2f"),
    ("cpu_msg", "proxy CPU us / QoS 1 message", "%.1f"),
    ("mosq_cpu_msg", "mosquitto CPU us / QoS 1 message", "%.1f"),
    ("qos1_rate", "QoS 1 messages/s", "%.0f"),
    ("bulk_mbs", "throughput, bulk (MB/s)", "%.1f"),
    ("bulk_cpu_gb", "proxy CPU s / GB delivered (bulk)", "%.1f"),
    ("small_msgs", "throughput, small (msg/s)", "%.0f"),
    ("small_cpu_gb", "proxy CPU s / GB delivered (small)", "%.1f"),
    ("msg_p50", "message latency p50 (ms)", "%.3f"),
    ("msg_p99", "message latency p99 (ms)", "%.3f"),
)


def detail(summary, kinds):
    rows = []
    for key, label, sp in DETAIL:
        vals = [cell(summary.get(k, {}), key, sp) for k in kinds]
        if any(v != "-" for v in vals):
            rows.append((label,) + tuple(vals))
    return rows


def table(rows, head, out):
    w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(  # noqa: E731
        (str(v).ljust(w[i]) if i == 0 or i == len(r) - 1 else str(v).rjust(w[i]))
        for i, v in enumerate(r)).rstrip()
    print(line(head), file=out)
    print("  ".join("-" * x for x in w), file=out)
    for r in rows:
        print(line(r), file=out)


def print_report(results, args, out=sys.stdout):
    info = results["machine"]
    p = lambda s="": print(s, file=out)  # noqa: E731
    summary = summarize(results)
    results["summary"] = {k: {f: list(v) for f, v in m.items()} for k, m in summary.items()}
    p()
    p("certbridge benchmark, %s; %d interleaved run(s), medians"
      % (results["started"], len(results.get("runs", []))))
    p("machine: %s x %s, %s GiB, %s, kernel %s" % (info.get("nproc"), info.get("cpu", "?"),
                                                   info.get("mem_gib", "?"), info.get("os", "?"),
                                                   info.get("kernel")))
    p("versions: %s (git %s); wolfSSL %s; %s; mosquitto %s; libevent %s; client %s"
      % (info.get("certbridge"), info.get("git", "?"), info.get("wolfssl"),
         info.get("haproxy_v", "haproxy ?"), info.get("mosquitto"), info.get("libevent"),
         info.get("client")))
    tls = results.get("tls") or {}
    if tls:
        p("TLS: " + "; ".join("%s %s" % kv for kv in sorted(tls.items())))
    p("the load generator, the proxy and mosquitto share the same %s cores" % info.get("nproc"))
    p()
    if "certbridge" in summary and "haproxy" in summary:
        table(side_by_side(summary, args),
              ("figure (per device session)", "certbridge", "HAProxy", "ratio", "target"), out)
        r = summary.get("haproxy-reuse")
        if r:
            p("HAProxy with its default upstream TLS reuse (no no-ssl-reuse): CPU ms / connect "
              "%s, connect p99 %s ms" % (cell(r, "cpu_connect", "%.2f", False),
                                         cell(r, "p99", "%.0f", False)))
        p("(targets are figures to watch, not assertions)")
        p()
    kinds = [k for k in ("certbridge", "haproxy", "haproxy-reuse", "direct") if k in summary]
    rows = detail(summary, kinds)
    if rows:
        p("detail: median (range) of the runs")
        table(rows, ("figure",) + tuple(LABEL[k] for k in kinds), out)
        p()
    h = results.get("hold")
    if h:
        p("certbridge holding every session the descriptor limit allows: %d held of %d asked "
          "(descriptor hard limit %d, two per session: %s); %s KiB / session; RSS %s -> %s MiB; "
          "opened in %.0f s, %d in flight; certbridge %d descriptors"
          % (h["held"], h["asked"], h["hard"], h["why"], fmt(h.get("kib")),
             fmt(h["rss_before"] / 1024), fmt(h["rss_after"] / 1024), h["seconds"],
             args.concurrency, h["fds"]))
        if h.get("first_failure"):
            p("  first failure: %s" % h["first_failure"])
        p()

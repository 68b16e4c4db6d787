"""The event= and reason= slugs the code can log are exactly the ones
docs/troubleshooting.md explains, so the two cannot drift apart.

Events: every string literal the C sources pass as the event of
log_begin() or log_msg(), or of any function that hands a `const char
*event` parameter on (found by reading the sources, so a new wrapper is
covered without touching this test). Reasons: every slug of
common/reason.c (but "none", which marks success in metrics only) and any
literal logged as reason=. The docs' side: the first column of the table
under "The events", and of the tables under "Device refusals", "Session
ends" and "Broker refusals".
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "troubleshooting.md"
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def sources():
    out = {}
    for p in sorted((ROOT / "gateway").glob("*.c")) + sorted((ROOT / "common").glob("*.c")):
        # Comments hold examples ("tls-refused" in log.h's), not events.
        out[p] = re.sub(r"/\*.*?\*/", lambda m: " " * len(m.group(0)), p.read_text(),
                        flags=re.S)
    return out


def call_args(text, paren):
    """The arguments (as text) of the call whose '(' is at text[paren]."""
    depth, args, cur, i, in_str = 0, [], [], paren, False
    while i < len(text):
        c = text[i]
        if in_str:
            cur.append(c)
            if c == "\\":
                cur.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            cur.append(c)
        elif c in "([{":
            depth += 1
            if depth > 1:
                cur.append(c)
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append("".join(cur))
                return args
            cur.append(c)
        elif c == "," and depth == 1:
            args.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    return args


def emitters(texts):
    """{function: index of its event argument}: log_begin, log_msg and
    every function with a `const char *event` parameter."""
    found = {"log_begin": 2, "log_msg": 1}
    for t in texts.values():
        for m in re.finditer(r"^([a-z_][a-z0-9_]*)\(([^)]*)\)\s*\{", t, re.M):
            for i, prm in enumerate(p.strip() for p in m.group(2).split(",")):
                if re.search(r"\bchar\s*\*\s*event$", prm):
                    found.setdefault(m.group(1), i)
    return found


def code_events():
    texts = sources()
    events = set()
    for name, idx in emitters(texts).items():
        for t in texts.values():
            for m in re.finditer(r"\b%s\s*\(" % name, t):
                if t[m.start() - 1] == "\n":
                    continue  # the definition
                args = call_args(t, m.end() - 1)
                if len(args) > idx:
                    events |= set(LITERAL.findall(args[idx]))
    return events


def code_reasons():
    table = (ROOT / "common" / "reason.c").read_text()
    reasons = set(re.findall(r'\[REASON_[A-Z_]+\] = "([^"]+)"', table)) - {"none"}
    for t in sources().values():
        reasons |= set(re.findall(r'log_str\(&?\w+,\s*"reason",\s*"([^"]+)"\)', t))
    return reasons


def doc_section(title):
    text = DOC.read_text()
    i = text.index("\n## " + title)
    j = text.find("\n## ", i + 4)
    return text[i:j if j > 0 else None]


def first_column(section):
    out = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            out |= set(re.findall(r"`([a-z0-9-]+)`", line.split("|")[1]))
    return out


def test_the_scan_finds_what_it_must():
    """The scan itself: events logged directly, through session_log_begin,
    through a wrapper (uplink_unavailable), chosen by a ternary."""
    events = code_events()
    for e in ("ready", "device-admitted", "session-closed", "upstream-failed",
              "reload-failed", "upstream-chain-changed", "config-warning"):
        assert e in events, (e, sorted(events))
    assert "tls-refused" not in events  # only in a comment of log.h
    assert all(SLUG.match(e) for e in events), sorted(events)
    assert {"internal", "limit", "expired"} <= code_reasons()


def test_every_event_the_code_logs_is_explained_and_no_other():
    code = code_events()
    docs = first_column(doc_section("The events"))
    assert not code - docs, "logged but not in docs/troubleshooting.md: %s" % sorted(code - docs)
    assert not docs - code, "in docs/troubleshooting.md but never logged: %s" % sorted(docs - code)


def test_every_reason_the_code_logs_is_explained_and_no_other():
    code = code_reasons()
    docs = set()
    for title in ("Device refusals", "Session ends", "Broker refusals"):
        docs |= first_column(doc_section(title))
    assert not code - docs, "logged but not in docs/troubleshooting.md: %s" % sorted(code - docs)
    assert not docs - code, "in docs/troubleshooting.md but never logged: %s" % sorted(docs - code)

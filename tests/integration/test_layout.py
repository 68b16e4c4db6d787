"""The source layout docs/architecture.md promises ("Modules", "Who calls
whom"): dependencies between modules point one way, common/ and tools/ never
reach into gateway/, files stay small, and the repository cites only itself.

Modules are named by file stem; the files of one module (its _int.h, the
session's stage files) count as one. No daemon runs here.
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DIRS = ("gateway", "common", "tools")

# Files that belong to one module (docs/architecture.md, "A session").
PART_OF = {
    "session_int": "session", "intake": "session", "uplink": "session",
    "bridge": "session", "session_judge": "session",
    "config_int": "config", "config_keys": "config", "config_values": "config",
    "config_check": "config", "config_diag": "config",
    "parse_int": "parse", "parse_net": "parse",
    "mqtt_int": "mqtt", "mqtt_connect": "mqtt",
    "judge_id": "judge",
}
INCLUDE = re.compile(r'^#include "([^"]+)\.h"', re.M)


def sources(*dirs, exts=(".c", ".h")):
    for d in dirs:
        for p in sorted((REPO / d).iterdir()):
            if p.suffix in exts and p.is_file():
                yield p


def module_graph():
    graph = {}
    for p in sources(*DIRS):
        mod = PART_OF.get(p.stem, p.stem)
        for inc in INCLUDE.findall(p.read_text()):
            dep = PART_OF.get(inc, inc)
            if dep != mod:
                graph.setdefault(mod, set()).add(dep)
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == "open":
                return stack[stack.index(v):] + [v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = "done"
        return None

    for u in sorted(graph):
        if u not in state:
            found = visit(u)
            if found:
                return found
    return None


def test_no_module_includes_another_in_a_loop():
    graph = module_graph()
    assert "session" in graph and "server" in graph, sorted(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_one():
    """The check above can fail: a loop of three is found."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("folder", ["common", "tools"])
def test_shared_code_never_includes_the_gateway(folder):
    gateway = {p.stem for p in sources("gateway", exts=(".h",))}
    bad = [(p.name, inc) for p in sources(folder)
           for inc in INCLUDE.findall(p.read_text())
           if inc in gateway and not (REPO / folder / (inc + ".h")).exists()]
    assert not bad, bad


def test_no_file_over_800_lines():
    long = [(str(p.relative_to(REPO)), n)
            for p in sources(*DIRS, exts=(".c", ".h", ".py", ".sh"))
            if (n := len(p.read_text().splitlines())) > 800]
    assert not long, long


def test_the_repository_cites_only_itself():
    """Code, tests and docs name docs/ of this repository, never files
    beside the checkout."""
    outside = re.compile(r"\.\./shared/|shared/SPEC\.md|PLATFORM-NOTES|STYLE\.md")
    found = []
    for p in REPO.rglob("*"):
        rel = p.relative_to(REPO)
        if (not p.is_file() or rel.parts[0] in ("build", ".git")
                or p.suffix not in (".c", ".h", ".py", ".md", ".sh", ".ini", "")
                or p.name == Path(__file__).name):
            continue
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        found += ["%s:%d" % (rel, i + 1) for i, line in enumerate(text.splitlines())
                  if outside.search(line)]
    assert not found, found

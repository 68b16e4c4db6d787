"""Fixtures shared by the certbridge integration tests.

    pki             session: the mkpki lab layout in a temporary folder (cbtest.Pki)
    broker          module: a TLS mosquitto on the lab certificates (cbtest.Broker)
    gateway         module: certbridge between devices and that broker (cbtest.Gateway)
    make_broker     function: factory for private brokers (stopped at teardown)
    make_gateway    function: factory for private gateways (stopped, exit code checked)

Run with the Debian python (it has paho-mqtt and cryptography):
    CERTBRIDGE=$PWD/build/certbridge /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

When a test fails, the tail of the log of every broker and gateway that ran
during it is appended to the failure report. Every process is ours and is
stopped by its PID; nothing is ever killed by name.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
from cbfixtures import broker, pki  # noqa: E402,F401


def _check_binary():
    b = cbtest.certbridge_binary()
    if not os.environ.get("CERTBRIDGE") and not os.path.exists(b):
        pytest.skip("certbridge is not built (%s); set CERTBRIDGE" % b)
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail("CERTBRIDGE=%s is not an executable file" % b)
    return b


@pytest.fixture(scope="session")
def certbridge_bin():
    return _check_binary()


@pytest.fixture(scope="module")
def gateway(pki, broker, certbridge_bin, tmp_path_factory):
    g = cbtest.Gateway(pki, tmp_path_factory.mktemp("gateway"), broker.port,
                       binary=certbridge_bin)
    g.start()
    yield g
    _stop_gateway(g)


# Problems found while stopping gateways in fixture teardowns. pytest shows
# only the first exception when several finalizers fail in one teardown
# (e.g. a function fixture and the module's gateway after the last test):
# the report hook below lists all of them.
_TEARDOWN_PROBLEMS = []


def _stop_gateway(g):
    was_running = g.running()
    try:
        rc = g.stop()  # raises under CB_VALGRIND=1 on a non-zero exit
        if was_running:
            assert rc == 0, "certbridge exited with %s on SIGTERM (the contract says 0)\n%s" % (
                rc, g.report())
    except AssertionError as e:
        _TEARDOWN_PROBLEMS.append(str(e))
        raise


@pytest.fixture
def make_broker(pki, tmp_path_factory):
    made = []

    def make(**kw):
        b = cbtest.Broker(pki, tmp_path_factory.mktemp("broker"), **kw)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def make_gateway(pki, certbridge_bin, tmp_path_factory):
    made = []

    def make(upstream_port, overrides=None, **kw):
        g = cbtest.Gateway(pki, tmp_path_factory.mktemp("gateway"), upstream_port,
                           overrides=overrides, binary=certbridge_bin, **kw)
        made.append(g)
        return g.start()

    yield make
    problems = []
    for g in made:
        try:
            _stop_gateway(g)
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._cb_t0 = time.monotonic()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "teardown" and _TEARDOWN_PROBLEMS:
        for i, text in enumerate(_TEARDOWN_PROBLEMS, 1):
            rep.sections.append(("gateway teardown problem %d of %d"
                                 % (i, len(_TEARDOWN_PROBLEMS)), text))
        del _TEARDOWN_PROBLEMS[:]
    if rep.failed and rep.when in ("setup", "call"):
        t0 = getattr(item, "_cb_t0", 0.0)
        procs = cbtest.alive_during(t0, time.monotonic())
        if rep.when == "setup":
            # A module fixture that failed once fails every later test
            # from its cache: show the logs only where it happened.
            procs = [p for p in procs if p.started_at >= t0]
        for p in procs:
            rep.sections.append(("%s log (pid %s)" % (p.kind, p.pid), p.report()))


def pytest_sessionfinish(session, exitstatus):
    cbtest.stop_all()

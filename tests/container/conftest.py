"""Fixtures of the container checks (make test-container): the test PKI
and a TLS mosquitto on this machine, from tests/integration's cbtest."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import cbtest  # noqa: E402


@pytest.fixture(scope="session")
def image():
    name = os.environ.get("CB_IMAGE")
    if not name:
        pytest.fail("CB_IMAGE is not set: run make test-container")
    return name


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return cbtest.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(pki, tmp_path_factory):
    b = cbtest.Broker(pki, tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()

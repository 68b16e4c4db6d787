"""Fixtures of the container checks (make test-container): the test PKI
and a TLS mosquitto on this machine, from tests/integration's cbfixtures."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
from cbfixtures import broker, pki  # noqa: E402,F401


@pytest.fixture(scope="session")
def image():
    name = os.environ.get("CB_IMAGE")
    if not name:
        pytest.fail("CB_IMAGE is not set: run make test-container")
    return name

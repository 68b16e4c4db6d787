"""The fixtures every suite that runs certbridge against the lab shares
(tests/integration, tests/container, tests/cross): import them into a
conftest.py by name.

    pki      session: the mkpki lab layout in a temporary folder (cbtest.Pki)
    broker   module: a TLS mosquitto on the lab certificates (cbtest.Broker)
"""

import pytest

import cbtest


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return cbtest.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(pki, tmp_path_factory):
    b = cbtest.Broker(pki, tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()

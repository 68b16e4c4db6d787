"""Fixtures of the ARM checks (make test-cross, docs/install.md "ARM
gateways"): the test PKI and a TLS mosquitto on this machine, and the cross
build run under qemu-user."""
import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
from cbfixtures import broker, pki  # noqa: E402,F401


class Cross:
    """The build of one ARCH: its folder, and how to run its binaries."""

    def __init__(self, arch, build, qemu):
        self.arch = arch
        self.build = build
        self.qemu = qemu

    def binary(self, name="certbridge"):
        return os.path.join(self.build, name)

    def wrapper(self, folder, name="certbridge"):
        """An executable that runs NAME under qemu-user in its own process
        (exec: the PID a test signals is the emulated daemon's)."""
        path = os.path.join(str(folder), name + "-" + self.arch)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec %s %s \"$@\"\n"
                    % (" ".join(shlex.quote(a) for a in self.qemu),
                       shlex.quote(self.binary(name))))
        os.chmod(path, 0o755)
        return path


@pytest.fixture(scope="session")
def cross():
    arch = os.environ.get("CB_CROSS_ARCH")
    build = os.environ.get("CB_CROSS_BUILD")
    qemu = shlex.split(os.environ.get("CB_QEMU", ""))
    if not (arch and build and qemu):
        pytest.fail("CB_CROSS_ARCH, CB_CROSS_BUILD and CB_QEMU are not set: run make test-cross")
    return Cross(arch, build, qemu)

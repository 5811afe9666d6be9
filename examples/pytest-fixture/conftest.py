"""A pytest fixture that brings up porthole's network lab (real miniupnpd routers in
network namespaces) for the test session and takes it down afterwards.

Needs root and the installed `porthole-lab` (package porthole). Run:
    PORTHOLE_LAB_PREFIX=myproj pytest-3 examples/pytest-fixture
Tests take the `lab` fixture and run their program inside a lab host with
`lab.exec("lan1", ...)`.
"""

import os
import shutil
import subprocess

import pytest

PORTHOLE_LAB = shutil.which("porthole-lab") or "/usr/bin/porthole-lab"


class Lab:
    """The running lab: its addresses (from `porthole-lab env`) and a way to run commands
    in its namespaces."""

    def __init__(self, env: dict):
        self.env = env
        self.r1_lan = env["LAB_R1_LAN"]
        self.r1_wan = env["LAB_R1_WAN"]
        self.lan1 = env["LAB_LAN1"]
        self.rootdesc = env["LAB_R1_ROOTDESC"]

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """`porthole-lab ARGS...`, e.g. run("upnp-table", "r1")."""
        return subprocess.run([PORTHOLE_LAB, *args], capture_output=True, text=True,
                              timeout=timeout)

    def exec(self, ns: str, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run CMD in lab namespace NS (inet, r1, r2, lan1, lan1b, lan2)."""
        return self.run("exec", ns, *cmd, timeout=timeout)


def _env() -> dict:
    out = subprocess.run([PORTHOLE_LAB, "env"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    pairs = (line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {k: v.strip("'\"") for k, v in pairs}


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.fail("porthole-lab needs root (network namespaces)")
    up = subprocess.run([PORTHOLE_LAB, "up"], capture_output=True, text=True, timeout=60)
    if up.returncode != 0:
        subprocess.run([PORTHOLE_LAB, "down"], capture_output=True, timeout=60)
        pytest.fail(f"porthole-lab up failed:\n{up.stderr}")
    try:
        yield Lab(_env())
    finally:
        subprocess.run([PORTHOLE_LAB, "down"], capture_output=True, timeout=60)

#!/usr/bin/python3
"""Helpers for the `porthole nat` scenarios: running it with a lab STUN server only,
and proving that nothing but that server was contacted beyond the router."""

import json

from porthole_lab import porthole  # first: puts labkit on the path
import labkit  # noqa: E402

STUN1, STUN2 = "198.51.100.10", "198.51.100.11"   # stund in inet (RFC 5780: two IPs)
STUN = STUN1


def nat(ns: str, *args: str, stun=(STUN,), timeout: float = 30.0):
    """`porthole nat --json --stun ...` in namespace ns; returns (Result, JSON or None).
    Always names lab servers: the built-in default list is public hosts."""
    argv = ["nat", "--json"]
    for s in stun:
        argv += ["--stun", s]
    r = porthole(ns, *argv, *args, timeout=timeout)
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        return r, None


class OtherTraffic:
    """Counts packets r1 forwards from its LAN to the internet to any address other
    than `allowed` (a table of its own on r1, removed on exit): proof that a command
    contacted no one else out there."""

    TABLE = "porthole_nat_other"

    def __init__(self, *allowed: str):
        self.allowed = allowed or (STUN1, STUN2)

    def __enter__(self):
        labkit.run("r1", ["nft", "delete", "table", "inet", self.TABLE])
        script = (f"table inet {self.TABLE} {{\n  chain count {{\n"
                  f"    type filter hook forward priority -300;\n"
                  f"    iifname \"lan\" oifname \"wan\" ip daddr != {{ {', '.join(self.allowed)} }} counter\n"
                  f"  }}\n}}\n")
        r = labkit.run("r1", ["nft", "-f", "-"], input=script)
        if not r.ok:
            raise RuntimeError(f"nft failed: {r}")
        return self

    def packets(self) -> int:
        r = labkit.run("r1", ["nft", "list", "table", "inet", self.TABLE])
        words = r.stdout.split()
        if "packets" not in words:
            raise RuntimeError(f"no counter in: {r.stdout}")
        return int(words[words.index("packets") + 1])

    def __exit__(self, *exc):
        labkit.run("r1", ["nft", "delete", "table", "inet", self.TABLE])

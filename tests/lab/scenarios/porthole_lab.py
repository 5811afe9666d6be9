#!/usr/bin/python3
"""Running the porthole binary inside the lab, for the scenario tests.

The binary comes from PORTHOLE_BIN (CTest sets it). Each LAN host gets its own state
directory under a per-run temporary directory, as two real machines would have.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import labkit  # noqa: E402

BIN = os.environ.get("PORTHOLE_BIN", "")
GATEWAY = "192.168.1.1"
WAN_IP = "203.0.113.2"
LAN1, LAN1B = "192.168.1.100", "192.168.1.101"
PUBLIC = "inet"   # namespace of the public hosts (198.51.100.20...)

_state_root = Path(tempfile.mkdtemp(prefix="porthole-lab-state-"))


def state_dir(ns: str) -> Path:
    return _state_root / ns


def _stopped_or_gone(proc) -> bool:
    if proc.poll() is not None:
        return True
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] == "T"
    except OSError:
        return True


def run_paused(step: str, *args: str) -> bool:
    """Start porthole ARGS in lan1 paused at `step` (PORTHOLE_TEST_PAUSE_AT, a test-only
    hook, src/state/state_store.hpp); kill it there with SIGKILL. True if it stopped."""
    argv = [labkit.IP, "netns", "exec", labkit.ns_name("lan1"), BIN, *args,
            "--state-dir", str(state_dir("lan1"))]
    env = {"PORTHOLE_TEST_PAUSE_AT": step, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    labkit.wait_until(lambda: _stopped_or_gone(proc), timeout=20)
    was_stopped = proc.poll() is None
    proc.kill()  # SIGKILL, also to a stopped process
    proc.wait()
    return was_stopped


def porthole(ns: str, *args: str, timeout: float = 30.0, state: Path = None) -> labkit.Result:
    """Run `porthole ARGS --state-dir DIR` in namespace ns (harness timeout: a bound, so a
    hang fails the test instead of stalling it)."""
    if not BIN or not Path(BIN).exists():
        raise RuntimeError("PORTHOLE_BIN must point at the porthole binary")
    argv = [BIN, *args, "--state-dir", str(state or state_dir(ns))]
    return labkit.run(ns, argv, timeout=timeout)


# Python source for a fake UPnP device run in a LAN namespace: `u`, a UDP socket on
# port 1900 that has joined the SSDP group on address `me` (needs socket and struct).
SSDP_LISTENER = r"""
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
u.bind(("0.0.0.0", 1900))
u.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton(me)))
"""


def porthole_json(ns: str, *args: str, **kw):
    """Like porthole() with --json; returns (Result, parsed object or None)."""
    r = porthole(ns, *args, "--json", **kw)
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        return r, None


def entries_for(int_ip: str, int_port: int, proto: str = "TCP") -> list:
    """The router's live redirects (read on the router itself) to int_ip:int_port."""
    return [m for m in labkit.upnp_table("r1")
            if m.int_ip == int_ip and m.int_port == int_port and m.proto == proto.upper()]


class PacketCounter:
    """Counts TCP and UDP packets from one LAN host to the router, in a table of its own
    on the router (removed on exit): proof that a command sent nothing. ICMP and IGMP are
    left out: the host's kernel sends them on its own (a port-unreachable for a late SSDP
    answer to an earlier command that has exited, a group report), never the command.
    With forwarded=True it also counts what r1 forwards from that host (to the lab's
    internet: a rendezvous, a STUN server, a peer). `match` narrows what is counted (nft
    words, e.g. "udp dport 1900": only SSDP); `ns` counts in another namespace than r1."""

    TABLE = "porthole_count"

    def __init__(self, src_ip: str, forwarded: bool = False,
                 match: str = "ip protocol { tcp, udp }", ns: str = "r1"):
        self.src_ip = src_ip
        self.hooks = ("input", "forward") if forwarded else ("input",)
        self.match = match.split()
        self.ns = ns

    def __enter__(self):
        labkit.run(self.ns, ["nft", "delete", "table", "inet", self.TABLE])
        cmds = [["nft", "add", "table", "inet", self.TABLE]]
        for hook in self.hooks:
            cmds += [["nft", "add", "chain", "inet", self.TABLE, hook,
                      f"{{ type filter hook {hook} priority -300 ; }}"],
                     ["nft", "add", "rule", "inet", self.TABLE, hook, "ip", "saddr", self.src_ip,
                      *self.match, "counter"]]
        for c in cmds:
            r = labkit.run(self.ns, c)
            if not r.ok:
                raise RuntimeError(f"nft failed: {r}")
        return self

    def packets(self) -> int:
        r = labkit.run(self.ns, ["nft", "list", "table", "inet", self.TABLE])
        counts = [int(w[w.index("packets") + 1])
                  for w in (line.split() for line in r.stdout.splitlines()) if "packets" in w]
        if len(counts) != len(self.hooks):
            raise RuntimeError(f"no counter in: {r.stdout}")
        return sum(counts)

    def __exit__(self, *exc):
        labkit.run(self.ns, ["nft", "delete", "table", "inet", self.TABLE])


class RouterFilter:
    """Drops chosen LAN->router traffic on r1 in a table of its own (removed on exit):
    a router that does not speak a protocol. PCP and NAT-PMP share UDP 5351 and differ
    in the first payload byte (version 2 vs 0), so each can be silenced alone."""

    TABLE = "porthole_filter"
    RULES = {
        "pcp": "udp dport 5351 @th,64,8 2 drop",
        "natpmp": "udp dport 5351 @th,64,8 0 drop",
        # No UPnP at all: neither SSDP nor the HTTP server (a cached control URL must
        # not reach it either). "ssdp" silences only the search.
        "upnp": "udp dport 1900 drop\n    iifname \"lan\" tcp dport 5000 drop",
        "ssdp": "udp dport 1900 drop",
        # Only the mapping requests (PCP opcode 1, NAT-PMP opcodes 1-2): the service
        # still answers probes, then goes silent.
        "pcp-map": "udp dport 5351 @th,64,8 2 @th,72,8 1 drop",
        "natpmp-map": "udp dport 5351 @th,64,8 0 @th,72,8 != 0 drop",
        # 30 % of everything the LAN sends to the router (requests, TCP segments to the
        # UPnP HTTP server): a lossy Wi-Fi link. The kernel here has no netem.
        "loss30": "iifname \"lan\" numgen random mod 100 < 30 drop",
    }

    def __init__(self, *protocols: str):
        self.protocols = protocols

    def __enter__(self):
        labkit.run("r1", ["nft", "delete", "table", "inet", self.TABLE])
        rules = "\n".join(f"    {self.RULES[p]}" for p in self.protocols)
        script = (f"table inet {self.TABLE} {{\n  chain in {{\n"
                  f"    type filter hook input priority -300;\n{rules}\n  }}\n}}\n")
        r = labkit.run("r1", ["nft", "-f", "-"], input=script)
        if not r.ok:
            raise RuntimeError(f"nft failed: {r}")
        return self

    def __exit__(self, *exc):
        labkit.run("r1", ["nft", "delete", "table", "inet", self.TABLE])


def cleanup(*hosts: str) -> None:
    """Remove every mapping our test hosts hold on r1 (UPnP table, read on the router),
    so one scenario's leftovers cannot change the next one's outcome."""
    for m in labkit.upnp_table("r1"):
        for ns, ip in (("lan1", LAN1), ("lan1b", LAN1B)):
            if m.int_ip == ip and (not hosts or ns in hosts):
                labkit.run(ns, ["upnpc", "-u", f"http://{GATEWAY}:5000/rootDesc.xml",
                                "-d", str(m.ext_port), m.proto], timeout=10)
    for ns in ("lan1", "lan1b"):
        shutil.rmtree(state_dir(ns), ignore_errors=True)


def router_idle(timeout: float = 15.0) -> bool:
    """Wait until r1 answers all three protocols again. miniupnpd handles one request at
    a time and a denied low port makes it scan all 65535 ports first (about 1 s per
    request, and every retransmission queues another): the next case must not start
    while it is still busy."""
    def all_up():
        r = labkit.run("lan1", [BIN, "probe", "--json", "--timeout", "1",
                                "--state-dir", str(state_dir("lan1"))], timeout=10)
        try:
            return all(p["available"] for p in json.loads(r.stdout)["protocols"].values())
        except (ValueError, KeyError):
            return False
    return labkit.wait_until(all_up, timeout=timeout, interval=0.2)


def finish(checker: labkit.Checker) -> None:
    shutil.rmtree(_state_root, ignore_errors=True)
    sys.exit(checker.finish())

#!/usr/bin/python3
"""Helpers for the `porthole punch` scenarios: peer IDs, running both peers of a punch at
once, and the --exec program that proves the punched socket carries bytes both ways.

Every run names lab servers only: the rendezvous is `porthole serve` in inet (`lab.sh
serve-start`), the extra STUN server is the lab's stund (the built-in defaults are
public hosts).
"""

import json
import re
import subprocess
import time
from typing import NamedTuple, Optional

from porthole_lab import BIN, _state_root, porthole_json, state_dir  # first: labkit's path
import labkit  # noqa: E402

RENDEZVOUS = "198.51.100.12:3478"   # `porthole serve` (lab.sh serve-start)
STUN = "198.51.100.10:3478"          # stund in inet: a second view of the NAT's mapping
ADDRESS = {"lan1": "192.168.1.100", "lan1b": "192.168.1.101", "lan2": "192.168.2.100",
           "lanc": "192.168.4.100"}
PATH_KINDS = ("host", "server-reflexive", "peer-reflexive", "mapped")

# The --exec program (porthole hands it the punched, connect()ed UDP socket as fd 3).
# Its datagrams may reach the peer before the peer's porthole has handed the socket on
# (the peer then drops them as not STUN), so it repeats its line until it has the peer's
# line and the peer says it has ours; STUN checks still arriving are skipped. It prints
# one "exchange: {json}" line: what it got and the environment porthole gave it.
EXCHANGE = r"""
import json, os, socket, sys, time
name, limit = sys.argv[1], float(sys.argv[2])
s = socket.socket(fileno=3)
s.settimeout(0.05)
got, heard_us, deadline = None, False, time.monotonic() + limit
def connected():
    try:
        peer = s.getpeername()
    except OSError:
        return False
    # A relayed punch hands over an AF_UNIX socketpair end: its peer has no name.
    return peer[1] != 0 if isinstance(peer, tuple) else s.family == socket.AF_UNIX
def line(heard):
    return f"porthole-lab {name} heard={int(heard)}\n".encode()
while time.monotonic() < deadline and not (got and heard_us):
    try:
        s.send(line(got is not None))
        data = s.recv(2048)
    except socket.timeout:
        continue
    except OSError:   # ICMP unreachable from a path that is not up yet
        time.sleep(0.05)
        continue
    words = data.decode(errors="replace").split()
    if len(words) == 3 and words[0] == "porthole-lab":
        got = words[1]
        heard_us = heard_us or words[2] == "heard=1"
for _ in range(3):   # so the peer hears that we heard it, even if it is still waiting
    try:
        s.send(line(got is not None))
    except OSError:
        pass
    time.sleep(0.02)
print("exchange: " + json.dumps({
    "name": name, "got": got, "heard_us": heard_us,
    "listen_fds": os.environ.get("LISTEN_FDS"),
    "listen_pid_is_mine": os.environ.get("LISTEN_PID") == str(os.getpid()),
    "peer": os.environ.get("PORTHOLE_PEER"), "peer_id": os.environ.get("PORTHOLE_PEER_ID"),
    "udp": s.type == socket.SOCK_DGRAM, "connected": connected()}),
    flush=True)
sys.exit(0 if got else 1)
"""
_exchange_file = _state_root / "punch_exchange.py"


def exchange_command(name: str, limit: float = 5.0) -> str:
    """The --exec command line: send `name`, receive the peer's, for at most `limit` s.
    `exec`: LISTEN_PID names the shell porthole starts, so the shell becomes the program."""
    if not _exchange_file.exists():
        _exchange_file.write_text(EXCHANGE)
    return f"exec {labkit.PYTHON} {_exchange_file} {name} {limit}"


def peer_id(ns: str) -> Optional[str]:
    """The peer ID of host ns (its state dir), from `porthole id --json` (made on first use)."""
    r, j = porthole_json(ns, "id")
    return j.get("id") if r.ok and isinstance(j, dict) else None


def error_of(j) -> dict:
    """The error of a --json failure object as {name, message} (the error object of the
    other commands, {"error": {"name", "code", "message"}}, or a flat {"error": NAME,
    "message": ...})."""
    if not isinstance(j, dict) or "error" not in j:
        return {}
    e = j["error"]
    if isinstance(e, dict):
        return {"name": e.get("name", ""), "message": e.get("message", "")}
    return {"name": str(e), "message": str(j.get("message", ""))}


class PunchResult(NamedTuple):
    ns: str
    rc: int                  # exit status; -9 when the harness killed it
    timed_out: bool
    stdout: str
    stderr: str
    json: Optional[dict]     # the JSON porthole printed (result or error), if any
    exchange: Optional[dict]  # what the --exec program reported, if it ran

    def __str__(self) -> str:
        state = "timed out" if self.timed_out else f"rc={self.rc}"
        return f"{self.ns}: {state}\n--stdout--\n{self.stdout}--stderr--\n{self.stderr}"

    @property
    def path(self) -> str:
        return self.json.get("path", "") if isinstance(self.json, dict) else ""

    def verbose(self) -> tuple:
        """(path kind, ms) from the -v line on stderr ("punched KIND path: ... in N ms")."""
        m = re.search(r"punched (\S+) path: .* in (\d+) ms", self.stderr)
        return (m.group(1), int(m.group(2))) if m else ("", None)

    @property
    def elapsed_ms(self):
        return self.json.get("elapsed_ms") if isinstance(self.json, dict) else None

    def says(self, text: str) -> bool:
        """`text` (any case) in stderr or in the JSON error's message or hint."""
        hint = self.json.get("hint", "") if isinstance(self.json, dict) else ""
        where = f"{self.stderr} {error_of(self.json).get('message', '')} {hint}"
        return text.lower() in where.lower()


def _parse(stdout: str):
    """Split stdout into porthole's JSON object and the --exec program's report."""
    exchange, rest = None, []
    for ln in stdout.splitlines():
        if ln.startswith("exchange: "):
            try:
                exchange = json.loads(ln[len("exchange: "):])
            except ValueError:
                pass
        else:
            rest.append(ln)
    text, found = "\n".join(rest), None
    decoder, pos = json.JSONDecoder(), text.find("{")
    while pos >= 0 and found is None:
        try:
            found = decoder.raw_decode(text, pos)[0]
        except ValueError:
            pos = text.find("{", pos + 1)
    return found, exchange


class Punch:
    """`porthole punch PEER --rendezvous ... ARGS` started in namespace ns (not waited for)."""

    def __init__(self, ns: str, peer: str, *args: str, rendezvous: str = RENDEZVOUS,
                 stun: Optional[str] = STUN, json_out: bool = True, exchange: bool = True,
                 state=None):
        argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), BIN, "punch", peer]
        if rendezvous:
            argv += ["--rendezvous", rendezvous]
        if stun:
            argv += ["--stun", stun]
        if json_out:
            argv.append("--json")
        if exchange:
            argv += ["--exec", exchange_command(ns)]
        argv += [*args, "--state-dir", str(state or state_dir(ns))]
        self.ns = ns
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def wait(self, bound: float) -> PunchResult:
        """Wait at most `bound` seconds (a bound against hangs, not a timing check)."""
        timed_out = False
        try:
            out, err = self.proc.communicate(timeout=max(bound, 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.proc.kill()   # `ip netns exec` exec()s porthole: this is our porthole
            out, err = self.proc.communicate()
        found, exchange = _parse(out)
        return PunchResult(self.ns, self.proc.returncode, timed_out, out, err, found, exchange)


def punch(ns: str, peer: str, *args: str, bound: float = 30.0, **kw) -> PunchResult:
    """One punch run to its end (the peer is someone else's business)."""
    return Punch(ns, peer, *args, **kw).wait(bound)


def punch_pair(a: str, a_id: str, b: str, b_id: str, *args: str, a_args=(), b_args=(),
               bound: float = 30.0, **kw):
    """Both peers at once: a punches b and b punches a; returns (a's, b's) results."""
    pa = Punch(a, b_id, *args, *a_args, **kw)
    pb = Punch(b, a_id, *args, *b_args, **kw)
    deadline = time.monotonic() + bound
    ra = pa.wait(deadline - time.monotonic())
    rb = pb.wait(deadline - time.monotonic())
    return ra, rb


def exchanged(ra: PunchResult, rb: PunchResult) -> bool:
    """Each side's --exec program received the other's line over the punched socket."""
    return (ra.exchange is not None and rb.exchange is not None
            and ra.exchange.get("got") == rb.ns and rb.exchange.get("got") == ra.ns)


def udp_mappings(router: str, int_ip: str, int_port: int) -> list:
    """The router's live UDP redirects to int_ip:int_port (UPnP, NAT-PMP and PCP alike)."""
    return [m for m in labkit.upnp_table(router)
            if m.proto == "UDP" and m.int_ip == int_ip and m.int_port == int_port]


def stop_routers(c: labkit.Checker) -> None:
    """lab.sh router-stop for r1 and r2, each checked: no gateway answers PCP, NAT-PMP or
    UPnP, so a punch maps nothing and the NAT modes alone decide."""
    for r in ("r1", "r2"):
        res = labkit.lab("router-stop", r)
        c.check(res.ok, f"lab.sh router-stop {r}", res)


def restore_routers(c: labkit.Checker) -> None:
    """r1 and r2 back in eim mode and miniupnpd running again, each checked."""
    for r in ("r1", "r2"):
        res = labkit.lab("nat-mode", r, "eim")
        c.check(res.ok, f"{r} back in eim mode", res)
        res = labkit.lab("router-start", r)
        c.check(res.ok, f"lab.sh router-start {r}", res)

#!/usr/bin/python3
"""labkit: helpers for scenarios that run against porthole's network lab (lab.sh).

Stdlib only. Everything runs through `ip netns exec` in the lab's namespaces; nothing
touches the root namespace. Namespaces are named by their short names (inet, r1, r2,
lan1, lan1b, lan2); the prefix comes from PORTHOLE_LAB_PREFIX like in lab.sh.

Typical use:
    import labkit
    with labkit.listen("lan1", 40000, "tcp", token="lan1"):
        assert labkit.reach("inet", "203.0.113.2", 40000, "tcp")

Scenarios assert outcomes (did the packet arrive, did the mapping appear), never how fast
something happened: timeouts here are upper bounds so a failure cannot hang a test.
"""

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

LAB_SH = Path(__file__).resolve().parent / "lab.sh"
# Explicit interpreter for helpers started inside namespaces: PATH may hold a pyenv shim.
PYTHON = "/usr/bin/python3"
IP = shutil.which("ip") or "/usr/sbin/ip"
NAMESPACES = ("inet", "r1", "r2", "lan1", "lan1b", "lan2")
# Only while `lab.sh up-double-nat` has added them (r3 behind r1, its host lan3, and
# stun3, r3's STUN server on r1's LAN).
DOUBLE_NAT_NAMESPACES = ("r3", "lan3", "stun3")
# Only while `lab.sh cgnat-start` has added them (the ISP's NAT box isp, the home router
# rc behind it, and rc's host lanc).
CGNAT_NAMESPACES = ("isp", "rc", "lanc")


def prefix() -> str:
    return os.environ.get("PORTHOLE_LAB_PREFIX", "phlab")


def ns_name(short: str) -> str:
    """Full namespace name for a lab short name ("lan1" -> "phlab-lan1")."""
    known = NAMESPACES + DOUBLE_NAT_NAMESPACES + CGNAT_NAMESPACES
    if short not in known:
        raise ValueError(f"unknown lab namespace {short!r}; one of {known}")
    return f"{prefix()}-{short}"


@dataclass
class Result:
    rc: int            # exit status; -9 when killed on timeout
    stdout: str
    stderr: str
    elapsed: float     # seconds; for diagnostics only, never assert on it
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def __str__(self) -> str:
        state = "timed out" if self.timed_out else f"rc={self.rc}"
        return f"{state} after {self.elapsed:.2f}s\n--stdout--\n{self.stdout}--stderr--\n{self.stderr}"


def _run(argv, timeout: float, input: Optional[str] = None) -> Result:
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)
    except subprocess.TimeoutExpired as e:
        # `ip netns exec` execs the command, so subprocess killed the command itself.
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return Result(-9, out, err, time.monotonic() - t0, timed_out=True)


def run(ns: str, argv, timeout: float = 10.0, input: Optional[str] = None) -> Result:
    """Run argv (list) in lab namespace ns; kill it after timeout seconds."""
    return _run([IP, "netns", "exec", ns_name(ns), *argv], timeout, input)


def lab(*args: str, timeout: float = 60.0) -> Result:
    """Run `lab.sh ARGS...` (e.g. lab("router-reboot"), lab("router-drop", "on"))."""
    return _run(["/bin/bash", str(LAB_SH), *args], timeout)


def lab_env() -> dict:
    """lab.sh's `env` output as a dict (LAB_R1_WAN, LAB_LAN1, LAB_R1_ROOTDESC, ...)."""
    r = lab("env")
    if not r.ok:
        raise RuntimeError(f"lab.sh env failed: {r}")
    env = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip('"')
    return env


def require_lab() -> None:
    """Raise with a clear message unless the lab's namespaces exist."""
    missing = [n for n in NAMESPACES if not Path("/run/netns", ns_name(n)).exists()]
    if missing:
        raise RuntimeError(f"lab is not up (missing {missing}); run: {LAB_SH} up")


def router_log(router: str = "r1") -> str:
    """miniupnpd's debug log for router r1/r2 (for diagnostics in failure messages)."""
    path = Path(lab_env()["PORTHOLE_LAB_DIR"], f"miniupnpd-{router}.log")
    return path.read_text(errors="replace") if path.exists() else ""


# ------------------------------------------------------------------ router table

class Mapping(NamedTuple):
    proto: str        # "TCP" / "UDP"
    ext_port: int
    int_ip: str
    int_port: int


def upnp_table(router: str = "r1") -> list:
    """The router's live redirects (UPnP, NAT-PMP and PCP alike) as Mapping tuples."""
    r = lab("upnp-table", router)
    if not r.ok:
        raise RuntimeError(f"lab.sh upnp-table failed: {r}")
    out = []
    for line in r.stdout.splitlines():
        proto, ext, ip, port = line.split()
        out.append(Mapping(proto, int(ext), ip, int(port)))
    return out


def has_mapping(router: str, proto: str, ext_port: int,
                int_ip: Optional[str] = None, int_port: Optional[int] = None) -> bool:
    return any(m.proto == proto.upper() and m.ext_port == ext_port
               and (int_ip is None or m.int_ip == int_ip)
               and (int_port is None or m.int_port == int_port)
               for m in upnp_table(router))


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll predicate() until it is true or timeout passes; returns its last verdict."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# ------------------------------------------------------------------ listener / probe

# Runs inside a namespace. Answers every TCP connection / UDP datagram with
# "TOKEN PEER_IP:PEER_PORT NONCE": the token says which listener answered, the peer is
# the source address the listener saw (after any NAT), the nonce proves the round trip.
_SERVER = r"""
import socket, sys, threading
transport, host, port, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def answer(data, peer):
    nonce = data.split(b"\n")[0].decode(errors="replace")[:200]
    print(f"PEER {peer[0]}:{peer[1]}", flush=True)
    return f"{token} {peer[0]}:{peer[1]} {nonce}\n".encode()
kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
if transport == "udp":
    print("READY", s.getsockname()[1], flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(answer(data, peer), peer)
def serve(c, peer):
    with c:
        c.settimeout(5)
        data = b""
        try:
            while b"\n" not in data and len(data) < 2048:
                chunk = c.recv(2048)
                if not chunk:
                    break
                data += chunk
            c.sendall(answer(data, peer))
        except OSError:
            pass
s.listen(16)
print("READY", s.getsockname()[1], flush=True)
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"""

# Runs inside a namespace: one TCP connection or UDP exchange, prints the answer line.
# UDP is resent every 250 ms until the deadline (loss is harmless to the verdict); an
# ICMP port-unreachable (the router's reject) ends it at once.
_CLIENT = r"""
import socket, sys, time
transport, host, port, timeout, src, nonce = sys.argv[1:7]
port, timeout = int(port), float(timeout)
deadline = time.monotonic() + timeout
try:
    if transport == "tcp":
        s = socket.create_connection((host, port), timeout,
                                     source_address=(src, 0) if src else None)
        s.settimeout(max(0.01, deadline - time.monotonic()))
        s.sendall(nonce.encode() + b"\n")
        data = b""
        while b"\n" not in data:
            chunk = s.recv(2048)
            if not chunk:
                break
            data += chunk
        print(data.decode(errors="replace").strip())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if src:
            s.bind((src, 0))
        s.connect((host, port))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit(1)
            s.send(nonce.encode() + b"\n")
            s.settimeout(min(0.25, left))
            try:
                data = s.recv(2048)
            except socket.timeout:
                continue
            if nonce in data.decode(errors="replace"):
                print(data.decode(errors="replace").strip())
                break
except OSError as e:
    print(f"client: {e}", file=sys.stderr)
    sys.exit(1)
"""


class Reply(NamedTuple):
    token: str   # the answering listener's token
    peer: str    # "IP:PORT" the listener saw as the source


_listeners = set()


class Listener:
    """A TCP or UDP answering service in a namespace. Use listen() or `with Listener(...)`.

    port 0 picks a free port (see .port). .peers collects the "IP:PORT" sources seen.
    """

    def __init__(self, ns: str, port: int, transport: str = "tcp",
                 token: Optional[str] = None, ip: str = "0.0.0.0"):
        if transport not in ("tcp", "udp"):
            raise ValueError("transport must be 'tcp' or 'udp'")
        self.ns, self.transport, self.ip = ns, transport, ip
        self.token = token or ns
        self.port = port
        self.peers = []
        self._proc = None

    def start(self, timeout: float = 10.0) -> "Listener":
        self._proc = subprocess.Popen(
            [IP, "netns", "exec", ns_name(self.ns), PYTHON, "-u", "-c", _SERVER,
             self.transport, self.ip, str(self.port), self.token],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _listeners.add(self)
        ready = threading.Event()

        def pump():
            for line in self._proc.stdout:
                word, _, rest = line.strip().partition(" ")
                if word == "READY":
                    self.port = int(rest)
                    ready.set()
                elif word == "PEER":
                    self.peers.append(rest)

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            proc = self._proc
            self.stop()
            err = proc.stderr.read() if proc and proc.stderr else ""
            raise RuntimeError(f"listener {self.transport}/{self.port} in {self.ns} did not start: {err}")
        return self

    def stop(self) -> None:
        """Stop the listener (only the process this object started)."""
        p, self._proc = self._proc, None
        _listeners.discard(self)
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(2)

    def __enter__(self) -> "Listener":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def listen(ns: str, port: int, transport: str = "tcp", token: Optional[str] = None,
           ip: str = "0.0.0.0") -> Listener:
    """Start an answering listener in ns on ip:port; returns it (call .stop() or use `with`)."""
    return Listener(ns, port, transport, token, ip).start()


@atexit.register
def _stop_all_listeners() -> None:
    for lst in list(_listeners):
        lst.stop()


def probe(from_ns: str, ip: str, port: int, transport: str = "tcp",
          timeout: float = 2.0, src: Optional[str] = None) -> Optional[Reply]:
    """Send a nonce from from_ns (source address src, else the kernel's choice: in inet
    that is public host 198.51.100.20) to ip:port; return the listener's Reply if its
    answer carrying the nonce came back within timeout, else None."""
    nonce = secrets.token_hex(8)
    r = run(from_ns, [PYTHON, "-c", _CLIENT, transport, ip, str(port), str(timeout),
                      src or "", nonce], timeout=timeout + 5)
    parts = r.stdout.split()
    if not r.ok or len(parts) != 3 or parts[2] != nonce:
        return None
    return Reply(parts[0], parts[1])


def reach(from_ns: str, ip: str, port: int, transport: str = "tcp", timeout: float = 2.0,
          src: Optional[str] = None, token: Optional[str] = None) -> bool:
    """True only if a TCP connection / UDP datagram from from_ns reaches a listener at
    ip:port AND its answer comes back (and, if token is given, that listener has it)."""
    reply = probe(from_ns, ip, port, transport, timeout, src)
    return reply is not None and (token is None or reply.token == token)


# ------------------------------------------------------------------ reference PCP client

# Runs inside a namespace: one PCP MAP request (RFC 6887 s11.1), resent every 500 ms
# until an answer with our nonce arrives or the deadline passes; prints the answer
# fields. Debian ships no PCP client, so scenarios use this one as the reference peer.
_PCP = r"""
import socket, struct, sys, time
gw, proto, iport, life, eport, eip, nonce, timeout = sys.argv[1:9]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((gw, 5351))
mapped = lambda ip: b"\0" * 10 + b"\xff\xff" + socket.inet_aton(ip)
client = s.getsockname()[0]          # the address we really send from (s8.1)
nonce_b = bytes.fromhex(nonce)
req = struct.pack("!BBHI16s", 2, 1, 0, int(life), mapped(client))
req += nonce_b + struct.pack("!B3xHH16s", {"tcp": 6, "udp": 17}[proto], int(iport),
                             int(eport), mapped(eip))
deadline = time.monotonic() + float(timeout)
while time.monotonic() < deadline:
    s.send(req)
    s.settimeout(max(0.01, min(0.5, deadline - time.monotonic())))
    try:
        r = s.recv(1100)
    except socket.timeout:
        continue
    except ConnectionRefusedError:
        sys.exit(3)
    if len(r) >= 60 and r[1] == 0x81 and r[24:36] == nonce_b:
        res, life2, epoch = r[3], *struct.unpack("!II", r[4:12])
        port2 = struct.unpack("!H", r[42:44])[0]
        print(res, life2, epoch, socket.inet_ntoa(r[56:60]), port2)
        sys.exit(0)
sys.exit(2)
"""


class PcpReply(NamedTuple):
    result: int      # 0 SUCCESS, 2 NOT_AUTHORIZED, 8 NO_RESOURCES, ...
    lifetime: int
    epoch: int
    ext_ip: str
    ext_port: int
    nonce: str       # hex; a delete must carry the nonce that created the mapping


def pcp_map(ns: str, gateway: str, proto: str, int_port: int, lifetime: int,
            ext_port: int = 0, ext_ip: str = "0.0.0.0", nonce: Optional[str] = None,
            timeout: float = 2.0) -> Optional[PcpReply]:
    """Send a PCP MAP from ns to gateway:5351 (lifetime 0 deletes); None if no answer."""
    nonce = nonce or secrets.token_hex(12)
    r = run(ns, [PYTHON, "-c", _PCP, gateway, proto.lower(), str(int_port), str(lifetime),
                 str(ext_port), ext_ip, nonce, str(timeout)], timeout=timeout + 5)
    if not r.ok:
        return None
    res, life, epoch, ip, port = r.stdout.split()
    return PcpReply(int(res), int(life), int(epoch), ip, int(port), nonce)


# ------------------------------------------------------------------ scenario checks

class Checker:
    """Collects named checks so one scenario reports every failed expectation."""

    def __init__(self, name: str):
        self.name, self.failed, self.total = name, [], 0

    def check(self, cond, what: str, detail: object = "") -> bool:
        self.total += 1
        print(f"{'ok  ' if cond else 'FAIL'} {what}", flush=True)
        if not cond:
            self.failed.append(what)
            if detail:
                print(f"     {str(detail).rstrip()}".replace("\n", "\n     "), flush=True)
        return bool(cond)

    def finish(self) -> int:
        """Print a summary; returns the process exit status (0 = all passed)."""
        print(f"{self.name}: {self.total - len(self.failed)}/{self.total} checks passed", flush=True)
        for what in self.failed:
            print(f"  failed: {what}", flush=True)
        return 1 if self.failed else 0


if __name__ == "__main__":
    print(__doc__)
    sys.exit(0)

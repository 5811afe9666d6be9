#!/usr/bin/python3
"""`porthole serve` in the fake internet:
- as the STUN server of the lab's miniupnpd (lab.sh stun-server porthole): the router's
  self-test passes ("Port forwarding is now enabled") and a mapping then works from a
  public host; Debian's RFC 3489 `stun` client gets the right verdict from it too;
- connect-back goes only to the requester's own address: requests naming another IP,
  from a public host and from a LAN host, are denied and nothing reaches that IP;
- garbage and truncated datagrams, and garbage on the TCP control port, are dropped
  (or answered bad-request) and the server keeps answering;
- a flood from one public host does not stop answers to another (counted, not timed)."""

import socket  # noqa: F401  (used by the in-namespace helpers' text)
import threading
import time
from pathlib import Path

from porthole_lab import (BIN, LAN1, WAN_IP, cleanup, finish, porthole)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

SERVE, SERVE_ALT = "198.51.100.12", "198.51.100.13"
# serve-start's log (-v: every request, every check).
SERVE_LOG = Path(labkit.lab_env()["PORTHOLE_LAB_DIR"], "porthole-serve.log")
PY = labkit.PYTHON

# In a namespace: one control request (raw text) to SERVE:3478 over TCP from `src`,
# prints the reply line (or "NOREPLY").
_CONTROL = r"""
import socket, sys
src, server, text = sys.argv[1], sys.argv[2], sys.argv[3].encode().decode("unicode_escape")
s = socket.socket()
if src:
    s.bind((src, 0))
s.settimeout(5)
s.connect((server, 3478))
s.sendall(text.encode("latin-1"))
data = b""
try:
    while b"\n" not in data:
        chunk = s.recv(512)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
print(data.decode(errors="replace").strip() or "NOREPLY")
"""

# In a namespace: STUN Binding requests from two sources at once. The flooder sends
# `flood` requests as fast as it can; the other sends `polite` requests 20 ms apart
# with its own socket. Prints "answered_flood answered_polite".
_FLOOD = r"""
import os, socket, struct, sys, time
flooder, polite_src, server, flood, polite = sys.argv[1:6]
flood, polite = int(flood), int(polite)
def req():
    return struct.pack("!HHI", 1, 0, 0x2112A442) + os.urandom(12)
f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); f.bind((flooder, 0)); f.setblocking(False)
p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); p.bind((polite_src, 0)); p.settimeout(0.5)
f.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
def drain():
    n = 0
    while True:
        try:
            f.recv(2048); n += 1
        except BlockingIOError:
            return n
got_flood = got_polite = 0
sent = 0
for i in range(polite):
    for _ in range(flood // polite):
        try:
            f.sendto(req(), (server, 3478)); sent += 1
        except BlockingIOError:
            pass
    got_flood += drain()
    r = req()
    p.sendto(r, (server, 3478))
    try:
        while True:
            d = p.recv(2048)
            if d[8:20] == r[8:20]:
                got_polite += 1
                break
    except socket.timeout:
        pass
    time.sleep(0.02)
time.sleep(0.2)
got_flood += drain()
print(sent, got_flood, got_polite)
"""

# In a namespace: datagrams to SERVE:3478, then one valid Binding; prints "ANSWERED" if
# the valid one was answered.
_GARBAGE = r"""
import os, socket, struct, sys
server = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
valid = struct.pack("!HHI", 1, 0, 0x2112A442) + os.urandom(12)
junk = [b"", b"\x00", os.urandom(19), valid[:19], valid[:10], os.urandom(1400),
        struct.pack("!HHI", 1, 400, 0x2112A442) + os.urandom(12),        # length lies
        struct.pack("!HHI", 1, 8, 0x2112A442) + os.urandom(12) + b"\x00\x03\x00\x40",  # attr past end
        b"\xc0" + valid[1:], b"GET / HTTP/1.1\r\n\r\n"]
for j in junk:
    s.sendto(j, (server, 3478))
s.sendto(valid, (server, 3478))
try:
    while True:
        d = s.recv(2048)
        if d[8:20] == valid[8:20]:
            print("ANSWERED"); break
except socket.timeout:
    print("SILENT")
"""


# A connect-back flood on the TCP control port from every address in argv[3:], for
# argv[2] seconds: per address, idle connections kept open (taking session slots) and
# connections opened and closed as fast as they go. Prints the connections made.
_CB_FLOOD = r"""
import socket, sys, threading, time
server, seconds, sources = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
end = time.monotonic() + seconds
made = [0]
lock = threading.Lock()
def conn(src):
    s = socket.socket()
    s.settimeout(1)
    s.bind((src, 0))
    s.connect((server, 3478))
    with lock:
        made[0] += 1
    return s
def hold(src):
    idle = []
    while time.monotonic() < end:
        idle = [s for s in idle if s.fileno() >= 0]
        try:
            while len(idle) < 6:
                idle.append(conn(src))
        except OSError:
            pass
        time.sleep(0.2)
        for s in idle[:2]:
            s.close()
        idle = idle[2:]
    for s in idle:
        s.close()
def churn(src):
    while time.monotonic() < end:
        try:
            conn(src).close()
        except OSError:
            time.sleep(0.01)
ts = [threading.Thread(target=f, args=(a,)) for a in sources for f in (hold, churn)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(made[0])
"""


def control(ns: str, text: str, src: str = "") -> str:
    r = labkit.run(ns, [PY, "-c", _CONTROL, src, SERVE, text], timeout=15)
    return r.stdout.strip() if r.ok else f"ERROR {r}"


def serve_alive() -> bool:
    pid = Path(labkit.lab_env()["PORTHOLE_LAB_DIR"], "porthole-serve.pid")
    try:
        return Path("/proc", pid.read_text().strip(), "status").exists()
    except OSError:
        return False


def use_router_stun(server: str) -> None:
    """Put `server` (stund or porthole) on 198.51.100.10/.11 and restart r1 against it."""
    r = labkit.lab("stun-server", server)
    c.check(r.ok, f"{server} answers on 198.51.100.10/.11", r)
    r = labkit.lab("router-reboot", "r1")
    c.check(r.ok, f"r1 restarted against {server}", r)


c = labkit.Checker("serve")
cleanup()

# --- porthole serve as miniupnpd's STUN server ----------------------------------------
try:
    use_router_stun("porthole")
    log = labkit.router_log("r1")
    c.check("Port forwarding is now enabled" in log, "miniupnpd's STUN self-test passes",
            log[-2000:])
    with labkit.listen("lan1", 43101, "tcp", token="lan1"):
        r = porthole("lan1", "open", "43101", "--via", "upnp")
        c.check(r.rc == 0, "a mapping works on that router", r)
        c.check(labkit.reach("inet", WAN_IP, 43101, "tcp", token="lan1"),
                "a public host reaches the mapped port")
        porthole("lan1", "close", "43101")
    # Debian's `stun` is an RFC 3489 client (no magic cookie): MAPPED-ADDRESS and
    # CHANGED-ADDRESS answers. The lab NAT is endpoint-independent mapping with
    # port-dependent filtering, and it must say so.
    r = labkit.run("lan1", ["stun", "198.51.100.10"], timeout=20)
    c.check("Independent Mapping, Port Dependent Filter" in r.stdout,
            "Debian's RFC 3489 stun client classifies the lab NAT through porthole serve", r)
finally:
    use_router_stun("stund")

# --- connect-back policy, garbage, flood -----------------------------------------------
r = labkit.lab("serve-start")
c.check(r.ok, "porthole serve started on 198.51.100.12/.13", r)
token = "00112233445566778899aabbccddeeff"
try:
    # Public host .21 asks for a connect-back to public host .22: denied, and the
    # listener on .22 sees nothing.
    with labkit.listen("inet", 43201, "tcp", token="victim", ip="198.51.100.22") as victim:
        reply = control("inet", f"PORTHOLE/1 CONNECT 198.51.100.22 43201 {token}\\n",
                        src="198.51.100.21")
        c.check(reply.startswith("PORTHOLE/1 denied 198.51.100.21 "),
                "public host: connect-back to another public IP denied", reply)
        # From a LAN host: the server sees the router's address, so naming the victim
        # or another LAN host is denied alike.
        reply = control("lan1", f"PORTHOLE/1 CONNECT 198.51.100.22 43201 {token}\\n")
        c.check(reply.startswith(f"PORTHOLE/1 denied {WAN_IP} "),
                "LAN host: connect-back to a public IP denied", reply)
        reply = control("lan1", f"PORTHOLE/1 CONNECT 192.168.1.101 43201 {token}\\n")
        c.check(reply.startswith(f"PORTHOLE/1 denied {WAN_IP} "),
                "LAN host: connect-back to another LAN host denied", reply)
        time.sleep(0.3)
        c.check(victim.peers == [], "nothing reached the third party", victim.peers)
    # Its own address is fine (nothing listens there: refused, i.e. it was tried).
    reply = control("inet", f"PORTHOLE/1 CONNECT 198.51.100.21 43202 {token}\\n",
                    src="198.51.100.21")
    c.check(reply.startswith("PORTHOLE/1 refused 198.51.100.21 "),
            "public host: connect-back to its own address is attempted", reply)

    # Garbage on the TCP control port: bad-request, then normal service.
    for junk in ("GET / HTTP/1.0\\r\\n\\r\\n", "PORTHOLE/1 CONNECT 1.2.3.4\\n", "x" * 400):
        reply = control("inet", junk, src="198.51.100.23")
        c.check(reply.startswith("PORTHOLE/1 bad-request"),
                f"TCP garbage {junk[:20]!r}: bad-request", reply)
    # Garbage and truncated datagrams: dropped, and the next valid Binding is answered.
    r = labkit.run("inet", [PY, "-c", _GARBAGE, SERVE], timeout=15)
    c.check(r.stdout.strip() == "ANSWERED", "garbage datagrams dropped, service goes on", r)

    # Flood from .24 (3000 requests) while .25 asks 40 times: .25 gets its answers; the
    # flooder gets no more than its rate limit allows (burst 40 + 20/s).
    r = labkit.run("inet", [PY, "-c", _FLOOD, "198.51.100.24", "198.51.100.25", SERVE,
                            "3000", "40"], timeout=60)
    parts = r.stdout.split()
    if c.check(r.ok and len(parts) == 3, "flood helper ran", r):
        sent, flood_answered, polite_answered = map(int, parts)
        c.check(sent >= 2000, f"flooder sent {sent} requests")
        c.check(polite_answered >= 38, f"other source answered {polite_answered}/40 during the "
                "flood")
        c.check(flood_answered < sent // 4,
                f"flooder answered only {flood_answered} of {sent} (rate limited)")
    c.check(serve_alive(), "porthole serve still running")

    # Connect-back flood from 30 public addresses (more than the 64 session slots hold at
    # 4 each) for 8 s, while lan1 (another address) runs open --verify: it still gets a
    # slot, and the refusals cost the log a few summary lines, not one per connection.
    extra = [f"198.51.100.{i}" for i in range(40, 60)]
    for a in extra:
        labkit.run("inet", ["ip", "addr", "add", f"{a}/32", "dev", "lo"])
    sources = [f"198.51.100.{i}" for i in range(20, 30)] + extra
    lines_before = len(SERVE_LOG.read_text(errors="replace").splitlines())
    flood = {}
    flooder = threading.Thread(target=lambda: flood.update(r=labkit.run(
        "inet", [PY, "-c", _CB_FLOOD, SERVE, "8", *sources], timeout=60)))
    flooder.start()
    time.sleep(2)
    r = porthole("lan1", "open", "43204", "--verify", "--stun", SERVE, "--timeout", "5")
    c.check(r.rc == 0 and flooder.is_alive(), "open --verify succeeds during the flood", r)
    flooder.join()
    porthole("lan1", "close", "43204")
    # The summary of an interval is written when the interval ends (10 s after its first
    # refusal): wait for it, up to a bound, rather than guess when the flood's began.
    labkit.wait_until(lambda: "not logged one by one" in SERVE_LOG.read_text(errors="replace"),
                      timeout=15)
    made = int(flood["r"].stdout.strip() or 0) if flood.get("r") and flood["r"].ok else 0
    c.check(made >= 500, f"the flood made {made} control connections", flood.get("r"))
    logged = SERVE_LOG.read_text(errors="replace").splitlines()[lines_before:]
    refusals = [x for x in logged if "busy" in x or "no request in time" in x or
                "refused" in x]
    c.check(len(logged) < 200,
            f"the log grew by {len(logged)} lines for {made} connections", logged[-20:])
    c.check(any("not logged one by one" in x for x in refusals),
            "the refusals are summed up", logged[-20:])
    for a in extra:
        labkit.run("inet", ["ip", "addr", "del", f"{a}/32", "dev", "lo"])
    c.check(serve_alive(), "porthole serve still running after the connect-back flood")

    r = porthole("lan1", "open", "43203", "--verify", "--stun", SERVE)
    c.check(r.rc == 0, "open --verify still works after all that", r)
    porthole("lan1", "close", "43203")
finally:
    labkit.lab("serve-stop")
    cleanup()
# SIGTERM (lab.sh serve-stop) ends it cleanly; -v logged every request and each check.
log_path = Path(labkit.lab_env()["PORTHOLE_LAB_DIR"], "porthole-serve.log")
log = log_path.read_text(errors="replace") if log_path.exists() else ""
c.check(log.rstrip().endswith("porthole serve: stopped"), "serve stops on SIGTERM",
        log[-500:])
c.check("stun serve <- " in log and "connect-back from 198.51.100.21: denied" in log
        and "connect-back to 198.51.100.21:43202: refused" in log,
        "the log has a line per request and per connect-back", log[-1500:])
finish(c)

#!/usr/bin/python3
"""The rendezvous in `porthole serve` (docs/rendezvous.md), started in the fake internet
(lab.sh serve-start, 198.51.100.12:3478), spoken to by hand-built STUN messages (no
Ed25519 in this Python: the signed paths are the unit tests' and the punch scenarios'):
- a Register with a PEER-ID gets a 401 with a 32-byte CHALLENGE and the sender's
  address as the server sees it (lan1: r1's WAN address);
- a flood of Register requests (random IDs, a new source port for each) and of garbage
  and truncated messages from lan1 does not stop lan2 (behind r2, another source
  address) from getting its challenges; the flooder is rate-limited (counted, not timed);
- a Register with someone's PEER-ID (RFC 8032's first test key) and a bogus SIGNATURE
  over a valid challenge is refused with 403, and so is an old challenge replayed from
  another source address (401 again, with that address's own challenge);
- a Connect from a source that never registered is refused: nothing is relayed;
- serve's memory stays bounded: VmRSS after a flood from 40 addresses and thousands of
  source ports and IDs is within 8 MiB of before (32 MiB under ASan, with a 4 MiB
  quarantine);
  the challenge keeps no state;
- STUN Binding on the same port is still answered, and --no-rendezvous turns it off."""

import os
import subprocess
import threading
import time
from pathlib import Path

from porthole_lab import BIN, WAN_IP, cleanup, finish
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

SERVE = "198.51.100.12"
PY = labkit.PYTHON
R2_WAN = "203.0.113.130"
# Under ASan freed memory sits in its quarantine (256 MiB by default, and the flood
# fills it): serve gets a 4 MiB one here, and a bound that allows for it and for
# ASan's own bookkeeping, still far below what a table per source port or ID would take.
ASAN = "ASAN_OPTIONS" in os.environ
if ASAN:
    os.environ["ASAN_OPTIONS"] += ":quarantine_size_mb=4"
MEMORY_BOUND_KIB = (32 if ASAN else 8) * 1024
SOMEONE = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

# Shared by the helpers below: build and read rendezvous messages (STUN framing,
# FINGERPRINT = CRC-32 xor 0x5354554e, RFC 8489 s14.7).
_LIB = r"""
import os, socket, struct, sys, time, zlib
COOKIE = 0x2112A442
def msg(mtype, attrs, tid=None, fingerprint=True):
    tid = tid or os.urandom(12)
    body = b"".join(struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)
                    for t, v in attrs)
    extra = 8 if fingerprint else 0
    hdr = struct.pack("!HHI", mtype, len(body) + extra, COOKIE) + tid
    if not fingerprint:
        return hdr + body
    crc = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
    return hdr + body + struct.pack("!HHI", 0x8028, 4, crc)
def attrs(d):
    out, pos = {}, 20
    while pos + 4 <= len(d):
        t, n = struct.unpack("!HH", d[pos:pos + 4])
        out.setdefault(t, d[pos + 4:pos + 4 + n])
        pos += 4 + n + (-n % 4)
    return out
def xor_addr(v):
    port = struct.unpack("!H", v[2:4])[0] ^ (COOKIE >> 16)
    ip = struct.unpack("!I", v[4:8])[0] ^ COOKIE
    return socket.inet_ntoa(struct.pack("!I", ip)) + ":" + str(port)
def error_code(d):
    v = attrs(d).get(0x0009)
    return v[2] * 100 + v[3] if v else 0
REGISTER, CONNECT = 0x02E0, 0x02E1
PEER_ID, CHALLENGE, SIGNATURE, TARGET, DESCRIPTION = 0x7F01, 0x7F02, 0x7F03, 0x7F04, 0x7F05
def hello(peer=None, tid=None):
    return msg(REGISTER, [(PEER_ID, peer or os.urandom(32))], tid)
def ask(sock, server, m, timeout=1.0):
    sock.settimeout(timeout)
    sock.sendto(m, (server, 3478))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            d = sock.recv(2048)
        except socket.timeout:
            return None
        if d[8:20] == m[8:20]:
            return d
    return None
"""

# One Register exchange: prints "type code challenge_length observed".
_ONE = _LIB + r"""
server = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d = ask(s, server, hello(), 2)
if d is None:
    print("NOREPLY")
else:
    a = attrs(d)
    print(hex(struct.unpack("!H", d[:2])[0]), error_code(d), len(a.get(CHALLENGE, b"")),
          xor_addr(a[0x0020]) if 0x0020 in a else "-")
"""

# The flooder: for `seconds`, Registers with random IDs each from a new socket (a new
# source port), and garbage: truncated Registers, a bad FINGERPRINT, a lying length,
# no FINGERPRINT, random bytes. Prints "sent answered".
_FLOOD = _LIB + r"""
server, seconds = sys.argv[1], float(sys.argv[2])
sources = sys.argv[3:] or [""]
good = hello()
junk = [good[:19], good[:20], good[:40], good[:-8], good[:-1], b"\x00" * 20,
        good[:-1] + bytes([good[-1] ^ 1]),
        struct.pack("!HHI", REGISTER, 400, COOKIE) + os.urandom(12),
        msg(REGISTER, [(PEER_ID, os.urandom(31))]), msg(REGISTER, [(PEER_ID, os.urandom(32))],
        fingerprint=False), os.urandom(100), msg(CONNECT, [(TARGET, os.urandom(32))])]
sent = answered = 0
socks = []
def drain(socks):
    got = 0
    for k in socks:
        try:
            while True:
                k.recv(2048); got += 1
        except OSError:
            pass
        k.close()
    return got
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    src = sources[i % len(sources)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    if src:
        s.bind((src, 0))
    for m in [hello()] + junk[i % len(junk):i % len(junk) + 2]:
        try:
            s.sendto(m, (server, 3478)); sent += 1
        except OSError:
            pass
    socks.append(s)
    i += 1
    if len(socks) >= 200:
        time.sleep(0.05)
        answered += drain(socks)
        socks = []
time.sleep(0.2)
answered += drain(socks)
print(sent, answered)
"""

# The polite source: `count` Registers 50 ms apart; prints how many got a 401 with a
# CHALLENGE.
_POLITE = _LIB + r"""
server, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
got = 0
for _ in range(count):
    d = ask(s, server, hello(), 0.5)
    if d and struct.unpack("!H", d[:2])[0] == 0x03F0 and len(attrs(d).get(CHALLENGE, b"")) >= 16:
        got += 1
    time.sleep(0.05)
print(got)
"""

# Someone's PEER-ID with a bogus signature over a valid challenge; then that challenge
# replayed from another socket; then a Connect from a source that never registered.
# Prints "code_bogus code_replay replay_new_challenge code_connect".
_FORGE = _LIB + r"""
server, someone = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d = ask(s, server, hello(someone), 2)
challenge = attrs(d)[CHALLENGE]
forged = msg(REGISTER, [(PEER_ID, someone), (CHALLENGE, challenge), (SIGNATURE, os.urandom(64))])
bogus = ask(s, server, forged, 2)
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
replay = ask(other, server, msg(REGISTER, [(PEER_ID, someone), (CHALLENGE, challenge),
                                           (SIGNATURE, os.urandom(64))]), 2)
new_challenge = attrs(replay).get(CHALLENGE, challenge) != challenge if replay else False
# A Connect needs a signed description; a syntactically valid one from an unregistered
# source: version 1, offer, 0 candidates, keys, session, ufrag, password.
desc = bytes([1, 1, 0, 0]) + someone + os.urandom(32) + os.urandom(16) + b"\x04abcd" + \
       b"\x16" + b"0123456789abcdefghijkl"
conn = ask(s, server, msg(CONNECT, [(TARGET, desc[36:68]), (DESCRIPTION, desc),
                                    (SIGNATURE, os.urandom(64))]), 2)
print(error_code(bogus) if bogus else 0, error_code(replay) if replay else 0,
      new_challenge, error_code(conn) if conn else 0)
"""

# One STUN Binding request; prints the answer's message type.
_BINDING = _LIB + r"""
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d = ask(s, sys.argv[1], struct.pack("!HHI", 1, 0, COOKIE) + os.urandom(12), 2)
print(hex(struct.unpack("!H", d[:2])[0]) if d else "NOREPLY")
"""


def run_py(ns: str, code: str, *args: str, timeout: float = 60) -> labkit.Result:
    return labkit.run(ns, [PY, "-c", code, *args], timeout=timeout)


def serve_pid() -> str:
    return Path(labkit.lab_env()["PORTHOLE_LAB_DIR"], "porthole-serve.pid").read_text().strip()


def vm_rss_kib(pid: str) -> int:
    for line in Path("/proc", pid, "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


c = labkit.Checker("rendezvous_server")
cleanup()
r = labkit.lab("serve-start")
c.check(r.ok, "porthole serve started on 198.51.100.12/.13", r)
extra = [f"198.51.100.{i}" for i in range(60, 100)]
try:
    r = run_py("lan1", _ONE, SERVE)
    parts = r.stdout.split()
    c.check(r.ok and parts[:3] == ["0x3f0", "401", "32"],
            "Register from lan1: 401 with a 32-byte CHALLENGE", r)
    c.check(r.ok and len(parts) == 4 and parts[3].startswith(WAN_IP + ":"),
            f"the 401 carries lan1's address as serve sees it ({WAN_IP})", r)

    # Flood from lan1 for 4 s while lan2 asks 40 times.
    polite = {}
    t = threading.Thread(target=lambda: polite.update(r=run_py("lan2", _POLITE, SERVE, "40")))
    t.start()
    flood = run_py("lan1", _FLOOD, SERVE, "4", timeout=60)
    t.join()
    parts = flood.stdout.split()
    if c.check(flood.ok and len(parts) == 2, "flood helper ran", flood):
        sent, answered = map(int, parts)
        c.check(sent >= 2000, f"lan1 flooded {sent} datagrams")
        # One source IP: a burst of 40 and 20/s after it, i.e. about 120 in 4 s.
        c.check(answered <= 200, f"the flooder got only {answered} answers (rate limited)")
    pr = polite.get("r")
    got = int(pr.stdout.strip() or 0) if pr and pr.ok else 0
    c.check(got >= 38, f"lan2 got {got}/40 challenges during the flood", pr)

    # Someone's ID, a bogus signature; the challenge replayed from elsewhere; a Connect
    # from nobody. From lan2, whose bucket is fresh after a pause.
    time.sleep(2.5)
    r = run_py("lan2", _FORGE, SERVE, SOMEONE)
    parts = r.stdout.split()
    c.check(r.ok and len(parts) == 4 and parts[0] == "403",
            "someone's PEER-ID with a bogus SIGNATURE: 403", r)
    c.check(r.ok and len(parts) == 4 and parts[1] == "401" and parts[2] == "True",
            "a challenge replayed from another source port: 401 with a new challenge", r)
    c.check(r.ok and len(parts) == 4 and parts[3] == "403",
            "a Connect from a source that never registered: 403", r)

    # Memory: 40 more source addresses on inet's lo, 8 s of Registers with random IDs,
    # each from a new port.
    for a in extra:
        labkit.run("inet", ["ip", "addr", "add", f"{a}/32", "dev", "lo"])
    pid = serve_pid()
    before = vm_rss_kib(pid)
    r = run_py("inet", _FLOOD, SERVE, "8", *extra, timeout=90)
    parts = r.stdout.split()
    after = vm_rss_kib(pid)
    if c.check(r.ok and len(parts) == 2, "the memory flood ran", r):
        c.check(int(parts[0]) >= 4000, f"{parts[0]} datagrams from {len(extra)} addresses, "
                f"{parts[1]} answered")
    c.check(before > 0 and after - before < MEMORY_BOUND_KIB,
            f"serve's VmRSS {before} KiB before, {after} KiB after the flood "
            f"(bound: +{MEMORY_BOUND_KIB} KiB)")

    # STUN Binding on the same port is still the STUN responder's.
    r = run_py("lan2", _BINDING, SERVE)
    c.check(r.stdout.strip() == "0x101", "STUN Binding on the same port still answered", r)
    c.check(Path("/proc", pid).exists(), "porthole serve still running")
finally:
    for a in extra:
        labkit.run("inet", ["ip", "addr", "del", f"{a}/32", "dev", "lo"])
    labkit.lab("serve-stop")

log_path = Path(labkit.lab_env()["PORTHOLE_LAB_DIR"], "porthole-serve.log")
log = log_path.read_text(errors="replace") if log_path.exists() else ""
c.check("the signature does not verify" in log and "rendezvous: " in log,
        "serve logged the refusal and its counters at the end", log[-1500:])

# --no-rendezvous: the same Register gets no answer (a port of its own: .13:3490).
argv = [labkit.IP, "netns", "exec", labkit.ns_name("inet"), BIN, "serve", "--listen",
        "198.51.100.13:3490", "--no-rendezvous"]
proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    # Once it answers a Binding it is up; then a Register gets nothing.
    c.check(labkit.wait_until(lambda: run_py("lan2", _BINDING.replace("3478", "3490"),
                                             "198.51.100.13").stdout.strip() == "0x101",
                              timeout=10),
            "--no-rendezvous: STUN Binding answered")
    r = run_py("lan2", _ONE.replace("3478", "3490"), "198.51.100.13")
    c.check(r.stdout.strip() == "NOREPLY", "--no-rendezvous: a Register gets no answer", r)
finally:
    proc.terminate()
    proc.wait(timeout=10)
cleanup()
finish(c)

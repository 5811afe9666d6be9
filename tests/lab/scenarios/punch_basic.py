#!/usr/bin/python3
"""`porthole punch` end to end: `porthole serve` in inet is the rendezvous, lan1 (behind
r1) and lan2 (behind r2) punch each other with both routers in eim mode and miniupnpd
stopped (no port mapping: a real punch through two NATs), each with --exec running a
small program that sends a line over fd 3 and reads the peer's; both lines arrive. Then
`porthole id`: the key is made with mode 0600, a second call prints the same ID, a key
made readable by others is refused (exit 8) and left as it was.
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

from porthole_lab import BIN, finish, state_dir
import labkit  # noqa: E402

RENDEZVOUS = "198.51.100.12:3478"
c = labkit.Checker("punch_basic")

# What --exec runs: the socket is fd 3 (LISTEN_FDS=1); one line out, the peer's line in,
# sent again every 200 ms until the peer's arrives (the first may meet a NAT not open yet
# on the far side), then a few more times so the peer gets ours too.
EXCHANGE = r"""
import os, socket, sys, time
assert os.environ["LISTEN_FDS"] == "1" and os.environ["LISTEN_PID"] == str(os.getpid())
s = socket.socket(fileno=3)
s.settimeout(0.2)
me = sys.argv[1].encode()
got = None
end = time.monotonic() + 8
while time.monotonic() < end:
    s.send(b"line from " + me + b"\n")
    try:
        data = s.recv(2048)
    except socket.timeout:
        continue
    if data.startswith(b"line from ") and not data.endswith(me + b"\n"):
        got = data
        break
for _ in range(10):
    s.send(b"line from " + me + b"\n")
    time.sleep(0.05)
print("peer=" + os.environ["PORTHOLE_PEER"] + " id=" + os.environ["PORTHOLE_PEER_ID"])
print("got=" + (got.decode().strip() if got else "nothing"))
sys.exit(0 if got else 5)
"""


def popen_punch(ns: str, peer_id: str, tag: str, script: Path):
    argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), BIN, "punch", peer_id,
            "--rendezvous", RENDEZVOUS, "--no-map", "--wait", "10", "--timeout", "20",
            # exec: so the program is the process LISTEN_PID names, not the shell
            "--exec", f"exec /usr/bin/python3 {script} {tag}", "--state-dir", str(state_dir(ns))]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def peer_id(ns: str) -> str:
    r = labkit.run(ns, [BIN, "id", "--state-dir", str(state_dir(ns))])
    c.check(r.ok and len(r.stdout.strip()) == 55, f"{ns}: porthole id prints a 55-character ID", r)
    return r.stdout.strip()


procs = []
try:
    r = labkit.lab("serve-start")
    c.check(r.ok, "lab.sh serve-start", r)
    for router in ("r1", "r2"):
        r = labkit.lab("nat-mode", router, "eim")
        c.check(r.ok, f"{router} in eim mode", r)
        r = labkit.lab("router-stop", router)
        c.check(r.ok, f"miniupnpd on {router} stopped", r)

    script = state_dir("lan1").parent / "exchange.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(EXCHANGE)
    id1, id2 = peer_id("lan1"), peer_id("lan2")

    p1 = popen_punch("lan1", id2, "lan1", script)
    p2 = popen_punch("lan2", id1, "lan2", script)
    procs = [p1, p2]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        outs.append((p.returncode, out, err))
    (rc1, out1, err1), (rc2, out2, err2) = outs
    c.check(rc1 == 0, "lan1: punch --exec exits with the program's status 0",
            f"rc={rc1}\n{out1}\n{err1}")
    c.check(rc2 == 0, "lan2: punch --exec exits with the program's status 0",
            f"rc={rc2}\n{out2}\n{err2}")
    c.check("got=line from lan2" in out1, "lan1 read lan2's line over fd 3", out1 + err1)
    c.check("got=line from lan1" in out2, "lan2 read lan1's line over fd 3", out2 + err2)
    c.check(f"id={id2}" in out1 and "peer=203.0.113.130:" in out1,
            "lan1's program got PORTHOLE_PEER (r2's WAN address) and PORTHOLE_PEER_ID", out1)
    c.check(f"id={id1}" in out2 and "peer=203.0.113.2:" in out2,
            "lan2's program got PORTHOLE_PEER (r1's WAN address) and PORTHOLE_PEER_ID", out2)

    # porthole id: a fresh state directory gets a 0600 key; the same ID again; a key
    # readable by others is refused with exit 8 and left untouched.
    fresh = state_dir("lan1").parent / "id-fresh"
    r1 = labkit.run("lan1", [BIN, "id", "--json", "--state-dir", str(fresh)])
    key = fresh / "identity.key"
    c.check(r1.ok and key.exists(), "id makes the key on first use", r1)
    if key.exists():
        c.check(stat.S_IMODE(key.stat().st_mode) == 0o600, "the key file is mode 0600",
                oct(key.stat().st_mode))
        r2 = labkit.run("lan1", [BIN, "id", "--json", "--state-dir", str(fresh)])
        c.check(r2.ok and r2.stdout == r1.stdout, "a second id prints the same ID", r2)
        before = key.read_bytes()
        os.chmod(key, 0o644)
        r3 = labkit.run("lan1", [BIN, "id", "--state-dir", str(fresh)])
        c.check(r3.rc == 8 and str(key) in r3.stderr and r3.stdout == "",
                "a 0644 key: exit 8 naming the file, no ID printed", r3)
        c.check(key.read_bytes() == before and stat.S_IMODE(key.stat().st_mode) == 0o644,
                "the refused key file is untouched", oct(key.stat().st_mode))
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for router in ("r1", "r2"):
        labkit.lab("router-start", router)
    labkit.lab("serve-stop")
finish(c)

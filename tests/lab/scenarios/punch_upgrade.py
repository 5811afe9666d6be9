#!/usr/bin/python3
"""`porthole punch --turn ... --exec`: a relayed session that moves to a direct path when
one appears (docs/relay.md). lan1 (behind r1) and lan2 (behind r2), both routers eim, no
port mapping (miniupnpd stopped), coturn in inet, UDP between r1's and r2's WAN addresses
dropped in inet (`lab.sh wan-block on`): the only way is through coturn.

Each side's --exec program sends a numbered datagram every 20 ms on fd 3 and records the
peer's, until the scenario says stop.
1. The path is relayed on both sides; datagrams flow both ways; with the drop in place
   at least two rounds of direct checks go by (they are what the drop counts) and
   neither side moves (no flapping).
2. `wan-block open`: both sides report {"event":"upgraded","path":"direct"} naming the
   other's WAN address; datagrams keep flowing through the switch; coturn deletes every
   allocation (Refresh LIFETIME 0), and while another 100 datagrams pass, no packet of
   either side reaches coturn (the table's counter).
3. Stop: both exit 0, the last 100 datagrams of each side all arrived, no porthole
   process is left, coturn has no allocation left.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from porthole_lab import BIN, _state_root, finish, state_dir
from punch_lab import RENDEZVOUS, STUN, peer_id, stop_routers
import labkit  # noqa: E402

TURN = "turn:198.51.100.14:3478"
WAN = {"lan1": "203.0.113.2", "lan2": "203.0.113.130"}
TAIL = 100  # datagrams at the end of each side's stream that must all arrive
c = labkit.Checker("punch_upgrade")
env = labkit.lab_env()
creds = env.get("LAB_TURN_CREDENTIALS", "")
coturn_log = Path(env.get("PORTHOLE_LAB_DIR", "")) / "coturn.log"
work = _state_root / "upgrade"
work.mkdir(parents=True, exist_ok=True)

# The --exec program: numbered datagrams out every 20 ms, the peer's recorded; `NAME.got`
# holds how many arrived (the scenario waits on it); after the stop file it sends no
# more, listens 1 s for the last ones, prints one "counter: {json}" line.
COUNTER = r"""
import json, os, socket, sys, time
name, work = sys.argv[1], sys.argv[2]
s = socket.socket(fileno=3)
s.settimeout(0.02)
stop, seen, sent, next_send = os.path.join(work, "stop"), set(), 0, 0.0
def note():
    with open(os.path.join(work, name + ".got.tmp"), "w") as f:
        f.write(str(len(seen)))
    os.replace(os.path.join(work, name + ".got.tmp"), os.path.join(work, name + ".got"))
def take(until):
    while time.monotonic() < until:
        try:
            data = s.recv(2048)
        except socket.timeout:
            return
        except OSError:
            time.sleep(0.02)
            return
        w = data.split()
        if len(w) == 2 and w[0] == b"seq":
            seen.add(int(w[1]))
bound = time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < bound:
    now = time.monotonic()
    if now >= next_send:
        try:
            s.send(b"seq %d" % sent)
            sent += 1
        except OSError:
            pass
        next_send = now + 0.02
    take(next_send)
    note()
end = time.monotonic() + 1.0
while time.monotonic() < end:
    take(end)
note()
print("counter: " + json.dumps({"name": name, "sent": sent, "got": sorted(seen)}), flush=True)
"""
counter_file = work / "counter.py"
counter_file.write_text(COUNTER)


class Side:
    """porthole punch in ns with the counter as --exec, stdout and stderr to files."""

    def __init__(self, ns: str, peer: str):
        self.ns = ns
        self.out = work / f"{ns}.out"
        self.err = work / f"{ns}.err"
        argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), BIN, "punch", peer,
                "--rendezvous", RENDEZVOUS, "--stun", STUN, "--no-map", "--turn", TURN,
                "--json", "--exec", f"exec {labkit.PYTHON} {counter_file} {ns} {work}",
                "--state-dir", str(state_dir(ns))]
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e)

    def lines(self) -> list:
        """Every JSON object porthole printed on stdout, in order."""
        text, found, pos = self.out.read_text(errors="replace"), [], 0
        decoder = json.JSONDecoder()
        while (pos := text.find("{", pos)) >= 0:
            if pos > 0 and text[pos - 1] != "\n":
                pos += 1
                continue
            try:
                obj, pos = decoder.raw_decode(text, pos)
                found.append(obj)
            except ValueError:
                pos += 1
        return found

    def result(self) -> dict:
        return next((j for j in self.lines() if "path" in j and "event" not in j), {})

    def upgrades(self) -> list:
        return [j for j in self.lines() if j.get("event") == "upgraded"]

    def counter(self) -> dict:
        for ln in self.out.read_text(errors="replace").splitlines():
            if ln.startswith("counter: "):
                return json.loads(ln[len("counter: "):])
        return {}

    def got(self) -> int:
        try:
            return int((work / f"{self.ns}.got").read_text() or 0)
        except (OSError, ValueError):
            return 0

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait(self, bound: float) -> int:
        try:
            return self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)  # our own porthole (ip netns exec exec()s it)
            self.proc.wait()
            return -9


def counts() -> dict:
    res = labkit.lab("wan-block", "counts")
    m = re.search(r"dropped (\d+) turn (\d+)", res.stdout if res.ok else "")
    return {"dropped": int(m.group(1)), "turn": int(m.group(2))} if m else {}


def allocations():
    try:
        text = coturn_log.read_text(errors="replace")
    except OSError:
        text = ""
    made = set(re.findall(r"session (\d+): .*ALLOCATE processed, success", text))
    freed = set(re.findall(r"session (\d+): refreshed, .*lifetime=0", text))
    return made, freed


sides = []
try:
    stop_routers(c)
    for r in ("r1", "r2"):
        res = labkit.lab("nat-mode", r, "eim")
        c.check(res.ok, f"lab.sh nat-mode {r} eim", res)
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)
    res = labkit.lab("turn-start")
    c.check(res.ok, "lab.sh turn-start (coturn)", res)
    res = labkit.lab("wan-block", "on")
    c.check(res.ok, "lab.sh wan-block on", res)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    os.environ["PORTHOLE_TURN"] = creds
    a, b = Side("lan1", ids["lan2"]), Side("lan2", ids["lan1"])
    sides = [a, b]
    del os.environ["PORTHOLE_TURN"]

    # 1. Relayed, both ways, and it stays so while the drop is in place.
    c.check(labkit.wait_until(lambda: a.got() >= 20 and b.got() >= 20, timeout=30),
            "relayed: each side's program receives the other's datagrams",
            f"{a.got()} {b.got()}\n{a.stderr()}\n{b.stderr()}")
    for s in sides:
        c.check(s.result().get("path") == "relayed",
                f"relayed: {s.ns} reports path relayed", s.out.read_text())
    base = counts()
    c.check(bool(base), "lab.sh wan-block counts", base)
    # Each round sends 6 checks per side on the one direct pair the drop sees; more than
    # 12 dropped since the start means a second round has begun.
    c.check(labkit.wait_until(lambda: counts().get("dropped", 0) > base.get("dropped", 0) + 12,
                              timeout=20),
            "relayed: two rounds of direct checks went by (the drop counted them)",
            f"{base} {counts()}")
    for s in sides:
        c.check(not s.upgrades() and s.proc.poll() is None,
                f"no drop lifted: {s.ns} stays relayed and running", s.out.read_text())
    before = {s.ns: s.got() for s in sides}

    # 2. The direct path appears.
    res = labkit.lab("wan-block", "open")
    c.check(res.ok, "lab.sh wan-block open", res)
    opened = time.monotonic()
    c.check(labkit.wait_until(lambda: a.upgrades() and b.upgrades(), timeout=15),
            "upgrade: both sides report the event", f"{a.out.read_text()}\n{b.out.read_text()}"
            f"\n{a.stderr()}\n{b.stderr()}")
    # A figure, not a check: the next round comes within 5 s.
    print(f"upgraded {time.monotonic() - opened:.1f} s after the drop was lifted; "
          f"direct checks dropped before: {counts().get('dropped')}")
    for s, other in ((a, "lan2"), (b, "lan1")):
        ev = (s.upgrades() or [{}])[0]
        c.check(ev.get("path") == "direct" and ev.get("peer", "").startswith(WAN[other] + ":"),
                f"upgrade: {s.ns} moved to a direct path to {other}'s WAN address", ev)
        c.check(len(s.upgrades()) == 1, f"upgrade: {s.ns} reports it once", s.upgrades())
    c.check(labkit.wait_until(lambda: allocations()[0] and allocations()[0] <= allocations()[1],
                              timeout=10),
            "upgrade: coturn deleted every allocation (Refresh LIFETIME 0)", allocations())
    c.check(len(allocations()[0]) == 2, "coturn: one allocation per side", allocations())
    t1 = counts().get("turn")
    mark = {s.ns: s.got() for s in sides}
    c.check(labkit.wait_until(lambda: all(s.got() >= mark[s.ns] + 100 for s in sides),
                              timeout=15),
            "after the upgrade: another 100 datagrams reach each side", f"{mark} "
            f"{[s.got() for s in sides]}")
    t2 = counts().get("turn")
    c.check(t1 is not None and t1 == t2,
            "after the upgrade: no packet of either side reaches coturn", f"{t1} -> {t2}")
    for s in sides:
        c.check(s.got() > before[s.ns], f"through the switch: {s.ns} kept receiving", s.got())

    # 3. The end.
    (work / "stop").write_text("")
    for s in sides:
        rc = s.wait(20)
        c.check(rc == 0, f"end: {s.ns} exits 0", f"rc={rc}\n{s.stderr()}")
    for s, other in ((a, b), (b, a)):
        mine, theirs = s.counter(), other.counter()
        got, sent = set(mine.get("got", [])), theirs.get("sent", 0)
        tail = set(range(max(sent - TAIL, 0), sent))
        c.check(sent > TAIL and tail <= got,
                f"end: the last {TAIL} of {other.ns}'s {sent} datagrams all reached {s.ns}",
                f"missing {sorted(tail - got)[:20]}")
        c.check(len(got) >= sent * 0.9,
                f"end: {s.ns} got at least 90 % of {other.ns}'s datagrams ({len(got)}/{sent})",
                "")
        print(f"{other.ns} -> {s.ns}: {len(got)} of {sent} datagrams arrived")
    made, freed = allocations()
    c.check(made and made <= freed, "end: no allocation left at coturn", (made, freed))
finally:
    os.environ.pop("PORTHOLE_TURN", None)
    for s in sides:
        if s.proc.poll() is None:
            s.wait(0.1)
    labkit.lab("wan-block", "off")
    for r in ("r1", "r2"):
        res = labkit.lab("router-start", r)
        c.check(res.ok, f"lab.sh router-start {r}", res)
    labkit.lab("turn-stop")
    labkit.lab("serve-stop")
finish(c)

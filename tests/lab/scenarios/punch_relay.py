#!/usr/bin/python3
"""`porthole punch --turn`: coturn in inet (`lab.sh turn-start`, long-term credentials) as
the relay of last resort, between lan1 (behind r1) and lan2 (behind r2), no port mapping
(miniupnpd stopped), `porthole serve` as the rendezvous.

1. symmetric<->symmetric (no direct path exists) with --turn on both, the credentials
   from $PORTHOLE_TURN: both connect with path "relayed" and strategy "relay", the
   --exec programs exchange their lines both ways over fd 3; afterwards coturn's log
   shows every allocation deleted (refresh with lifetime 0) and none left.
2. A wrong password: the eim<->eim pair still connects, directly, and says the TURN
   credentials were wrong.
3. coturn stopped: eim<->eim unaffected (direct); symmetric<->symmetric exits 7 saying a
   relay was needed.
4. A group-readable credentials file: exit 8 before anything is sent.
"""

import os
import re

from porthole_lab import _state_root, finish
from punch_lab import error_of, exchanged, peer_id, punch_pair, stop_routers
import labkit  # noqa: E402

TURN = "turn:198.51.100.14:3478"
c = labkit.Checker("punch_relay")
env = labkit.lab_env()
creds = env.get("LAB_TURN_CREDENTIALS", "")
coturn_log = os.path.join(env.get("PORTHOLE_LAB_DIR", ""), "coturn.log")


def modes(m1: str, m2: str) -> None:
    for r, m in (("r1", m1), ("r2", m2)):
        res = labkit.lab("nat-mode", r, m)
        c.check(res.ok, f"lab.sh nat-mode {r} {m}", res)


def log_text() -> str:
    try:
        with open(coturn_log, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


try:
    stop_routers(c)
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)
    res = labkit.lab("turn-start")
    c.check(res.ok, "lab.sh turn-start (coturn)", res)
    c.check(bool(creds) and os.path.exists(creds), "the lab's TURN credentials file exists", env)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)

    # 1. symmetric <-> symmetric through the relay.
    modes("symmetric", "symmetric")
    os.environ["PORTHOLE_TURN"] = creds
    a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], "--no-map", "--turn", TURN,
                      bound=40)
    del os.environ["PORTHOLE_TURN"]
    for side in (a, b):
        c.check(side.rc == 0 and not side.timed_out, f"relay: {side.ns} exits 0", side)
        c.check(side.path == "relayed", f"relay: {side.ns} reports path relayed ({side.path})",
                side.stdout)
        c.check((side.json or {}).get("strategy") == "relay",
                f"relay: {side.ns} reports strategy relay", side.stdout)
    c.check(exchanged(a, b), "relay: each side received the other's line through coturn",
            f"{a}\n{b}")
    print(f"relayed: lan1 {a.elapsed_ms} ms, lan2 {b.elapsed_ms} ms")
    # Every allocation coturn granted (each side made one) got its Refresh LIFETIME 0:
    # the used one when the --exec program ended, the unused one at once.
    def allocations():
        text = log_text()
        made = set(re.findall(r"session (\d+): .*ALLOCATE processed, success", text))
        freed = set(re.findall(r"session (\d+): refreshed, .*lifetime=0", text))
        return made, freed
    c.check(labkit.wait_until(lambda: allocations()[0] and allocations()[0] <= allocations()[1],
                              timeout=5),
            "coturn: every allocation made was deleted (Refresh LIFETIME 0)",
            f"{allocations()}\n{log_text()[-3000:]}")
    c.check(len(allocations()[0]) == 2, "coturn: one allocation per side", allocations())

    # 2. A wrong password: the direct pair does not need the relay.
    modes("eim", "eim")
    a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], "--no-map", "--turn", TURN,
                      "--turn-user", env.get("LAB_TURN_USER", "porthole-lab"),
                      "--turn-password", "not-the-password", bound=40)
    for side in (a, b):
        c.check(side.rc == 0 and not side.timed_out, f"wrong password: {side.ns} exits 0", side)
        c.check(side.path not in ("", "relayed"),
                f"wrong password: {side.ns} connects directly ({side.path})", side.stdout)
        c.check(side.says("wrong TURN credentials"),
                f"wrong password: {side.ns} says the TURN credentials are wrong", side.stderr)
    c.check(exchanged(a, b), "wrong password: bytes both ways", f"{a}\n{b}")

    # 3. coturn down.
    res = labkit.lab("turn-stop")
    c.check(res.ok, "lab.sh turn-stop", res)
    os.environ["PORTHOLE_TURN"] = creds
    a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], "--no-map", "--turn", TURN,
                      bound=40)
    for side in (a, b):
        c.check(side.rc == 0 and side.path not in ("", "relayed"),
                f"coturn down: eim<->eim {side.ns} connects directly ({side.path})", side)
    c.check(exchanged(a, b), "coturn down: eim<->eim bytes both ways", f"{a}\n{b}")
    modes("symmetric", "symmetric")
    a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], "--no-map", "--turn", TURN,
                      "--timeout", "5", bound=40)
    del os.environ["PORTHOLE_TURN"]
    for side in (a, b):
        c.check(side.rc == 7 and not side.timed_out,
                f"coturn down: symmetric<->symmetric {side.ns} exits 7", side)
        c.check(side.says("a relay was needed"),
                f"coturn down: {side.ns} says a relay was needed", side.stderr)
        c.check(error_of(side.json).get("name") == "punch-failed",
                f"coturn down: {side.ns} --json error punch-failed", side.stdout)

    # 4. A credentials file others can read: refused, exit 8.
    loose = _state_root / "turn-loose"
    loose.write_text("user=porthole-lab\npassword=x\n")
    os.chmod(loose, 0o644)
    os.environ["PORTHOLE_TURN"] = str(loose)
    a, _ = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], "--turn", TURN, bound=20,
                      b_args=("--timeout", "1"))
    del os.environ["PORTHOLE_TURN"]
    c.check(a.rc == 8 and a.says("group or others"),
            "a group/other-readable $PORTHOLE_TURN file: exit 8 naming the problem", a)
finally:
    os.environ.pop("PORTHOLE_TURN", None)
    for r in ("r1", "r2"):
        labkit.lab("nat-mode", r, "eim")
        res = labkit.lab("router-start", r)
        c.check(res.ok, f"lab.sh router-start {r}", res)
    labkit.lab("turn-stop")
    labkit.lab("serve-stop")
finish(c)

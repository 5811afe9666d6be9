#!/usr/bin/python3
"""`porthole punch` between lan1 (behind r1) and lan2 (behind r2) for every pairing of the
lab's four NAT behaviours, with no port mapping to help (miniupnpd stopped on both
routers) and `porthole serve` in inet as the rendezvous; then eim against the
predictable symmetric NAT (symmetric-seq) both ways.

Both peers punch each other at once, each with an --exec program that sends its name
over the punched socket (fd 3) and reads the other's. A plain punch gets through 13 of
the 16 pairings. eim<->symmetric (both directions) must connect too, WITHOUT a relay:
the symmetric side's random ports are found by the birthday method (strategy
"birthday"), a sequential allocator's by port prediction ("prediction").
symmetric<->symmetric has no direct path: both sides exit 7, report strategy "relay"
and a hint that a relay is needed. The table: pair, strategy, path, time, packets.
"""

from porthole_lab import finish
from punch_lab import (PATH_KINDS, error_of, exchanged, peer_id, punch_pair, restore_routers,
                       stop_routers)
import labkit  # noqa: E402

MODES = ("eim", "symmetric", "fullcone", "restricted")
RELAY = {("symmetric", "symmetric")}
# The pairings a plain punch cannot do, and the strategy that must do them instead.
HARD = {("eim", "symmetric"): "birthday", ("symmetric", "eim"): "birthday",
        ("eim", "symmetric-seq"): "prediction", ("symmetric-seq", "eim"): "prediction"}
PAIRS = [(m1, m2) for m1 in MODES for m2 in MODES] + [
    ("eim", "symmetric-seq"), ("symmetric-seq", "eim")]


def field(s, name, default="-"):
    j = s.json if isinstance(s.json, dict) else {}
    v = j.get(name)
    return default if v is None else v


c = labkit.Checker("punch_matrix16")
table = []
try:
    stop_routers(c)
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()) and ids["lan1"] != ids["lan2"],
            "porthole id --json: an ID for each host, and they differ", ids)

    mode = {"r1": None, "r2": None}
    for m1, m2 in PAIRS:
        for r, m in (("r1", m1), ("r2", m2)):
            if mode[r] != m:
                res = labkit.lab("nat-mode", r, m)
                c.check(res.ok, f"lab.sh nat-mode {r} {m}", res)
                mode[r] = m
        pair = f"{m1}<->{m2}"
        relay = (m1, m2) in RELAY
        # --no-map: nothing to map here anyway. A short deadline where no direct path
        # exists: the suite's runtime, not a check.
        extra = ("--no-map", "-v") + (("--timeout", "5") if relay else ())
        a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], *extra, bound=40)
        table.append((pair, a, b))
        if relay:
            for side in (a, b):
                c.check(side.rc == 7 and not side.timed_out,
                        f"{pair}: {side.ns} exits 7 (no direct path)", side)
                c.check(side.says("relay") and side.says("symmetric"),
                        f"{pair}: {side.ns}'s hint says a relay is needed for the symmetric "
                        "NATs", side.stderr)
                j = side.json or {}
                c.check(error_of(j).get("name") == "punch-failed" and
                        j.get("strategy") == "relay",
                        f"{pair}: {side.ns} --json: punch-failed, strategy relay", side.stdout)
                c.check(side.exchange is None, f"{pair}: {side.ns} ran no --exec program",
                        side.stdout)
            continue
        for side in (a, b):
            c.check(side.rc == 0 and not side.timed_out, f"{pair}: {side.ns} exits 0", side)
            c.check(side.path in PATH_KINDS and side.path != "relayed",
                    f"{pair}: {side.ns} reports a direct path kind ({side.path or 'none'})",
                    side.stdout)
            want = HARD.get((m1, m2))
            if want:
                c.check(field(side, "strategy") == want,
                        f"{pair}: {side.ns} used strategy {want} "
                        f"({field(side, 'strategy')})", side.stdout)
        c.check(exchanged(a, b), f"{pair}: each side received the other's line", f"{a}\n{b}")
finally:
    print(f"{'pair':26} {'exit':>7}  {'strategy':11} {'path lan1 / lan2':34} "
          f"{'elapsed_ms':>13} {'packets':>11}")
    for pair, a, b in table:
        print(f"{pair:26} {a.rc:>3} {b.rc:>3}  {field(a, 'strategy'):11} "
              f"{field(a, 'path') + ' / ' + field(b, 'path'):34} "
              f"{field(a, 'elapsed_ms'):>6} {field(b, 'elapsed_ms'):>6} "
              f"{field(a, 'packets_sent'):>5} {field(b, 'packets_sent'):>5}")
    restore_routers(c)
    labkit.lab("serve-stop")
finish(c)

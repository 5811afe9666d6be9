#!/usr/bin/python3
"""`porthole punch` between lan1 (behind r1) and lan2 (behind r2) for every pairing of the
lab's four NAT behaviours, with no port mapping to help (miniupnpd stopped on both
routers) and `porthole serve` in inet as the rendezvous.

Both peers punch each other at once, each with an --exec program that sends its name
over the punched socket (fd 3) and reads the other's. A simple punch (host,
server-reflexive and peer-reflexive candidates) gets through 13 of the 16 pairings. It
cannot when one side's NAT maps each destination to a new port (symmetric) and the other
only admits packets from endpoints it has sent to (port-restricted cone: eim here) or
maps per destination as well: eim<->symmetric both ways and symmetric<->symmetric. Those
must fail with exit 7 and a hint that names the symmetric NAT. Full-cone and
restricted-cone sides admit the symmetric side's new port (a peer-reflexive candidate).
"""

from porthole_lab import finish
from punch_lab import PATH_KINDS, error_of, exchanged, peer_id, punch_pair
import labkit  # noqa: E402

MODES = ("eim", "symmetric", "fullcone", "restricted")
BLOCKED = {("eim", "symmetric"), ("symmetric", "eim"), ("symmetric", "symmetric")}


def kind(s) -> str:
    """For the table: the JSON report's path kind, else the -v line's (marked *)."""
    return s.path or (s.verbose()[0] + "*" if s.verbose()[0] else "-")


def ms(s) -> str:
    """For the table: the JSON report's elapsed_ms, else the -v line's (marked *)."""
    if s.elapsed_ms is not None:
        return str(s.elapsed_ms)
    return f"{s.verbose()[1]}*" if s.verbose()[1] is not None else "-"


c = labkit.Checker("punch_matrix")
table = []
try:
    for r in ("r1", "r2"):
        res = labkit.lab("router-stop", r)
        c.check(res.ok, f"lab.sh router-stop {r}", res)
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()) and ids["lan1"] != ids["lan2"],
            "porthole id --json: an ID for each host, and they differ", ids)

    for m1 in MODES:
        res = labkit.lab("nat-mode", "r1", m1)
        c.check(res.ok, f"lab.sh nat-mode r1 {m1}", res)
        for m2 in MODES:
            res = labkit.lab("nat-mode", "r2", m2)
            c.check(res.ok, f"lab.sh nat-mode r2 {m2}", res)
            pair = f"{m1}<->{m2}"
            blocked = (m1, m2) in BLOCKED
            # --no-map: nothing to map here anyway, and a gateway without any mapping
            # service would cost each run the mapping attempt's wait. -v: with --exec
            # the path kind and time are also on stderr, for the table. A short
            # deadline where no path exists: the suite's runtime, not a check.
            extra = ("--no-map", "-v") + (("--timeout", "5") if blocked else ())
            a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], *extra, bound=40)
            table.append((pair, a, b))
            if blocked:
                for side in (a, b):
                    c.check(side.rc == 7 and not side.timed_out,
                            f"{pair}: {side.ns} exits 7 (no direct path)", side)
                    c.check(side.says("symmetric"),
                            f"{pair}: {side.ns} names the symmetric NAT as the reason", side.stderr)
                    j = side.json or {}
                    pairs = j.get("candidates") or []
                    c.check(error_of(j).get("name") == "punch-failed" and pairs and
                            all(p.get("outcome") in ("failed", "not-tried") for p in pairs),
                            f"{pair}: {side.ns} --json: punch-failed with every pair's outcome",
                            side.stdout)
                    c.check(side.exchange is None,
                            f"{pair}: {side.ns} ran no --exec program", side.stdout)
                continue
            for side in (a, b):
                c.check(side.rc == 0 and not side.timed_out, f"{pair}: {side.ns} exits 0", side)
                c.check(side.path in PATH_KINDS,
                        f"{pair}: {side.ns} reports a path kind in its JSON "
                        f"({side.path or 'none'})", side.stdout)
            c.check(exchanged(a, b), f"{pair}: each side received the other's line", f"{a}\n{b}")
finally:
    print(f"{'pair':24} {'exit':>7}  {'path lan1 / lan2':36} {'elapsed_ms':>13}")
    for pair, a, b in table:
        print(f"{pair:24} {a.rc:>3} {b.rc:>3}  {kind(a) + ' / ' + kind(b):36} "
              f"{ms(a):>6} {ms(b):>6}")
    for r in ("r1", "r2"):
        res = labkit.lab("nat-mode", r, "eim")
        c.check(res.ok, f"{r} back in eim mode", res)
        res = labkit.lab("router-start", r)
        c.check(res.ok, f"lab.sh router-start {r}", res)
    labkit.lab("serve-stop")
finish(c)

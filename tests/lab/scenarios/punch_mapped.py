#!/usr/bin/python3
"""`porthole punch` through a port mapping: lan1 sits behind r1 in symmetric mode (a new
external port per destination, so its server-reflexive candidate is useless to a
port-restricted peer), but r1 runs miniupnpd, so lan1 maps its punch port (PCP / NAT-PMP /
UPnP) and offers the mapped candidate. lan2 sits behind r2 in eim mode (port-restricted
cone) with miniupnpd stopped (nothing to map there). Without the mapping this pairing is
symmetric<->eim, which a simple punch cannot cross (punch_matrix16.py).

- lan1 <-> lan2 connects, the path is `mapped` in at least one side's --json report and
  lan2 proved a pair to lan1's mapped candidate;
- with --exec the programs exchange their lines both ways over that path;
- after each run r1 holds no mapping for lan1's punch port (removed when the socket
  closed);
- with --no-map on lan1 the same pairing has no mapped path: it still connects, but only
  by the birthday method (strategy "birthday", path not mapped), and leaves no mapping.
"""

from porthole_lab import LAN1, cleanup, finish
from punch_lab import exchanged, peer_id, punch_pair, udp_mappings
import labkit  # noqa: E402

MAPPED_PORT, NO_MAP_PORT = 41000, 41002

c = labkit.Checker("punch_mapped")
cleanup("lan1")
try:
    res = labkit.lab("router-start", "r1")   # restarts it when it was running
    c.check(res.ok, "lab.sh router-start r1 (miniupnpd running)", res)
    res = labkit.lab("router-stop", "r2")
    c.check(res.ok, "lab.sh router-stop r2 (nothing to map behind r2)", res)
    for r, mode in (("r1", "symmetric"), ("r2", "eim")):
        res = labkit.lab("nat-mode", r, mode)
        c.check(res.ok, f"lab.sh nat-mode {r} {mode}", res)
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    c.check(not udp_mappings("r1", LAN1, MAPPED_PORT),
            f"before: r1 holds no mapping for {LAN1}:{MAPPED_PORT}", labkit.upnp_table("r1"))

    # --json: the path kind and lan2's view of lan1's mapped candidate.
    a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], exchange=False,
                      a_args=("--port", str(MAPPED_PORT)), bound=40)
    for side in (a, b):
        c.check(side.rc == 0 and not side.timed_out, f"--json: {side.ns} exits 0", side)
    c.check("mapped" in (a.path, b.path),
            f"--json: the path is `mapped` in a report "
            f"(lan1 {a.path or '-'}, lan2 {b.path or '-'})",
            f"{a.stdout}\n{b.stdout}")
    proven = [p for p in (b.json or {}).get("candidates", [])
              if p.get("type") == "mapped" and p.get("outcome") in ("succeeded", "nominated")]
    c.check(proven, "--json: lan2 proved a pair to lan1's mapped candidate", b.stdout)
    if a.rc != 0 or b.rc != 0:
        # What r1's connection tracking made of it (a clash of the mapping's DNAT with
        # the symmetric SNAT of lan1's own checks shows here).
        ct = labkit.run("r1", ["conntrack", "-L", "-p", "udp"])
        print(f"r1 conntrack after the failed mapped punch:\n{ct.stdout}{ct.stderr}")
    left = udp_mappings("r1", LAN1, MAPPED_PORT)
    c.check(not left, f"after --json: r1 holds no mapping for {LAN1}:{MAPPED_PORT}", left)

    # --exec: bytes both ways over the mapped path; the mapping goes when the program ends.
    a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], json_out=False,
                      a_args=("--port", str(MAPPED_PORT)), bound=40)
    for side in (a, b):
        c.check(side.rc == 0 and not side.timed_out, f"--exec: {side.ns} exits 0", side)
    c.check(exchanged(a, b), "--exec: each side received the other's line", f"{a}\n{b}")
    left = udp_mappings("r1", LAN1, MAPPED_PORT)
    c.check(not left, f"after --exec: r1 holds no mapping for {LAN1}:{MAPPED_PORT}", left)

    a, b = punch_pair("lan1", ids["lan1"], "lan2", ids["lan2"], "--timeout", "5",
                      a_args=("--port", str(NO_MAP_PORT), "--no-map"), bound=40)
    for side in (a, b):
        j = side.json if isinstance(side.json, dict) else {}
        c.check(side.rc == 0 and not side.timed_out and j.get("strategy") == "birthday" and
                side.path not in ("", "mapped"),
                f"--no-map on lan1: {side.ns} connects by the birthday method, not a mapping",
                side)
    left = udp_mappings("r1", LAN1, NO_MAP_PORT)
    c.check(not left, f"--no-map: r1 holds no mapping for {LAN1}:{NO_MAP_PORT}", left)
finally:
    for r in ("r1", "r2"):
        res = labkit.lab("nat-mode", r, "eim")
        c.check(res.ok, f"{r} back in eim mode", res)
    res = labkit.lab("router-start", "r2")
    c.check(res.ok, "lab.sh router-start r2", res)
    labkit.lab("serve-stop")
    cleanup("lan1")
finish(c)

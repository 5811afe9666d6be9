#!/usr/bin/python3
"""The birthday method's bounds: lan1 behind a symmetric (random) r1, lan2 behind r2 in
eim, no mapping service. Both connect by strategy "birthday"; each side's report stays
under the caps (at most 256 extra sockets, 2048 probes plus one check per extra socket
and target); while lan1's --exec program runs, porthole holds no extra socket any more
(its /proc/PID/fd, counted by the program, is far below the 256 it had opened); and
neither router holds a mapping for the hosts afterwards.
"""

import re

from porthole_lab import LAN1, finish
from punch_lab import Punch, peer_id, restore_routers, stop_routers
import labkit  # noqa: E402

MAX_SOCKETS, MAX_PROBES = 256, 2048

c = labkit.Checker("punch_birthday_caps")
try:
    stop_routers(c)
    for r, mode in (("r1", "symmetric"), ("r2", "eim")):
        res = labkit.lab("nat-mode", r, mode)
        c.check(res.ok, f"lab.sh nat-mode {r} {mode}", res)
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    # lan1's program counts porthole's descriptors ($PPID: porthole runs sh -c CMD).
    pa = Punch("lan1", ids["lan2"], "--no-map", "--exec",
               "echo fds=$(ls /proc/$PPID/fd | wc -l)", exchange=False)
    pb = Punch("lan2", ids["lan1"], "--no-map")
    a, b = pa.wait(40), pb.wait(40)
    for side in (a, b):
        j = side.json if isinstance(side.json, dict) else {}
        c.check(not side.timed_out and j.get("strategy") == "birthday",
                f"{side.ns}: connected by strategy birthday", side)
        sockets, packets = j.get("sockets_opened", -1), j.get("packets_sent", -1)
        c.check(0 <= sockets <= MAX_SOCKETS,
                f"{side.ns}: {sockets} extra sockets, at most {MAX_SOCKETS}", side.stdout)
        c.check(0 <= packets <= MAX_PROBES + MAX_SOCKETS * 2,
                f"{side.ns}: {packets} packets sent, under the cap", side.stdout)
    j = a.json if isinstance(a.json, dict) else {}
    c.check(j.get("sockets_opened", 0) > 0, "lan1 (symmetric) opened extra sockets", a.stdout)
    m = re.search(r"fds=(\d+)", a.stdout)
    fds = int(m.group(1)) if m else -1
    c.check(a.rc == 0 and 0 < fds < 16,
            f"lan1: during --exec porthole holds {fds} descriptors: no extra socket left", a)
    for r, ip in (("r1", LAN1), ("r2", "192.168.2.100")):
        left = [m for m in labkit.upnp_table(r) if m.int_ip == ip]
        c.check(not left, f"{r} holds no mapping for {ip}", left)
finally:
    restore_routers(c)
    labkit.lab("serve-stop")
finish(c)

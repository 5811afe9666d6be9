#!/usr/bin/python3
"""`porthole expose` / `porthole connect`: connect's NAT gives it a new address under a
running tunnel (a NAT rebinding), and the tunnel moves with it (QUIC connection
migration, RFC 9000 s9.3) instead of breaking.

miniupnpd runs on r1, so the tunnel runs over expose's mapping, which takes packets from
any source. r2 starts eim (its external port is connect's own); then `lab.sh nat-mode
r2 symmetric-seq` flushes r2's connection tracking and maps new flows to ports from
40000 on: connect's next packet leaves r2 from another port. expose finds the
connection by its QUIC connection ID, ngtcp2 validates the new path and moves there.

- before: curl through the tunnel gets the file;
- after the rebinding: a new curl through the same local port gets the file with the
  same SHA-256; connect reports no path-lost and no reconnected (the same connection),
  expose no second peer-connected and no peer-gone;
- SIGTERM: both exit 0, nothing of ours left on r1.
"""

import time

from porthole_lab import LAN1, cleanup, finish
from tunnel_lab import (PATH_KINDS, EventTimeout, FileServer, connect, connected, curl,
                        expose, lab_ready, lab_restore, ours_on_r1, peer_id, started, stopped)
import labkit  # noqa: E402

SERVICE, LOCAL, TUNNEL_PORT = 8080, 18081, 41031
NAME = "file.bin"

c = labkit.Checker("tunnel_rebind")
cleanup("lan1")
www = ex = co = None
try:
    lab_ready(c, miniupnpd={"r1": True, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    www = FileServer("lan1", SERVICE, {NAME: 1000 * 1000})
    try:
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--port", str(TUNNEL_PORT), "-v")
        started(ex)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        ev = connected(co)
        c.check(ev.get("path") == "mapped", f"connected over expose's mapping ({ev.get('path')})",
                ev)
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME], "before the rebinding: curl gets the file", r)
        pids = (ex.pid, co.pid)

        t_rebind = time.monotonic()
        res = labkit.lab("nat-mode", "r2", "symmetric-seq")
        c.check(res.ok, "r2 rebinds: nat-mode symmetric-seq, connection tracking flushed", res)
        # A keep-alive (every 2.5 s) or the curl's first packet leaves from the new port.
        time.sleep(3)
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME],
                "after the rebinding: a new curl gets the file with the same SHA-256", r)
        c.check(ex.says("QUIC migration"),
                "expose followed lan2 to its new address (QUIC migration)", ex.summary())
        time.sleep(1)
        c.check(not co.of("path-lost", since=t_rebind) and not co.of("reconnected",
                                                                     since=t_rebind),
                "connect saw no break: the same connection, no new punch", co.summary())
        c.check(len(ex.of("peer-connected")) == 1 and not ex.of("peer-gone"),
                "expose kept the one connection (no second peer-connected, no peer-gone)",
                ex.summary())
        c.check(ex.alive() and co.alive() and (ex.pid, co.pid) == pids,
                "both sides are still the processes started before")
    except EventTimeout as e:
        c.check(False, "expose and connect up", e)
    finally:
        stopped(c, co, ex)
    left = ours_on_r1()
    c.check(not left, f"after SIGTERM: nothing of ours left on r1 for {LAN1}", left)
finally:
    labkit.lab("nat-mode", "r2", "eim")
    lab_restore(c, www)
    cleanup("lan1")
finish(c)

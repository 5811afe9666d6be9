#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 6: 100 concurrent TCP connections
through one tunnel. The HTTP server on lan1 serves 100 different random files (32 KiB
each); a client on lan2 opens 100 connections to connect's local port, waits until all
of them are open (a barrier), then fetches a different file on each and checks each
file's SHA-256: all 100 complete with the right bytes. Both sides keep running and exit 0
on SIGTERM. Over a punched path (miniupnpd stopped, both routers eim)."""

from porthole_lab import finish
from tunnel_lab import (EventTimeout, FileServer, connect, connected, expose, fetch_many,
                        lab_ready, lab_restore, peer_id, started, stopped)
import labkit  # noqa: E402

SERVICE, LOCAL, COUNT, SIZE = 8080, 18080, 100, 32 * 1024

c = labkit.Checker("tunnel_many")
www = ex = co = None
try:
    lab_ready(c, miniupnpd={"r1": False, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    www = FileServer("lan1", SERVICE, {f"f{i:03}.bin": SIZE for i in range(COUNT)})
    try:
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--no-map")
        started(ex)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        connected(co)
        got = fetch_many("lan2", LOCAL, www.files)
        c.check(got.get("ok") == COUNT and not got.get("bad") and not got.get("errors"),
                f"{COUNT} concurrent connections: {got.get('ok')} got the right bytes", got)
        c.check(ex.alive() and co.alive(), "both sides still running")
        # And the tunnel still carries a new connection afterwards.
        one = fetch_many("lan2", LOCAL, {"f000.bin": www.files["f000.bin"]})
        c.check(one.get("ok") == 1, "afterwards one more connection works", one)
    except EventTimeout as e:
        c.check(False, "expose and connect up", e)
    finally:
        stopped(c, co, ex)
finally:
    lab_restore(c, www)
finish(c)

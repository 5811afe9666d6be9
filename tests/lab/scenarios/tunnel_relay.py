#!/usr/bin/python3
"""`porthole connect --turn`: both routers symmetric, miniupnpd stopped (no direct path
can exist), coturn in inet (`lab.sh turn-start`): `connect --turn` on lan2 reaches
`expose 8080` on lan1 through its own TURN allocation (path `relayed`; expose needs no
relay of its own, it answers the relayed address), and `curl` through the local port
gets a 1 MB file with the same SHA-256. Without --turn the same connect exits 7."""

import os

from porthole_lab import finish
from tunnel_lab import (EXIT_NO_PATH, EventTimeout, FileServer, connect, connected, curl,
                        expose, lab_ready, lab_restore, peer_id, started, stopped)
import labkit  # noqa: E402

TURN = "turn:198.51.100.14:3478"
HTTP, LOCAL = 8080, 18080

c = labkit.Checker("tunnel_relay")
env = labkit.lab_env()
creds = env.get("LAB_TURN_CREDENTIALS", "")
www = ex = co = None
try:
    lab_ready(c, modes={"r1": "symmetric", "r2": "symmetric"},
              miniupnpd={"r1": False, "r2": False})
    res = labkit.lab("turn-start")
    c.check(res.ok, "lab.sh turn-start (coturn)", res)
    c.check(bool(creds) and os.path.exists(creds), "the lab's TURN credentials file exists", env)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    www = FileServer("lan1", HTTP, {"relayed.bin": 1 << 20})
    try:
        ex = expose("lan1", [str(HTTP)], [ids["lan2"]], "--no-map")
        started(ex)
        os.environ["PORTHOLE_TURN"] = creds
        try:
            co = connect("lan2", ids["lan1"], [f"{LOCAL}:{HTTP}"], "--no-map", "--turn", TURN)
        finally:
            del os.environ["PORTHOLE_TURN"]
        ev = connected(co)
        c.check(ev.get("path") == "relayed", f"connect: path relayed ({ev.get('path')})", ev)
        r, digest = curl("lan2", LOCAL, "relayed.bin", timeout=60)
        c.check(digest == www.files["relayed.bin"],
                "curl through the relayed tunnel gets the file with the same SHA-256", r)
        stopped(c, co)
        co = None
        # The same without --turn: no path.
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{HTTP}"], "--no-map", "--timeout", "4")
        rc = co.wait(60)
        c.check(rc == EXIT_NO_PATH, f"without --turn: connect exits 7 (rc={rc})", co.summary())
        co = None
    except EventTimeout as e:
        c.check(False, "expose and connect up", e)
    finally:
        stopped(c, co, ex)
finally:
    labkit.lab("turn-stop")
    lab_restore(c, www)
finish(c)

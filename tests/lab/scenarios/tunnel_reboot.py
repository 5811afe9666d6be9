#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 5: r1 reboots under an idle tunnel.
miniupnpd runs on r1, so the tunnel runs over expose's mapping (both routers eim).
The reboot takes longer than the tunnel's 10 s idle timeout, as a real one does: r1
first forwards nothing (a drop rule at the top of its forward chain, miniupnpd
stopped: powered off), then `lab.sh router-reboot r1` flushes miniupnpd's rules, its
leases and r1's connection tracking (the mapping and every NAT binding are gone) and
starts it again, and the drop rule goes.

- before: curl through the tunnel gets the file;
- while r1 is off connect reports the break (path-lost, "idle timeout"); when r1 is
  back it finds a path again by itself (reconnected, with path and peer), expose
  accepts the new connection from the same peer (peer-connected again) and maps its
  port again;
- a new curl through the same local port gets the file with the same SHA-256, with
  both sides still the processes started before the reboot (nothing restarted);
- SIGTERM: both exit 0, nothing of ours left on r1.
"""

import time

from porthole_lab import LAN1, cleanup, finish
from tunnel_lab import (PATH_KINDS, EventTimeout, FileServer, connect, connected, curl,
                        expose, forward_rule, lab_ready, lab_restore, ours_on_r1, peer_id, started, stopped)
import labkit  # noqa: E402

SERVICE, LOCAL, TUNNEL_PORT = 8080, 18080, 41030
NAME = "file.bin"
OFF = "tunnel-reboot-off"  # the comment that names the drop rule


def power(on: bool) -> bool:
    """r1 forwards nothing (off) or again (on: the drop rule removed)."""
    return forward_rule("r1", OFF, None if on else "counter drop")


c = labkit.Checker("tunnel_reboot")
cleanup("lan1")
www = ex = co = None
try:
    lab_ready(c, miniupnpd={"r1": True, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    www = FileServer("lan1", SERVICE, {NAME: 1000 * 1000})
    try:
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--port", str(TUNNEL_PORT))
        started(ex)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        ev = connected(co)
        c.check(ev.get("path") in PATH_KINDS, f"connected ({ev.get('path')})", ev)
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME], "before the reboot: curl gets the file", r)
        pids = (ex.pid, co.pid)

        # Idle for a moment: the mapping is a few seconds old (RFC 6887 s8.5 slack for
        # an epoch that restarts), and no stream is open.
        time.sleep(3)
        t_reboot = time.monotonic()
        c.check(power(False) and labkit.lab("router-stop", "r1").ok,
                "r1 off: forwards nothing, miniupnpd stopped")
        lost = co.has("path-lost", 40, since=t_reboot)
        c.check(lost is not None and lost.get("reason") == "idle timeout",
                f"connect reports the break (path-lost, idle timeout; seen "
                f"{time.monotonic() - t_reboot:.1f} s after r1 went off)", co.summary())
        t_on = time.monotonic()
        res = labkit.lab("router-reboot", "r1")
        c.check(power(True) and res.ok, "r1 on again: lab.sh router-reboot r1, drop rule gone",
                res)
        back = co.has("reconnected", 60, since=t_on)
        c.check(back is not None and back.get("path") in PATH_KINDS and back.get("peer"),
                f"connect reports it reconnected ({(back or {}).get('path')}, "
                f"{(back or {}).get('peer')})", co.summary())
        c.check(ex.has("peer-connected", 30, since=t_on,
                       pred=lambda e: e.get("peer_id") == ids["lan2"]) is not None,
                "expose accepts the new connection from lan2", ex.summary())
        c.check(ex.has("mapping", 30, since=t_on,
                       pred=lambda e: e.get("what") in ("mapped", "renewed")) is not None,
                "expose mapped its port again after the reboot", ex.summary())
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME],
                "after the reboot: a new curl gets the file with the same SHA-256", r)
        c.check(ex.alive() and co.alive() and (ex.pid, co.pid) == pids,
                "both sides are still the processes started before the reboot")
    except EventTimeout as e:
        c.check(False, "expose and connect up", e)
    finally:
        stopped(c, co, ex)
    left = ours_on_r1()
    c.check(not left, f"after SIGTERM: nothing of ours left on r1 for {LAN1}", left)
finally:
    power(True)
    lab_restore(c, www)
    cleanup("lan1")
finish(c)

#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 2: mapping first. miniupnpd runs on
r1, so `expose` on lan1 maps its tunnel's UDP port there (PCP / NAT-PMP / UPnP) and
advertises it at the rendezvous as a `mapped` candidate. lan2 sits behind r2 in symmetric
mode (a new external port per destination: a simple punch with lan1's port-restricted r1
could not work), with nothing to map on r2.

- expose's ready event names the mapping (r1's WAN address); r1 holds a UDP redirect to
  lan1's tunnel port;
- connect's path is `mapped`, and curl through it gets the file with the same SHA-256;
- after SIGTERM both exit 0 and nothing of ours is left on r1 (its table read on the
  router: no redirect to lan1 at all).
- `--verify`: that expose proves its mapping from outside first (the lab's stund
  answers a CHANGE-REQUEST from its other address through r1's forward): a mapping
  event "verified". Then, with lan2's r2 in eim, r1 lies: it makes the mapping but drops
  every new inbound connection to it (a drop rule at the top of its forward chain):
  expose --verify reports "unverified", its ready event names no mapping, and connect
  punches instead (path not `mapped`) and gets the file.
"""

from porthole_lab import LAN1, WAN_IP, cleanup, finish
from punch_lab import udp_mappings
from tunnel_lab import (EventTimeout, FileServer, connect, connected, curl, expose,
                        forward_rule, lab_ready, lab_restore, ours_on_r1, peer_id, started, stopped)
import labkit  # noqa: E402

SERVICE, LOCAL, TUNNEL_PORT = 8080, 18080, 41020
NAME = "file.bin"
LIE = "tunnel-mapped-lie"  # the comment that names r1's drop rule


def lie(on: bool) -> bool:
    """r1 drops new inbound connections to lan1's tunnel port (on), or no more (off)."""
    rule = f"ip daddr {LAN1} udp dport {TUNNEL_PORT} ct state new drop"
    return forward_rule("r1", LIE, rule if on else None)


def expose_verified(ids: dict):
    """expose --verify on lan1 for lan2, started: (it, its ready event, its verdict)."""
    ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--port", str(TUNNEL_PORT), "--verify")
    ready = started(ex)
    ver = ex.of("mapping", pred=lambda e: e.get("what") in ("verified", "unverified"))
    return ex, ready, (ver[0] if ver else {})


c = labkit.Checker("tunnel_mapped")
cleanup("lan1")
www = ex = co = None
try:
    lab_ready(c, miniupnpd={"r1": True, "r2": False}, modes={"r1": "eim", "r2": "symmetric"})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    c.check(not ours_on_r1(), f"before: r1 holds nothing for {LAN1}", labkit.upnp_table("r1"))
    www = FileServer("lan1", SERVICE, {NAME: 2 * 1000 * 1000})
    try:
        ex, ready, ver = expose_verified(ids)
        c.check(ver.get("what") == "verified",
                f"--verify: expose reports its mapping verified ({ver})", ex.summary())
        mapping = str(ready.get("mapping") or "")
        c.check(mapping.startswith(f"{WAN_IP}:"),
                f"expose ready names a mapping on r1's WAN address ({mapping or 'null'})", ready)
        c.check(udp_mappings("r1", LAN1, TUNNEL_PORT),
                f"r1 holds a UDP redirect to {LAN1}:{TUNNEL_PORT}", labkit.upnp_table("r1"))
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        ev = connected(co)
        c.check(ev.get("path") == "mapped",
                f"connect's path is `mapped` ({ev.get('path')}), lan2's NAT symmetric", ev)
        c.check(ev.get("peer") == mapping,
                f"connect's peer is expose's mapping ({ev.get('peer')})", ev)
        seen = ex.has("peer-connected", 10)
        c.check(seen is not None and seen.get("path") == "mapped",
                "expose reports the peer on the mapped path", ex.summary())
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME],
                "curl over the mapped path gets the file with the same SHA-256", r)
    except EventTimeout as e:
        c.check(False, "expose and connect up", e)
    finally:
        stopped(c, co, ex)
    c.check(not ours_on_r1(), f"after SIGTERM: nothing of ours left on r1 for {LAN1}",
            f"{ours_on_r1()}\n{ex.summary() if ex else ''}")
    if ex:
        c.check(ex.of("mapping", pred=lambda e: e.get("what") == "removed"),
                "expose reported the mapping removed", ex.summary())
    # A router that lies: the mapping is made, but nothing new gets in through it.
    ex = co = None
    try:
        c.check(labkit.lab("nat-mode", "r2", "eim").ok and lie(True),
                "r2 in eim; r1 drops new inbound connections to the tunnel port")
        ex, ready, ver = expose_verified(ids)
        c.check(ver.get("what") == "unverified" and ver.get("message"),
                f"lying r1: expose reports its mapping unverified, with why ({ver})",
                ex.summary())
        c.check(not ready.get("mapping"),
                f"lying r1: ready advertises no mapping ({ready.get('mapping')})", ready)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        ev = connected(co)
        c.check(ev.get("path") not in (None, "mapped"),
                f"lying r1: connect punches instead ({ev.get('path')})", ev)
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME],
                "lying r1: curl over the punched path gets the file", r)
    except EventTimeout as e:
        c.check(False, "lying r1: expose and connect up", e)
    finally:
        stopped(c, co, ex, what="lying r1: SIGTERM: both exit 0")
        lie(False)
finally:
    lie(False)
    lab_restore(c, www)
    cleanup("lan1")
finish(c)

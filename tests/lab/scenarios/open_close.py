#!/usr/bin/python3
"""Lab test 1: for each of pcp, natpmp, upnp and for tcp and udp, `open` makes a port
that a public host reaches, and `close` takes it away again."""

from porthole_lab import (LAN1, PUBLIC, WAN_IP, cleanup, entries_for, finish,
                          porthole, porthole_json)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("open_close")
cleanup()
port = 41000
for via in ("pcp", "natpmp", "upnp"):
    for transport in ("tcp", "udp"):
        port += 1
        name = f"{via} {transport} {port}"
        with labkit.listen("lan1", port, transport, token="lan1"):
            c.check(not labkit.reach(PUBLIC, WAN_IP, port, transport, token="lan1"),
                    f"{name}: not reachable before open")
            r, j = porthole_json("lan1", "open", f"{port}/{transport}", "--via", via)
            if not c.check(r.rc == 0 and j is not None, f"{name}: open exits 0", r):
                continue
            c.check(j["protocol"] == via, f"{name}: JSON protocol is {via}", j)
            c.check(j["transport"] == transport, f"{name}: JSON transport", j)
            c.check(j["internal_ip"] == LAN1 and j["internal_port"] == port,
                    f"{name}: JSON internal endpoint", j)
            c.check(j["external_ip"] == WAN_IP, f"{name}: JSON external_ip", j)
            c.check(j["external_port"] == port, f"{name}: external port as asked", j)
            c.check(j["lifetime"] > 0, f"{name}: a lifetime was granted", j)
            c.check(len(entries_for(LAN1, port, transport)) == 1,
                    f"{name}: one redirect on the router")
            c.check(labkit.reach(PUBLIC, WAN_IP, j["external_port"], transport, token="lan1"),
                    f"{name}: public host reaches the LAN listener")
            r = porthole("lan1", "close", f"{port}/{transport}")
            c.check(r.rc == 0 and "closed" in r.stdout, f"{name}: close exits 0", r)
            c.check(not entries_for(LAN1, port, transport),
                    f"{name}: no redirect left on the router")
            c.check(not labkit.reach(PUBLIC, WAN_IP, port, transport, token="lan1"),
                    f"{name}: not reachable after close")

# Text output names everything the user needs.
with labkit.listen("lan1", 41100, "tcp", token="lan1"):
    r = porthole("lan1", "open", "41100")
    c.check(r.rc == 0 and f"{WAN_IP}:41100/tcp" in r.stdout and LAN1 in r.stdout
            and "lifetime" in r.stdout, "text output shows external, internal, lifetime", r)
    c.check("via pcp" in r.stdout, "auto picks PCP when the router speaks all three", r)
    r = porthole("lan1", "close", "41100")
    c.check(r.rc == 0, "close after auto", r)
cleanup()
finish(c)

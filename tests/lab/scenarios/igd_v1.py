#!/usr/bin/python3
"""Lab: an IGDv1 router (WANIPConnection:1, no AddAnyPortMapping). porthole maps,
refreshes, finds another port on a conflict by itself, and closes."""

from porthole_lab import (LAN1, LAN1B, PUBLIC, WAN_IP, cleanup, entries_for, finish,
                          porthole, porthole_json)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("igd_v1")
cleanup()
try:
    r = labkit.lab("router-start-igdv1")
    c.check(r.ok, "router restarted as IGDv1", r)
    r = porthole("lan1", "probe", "-v")
    c.check(r.rc == 0 and "WANIPConnection:1" in r.stderr, "probe finds a WANIPConnection:1", r)

    with labkit.listen("lan1", 46000, "tcp", token="lan1"):
        r, j = porthole_json("lan1", "open", "46000", "--via", "upnp")
        c.check(r.rc == 0 and j and j["external_port"] == 46000, "v1: open", r)
        c.check(labkit.reach(PUBLIC, WAN_IP, 46000, "tcp", token="lan1"), "v1: reachable")
        r, j2 = porthole_json("lan1", "open", "46000", "--via", "upnp")
        c.check(r.rc == 0 and j2 and j2["external_port"] == 46000 and j2["refreshed"],
                "v1: second open refreshes", r)
        c.check(len(entries_for(LAN1, 46000)) == 1, "v1: one router entry")
        r = porthole("lan1", "close", "46000")
        c.check(r.rc == 0 and not entries_for(LAN1, 46000), "v1: closed", r)

    # Conflict without AddAnyPortMapping: porthole walks to a free port itself.
    r, held = porthole_json("lan1b", "open", "46010", "--via", "upnp")
    c.check(r.rc == 0 and held, "lan1b holds 46010", r)
    with labkit.listen("lan1", 46010, "tcp", token="lan1"):
        r, j = porthole_json("lan1", "open", "46010", "--via", "upnp")
        ok = c.check(r.rc == 0 and j and j["external_port"] not in (0, 46010),
                     "v1 conflict: another external port", r)
        if ok:
            c.check("assigned" in r.stderr, "v1 conflict: says so", r.stderr)
            c.check(labkit.reach(PUBLIC, WAN_IP, j["external_port"], "tcp", token="lan1"),
                    "v1 conflict: the other port reaches lan1")
    c.check(entries_for(LAN1B, 46010), "v1 conflict: lan1b's entry untouched")
    porthole("lan1", "close", "46010")
    porthole("lan1b", "close", "46010")
finally:
    labkit.lab("router-start")
    cleanup()
finish(c)

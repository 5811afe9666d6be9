#!/usr/bin/python3
"""Lab tests 4, 5 and 6: routers that do not help.
4. miniupnpd stopped: exit 3 long before the deadline (ICMP port unreachable).
   Router silently dropping the protocols: exit 3 by the deadline, not minutes later.
5. Router that cannot forward (miniupnpd without its STUN self-test, as behind CGNAT):
   exit 4 with a message pointing at an upstream NAT.
6. A port the router's rules forbid (below 1024 here): exit 4 with the router's reason."""

from porthole_lab import (LAN1, cleanup, entries_for, finish, porthole, porthole_json,
                          router_idle)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("router_failures")
cleanup()

try:
    # 6: forbidden port. The lab's miniupnpd allows 1024-65535 only.
    for via in ("pcp", "natpmp", "upnp", "auto"):
        c.check(router_idle(), f"{via}: router idle before the case")
        r, j = porthole_json("lan1", "open", "80", "--via", via)
        c.check(r.rc == 4, f"{via}: port 80 refused with exit 4", r)
        c.check(j and j.get("error", {}).get("protocol_code", 0) != 0,
                f"{via}: the router's own code is reported", r.stdout)
        c.check(not entries_for(LAN1, 80), f"{via}: nothing mapped")

    # 5: no external address upstream.
    c.check(router_idle(), "router idle after the forbidden-port cases")
    r = labkit.lab("router-start-cgnat")
    c.check(r.ok, "router restarted without STUN (CGNAT-like)", r)
    for via in ("pcp", "natpmp", "upnp", "auto"):
        r = porthole("lan1", "open", "44000", "--via", via)
        c.check(r.rc == 4, f"cgnat {via}: exit 4", r)
        c.check("NAT" in r.stderr, f"cgnat {via}: message points at an upstream NAT", r.stderr)
    r, j = porthole_json("lan1", "probe")
    c.check(r.rc == 0 and j and any("another NAT" in w for w in j["warnings"]),
            "cgnat: probe warns about the missing external address", r)

    # 4a: miniupnpd stopped: ICMP says so at once.
    r = labkit.lab("router-stop")
    c.check(r.ok, "miniupnpd stopped", r)
    for via in ("pcp", "natpmp", "auto"):
        r = porthole("lan1", "open", "44001", "--via", via, "--timeout", "20")
        c.check(r.rc == 3, f"stopped {via}: exit 3", r)
        # Behaviour, not speed: with a 20 s deadline it must return on the ICMP error
        # rather than wait the deadline out.
        c.check(not r.timed_out and r.elapsed < 10, f"stopped {via}: did not wait for the "
                f"deadline ({r.elapsed:.1f} s)")
    r = porthole("lan1", "open", "44001", "--via", "upnp", "--timeout", "2")
    c.check(r.rc == 3 and "M-SEARCH" in r.stderr, "stopped upnp: exit 3, no IGD answered", r)
    r = labkit.lab("router-start")
    c.check(r.ok, "miniupnpd started again", r)

    # 4b: protocols silently dropped: exit 3 by the deadline.
    r = labkit.lab("router-drop", "on")
    c.check(r.ok, "router drops the protocols", r)
    for via in ("pcp", "natpmp", "upnp", "auto"):
        r = porthole("lan1", "open", "44002", "--via", via, "--timeout", "2", timeout=15)
        c.check(r.rc == 3, f"dropped {via}: exit 3", r)
        c.check(not r.timed_out, f"dropped {via}: finished by its own deadline", r)
    r, j = porthole_json("lan1", "probe", "--timeout", "1", timeout=15)
    c.check(r.rc == 3 and j and not any(p["available"] for p in j["protocols"].values()),
            "dropped: probe reports nothing available, exit 3", r)
    c.check(j and j.get("error", {}).get("name") == "no-service",
            "dropped: probe's JSON carries the no-service error", r.stdout)
finally:
    labkit.lab("router-drop", "off")
    labkit.lab("router-start")
    cleanup()
finish(c)

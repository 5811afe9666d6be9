#!/usr/bin/python3
"""Lab: --via auto uses the best protocol that answers and falls back in order
(PCP > NAT-PMP > UPnP); when none answers it exits 3 with each protocol's reason."""

from porthole_lab import (LAN1, PUBLIC, RouterFilter, WAN_IP, cleanup, entries_for, finish,
                          porthole, porthole_json)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("fallback")
cleanup()

cases = [((), "pcp"), (("pcp",), "natpmp"), (("pcp", "natpmp"), "upnp")]
for i, (silenced, expected) in enumerate(cases):
    port = 47000 + i
    label = f"{'+'.join(silenced) or 'nothing'} silenced"
    with RouterFilter(*silenced), labkit.listen("lan1", port, "tcp", token="lan1"):
        r, j = porthole_json("lan1", "probe")
        if c.check(r.rc == 0 and j, f"{label}: probe", r):
            for p in ("pcp", "natpmp", "upnp"):
                c.check(j["protocols"][p]["available"] == (p not in silenced),
                        f"{label}: probe says {p} available={p not in silenced}", j)
        r, j = porthole_json("lan1", "open", str(port))
        if c.check(r.rc == 0 and j, f"{label}: open exits 0", r):
            c.check(j["protocol"] == expected, f"{label}: auto chose {expected}", j)
            c.check(labkit.reach(PUBLIC, WAN_IP, j["external_port"], "tcp", token="lan1"),
                    f"{label}: reachable from a public host")
        # A refresh of the same port stays on the protocol that holds it.
        r, j2 = porthole_json("lan1", "open", str(port))
        c.check(r.rc == 0 and j2 and j2["protocol"] == expected and j2["refreshed"],
                f"{label}: refresh stays on {expected}", r)
        r = porthole("lan1", "close", str(port))
        c.check(r.rc == 0 and not entries_for(LAN1, port), f"{label}: closed", r)

with RouterFilter("pcp", "natpmp", "upnp"):
    r = porthole("lan1", "open", "47010", "--timeout", "2")
    c.check(r.rc == 3, "all silenced: exit 3", r)
    for p in ("pcp:", "natpmp:", "upnp:"):
        c.check(p in r.stderr, f"all silenced: the reason of {p[:-1]} is listed", r.stderr)

# Services that answer the probe and then ignore the mapping request: a timeout after
# an answer is exit 5, not "no service" (3).
with RouterFilter("pcp-map", "natpmp-map", "upnp"):
    r, j = porthole_json("lan1", "open", "47011", "--timeout", "2")
    c.check(r.rc == 5, "probes answered, mappings ignored: exit 5", r)
    c.check(j and j["error"]["name"] == "timeout", "exit 5 is reported as timeout", r.stdout)
    c.check(not entries_for(LAN1, 47011), "nothing mapped")
cleanup()
finish(c)

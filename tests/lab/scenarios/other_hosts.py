#!/usr/bin/python3
"""Lab tests 3, 7 and 8: two hosts on one LAN.
3. The external port is held by the other host: porthole gets another port and says
   so, or (--strict-port) fails with exit 4 and removes what it made.
7. `close` of a port the other host mapped is refused; that mapping survives.
8. `list` shows the router's entries and ours, marked."""

from porthole_lab import (LAN1, LAN1B, PUBLIC, WAN_IP, cleanup, entries_for, finish,
                          porthole, porthole_json)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("other_hosts")
cleanup()

HELD = 43000
with labkit.listen("lan1b", HELD, "tcp", token="lan1b"), \
        labkit.listen("lan1", HELD, "tcp", token="lan1"):
    r, held = porthole_json("lan1b", "open", str(HELD), "--via", "upnp")
    c.check(r.rc == 0 and held and held["external_port"] == HELD,
            "lan1b holds external 43000", r)

    # 3: per protocol, lan1 asks for the same external port.
    for via in ("pcp", "natpmp", "upnp"):
        r, j = porthole_json("lan1", "open", str(HELD), "--via", via)
        if r.rc == 0 and j:
            c.check(j["external_port"] != HELD, f"{via}: got another external port", j)
            c.check(str(j["external_port"]) in r.stderr and str(HELD) in r.stderr,
                    f"{via}: says it got another port", r.stderr)
            c.check(labkit.reach(PUBLIC, WAN_IP, j["external_port"], "tcp", token="lan1"),
                    f"{via}: the other port reaches lan1")
            rc = porthole("lan1", "close", str(HELD))
            c.check(rc.rc == 0 and not entries_for(LAN1, HELD), f"{via}: closed again", rc)
        else:
            c.check(r.rc == 4 and "held" in r.stderr, f"{via}: refused (4) naming the conflict",
                    r)
        c.check(labkit.reach(PUBLIC, WAN_IP, HELD, "tcp", token="lan1b"),
                f"{via}: lan1b's mapping still works")

    for via in ("pcp", "upnp"):
        r = porthole("lan1", "open", str(HELD), "--via", via, "--strict-port")
        c.check(r.rc == 4 and "strict-port" in r.stderr, f"{via} --strict-port: exit 4", r)
        c.check(not entries_for(LAN1, HELD), f"{via} --strict-port: nothing of ours left",
                entries_for(LAN1, HELD))

    # 8: list from lan1 shows lan1b's entry as other and ours as self.
    r, mine = porthole_json("lan1", "open", "43001", "--via", "pcp")
    c.check(r.rc == 0 and mine, "lan1 maps 43001 via PCP", r)
    r, listing = porthole_json("lan1", "list")
    if c.check(r.rc == 0 and listing, "list exits 0", r):
        rows = {(m["external_port"], m["owner"], m["protocol"], m["internal_ip"])
                for m in listing["mappings"]}
        c.check((HELD, "other", "upnp", LAN1B) in rows, "list: lan1b's entry marked other",
                rows)
        c.check((43001, "self", "pcp", LAN1) in rows, "list: our PCP mapping marked self",
                rows)
        c.check(sum(1 for m in listing["mappings"] if m["external_port"] == 43001) == 1,
                "list: our PCP mapping shown once", listing)
    r = porthole("lan1", "list")
    c.check(r.rc == 0 and "* " in r.stdout and LAN1B in r.stdout, "list text marks ours", r)

    # 7: lan1 tries to close the port lan1b mapped.
    r, j = porthole_json("lan1", "close", str(HELD))
    c.check(r.rc == 4, "close of lan1b's port exits 4", r)
    c.check(LAN1B in r.stderr and "another host" in r.stderr,
            "close says the port belongs to another host", r.stderr)
    c.check(j and j["error"]["code"] == 4, "close --json reports the error", r.stdout)
    c.check(entries_for(LAN1B, HELD), "lan1b's mapping survives on the router")
    c.check(labkit.reach(PUBLIC, WAN_IP, HELD, "tcp", token="lan1b"),
            "lan1b's mapping still forwards")

    porthole("lan1", "close", "43001")
    r = porthole("lan1b", "close", str(HELD))
    c.check(r.rc == 0 and not entries_for(LAN1B, HELD), "lan1b closes its own", r)
cleanup()
finish(c)

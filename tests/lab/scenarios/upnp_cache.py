#!/usr/bin/python3
"""The UPnP IGD cache against the real miniupnpd. A first `open --via upnp` searches
(SSDP) and keeps the IGD in the state directory (upnp-igd.json); later open, close and
list go straight to the control URL: not one SSDP datagram reaches r1 (an nft counter
on r1). --no-upnp-cache searches again. After `router-reboot` on a new HTTP port the
cached URL is refused by the router, and porthole searches at once and keeps the new
one. A cache edited to point at another LAN host is refused by the LOCATION policy:
nothing reaches that host (a counter on lan1b), and the IGD is searched for."""

import json

from porthole_lab import (LAN1, LAN1B, PacketCounter, cleanup, entries_for, finish, porthole,
                          state_dir)
import labkit

NEW_HTTP_PORT = 5077


def ssdp_to_r1() -> PacketCounter:
    return PacketCounter(LAN1, match="udp dport 1900")


def cached() -> dict:
    try:
        return json.loads((state_dir("lan1") / "upnp-igd.json").read_text())
    except (OSError, ValueError):
        return {}


c = labkit.Checker("upnp_cache")
cleanup()
try:
    with ssdp_to_r1() as ssdp:
        r = porthole("lan1", "open", "46100", "--via", "upnp", "-v")
        c.check(r.rc == 0 and entries_for(LAN1, 46100), "cold: open maps through a search", r)
        c.check(ssdp.packets() > 0, "cold: M-SEARCH went to r1", ssdp.packets())
    entry = cached()
    c.check(entry.get("control_url", "").startswith("http://192.168.1.1:5000/") and
            entry.get("udn") == "uuid:9f0c2a54-6d1e-4b7a-8c3f-000000000001" and
            entry.get("gateway") == "192.168.1.1",
            "cold: the IGD's control URL, UDN and gateway are kept", entry)

    with ssdp_to_r1() as ssdp:
        r = porthole("lan1", "open", "46101", "--via", "upnp", "-v")
        c.check(r.rc == 0 and entries_for(LAN1, 46101), "warm: open maps", r)
        c.check("(no SSDP)" in r.stderr, "warm: -v says the cached IGD is used", r.stderr)
        r = porthole("lan1", "list", "--json")
        c.check(r.rc == 0 and "46101" in r.stdout, "warm: list reads the table", r)
        r = porthole("lan1", "close", "46101")
        c.check(r.rc == 0 and not entries_for(LAN1, 46101), "warm: close removes it", r)
        r = porthole("lan1", "open", "46102")
        c.check(r.rc == 0, "warm: open with the protocol chosen automatically", r)
        c.check(ssdp.packets() == 0, "warm: no SSDP datagram reached r1", ssdp.packets())
    porthole("lan1", "close", "46102")

    with ssdp_to_r1() as ssdp:
        r = porthole("lan1", "open", "46103", "--via", "upnp", "--no-upnp-cache")
        c.check(r.rc == 0 and ssdp.packets() > 0, "--no-upnp-cache: searches", (r, ssdp.packets()))
    porthole("lan1", "close", "46103")

    # A router that comes back on another HTTP port.
    r = labkit.lab("router-http-port", str(NEW_HTTP_PORT))
    c.check(r.ok, f"router-http-port {NEW_HTTP_PORT}", r)
    r = labkit.lab("router-reboot")
    c.check(r.ok, "router rebooted on the new port", r)
    with ssdp_to_r1() as ssdp:
        r = porthole("lan1", "open", "46104", "--via", "upnp", "-v")
        c.check(r.rc == 0 and entries_for(LAN1, 46104), "after reboot: open maps", r)
        c.check("cached IGD failed" in r.stderr, "after reboot: the cached URL failed", r.stderr)
        c.check(ssdp.packets() > 0, "after reboot: searched at once", ssdp.packets())
    c.check(f":{NEW_HTTP_PORT}/" in cached().get("control_url", ""),
            "after reboot: the new control URL is kept", cached())
    with ssdp_to_r1() as ssdp:
        r = porthole("lan1", "close", "46104")
        c.check(r.rc == 0 and not entries_for(LAN1, 46104) and ssdp.packets() == 0,
                "after reboot: the next command uses the new URL without SSDP", r)

    # A cache edited to point at another host of the LAN: refused, never contacted.
    entry = cached()
    for key in ("location", "control_url"):
        entry[key] = entry.get(key, "").replace("192.168.1.1:", f"{LAN1B}:")
    (state_dir("lan1") / "upnp-igd.json").write_text(json.dumps(entry))
    with PacketCounter(LAN1, match="tcp dport 1-65535", ns="lan1b") as to_lan1b, \
            ssdp_to_r1() as ssdp:
        r = porthole("lan1", "open", "46105", "--via", "upnp", "-v")
        c.check(r.rc == 0 and entries_for(LAN1, 46105), "edited cache: open still maps", r)
        c.check("cached IGD not used" in r.stderr and "not on the gateway" in r.stderr,
                "edited cache: refused by the LOCATION policy", r.stderr)
        c.check(to_lan1b.packets() == 0, "edited cache: nothing went to lan1b",
                to_lan1b.packets())
        c.check(ssdp.packets() > 0, "edited cache: searched instead", ssdp.packets())
    c.check(cached().get("control_url", "").startswith(f"http://192.168.1.1:{NEW_HTTP_PORT}/"),
            "edited cache: replaced by the gateway's", cached())
    porthole("lan1", "close", "46105")

    # A corrupt cache is only a note.
    (state_dir("lan1") / "upnp-igd.json").write_text("{not json")
    r = porthole("lan1", "open", "46106", "--via", "upnp", "-v")
    c.check(r.rc == 0 and "cache ignored" in r.stderr, "corrupt cache: ignored, noted in -v", r)
    porthole("lan1", "close", "46106")
finally:
    labkit.lab("router-http-port", "default")
    labkit.lab("router-reboot")
    cleanup()
finish(c)

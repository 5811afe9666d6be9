#!/usr/bin/python3
"""`porthole hold`, lab tests 1 and 5, with one holder per protocol running at once:
- held mappings are reachable from a public host, and `list` works alongside;
- 1. router reboot (miniupnpd stopped, its rules, leases and conntrack flushed,
  started): every mapping works again from the public host within 10 s (PCP/NAT-PMP
  through the router's ANNOUNCE and the epoch check; UPnP through --check-every 1);
- 5. SIGTERM: exit 0, a "released" event per port, and no entry of ours left on the
  router (its nft DNAT rules, the truth for all three protocols) nor in the state file."""

import json
import time

from hold_lab import Holder, ours_on_router
from porthole_lab import LAN1, PUBLIC, WAN_IP, cleanup, finish, porthole_json, state_dir
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("hold_reboot")
cleanup()
PORTS = {"pcp": (42101, "tcp"), "natpmp": (42102, "udp"), "upnp": (42103, "tcp")}
listeners = [labkit.listen("lan1", p, t, token="lan1") for p, t in PORTS.values()]
holders = {via: Holder("lan1", f"{p}/{t}", "--via", via, "--timeout", "2", "--check-every", "1")
           for via, (p, t) in PORTS.items()}


def reachable(via: str) -> bool:
    p, t = PORTS[via]
    return labkit.reach(PUBLIC, WAN_IP, p, t, timeout=1, token="lan1")


try:
    for via, h in holders.items():
        p, t = PORTS[via]
        ok = c.check(h.wait_event("mapped", 15), f"{via}: mapped event", h.summary())
        if ok:
            m = h.of("mapped")[0]["mapping"]
            c.check(m["protocol"] == via and m["external_port"] == p and m["internal_ip"] == LAN1,
                    f"{via}: JSON event names protocol, ports, internal address", m)
        c.check(h.wait_event("ready", 5), f"{via}: ready event", h.summary())
        c.check(reachable(via), f"{via}: public host reaches {p}/{t}")

    r, j = porthole_json("lan1", "list")
    listed = {m["external_port"] for m in (j or {}).get("mappings", [])} if j else set()
    c.check(r.rc == 0 and {p for p, _ in PORTS.values()} <= listed,
            "`porthole list` works while hold runs and shows the held ports", r)

    # 1: router reboot. The mappings are a few seconds old first: an epoch that restarts
    # within 2 s of the grant cannot be told from clock jitter (RFC 6887 s8.5 slack).
    time.sleep(3)
    t_reboot = time.monotonic()  # hold may re-map before lab.sh returns
    r = labkit.lab("router-reboot")
    c.check(r.ok, "router rebooted", r)
    t_ready = time.monotonic()
    for via, h in holders.items():
        back = labkit.wait_until(lambda: reachable(via), timeout=10 - (time.monotonic() - t_ready),
                                 interval=0.2)
        c.check(back, f"{via}: reachable again within 10 s of the reboot", h.summary())
        c.check(h.wait_event("re-mapped", 5, since=t_reboot),
                f"{via}: says it re-mapped after the reboot", h.summary())
        c.check(h.alive(), f"{via}: still running")

    # 5: SIGTERM removes everything.
    for via, h in holders.items():
        rc = h.stop()
        c.check(rc == 0, f"{via}: exit 0 after SIGTERM (got {rc})", h.summary())
        c.check(len(h.of("released")) == 1, f"{via}: one released event", h.summary())
        c.check(len(h.of("stopping")) == 1, f"{via}: stopping event", h.summary())
    left = ours_on_router([p for p, _ in PORTS.values()])
    c.check(not left, "no entry of ours left on the router after SIGTERM", left)
    files = list(state_dir("lan1").glob("*.json"))
    stored = [m for f in files for m in json.loads(f.read_text()).get("mappings", [])]
    c.check(files and not stored, "the state file holds no mapping any more", stored)
    for via, (p, t) in PORTS.items():
        c.check(not labkit.reach(PUBLIC, WAN_IP, p, t, timeout=1, token="lan1"),
                f"{via}: not reachable after SIGTERM")
finally:
    for h in holders.values():
        h.stop()
    for lst in listeners:
        lst.stop()
    cleanup()
finish(c)

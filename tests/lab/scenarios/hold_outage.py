#!/usr/bin/python3
"""`porthole hold`, lab tests 4 and 2, one holder per protocol running at once, with the
router's min_lifetime lowered to 4 s (lab.sh router-min-lifetime) and 8 s leases:
4. several renewals happen, the external port stays the same, and the forward never
   stops working (a public host probes each port over and over meanwhile);
2. miniupnpd is down for 20 s (the leases run out meanwhile), then back: every holder
   says so and recovers by itself, without a restart."""

import time

from hold_lab import Holder
from porthole_lab import PUBLIC, WAN_IP, cleanup, finish, router_idle
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("hold_outage")
cleanup()
PORTS = {"pcp": (42201, "udp"), "natpmp": (42202, "tcp"), "upnp": (42203, "udp")}
LIFETIME = 8
holders = {}
listeners = []


def reachable(via: str) -> bool:
    p, t = PORTS[via]
    return labkit.reach(PUBLIC, WAN_IP, p, t, timeout=1, token="lan1")


try:
    r = labkit.lab("router-min-lifetime", "4")
    c.check(r.ok, "router restarted with min_lifetime 4", r)
    listeners = [labkit.listen("lan1", p, t, token="lan1") for p, t in PORTS.values()]
    holders = {via: Holder("lan1", f"{p}/{t}", "--via", via, "--lifetime", str(LIFETIME),
                           "--timeout", "2", "--retry-max", "2")
               for via, (p, t) in PORTS.items()}
    for via, h in holders.items():
        c.check(h.wait_event("mapped", 15), f"{via}: mapped", h.summary())

    # 4: about 2.5 lifetimes of probing; renewals come every 4-5 s.
    failures = {via: 0 for via in PORTS}
    probes = 0
    end = time.monotonic() + 2.5 * LIFETIME
    while time.monotonic() < end:
        probes += 1
        for via in PORTS:
            if not reachable(via):
                failures[via] += 1
        time.sleep(0.3)
    for via, h in holders.items():
        renewed = h.of("renewed")
        c.check(len(renewed) >= 3, f"{via}: several renewals ({len(renewed)})", h.summary())
        ports = {e["mapping"]["external_port"] for e in h.of("mapped") + renewed}
        c.check(ports == {PORTS[via][0]}, f"{via}: the external port never changed", ports)
        c.check(not h.of("lost"), f"{via}: never lost", h.summary())
        c.check(failures[via] == 0 and probes >= 5,
                f"{via}: reachable at every one of {probes} probes ({failures[via]} failed)")

    # 2: the router is away for 20 s.
    t_stop = time.monotonic()  # before: a renewal may fail (and report) while lab.sh runs
    r = labkit.lab("router-stop")
    c.check(r.ok, "miniupnpd stopped", r)
    time.sleep(20)
    t_start = time.monotonic()  # before: hold may re-map before lab.sh returns
    r = labkit.lab("router-start")
    c.check(r.ok, "miniupnpd started again", r)
    for via, h in holders.items():
        c.check(h.of("error", since=t_stop) and h.of("lost", since=t_stop),
                f"{via}: reported the failures and the lost mapping during the outage",
                h.summary())
        c.check(h.wait_event("re-mapped", 15, since=t_start),
                f"{via}: re-mapped after the router came back", h.summary())
        c.check(labkit.wait_until(lambda: reachable(via), timeout=10, interval=0.3),
                f"{via}: reachable again", h.summary())
        c.check(h.alive(), f"{via}: still the same process")
    for via, h in holders.items():
        c.check(h.stop() == 0, f"{via}: exit 0 on SIGTERM", h.summary())
finally:
    for h in holders.values():
        h.stop()
    for lst in listeners:
        lst.stop()
    labkit.lab("router-min-lifetime", "default")
    router_idle()
    cleanup()
finish(c)

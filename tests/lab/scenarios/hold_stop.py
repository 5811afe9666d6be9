#!/usr/bin/python3
"""`porthole hold` stopping behind a silent router: 30 ports held through PCP, then r1
drops every request (lab.sh router-drop on) and hold gets SIGTERM. Every removal goes out
at once and the whole stop is bounded by one --timeout (2 s here), so hold exits long
before 30 removals one after the other could (60 s); it reports each mapping it could
not remove, exits non-zero, and leaves them in the state file, from which `porthole
close` removes them once the router answers again. Before that, with the router
working, 40 ports held through UPnP are all removed at SIGTERM, none left behind."""

from hold_lab import Holder, ours_on_router
from porthole_lab import cleanup, finish, porthole, router_idle
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("hold_stop")
cleanup()

# A working router first: 40 ports held through UPnP; at SIGTERM their removals go out
# together (at most 4 at a time), and every one of them is gone from the router.
UPNP_PORTS = list(range(42400, 42440))
holder = None
try:
    holder = Holder("lan1", *[str(p) for p in UPNP_PORTS], "--via", "upnp")
    c.check(holder.wait_event("mapped", 60, count=len(UPNP_PORTS)),
            f"upnp: all {len(UPNP_PORTS)} ports mapped", holder.summary())
    c.check(len(ours_on_router(UPNP_PORTS)) == len(UPNP_PORTS),
            "upnp: the router has all of them")
    status = holder.stop(timeout=30)
    c.check(status == 0, f"upnp: hold stops with exit 0 ({status})", holder.stderr[-500:])
    released = {e.get("port") for e in holder.of("released")}
    c.check(released == set(UPNP_PORTS), f"upnp: all {len(UPNP_PORTS)} reported released "
            f"({len(released)})", holder.summary())
    c.check(not ours_on_router(UPNP_PORTS), "upnp: none left on the router",
            ours_on_router(UPNP_PORTS))
finally:
    if holder:
        holder.stop()
    holder = None
cleanup()
PORTS = list(range(42300, 42330))
holder = None
dropping = False
try:
    holder = Holder("lan1", *[f"{p}/udp" for p in PORTS], "--via", "pcp", "--timeout", "2")
    c.check(holder.wait_event("ready", 60), "hold had a first try at every port",
            holder.summary())
    c.check(holder.wait_event("mapped", 30, count=len(PORTS)),
            f"all {len(PORTS)} ports mapped", holder.summary())
    c.check(len(ours_on_router(PORTS)) == len(PORTS), "the router has all of them")

    r = labkit.lab("router-drop", "on")
    dropping = r.ok
    c.check(r.ok, "the router drops PCP from now on", r)
    status = holder.stop(timeout=20)  # one --timeout and a wide margin; 30 in a row: 60 s
    c.check(status is not None, "hold exited well before its removals one by one could "
            "have timed out", holder.summary())
    c.check(status not in (None, 0), f"the exit status says not everything was removed "
            f"({status})", holder.stderr[-500:])
    unremoved = [e for e in holder.of("error") if "could not remove" in e.get("message", "")]
    c.check(len(unremoved) == len(PORTS), f"each unremoved mapping reported "
            f"({len(unremoved)} of {len(PORTS)})", holder.summary())
    c.check(not holder.of("released"), "nothing claimed as released", holder.summary())
    c.check(f"{len(PORTS)} of {len(PORTS)} mappings not removed" in holder.stderr,
            "stderr counts them and points at porthole close", holder.stderr[-500:])

    labkit.lab("router-drop", "off")
    dropping = False
    c.check(router_idle(), "the router answers again")
    # The state file still has them (with their PCP nonces): close removes them.
    closed = porthole("lan1", "close", f"{PORTS[0]}/udp", "--timeout", "2")
    c.check(closed.ok, "porthole close removes one left behind", closed)
    c.check(not ours_on_router([PORTS[0]]), "gone from the router")
    c.check(len(ours_on_router(PORTS[1:])) == len(PORTS) - 1,
            "the others are still on the router (nothing removed them silently)")
finally:
    if holder:
        holder.stop()
    if dropping:
        labkit.lab("router-drop", "off")
    router_idle()
    cleanup()
finish(c)

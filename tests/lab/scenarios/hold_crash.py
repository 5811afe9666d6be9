#!/usr/bin/python3
"""`porthole hold` killed with SIGKILL between sending its first MAP of a port and
recording the answer, per protocol. hold writes the intent (with the PCP nonce it chose
itself) before the request, as `open` does, so afterwards `list` confirms what the router
holds and `close` removes it (a PCP mapping only with its creating nonce, RFC 6887 s15).
PORTHOLE_TEST_PAUSE_AT (porthole_lab.run_paused) makes hold stop
itself at the step; the test then kills it."""

from porthole_lab import LAN1, cleanup, entries_for, finish, porthole, porthole_json, \
    run_paused
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("hold_crash")
cleanup()


def listed(port: int):
    """(list exited 0, the external ports list confirms for `port`, the whole answer)."""
    r, j = porthole_json("lan1", "list")
    if r.rc != 0 or not j:
        return False, set(), r
    return True, {m["external_port"] for m in j["mappings"]
                  if m["internal_port"] == port and m["internal_ip"] == LAN1
                  and m.get("confirmed") is True}, j


PORT = 46000
for via in ("pcp", "natpmp", "upnp"):
    PORT += 1
    what = f"{via} hold killed after its MAP, before recording it"
    c.check(run_paused("hold-mapped", "hold", str(PORT), "--via", via),
            f"{what}: it stopped there")
    router = {m.ext_port for m in entries_for(LAN1, PORT)}
    c.check(len(router) == 1, f"{what}: the router holds the mapping", router)
    ok, confirmed, j = listed(PORT)
    c.check(ok and confirmed == router, f"{what}: list shows it, confirmed",
            (confirmed, router, j))
    r = porthole("lan1", "close", str(PORT))
    c.check(r.rc == 0 and not entries_for(LAN1, PORT),
            f"{what}: close removes it from the router", r)
    ok, confirmed, j = listed(PORT)
    c.check(ok and not confirmed, f"{what}: nothing of it confirmed afterwards", j)

    PORT += 1
    what = f"{via} hold killed after writing its intent, before the MAP"
    c.check(run_paused("hold-intent", "hold", str(PORT), "--via", via),
            f"{what}: it stopped there")
    c.check(not entries_for(LAN1, PORT), f"{what}: nothing on the router")
    ok, confirmed, j = listed(PORT)
    c.check(ok and not confirmed, f"{what}: list confirms nothing", j)
    r = porthole("lan1", "close", str(PORT))
    c.check(r.rc == 0, f"{what}: close drops the intent", r)
    r, j = porthole_json("lan1", "list")
    c.check(r.rc == 0 and j and not [m for m in j["mappings"] if m["internal_port"] == PORT],
            f"{what}: nothing of it listed afterwards", j)

cleanup()
finish(c)

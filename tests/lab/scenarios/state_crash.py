#!/usr/bin/python3
"""porthole killed with SIGKILL between the steps of `open` and `close`, per protocol.
PORTHOLE_TEST_PAUSE_AT (a test-only hook, src/state/state_store.hpp) makes the process
stop itself at a step; the test then kills it. Afterwards `list` must show what the
router really holds (confirmed or not), and `close` must remove it."""

from porthole_lab import LAN1, cleanup, entries_for, finish, porthole, porthole_json, \
    run_paused, state_dir
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("state_crash")
cleanup()


def consistent(port: int, what: str):
    """list's view of `port` agrees with the router's table."""
    r, j = porthole_json("lan1", "list")
    if not c.check(r.rc == 0 and j, f"{what}: list exits 0", r):
        return
    router = {m.ext_port for m in entries_for(LAN1, port)}
    confirmed = {m["external_port"] for m in j["mappings"]
                 if m["internal_port"] == port and m["internal_ip"] == LAN1
                 and m.get("confirmed") is True}
    c.check(confirmed == router, f"{what}: list confirms exactly the router's entries",
            (confirmed, router, j))


PORT = 45000
for via in ("pcp", "natpmp", "upnp"):
    for step in ("open-intent", "save-written", "open-mapped"):
        PORT += 1
        what = f"{via} open killed at {step}"
        c.check(run_paused(step, "open", str(PORT), "--via", via), f"{what}: it stopped there")
        consistent(PORT, what)
        r = porthole("lan1", "close", str(PORT))
        c.check(r.rc == 0 and not entries_for(LAN1, PORT), f"{what}: close removes it", r)
        consistent(PORT, f"{what}, closed")
        # The killed writer's temporary file is gone after the next run.
        left = list(state_dir("lan1").glob("mappings.json.tmp.*"))
        c.check(not left, f"{what}: no temporary file left", left)
    for step in ("close-intent", "close-unmapped"):
        PORT += 1
        what = f"{via} close killed at {step}"
        r = porthole("lan1", "open", str(PORT), "--via", via)
        if not c.check(r.rc == 0, f"{what}: opened first", r):
            continue
        c.check(run_paused(step, "close", str(PORT)), f"{what}: it stopped there")
        consistent(PORT, what)
        r = porthole("lan1", "close", str(PORT))
        c.check(r.rc == 0 and not entries_for(LAN1, PORT), f"{what}: close again removes it",
                r)
        r, j = porthole_json("lan1", "list")
        c.check(r.rc == 0 and j and not [m for m in j["mappings"] if m["internal_port"] == PORT],
                f"{what}: nothing of it listed afterwards", j)

cleanup()
finish(c)

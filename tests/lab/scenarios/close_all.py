#!/usr/bin/python3
"""close --all and close --via against r1's miniupnpd: three mappings made through PCP,
NAT-PMP and UPnP are all removed by one `close --all` (each reported, the router's table
and the state file left empty of ours); `close --via upnp` of a NAT-PMP mapping leaves
it alone with exit 2; `close --all --via natpmp` removes only the NAT-PMP ones; with
nothing recorded, close --all says so and exits 0."""
import json

from porthole_lab import LAN1, cleanup, entries_for, finish, porthole, porthole_json, state_dir
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)


def ours() -> list:
    return [m for m in labkit.upnp_table("r1") if m.int_ip == LAN1]


def recorded() -> list:
    path = state_dir("lan1") / "mappings.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["mappings"]


c = labkit.Checker("close_all")
cleanup()
made = [("pcp", "42001/tcp"), ("natpmp", "42002/udp"), ("upnp", "42003/tcp")]
for via, port in made:
    r = porthole("lan1", "open", port, "--via", via)
    c.check(r.rc == 0, f"open {port} via {via}", r)
c.check(len(ours()) == 3, "three redirects of lan1 on the router", ours())
c.check(len(recorded()) == 3, "three mappings in the state", recorded())

# --via names the protocol the mapping was made with: another one leaves it alone.
r = porthole("lan1", "close", "42002/udp", "--via", "upnp")
c.check(r.rc == 2 and "mapped via natpmp, not upnp" in r.stderr,
        "close --via upnp of a NAT-PMP mapping: exit 2, says why", r)
c.check(entries_for(LAN1, 42002, "udp"), "the NAT-PMP mapping is still on the router")
c.check(len(recorded()) == 3, "and still in the state", recorded())

r, j = porthole_json("lan1", "close", "--all")
c.check(r.rc == 0 and j is not None, "close --all --json exits 0", r)
if j is not None:
    got = sorted((i["protocol"], f"{i['port']}/{i['transport']}") for i in j["results"])
    c.check(got == sorted(made), "each mapping reported with its protocol", j)
    c.check(all(i["error"] is None and len(i["removed"]) == 1 for i in j["results"]),
            "each one removed", j)
    c.check(j["state_file"].endswith("mappings.json"), "the state file is named", j)
c.check(ours() == [], "no redirect of lan1 left on the router", ours())
c.check(recorded() == [], "the state file is empty", recorded())

r = porthole("lan1", "close", "--all")
c.check(r.rc == 0 and "nothing to close" in r.stdout, "nothing recorded: a message, exit 0", r)

# --all --via: only that protocol's mappings; the text output has a line for each.
for via, port in made[:2]:
    porthole("lan1", "open", port, "--via", via)
r = porthole("lan1", "close", "--all", "--via", "natpmp")
c.check(r.rc == 0 and "closed 42002/udp (external port 42002, via natpmp)" in r.stdout
        and "42001" not in r.stdout, "close --all --via natpmp closes only the NAT-PMP one", r)
c.check(entries_for(LAN1, 42001, "tcp") and not entries_for(LAN1, 42002, "udp"),
        "the PCP mapping stays on the router, the NAT-PMP one is gone")
r = porthole("lan1", "close", "--all")
c.check(r.rc == 0 and "closed 42001/tcp (external port 42001, via pcp)" in r.stdout,
        "close --all closes the rest", r)
c.check(ours() == [] and recorded() == [], "router and state empty of ours again")
cleanup()
finish(c)

#!/usr/bin/python3
"""`porthole punch` between two hosts on one LAN (lan1 and lan1b behind r1): they connect
over their host candidates (path `host`; r1 does not hairpin, so the public candidates
cannot work here) and bytes cross both ways. r1 runs miniupnpd as usual, so both also
map their punch ports; the mappings are gone when porthole exits.

Three runs: --json (path, both endpoints, the peer's ID, the nominated pair); --exec (the
program gets LISTEN_FDS=1, LISTEN_PID its own pid, a connected UDP socket as fd 3,
PORTHOLE_PEER and PORTHOLE_PEER_ID of the peer, and the lines cross both ways); plain text
(one line naming the path kind and both endpoints).
"""

from porthole_lab import LAN1, LAN1B, cleanup, finish
from punch_lab import exchanged, peer_id, punch_pair, udp_mappings
import labkit  # noqa: E402

PORTS = {"lan1": 41010, "lan1b": 41011}
ADDR = {"lan1": LAN1, "lan1b": LAN1B}

c = labkit.Checker("punch_lan")
cleanup()
try:
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan1b")}
    c.check(all(ids.values()) and ids["lan1"] != ids["lan1b"],
            "porthole id --json: an ID for each host, and they differ", ids)

    ports = {"a_args": ("--port", str(PORTS["lan1"])), "b_args": ("--port", str(PORTS["lan1b"]))}
    a, b = punch_pair("lan1", ids["lan1"], "lan1b", ids["lan1b"], exchange=False, bound=40,
                      **ports)
    for side, other in ((a, b), (b, a)):
        me, peer = side.ns, other.ns
        c.check(side.rc == 0 and not side.timed_out, f"--json: {me} exits 0", side)
        c.check(side.path == "host", f"--json: {me}: path host ({side.path or 'none'})",
                side.stdout)
        j = side.json or {}
        c.check(j.get("local") == f"{ADDR[me]}:{PORTS[me]}" and
                j.get("peer") == f"{ADDR[peer]}:{PORTS[peer]}",
                f"--json: {me}: local {ADDR[me]}:{PORTS[me]}, peer {ADDR[peer]}:{PORTS[peer]}", j)
        c.check(j.get("peer_id") == ids[peer], f"--json: {me}: peer_id is {peer}'s ID",
                j.get("peer_id"))
        nominated = [p for p in j.get("candidates", []) if p.get("outcome") == "nominated"]
        c.check(any(p.get("remote") == f"{ADDR[peer]}:{PORTS[peer]}" for p in nominated),
                f"--json: {me}: the nominated pair is the one to {peer}'s host candidate",
                j.get("candidates"))

    # --exec: bytes both ways over the punched socket, and the promised environment.
    a, b = punch_pair("lan1", ids["lan1"], "lan1b", ids["lan1b"], json_out=False, bound=40,
                      **ports)
    for side, other in ((a, b), (b, a)):
        me, peer = side.ns, other.ns
        c.check(side.rc == 0 and not side.timed_out, f"--exec: {me} exits 0", side)
        x = side.exchange or {}
        c.check(x.get("listen_fds") == "1" and x.get("listen_pid_is_mine")
                and x.get("udp") and x.get("connected"),
                f"--exec: {me}: LISTEN_FDS=1, LISTEN_PID its own, a connected UDP socket as fd 3",
                x)
        c.check(x.get("peer") == f"{ADDR[peer]}:{PORTS[peer]}" and x.get("peer_id") == ids[peer],
                f"--exec: {me}: PORTHOLE_PEER and PORTHOLE_PEER_ID are {peer}'s", x)
    c.check(exchanged(a, b), "--exec: each side received the other's line", f"{a}\n{b}")
    for ns in ("lan1", "lan1b"):
        left = udp_mappings("r1", ADDR[ns], PORTS[ns])
        c.check(not left, f"after --exec: r1 holds no mapping for {ns}'s punch port", left)

    # Text output, no --exec: one line with the path kind and both endpoints.
    a, b = punch_pair("lan1", ids["lan1"], "lan1b", ids["lan1b"], json_out=False, exchange=False,
                      bound=40, **ports)
    for side, other in ((a, b), (b, a)):
        lines = side.stdout.splitlines()
        c.check(side.rc == 0 and len(lines) == 1, f"text: {side.ns} exits 0 with one line", side)
        text = lines[0] if lines else ""
        c.check("host" in text and f"{ADDR[side.ns]}:{PORTS[side.ns]}" in text
                and f"{ADDR[other.ns]}:{PORTS[other.ns]}" in text and "ms" in text,
                f"text: {side.ns}'s line names host, both endpoints and the time", text)
finally:
    labkit.lab("serve-stop")
    cleanup()
finish(c)

#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 3: UDP. An answering UDP service on
lan1 (127.0.0.1:5300, labkit's listener: each answer carries the request's nonce and the
source the service saw) behind `expose 5300/udp`; `connect -L 15300:5300/udp` on lan2.
Two local UDP sockets on lan2 send numbered datagrams through the tunnel at once:

- every datagram of each socket is answered (resent until answered: UDP may drop);
- no socket gets an answer meant for the other (flows kept apart both ways);
- the service saw the two sources as two different peers.
Both over a punched path (miniupnpd stopped, both routers eim)."""

from porthole_lab import finish
from tunnel_lab import (EventTimeout, connect, connected, expose, lab_ready, lab_restore,
                        peer_id, started, stopped, udp_two_sources)
import labkit  # noqa: E402

SERVICE, LOCAL, COUNT = 5300, 15300, 20

c = labkit.Checker("tunnel_udp")
echo = ex = co = None
try:
    lab_ready(c, miniupnpd={"r1": False, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    echo = labkit.listen("lan1", SERVICE, "udp", token="echo", ip="127.0.0.1")
    try:
        ex = expose("lan1", [f"{SERVICE}/udp"], [ids["lan2"]], "--no-map")
        ready = started(ex)
        c.check(f"{SERVICE}/udp" in ready.get("ports", []),
                f"expose ready lists {SERVICE}/udp", ready)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}/udp"], "--no-map")
        connected(co)
        listening = co.of("listening")[0]
        c.check(listening.get("proto") == "udp" and listening.get("local") == f"127.0.0.1:{LOCAL}",
                f"connect listens on 127.0.0.1:{LOCAL}/udp", listening)
        got = udp_two_sources("lan2", LOCAL, COUNT)
        a, b = got.get("a", {}), got.get("b", {})
        for n, g in (("a", a), ("b", b)):
            c.check(g.get("answered") == COUNT,
                    f"source {n}: all {COUNT} datagrams answered through the tunnel", got)
            c.check(g.get("foreign") == 0, f"source {n}: no answer meant for the other", got)
        seen_a, seen_b = set(a.get("seen_as", [])), set(b.get("seen_as", []))
        c.check(seen_a and seen_b and not seen_a & seen_b,
                "the service saw the two local sources as two peers", got)
        c.check(len(set(echo.peers)) >= 2, "the service's own log: two sources",
                sorted(set(echo.peers)))
    except EventTimeout as e:
        c.check(False, "expose and connect up", e)
    finally:
        stopped(c, co, ex)
finally:
    lab_restore(c, echo)
finish(c)

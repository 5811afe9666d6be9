#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 4: refusals (exit 9, "peer-refused").

- An ID that is not allowed: `expose 8080 --allow ID3` (the ID of a third machine) on
  lan1; `connect` from lan2 exits 9 saying it is not allowed; expose reports a
  peer-refused event naming lan2's ID and "not allowed", and keeps running; the service
  behind it (a listener on lan1's 127.0.0.1:8080) saw no connection at all, although a
  client on lan2 kept connecting to connect's local port meanwhile.
- A key that does not match the ID allowed: `expose --allow ID2` while lan2 runs
  connect with the third machine's key (another state directory): exit 9, expose's
  peer-refused names the key's ID, the service saw nothing. (A peer that proves one key
  at the rendezvous and in its signed checks but shows another in TLS cannot be made
  from the outside: that mismatch, TLS alert 42, is left to the QUIC unit tests.)
- A port that is not exposed: `expose 8080 --allow ID2`, `connect -L 18081:8081`: exit 9
  naming the port, no "listening" event (no local port opened), and a listener on
  lan1's 8081 saw nothing; expose keeps running and a second connect to 8080 works.
Both over a punched path (miniupnpd stopped, both routers eim).
"""

import threading

from porthole_lab import finish
from tunnel_lab import (EXIT_REFUSED, EventTimeout, connect, connected, expose, id_of,
                        lab_ready, lab_restore, other_state, peer_id, started, stop_all)
import labkit  # noqa: E402

SERVICE, NOT_EXPOSED, LOCAL = 8080, 8081, 18080


def knock(stop: threading.Event, port: int) -> None:
    """A client on lan2 connecting to connect's local port until told to stop."""
    while not stop.is_set():
        labkit.probe("lan2", "127.0.0.1", port, timeout=0.5)


c = labkit.Checker("tunnel_refused")
services = []
try:
    lab_ready(c, miniupnpd={"r1": False, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    third = id_of("lan1", other_state("third"))
    c.check(all(ids.values()) and third and third not in ids.values(),
            "porthole id --json: lan1, lan2 and a third machine have different IDs",
            {**ids, "third": third})
    service = labkit.listen("lan1", SERVICE, token="service", ip="127.0.0.1")
    hidden = labkit.listen("lan1", NOT_EXPOSED, token="hidden", ip="127.0.0.1")
    services += [service, hidden]

    # 1: not allowed.
    ex = co = None
    try:
        ex = expose("lan1", [str(SERVICE)], [third], "--no-map")
        started(ex)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        stop = threading.Event()
        knocker = threading.Thread(target=knock, args=(stop, LOCAL), daemon=True)
        knocker.start()
        rc = co.wait(40)
        stop.set()
        knocker.join(10)
        c.check(rc == EXIT_REFUSED, f"not allowed: connect exits 9 (rc={rc})", co.summary())
        c.check(co.says("not allowed"), "not allowed: connect says so", co.summary())
        c.check(co.says("offers no path"),
                "not allowed: refused at the rendezvous by a signed answer without candidates "
                "(none of expose's addresses)", co.summary())
        c.check(co.error_name() in ("", "peer-refused"),
                f"not allowed: a JSON error is peer-refused ({co.error_name()})", co.summary())
        ev = ex.has("peer-refused", 10)
        c.check(ev is not None and ev.get("peer_id") == ids["lan2"]
                and ev.get("reason") == "not allowed",
                "not allowed: expose reports peer-refused, lan2's ID, \"not allowed\"",
                ex.summary())
        c.check(not ex.of("peer-connected"), "not allowed: expose reports no peer-connected",
                ex.summary())
        c.check(not service.peers, "not allowed: the service saw no connection", service.peers)
        c.check(ex.alive(), "not allowed: expose keeps running")
        # The same peer again at once: refused again, but not reported again (one
        # peer-refused per peer and reason a minute).
        again = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        rc2 = again.wait(40)
        c.check(rc2 == EXIT_REFUSED, f"not allowed, again: connect exits 9 (rc={rc2})",
                again.summary())
        c.check(len(ex.of("peer-refused")) == 1,
                "not allowed, again: expose reported the refusal once, not per offer",
                ex.summary())
        stop_all(again)
    except EventTimeout as e:
        c.check(False, "not allowed: expose up", e)
    finally:
        rcs = stop_all(co, ex)
        c.check(rcs.get("lan1 expose") == 0, "not allowed: expose exits 0 on SIGTERM", rcs)

    # 2: lan2 holds a key that does not match the ID expose allows (the key of the third
    # machine's state directory, with lan2's ID still the one allowed).
    ex = co = None
    try:
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--no-map")
        started(ex)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map",
                     state=other_state("third"))
        rc = co.wait(40)
        c.check(rc == EXIT_REFUSED, f"wrong key: connect exits 9 (rc={rc})", co.summary())
        ev = ex.has("peer-refused", 10)
        c.check(ev is not None and ev.get("peer_id") == third,
                "wrong key: expose refuses the key's own ID, not the allowed one",
                ex.summary())
        c.check(not ex.of("peer-connected"), "wrong key: expose reports no peer-connected",
                ex.summary())
        c.check(not service.peers, "wrong key: the service saw no connection", service.peers)
    except EventTimeout as e:
        c.check(False, "wrong key: expose up", e)
    finally:
        rcs = stop_all(co, ex)
        c.check(rcs.get("lan1 expose") == 0, "wrong key: expose exits 0 on SIGTERM", rcs)

    # 3: a port that is not exposed.
    ex = co = ok = None
    try:
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--no-map")
        started(ex)
        co = connect("lan2", ids["lan1"], [f"{LOCAL + 1}:{NOT_EXPOSED}"], "--no-map")
        rc = co.wait(40)
        c.check(rc == EXIT_REFUSED, f"not exposed: connect exits 9 (rc={rc})", co.summary())
        c.check(co.says(str(NOT_EXPOSED)) and co.says("not expose"),
                f"not exposed: connect names port {NOT_EXPOSED} as not exposed", co.summary())
        c.check(not co.of("listening"), "not exposed: connect opened no local port",
                co.summary())
        c.check(not hidden.peers, f"not exposed: nothing reached lan1's {NOT_EXPOSED}",
                hidden.peers)
        c.check(ex.alive(), "not exposed: expose keeps running")
        ok = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        connected(ok)
        c.check(labkit.reach("lan2", "127.0.0.1", LOCAL, token="service"),
                "not exposed: afterwards a connect to the exposed port gets through")
    except EventTimeout as e:
        c.check(False, "not exposed: expose and connect up", e)
    finally:
        rcs = stop_all(ok, co, ex)
        c.check(rcs.get("lan1 expose") == 0, "not exposed: expose exits 0 on SIGTERM", rcs)
finally:
    lab_restore(c, *services)
finish(c)

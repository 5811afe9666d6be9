#!/usr/bin/python3
"""TunnelClient (include/porthole/tunnel.hpp), the library's connecting side, from a
program of its own (tests/tunnel/tunnel_client_check.cpp, $PORTHOLE_TUNNEL_CLIENT) on
lan2, to `porthole expose 8080 5300/udp` on lan1 over a punched path (miniupnpd stopped):

- it connects and learns the exposed ports;
- a stream to 8080 carries an HTTP GET to the static server there and its whole answer;
- a datagram flow to 5300/udp gets every datagram answered by the echo service;
- a port that is not exposed is refused (Errc::peer_refused) before anything is sent;
- expose saw the program's ID connect, and close() ends the tunnel."""

import json
import os

from porthole_lab import finish, state_dir
from tunnel_lab import (RENDEZVOUS, STUN, EventTimeout, FileServer, expose, lab_ready,
                        lab_restore, peer_id, started, stopped)
import labkit  # noqa: E402

HTTP, UDP, OTHER = 8080, 5300, 8081
CLIENT = os.environ.get("PORTHOLE_TUNNEL_CLIENT", "")

c = labkit.Checker("tunnel_library")
www = echo = ex = None
try:
    c.check(bool(CLIENT) and os.access(CLIENT, os.X_OK),
            "$PORTHOLE_TUNNEL_CLIENT names the check program", CLIENT)
    lab_ready(c, miniupnpd={"r1": False, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    www = FileServer("lan1", HTTP, {"index.bin": 4096})
    echo = labkit.listen("lan1", UDP, "udp", token="echo", ip="127.0.0.1")
    try:
        ex = expose("lan1", [str(HTTP), f"{UDP}/udp"], [ids["lan2"]], "--no-map")
        started(ex)
        r = labkit.run("lan2", [CLIENT, ids["lan1"], RENDEZVOUS, STUN, str(state_dir("lan2")),
                                str(HTTP), str(UDP), str(OTHER)], timeout=90)
        steps = {}
        for text in r.stdout.splitlines():
            try:
                j = json.loads(text)
            except ValueError:
                continue
            steps[j.get("step")] = j
        c.check(r.rc == 0, f"the program exits 0 (rc={r.rc})", r)
        conn = steps.get("connect", {})
        c.check(conn.get("connected") is True, "TunnelClient::connect: connected", r)
        c.check(sorted(conn.get("exposed", [])) == sorted([f"{HTTP}/tcp", f"{UDP}/udp"]),
                "exposed(): the ports expose serves", conn)
        st = steps.get("stream", {})
        c.check(st.get("status_line", "").startswith("HTTP/1.0 200"),
                "open_stream(8080): the HTTP server's answer", st)
        c.check(st.get("bytes", 0) > 100, "open_stream(8080): the whole answer, up to the close", st)
        dg = steps.get("datagrams", {})
        c.check(dg.get("answered") == dg.get("sent") == 5,
                "open_datagrams(5300): every datagram answered by the echo service", dg)
        c.check(echo.peers, "the echo service saw the flow", echo.peers)
        rp = steps.get("reaped", {})
        c.check(rp.get("flows") == 200 and rp.get("fds_after") is not None
                and rp.get("fds_after") <= rp.get("fds_before"),
                "200 datagram flows opened and closed: the tunnel closed its ends too", rp)
        ne = steps.get("not-exposed", {})
        c.check(ne.get("refused") is True and "does not expose" in ne.get("error", ""),
                f"open_stream({OTHER}): refused, not exposed", ne)
        c.check(steps.get("closed", {}).get("connected") is False,
                "close(): the tunnel is down", steps.get("closed"))
        c.check(bool(ex.has("peer-connected", 5, pred=lambda e: e.get("peer_id") == ids["lan2"])),
                "expose reports the program's ID as peer-connected", ex.summary())
        c.check(bool(ex.has("peer-gone", 20)), "expose reports the program gone after close()",
                ex.summary())
    except EventTimeout as e:
        c.check(False, "expose up", e)
    finally:
        stopped(c, ex)
finally:
    lab_restore(c, www, echo)
finish(c)

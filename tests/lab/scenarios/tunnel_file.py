#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 1: the file server behind a router
that won't help. miniupnpd is stopped on r1 (and on r2), so `expose` on lan1 gets no
mapping and each connecting peer is reached by hole punching. A static HTTP server on
lan1 (127.0.0.1:8080, python3 -m http.server) serves random files; `connect` on lan2
forwards 127.0.0.1:18080 to it; `curl` through that port gets each file with the same
SHA-256.

Repeated for every NAT pairing a direct punch serves (the 13 of punch_matrix.py): the
50 MB file on the first pairing (eim<->eim), a small file on the others (CI time). On the
first pairing `expose` runs as a user would, trying the gateway first (the fallback to
punching is what is tested); on the others --no-map skips that wait. After each pairing
both sides get SIGTERM and exit 0.
"""

from porthole_lab import finish
from tunnel_lab import (DIRECT_PAIRINGS, PATH_KINDS, EventTimeout, FileServer, connect,
                        connected, curl, expose, lab_ready, lab_restore, peer_id, started,
                        stopped)
import labkit  # noqa: E402

SERVICE, LOCAL = 8080, 18080
BIG, SMALL = "big.bin", "small.bin"

c = labkit.Checker("tunnel_file")
table = []
www = None
try:
    lab_ready(c, miniupnpd={"r1": False, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()) and ids["lan1"] != ids["lan2"],
            "porthole id --json: an ID for each host, and they differ", ids)
    www = FileServer("lan1", SERVICE, {BIG: 50 * 1000 * 1000, SMALL: 64 * 1024})
    for i, (m1, m2) in enumerate(DIRECT_PAIRINGS):
        pair = f"{m1}<->{m2}"
        for r, mode in (("r1", m1), ("r2", m2)):
            res = labkit.lab("nat-mode", r, mode)
            c.check(res.ok, f"lab.sh nat-mode {r} {mode}", res)
        name = BIG if i == 0 else SMALL
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], *(() if i == 0 else ("--no-map",)))
        co = None
        try:
            ready = started(ex)
            c.check(ready.get("id") == ids["lan1"] and "8080/tcp" in ready.get("ports", []),
                    f"{pair}: expose ready names its ID and 8080/tcp", ready)
            if i == 0:
                c.check(ready.get("mapping") is None,
                        f"{pair}: no mapping behind r1 without miniupnpd", ready)
            co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
            ev = connected(co)
            c.check(ev.get("peer_id") == ids["lan1"] and ev.get("path") in PATH_KINDS
                    and ev.get("path") != "mapped",
                    f"{pair}: connected to lan1's ID over a punched path ({ev.get('path')})", ev)
            listening = co.of("listening")[0]
            c.check(listening.get("local") == f"127.0.0.1:{LOCAL}"
                    and str(listening.get("remote")) == str(SERVICE)
                    and listening.get("proto") == "tcp",
                    f"{pair}: listening on 127.0.0.1:{LOCAL} for remote {SERVICE}/tcp", listening)
            got = ex.has("peer-connected", 10, pred=lambda e: e.get("peer_id") == ids["lan2"])
            c.check(got is not None, f"{pair}: expose reports lan2's ID connected", ex.summary())
            r, digest = curl("lan2", LOCAL, name, timeout=120 if i == 0 else 30)
            c.check(r.ok and digest == www.files[name],
                    f"{pair}: curl through the tunnel gets {name} with the same SHA-256", r)
            table.append((pair, ev.get("path"), ev.get("elapsed_ms"), r.elapsed))
        except EventTimeout as e:
            c.check(False, f"{pair}: expose and connect up", e)
        finally:
            stopped(c, co, ex, what=f"{pair}: SIGTERM: both exit 0")
finally:
    print(f"{'pair':24} {'path':18} {'elapsed_ms':>10} {'curl s':>8}")
    for pair, path, ms, secs in table:
        print(f"{pair:24} {str(path):18} {str(ms):>10} {secs:8.2f}")
    lab_restore(c, www)
finish(c)

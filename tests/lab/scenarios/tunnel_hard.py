#!/usr/bin/python3
"""`porthole expose` / `porthole connect` over the two pairings a plain punch cannot
serve but a direct path still can: one router endpoint-independent (eim), the other
symmetric with random ports, miniupnpd stopped on both, no --turn. Both directions:
`expose` on lan1 behind the symmetric r1 (expose opens the birthday method's extra
sockets, the one connect's probe reaches carries the QUIC connection), and `connect` on
lan2 behind the symmetric r2 (connect's punch opens them, expose probes from its one
socket). Then expose behind a predictable symmetric r1 (symmetric-seq): strategy
prediction, connect probing the ports expose's next mappings get. Each time: connect's
"connected" and expose's "peer-connected" name the strategy and a direct path (not
relayed, not mapped), neither holds a socket more than it needs; a file goes down
through the tunnel (curl, same SHA-256) and another one up (HTTP POST, the service
answers its SHA-256); both sides exit 0 on SIGTERM.
"""

import hashlib
import os
from pathlib import Path

from porthole_lab import _state_root, finish
from tunnel_lab import (PATH_KINDS, EventTimeout, FileServer, connect, connected, curl,
                        expose, lab_ready, lab_restore, peer_id, started, stopped)
import labkit  # noqa: E402

SERVICE, LOCAL = 8080, 18080
# (r1: expose's NAT, r2: connect's, the strategy both must name)
PAIRINGS = [("symmetric", "eim", "birthday"), ("eim", "symmetric", "birthday"),
            ("symmetric-seq", "eim", "prediction")]
DOWN, UP_SIZE = "down.bin", 256 * 1024

# FileServer's static HTTP server, and a POST that answers the body's SHA-256.
_HTTP_UP = r"""
import functools, hashlib, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        digest = hashlib.sha256(body).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(digest)))
        self.end_headers()
        self.wfile.write(digest)
handler = functools.partial(Handler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""


def upload(ns: str, port: int, size: int):
    """POST `size` random bytes through 127.0.0.1:port inside ns; (Result, sent, echoed)."""
    data = os.urandom(size)
    path = Path(_state_root) / f"upload-{os.getpid()}.bin"
    path.write_bytes(data)
    try:
        r = labkit.run(ns, ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*",
                            "--max-time", "30", "--data-binary", f"@{path}",
                            "-H", "Content-Type: application/octet-stream",
                            f"http://127.0.0.1:{port}/"], timeout=40)
    finally:
        path.unlink(missing_ok=True)
    return r, hashlib.sha256(data).hexdigest(), r.stdout.strip()


def fd_count(pid: int) -> int:
    """How many descriptors the process we started holds (-1: gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


c = labkit.Checker("tunnel_hard")
table = []
www = None
try:
    lab_ready(c, miniupnpd={"r1": False, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()) and ids["lan1"] != ids["lan2"],
            "porthole id --json: an ID for each host, and they differ", ids)
    www = FileServer("lan1", SERVICE, {DOWN: 1 << 20}, script=_HTTP_UP)
    for m1, m2, want in PAIRINGS:
        pair = f"{m1}<->{m2}"
        for r, mode in (("r1", m1), ("r2", m2)):
            res = labkit.lab("nat-mode", r, mode)
            c.check(res.ok, f"lab.sh nat-mode {r} {mode}", res)
        # -v: expose's log says what its birthday sockets did.
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--no-map", "-v")
        co = None
        try:
            started(ex)
            co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
            ev = connected(co)
            c.check(ev.get("peer_id") == ids["lan1"] and ev.get("path") in PATH_KINDS
                    and ev.get("path") not in ("relayed", "mapped"),
                    f"{pair}: connect: a direct path without --turn ({ev.get('path')})", ev)
            c.check(ev.get("strategy") == want,
                    f"{pair}: connect: strategy {want} ({ev.get('strategy')})", ev)
            got = ex.has("peer-connected", 10, pred=lambda e: e.get("peer_id") == ids["lan2"])
            c.check(got is not None and got.get("strategy") == want
                    and got.get("path") not in ("relayed", "mapped"),
                    f"{pair}: expose: lan2 connected, strategy {want}, a direct path",
                    got or ex.summary())
            fds = {t.subcommand: fd_count(t.pid) for t in (ex, co)}
            c.check(all(0 < n < 16 for n in fds.values()),
                    f"{pair}: descriptors held {fds}: no extra socket left open", fds)
            if m1 == "symmetric":
                c.check(ex.says("extra sockets") and ex.says("reached by"),
                        f"{pair}: expose, the symmetric side, opened the extra sockets and "
                        "the peer reached one", ex.summary())
            r, digest = curl("lan2", LOCAL, DOWN, timeout=30)
            c.check(r.ok and digest == www.files[DOWN],
                    f"{pair}: curl through the tunnel gets {DOWN} with the same SHA-256", r)
            r, sent, echoed = upload("lan2", LOCAL, UP_SIZE)
            c.check(r.ok and echoed == sent,
                    f"{pair}: {UP_SIZE} bytes posted through the tunnel arrive whole "
                    "(the service's SHA-256 matches)", r)
            table.append((pair, ev.get("strategy"), ev.get("path"), ev.get("elapsed_ms")))
        except EventTimeout as e:
            c.check(False, f"{pair}: expose and connect up", e)
        finally:
            stopped(c, co, ex, what=f"{pair}: SIGTERM: both exit 0")
finally:
    print(f"{'pair (r1 expose, r2 connect)':30} {'strategy':10} {'path':18} {'elapsed_ms':>10}")
    for pair, strategy, path, ms in table:
        print(f"{pair:30} {str(strategy):10} {str(path):18} {str(ms):>10}")
    lab_restore(c, www)
finish(c)

#!/usr/bin/python3
"""`porthole expose` / `porthole connect` end to end, once: both routers in eim mode with
miniupnpd stopped (a punched path, no mapping), a small HTTP-like service on lan1's
127.0.0.1:8080, `expose 8080` on lan1 allowing lan2's ID, `connect -L 18080:8080 --once`
on lan2; one request through 127.0.0.1:18080 on lan2 gets the service's answer with its
token, connect exits 0 after that connection, expose reported the peer and exits 0 on
SIGTERM.
"""

import json
import queue
import secrets
import signal
import subprocess
import threading

from porthole_lab import BIN, finish, state_dir
from punch_lab import RENDEZVOUS, peer_id
import labkit  # noqa: E402

c = labkit.Checker("tunnel_smoke")
TOKEN = secrets.token_hex(8)

# The service on lan1: one request, one answer with the token, then the next.
SERVICE = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080))
s.listen(4)
print("up", flush=True)
while True:
    conn, _ = s.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(4096)
        if not more:
            break
        data += more
    body = ("token " + sys.argv[1] + "\n").encode()
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn.close()
"""

# The client on lan2: one request through the tunnel's local port; prints the answer.
CLIENT = r"""
import socket
s = socket.create_connection(("127.0.0.1", 18080), timeout=10)
s.sendall(b"GET / HTTP/1.0\r\nHost: tunnel\r\n\r\n")
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    more = s.recv(4096)
    if not more:
        break
    data += more
print(data.decode(errors="replace"))
"""


class Lines:
    """A process's stdout as JSON lines, read on a thread."""

    def __init__(self, proc):
        self.proc, self.q, self.seen = proc, queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for ln in self.proc.stdout:
            try:
                self.q.put(json.loads(ln))
            except ValueError:
                self.q.put({"raw": ln})

    def wait_for(self, event: str, bound: float):
        """The first line with this event, waiting at most `bound` s (a bound against
        hangs, not a timing check)."""
        try:
            while True:
                j = self.q.get(timeout=bound)
                self.seen.append(j)
                if j.get("event") == event:
                    return j
        except queue.Empty:
            return None


def exit_status(proc, bound: float):
    """The exit status, or None when it did not exit within `bound` s (then killed)."""
    try:
        return proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()  # `ip netns exec` execs porthole: this is ours
        proc.wait()
        return None


def start(ns: str, *args: str):
    argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), BIN, *args, "--json",
            "--state-dir", str(state_dir(ns))]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


procs = []
try:
    r = labkit.lab("serve-start")
    c.check(r.ok, "lab.sh serve-start", r)
    for router in ("r1", "r2"):
        c.check(labkit.lab("nat-mode", router, "eim").ok, f"{router} in eim mode")
        c.check(labkit.lab("router-stop", router).ok, f"miniupnpd on {router} stopped")
    id1, id2 = peer_id("lan1"), peer_id("lan2")
    c.check(bool(id1) and bool(id2), "both peer IDs")

    service_file = state_dir("lan1").parent / "tunnel_service.py"
    service_file.write_text(SERVICE)
    service = subprocess.Popen([labkit.IP, "netns", "exec", labkit.ns_name("lan1"),
                                labkit.PYTHON, str(service_file), TOKEN],
                               stdout=subprocess.PIPE, text=True)
    procs.append(service)
    c.check(service.stdout.readline().strip() == "up", "the service listens on lan1")

    expose = start("lan1", "expose", "8080", "--rendezvous", RENDEZVOUS, "--allow", id2,
                   "--no-map")
    procs.append(expose)
    ex = Lines(expose)
    ready = ex.wait_for("ready", 10)
    c.check(ready is not None and ready.get("id") == id1 and ready.get("ports") == ["8080/tcp"],
            f"expose is ready with its ID and port 8080/tcp: {ready}")

    connect = start("lan2", "connect", id1, "--rendezvous", RENDEZVOUS, "-L", "18080:8080",
                    "--once", "--no-map", "--timeout", "15")
    procs.append(connect)
    cl = Lines(connect)
    connected = cl.wait_for("connected", 20)
    c.check(connected is not None and connected.get("peer_id") == id1 and
            connected.get("path") in ("server-reflexive", "peer-reflexive", "host"),
            f"connect: connected over a punched path: {connected}")
    listening = cl.wait_for("listening", 5)
    c.check(listening is not None and listening.get("local") == "127.0.0.1:18080" and
            listening.get("remote") == 8080 and listening.get("proto") == "tcp",
            f"connect: listening on 127.0.0.1:18080 for 8080/tcp: {listening}")

    client_file = state_dir("lan2").parent / "tunnel_client.py"
    client_file.write_text(CLIENT)
    r = labkit.run("lan2", [labkit.PYTHON, str(client_file)], timeout=20)
    c.check(r.ok and "200 OK" in r.stdout and f"token {TOKEN}" in r.stdout,
            "a request through the tunnel gets the service's answer", r)

    rc = exit_status(connect, 10)
    c.check(rc == 0, f"connect --once exits 0 after the connection closed (rc={rc}): "
            f"{connect.stderr.read()}")
    peer = ex.wait_for("peer-connected", 5)
    c.check(peer is not None and peer.get("peer_id") == id2,
            f"expose reported the peer: {peer} (seen {ex.seen})")

    expose.send_signal(signal.SIGTERM)
    rc = exit_status(expose, 10)
    c.check(rc == 0, f"expose exits 0 on SIGTERM (rc={rc}): {expose.stderr.read()}")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()  # `ip netns exec` execs the program: this is ours
            p.wait()
    labkit.lab("serve-stop")
    for router in ("r1", "r2"):
        labkit.lab("router-start", router)
finish(c)

#!/usr/bin/python3
"""Issue 5 in the lab: a hostile host on the LAN (lan1b) answers every M-SEARCH with a
flood of garbage, duplicates, other devices and IGDs whose LOCATION points at itself,
at 127.0.0.1, [::1], a DNS name and a public host, and serves HTTP on those ports.
porthole must still map through the real router (r1's miniupnpd), never connect to the
hostile host, and, with the real router silenced, give up by its deadline however long
the flood goes on."""

import subprocess

from porthole_lab import (LAN1, LAN1B, SSDP_LISTENER, RouterFilter, cleanup, entries_for,
                          finish, porthole, porthole_json)
import labkit

# Runs in lan1b. Prints "MSEARCH" per M-SEARCH answered and "CONNECT ip" per TCP
# connection to any port it serves (5000, 80, 1900): proof of what porthole did.
HOSTILE = r"""
import socket, struct, sys, threading
me = sys.argv[1]
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, peer = s.accept()
        print("CONNECT", peer[0], flush=True)
        c.close()
for port in (5000, 80, 1900):
    threading.Thread(target=tcp, args=(port,), daemon=True).start()
""" + SSDP_LISTENER + r"""
igd = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
def answer(st, location):
    return (f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: {st}\r\n"
            f"USN: uuid:bad::{st}\r\nEXT:\r\nSERVER: hostile/1 UPnP/1.1\r\n"
            f"LOCATION: {location}\r\n\r\n").encode()
flood = [answer(igd, f"http://{me}:5000/rootDesc.xml"),
         answer(igd, "http://127.0.0.1:5000/rootDesc.xml"),
         answer(igd, "http://[::1]:5000/rootDesc.xml"),
         answer(igd, "http://router.lan:5000/rootDesc.xml"),
         answer(igd, "http://198.51.100.20:5000/rootDesc.xml"),
         answer(igd, f"http://{me}@192.168.1.1:5000/rootDesc.xml"),
         answer("urn:schemas-upnp-org:device:MediaServer:1", f"http://{me}:80/desc.xml"),
         b"\x00\xff garbage \r\n\r\n", b"HTTP/1.1 200 OK\r\nLOCATION: " + b"A" * 1400]
print("READY", flush=True)
while True:
    data, peer = u.recvfrom(4096)
    if not data.startswith(b"M-SEARCH"):
        continue
    print("MSEARCH", peer[0], flush=True)
    for _ in range(20):       # 180 datagrams per M-SEARCH, duplicates included
        for d in flood:
            u.sendto(d, peer)
"""

c = labkit.Checker("hostile_lan")
cleanup()
hostile = subprocess.Popen([labkit.IP, "netns", "exec", labkit.ns_name("lan1b"),
                            labkit.PYTHON, "-c", HOSTILE, LAN1B],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    c.check(hostile.stdout.readline().strip() == "READY", "hostile responder started on lan1b")

    # The real router still works, through the flood.
    r, j = porthole_json("lan1", "open", "46100", "--via", "upnp", "-v")
    c.check(r.rc == 0 and j and j.get("protocol") == "upnp" and j.get("external_port") == 46100,
            "flooded: open --via upnp maps through r1", r)
    c.check(entries_for(LAN1, 46100), "flooded: the entry is on r1's table")
    r = porthole("lan1", "close", "46100")
    c.check(r.rc == 0 and not entries_for(LAN1, 46100), "flooded: close removes it", r)

    # The real router silent: the flood cannot keep discovery going past the deadline.
    with RouterFilter("upnp"):
        r = porthole("lan1", "open", "46101", "--via", "upnp", "--timeout", "2")
    c.check(r.rc == 3, "flooded, router silent: exit 3 (no IGD)", r)
    # A bounded deadline (2 s) respected with a generous margin for a loaded machine.
    c.check(r.elapsed < 2 + 3, f"flooded, router silent: gave up by the deadline "
            f"({r.elapsed:.2f} s)", r)
    c.check("refused" in r.stderr or "ignored" in r.stderr,
            "flooded, router silent: the message names the refused answers", r.stderr)
finally:
    hostile.kill()  # ours, by its PID
    out, _ = hostile.communicate(timeout=10)

searches = [l for l in out.splitlines() if l.startswith("MSEARCH")]
connects = [l for l in out.splitlines() if l.startswith("CONNECT")]
c.check(len(searches) >= 2, f"the hostile host answered {len(searches)} M-SEARCHes with "
        "its flood", out[-500:])
c.check(not connects, "porthole never connected to the hostile host", connects)
cleanup()
finish(c)

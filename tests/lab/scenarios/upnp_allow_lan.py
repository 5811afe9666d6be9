#!/usr/bin/python3
"""--upnp-allow-lan against the real miniupnpd: an IGD served from a second LAN address.
lan1b (192.168.1.101) answers M-SEARCH with LOCATION http://192.168.1.101:5000/ and
relays TCP 5000 to r1's miniupnpd, as a router serving its IGD from another address
would; r1's own SSDP is silenced. Without the option porthole refuses that device (it
is not on the gateway) and never connects to it; with it, UPnP works through it."""

import subprocess
import threading

from porthole_lab import (LAN1B, SSDP_LISTENER, WAN_IP, RouterFilter, cleanup, finish,
                          porthole_json)
import labkit

# Runs in lan1b: an SSDP answer naming lan1b, and a TCP relay 5000 -> r1:5000. Prints
# "CONNECT ip" per relayed connection: proof of whether porthole came.
SECOND_ADDRESS_IGD = r"""
import socket, struct, sys, threading
me, router = sys.argv[1], sys.argv[2]
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def relay():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((me, 5000)); s.listen(16)
    while True:
        c, peer = s.accept()
        print("CONNECT", peer[0], flush=True)
        up = socket.create_connection((router, 5000), timeout=5)
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()
        threading.Thread(target=pipe, args=(up, c), daemon=True).start()
threading.Thread(target=relay, daemon=True).start()
""" + SSDP_LISTENER + r"""
st = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
answer = (f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: {st}\r\n"
          f"USN: uuid:second::{st}\r\nEXT:\r\nSERVER: relay/1 UPnP/1.1\r\n"
          f"LOCATION: http://{me}:5000/rootDesc.xml\r\n\r\n").encode()
print("READY", flush=True)
while True:
    data, peer = u.recvfrom(4096)
    if data.startswith(b"M-SEARCH"):
        u.sendto(answer, peer)
"""

c = labkit.Checker("upnp_allow_lan")
cleanup()
device = subprocess.Popen([labkit.IP, "netns", "exec", labkit.ns_name("lan1b"),
                           labkit.PYTHON, "-c", SECOND_ADDRESS_IGD, LAN1B, "192.168.1.1"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
lines: list = []


def read_lines() -> None:
    for line in device.stdout:
        lines.append(line.strip())


def connects() -> list:
    return [l for l in list(lines) if l.startswith("CONNECT")]


try:
    c.check(device.stdout.readline().strip() == "READY", "second-address IGD started on lan1b")
    threading.Thread(target=read_lines, daemon=True).start()
    with RouterFilter("ssdp"):
        r, j = porthole_json("lan1", "probe", "--timeout", "2")
        upnp = (j or {}).get("protocols", {}).get("upnp", {})
        c.check(r.rc == 0 and upnp.get("available") is False,
                "without --upnp-allow-lan: UPnP not available", r)
        c.check("not on the gateway" in str(upnp.get("error")),
                "without --upnp-allow-lan: the refusal says the device is not on the gateway",
                upnp)
        c.check(not connects(), "without --upnp-allow-lan: porthole never connected to it",
                connects())
        r, j = porthole_json("lan1", "probe", "--timeout", "2", "--upnp-allow-lan")
        upnp = (j or {}).get("protocols", {}).get("upnp", {})
        c.check(r.rc == 0 and upnp.get("available") is True,
                "with --upnp-allow-lan: UPnP available through 192.168.1.101", r)
        c.check(upnp.get("external_ip") == WAN_IP,
                f"with --upnp-allow-lan: the router's external address {WAN_IP}", upnp)
        c.check(labkit.wait_until(lambda: connects(), timeout=2) and
                all(l == "CONNECT 192.168.1.100" for l in connects()),
                "with --upnp-allow-lan: lan1 went through the second address", connects())
finally:
    device.kill()  # ours, by its PID
    device.wait(10)
cleanup()
finish(c)

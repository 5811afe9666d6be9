#!/usr/bin/python3
"""lab.selftest: the lab works with Debian's own clients.

From lan1, `upnpc` maps a TCP port and `natpmpc` a UDP port on r1; a public host
(198.51.100.20 in inet) then reaches a listener on lan1 through r1's WAN address, and no
longer does once the mapping is deleted. Needs `lab.sh up` first (CTest fixture "lab").
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labkit  # noqa: E402

TCP_PORT = 41001   # inside the router's allowed range 1024-65535
UDP_PORT = 41002


def upnp_roundtrip(c: labkit.Checker, env: dict) -> None:
    wan, lan1, url = env["LAB_R1_WAN"], env["LAB_LAN1"], env["LAB_R1_ROOTDESC"]
    pub = env["LAB_PUBLIC_HOSTS"].split()[0]
    port = str(TCP_PORT)
    with labkit.listen("lan1", TCP_PORT, "tcp", token="lan1"):
        c.check(not labkit.reach("inet", wan, TCP_PORT, "tcp", src=pub),
                "TCP: unmapped port is closed from the internet")
        r = labkit.run("lan1", ["upnpc", "-u", url, "-e", "lab selftest",
                                "-a", lan1, port, port, "TCP"])
        c.check(r.ok and "is redirected to internal" in r.stdout, "upnpc -a maps TCP", r)
        c.check(labkit.has_mapping("r1", "TCP", TCP_PORT, lan1, TCP_PORT),
                "router table holds the TCP mapping", labkit.upnp_table("r1"))
        c.check(labkit.reach("inet", wan, TCP_PORT, "tcp", src=pub, token="lan1"),
                f"TCP: {pub} reaches lan1 through {wan}:{port}")
        r = labkit.run("lan1", ["upnpc", "-u", url, "-d", port, "TCP"])
        c.check(r.ok and not labkit.has_mapping("r1", "TCP", TCP_PORT),
                "upnpc -d removes the TCP mapping", r)
        c.check(not labkit.reach("inet", wan, TCP_PORT, "tcp", src=pub),
                "TCP: closed again after the delete")


def natpmp_roundtrip(c: labkit.Checker, env: dict) -> None:
    wan, gw, lan1 = env["LAB_R1_WAN"], env["LAB_R1_LAN"], env["LAB_LAN1"]
    pub = env["LAB_PUBLIC_HOSTS"].split()[0]
    port = str(UDP_PORT)
    with labkit.listen("lan1", UDP_PORT, "udp", token="lan1"):
        c.check(not labkit.reach("inet", wan, UDP_PORT, "udp", src=pub, timeout=1.0),
                "UDP: unmapped port is closed from the internet")
        r = labkit.run("lan1", ["natpmpc", "-g", gw, "-a", port, port, "udp", "120"])
        c.check(r.ok and f"Mapped public port {port} protocol UDP to local port {port}" in r.stdout,
                "natpmpc -a maps UDP", r)
        c.check(labkit.has_mapping("r1", "UDP", UDP_PORT, lan1, UDP_PORT),
                "router table holds the UDP mapping", labkit.upnp_table("r1"))
        c.check(labkit.reach("inet", wan, UDP_PORT, "udp", src=pub, token="lan1"),
                f"UDP: {pub} reaches lan1 through {wan}:{port} and gets the answer")
        r = labkit.run("lan1", ["natpmpc", "-g", gw, "-a", port, port, "udp", "0"])
        c.check(r.ok and not labkit.has_mapping("r1", "UDP", UDP_PORT),
                "natpmpc lifetime 0 removes the UDP mapping", r)
        # A fresh source port each probe: the old conntrack entry cannot carry it.
        c.check(not labkit.reach("inet", wan, UDP_PORT, "udp", src=pub, timeout=1.0),
                "UDP: closed again after the delete")


def main() -> int:
    labkit.require_lab()
    env = labkit.lab_env()
    c = labkit.Checker("lab.selftest")
    upnp_roundtrip(c, env)
    natpmp_roundtrip(c, env)
    status = c.finish()
    if status:
        print("--- miniupnpd r1 log (tail) ---")
        print("\n".join(labkit.router_log("r1").splitlines()[-40:]))
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""lab.router_modes: lab.sh's router controls do what scenarios rely on.

Checked with Debian's clients (upnpc, natpmpc) and labkit's reference PCP client:
permission rules (606 / secure mode 718), router-stop/start keeps mappings,
router-reboot loses them, router-start-cgnat refuses every mapping, router-drop makes the
router silent. Leaves r1 rebooted, in normal mode, not dropping.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labkit  # noqa: E402

PORT = 41020


def lab_ok(c: labkit.Checker, *args: str) -> bool:
    r = labkit.lab(*args)
    return c.check(r.ok, "lab.sh " + " ".join(args), r)


def check_rules(c, env, upnpc):
    lan1b = env["LAB_LAN1B"]
    r = labkit.run("lan1", upnpc + ["-e", "lab", "-a", env["LAB_LAN1"], "8080", "80", "TCP"])
    c.check("606" in r.stdout, "UPnP external port 80 is refused with 606 (allow 1024-65535)", r)
    r = labkit.run("lan1", upnpc + ["-e", "lab", "-a", lan1b, str(PORT), str(PORT), "TCP"])
    c.check("718" in r.stdout, "secure_mode: mapping for another LAN host is refused with 718", r)


def check_stop_start(c, env, upnpc):
    wan, lan1 = env["LAB_R1_WAN"], env["LAB_LAN1"]
    r = labkit.run("lan1", upnpc + ["-e", "lab", "-a", lan1, str(PORT), str(PORT), "TCP"])
    c.check(r.ok and labkit.has_mapping("r1", "TCP", PORT, lan1, PORT), "upnpc maps TCP", r)
    with labkit.listen("lan1", PORT, "tcp"):
        lab_ok(c, "router-stop")
        c.check(labkit.reach("inet", wan, PORT), "mapping keeps working while miniupnpd is stopped")
        lab_ok(c, "router-start")
        c.check(labkit.has_mapping("r1", "TCP", PORT, lan1, PORT),
                "router-start reloads the mapping from the lease file", labkit.upnp_table())
        lab_ok(c, "router-reboot")
        c.check(labkit.upnp_table() == [], "router-reboot empties the table", labkit.upnp_table())
        c.check(not labkit.reach("inet", wan, PORT), "after router-reboot the port is closed")


def check_cgnat(c, env, upnpc):
    gw, lan1 = env["LAB_R1_LAN"], env["LAB_LAN1"]
    lab_ok(c, "router-start-cgnat")
    r = labkit.run("lan1", upnpc + ["-e", "lab", "-a", lan1, str(PORT), str(PORT), "TCP"])
    c.check("501" in r.stdout, "CGNAT: UPnP AddPortMapping fails with 501", r)
    r = labkit.run("lan1", ["natpmpc", "-g", gw, "-a", str(PORT), str(PORT), "udp", "120"])
    c.check(not r.ok and "returned -52" in r.stdout, "CGNAT: NAT-PMP answers result 3 (libnatpmp -52)", r)
    p = labkit.pcp_map("lan1", gw, "udp", PORT, 120, PORT)
    c.check(p is not None and p.result == 8, "CGNAT: PCP MAP answers 8 NO_RESOURCES", p)
    c.check(labkit.upnp_table() == [], "CGNAT: no mapping was created", labkit.upnp_table())
    lab_ok(c, "router-start")
    r = labkit.run("lan1", ["natpmpc", "-g", gw, "-a", str(PORT), str(PORT), "udp", "120"])
    c.check(r.ok and "Mapped public port" in r.stdout, "router-start: NAT-PMP maps again", r)


def check_drop(c, env, upnpc):
    gw = env["LAB_R1_LAN"]
    lab_ok(c, "router-drop", "on")
    r = labkit.run("lan1", ["natpmpc", "-g", gw, "-a", str(PORT + 1), str(PORT + 1), "udp", "120"],
                   timeout=2)
    c.check(r.timed_out, "router-drop on: NAT-PMP gets no answer", r)
    c.check(labkit.pcp_map("lan1", gw, "udp", PORT + 1, 120, timeout=1) is None,
            "router-drop on: PCP gets no answer")
    r = labkit.run("lan1", upnpc + ["-s"], timeout=2)
    c.check(not r.ok, "router-drop on: UPnP control URL unreachable", r)
    lab_ok(c, "router-drop", "off")
    p = labkit.pcp_map("lan1", gw, "udp", PORT + 1, 120)
    c.check(p is not None and p.result == 0, "router-drop off: PCP answers again", p)


def main() -> int:
    labkit.require_lab()
    env = labkit.lab_env()
    upnpc = ["upnpc", "-u", env["LAB_R1_ROOTDESC"]]
    c = labkit.Checker("lab.router_modes")
    try:
        lab_ok(c, "router-reboot")
        check_rules(c, env, upnpc)
        check_stop_start(c, env, upnpc)
        check_cgnat(c, env, upnpc)
        check_drop(c, env, upnpc)
    finally:
        labkit.lab("router-drop", "off")
        labkit.lab("router-reboot")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

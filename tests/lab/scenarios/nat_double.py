#!/usr/bin/python3
"""Double NAT: lan3 sits behind r3, whose WAN is on r1's LAN. r3 grants mappings and
reports 192.168.1.2 as its external address; STUN sees r1's 203.0.113.2, so
`porthole nat` on lan3 reports double_nat. On lan1 (behind r1 alone) it does not."""

from nat_lab import STUN1, STUN2, OtherTraffic, nat
from porthole_lab import WAN_IP, finish, porthole
import labkit  # noqa: E402

R3_WAN, LAN3 = "192.168.1.2", "192.168.3.100"

c = labkit.Checker("nat_double")
r = labkit.lab("up-double-nat")
c.check(r.ok, "lab.sh up-double-nat", r)
try:
    with OtherTraffic(STUN1, STUN2) as other:
        r, j = nat("lan3")
        c.check(r.ok and j is not None, "lan3: porthole nat exits 0 with JSON", r)
        if j:
            c.check(j["double_nat"] is True, "lan3: double_nat true", r.stdout)
            c.check(j["gateway_external_ip"] == R3_WAN, "lan3: r3 says its external address is "
                    f"{R3_WAN}", j["gateway_external_ip"])
            c.check(j["public_ip"] == WAN_IP, f"lan3: STUN sees {WAN_IP}", j["public_ip"])
            c.check(j["local_ip"] == LAN3, "lan3: local address", j["local_ip"])
            c.check(j["nat_type"] == "port-restricted-cone", "lan3: two EIM NATs in a row are "
                    "still a port-restricted cone", j["nat_type"])
            c.check(any("double NAT" in w for w in j["warnings"]),
                    "lan3: a warning explains the double NAT", j["warnings"])
        r = porthole("lan3", "nat", "--stun", STUN1)
        c.check(r.ok and "double NAT       yes" in r.stdout and "double NAT" in r.stderr,
                "lan3: the text output says so, and a warning on stderr", r)
        c.check(other.packets() == 0, "lan3: nothing but the STUN server was contacted",
                other.packets())

        r, j = nat("lan1")
        c.check(r.ok and j is not None and j["double_nat"] is False,
                "lan1 (r1 alone): double_nat false", r)
finally:
    r = labkit.lab("down-double-nat")
    c.check(r.ok, "lab.sh down-double-nat", r)
finish(c)

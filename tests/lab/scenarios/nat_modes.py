#!/usr/bin/python3
"""`porthole nat` names each of the lab router's four NAT behaviours correctly against
Debian's stund (RFC 3489 server with two addresses: CHANGED-ADDRESS, CHANGE-REQUEST),
or with the argument `serve` against `porthole serve` (RFC 5780: OTHER-ADDRESS),
reports no double NAT behind a single router whose external address is a reserved one,
and contacts no one but the STUN server.

    nat_modes.py          against stund on 198.51.100.10 / .11
    nat_modes.py serve    against `porthole serve` on 198.51.100.12 / .13 (lab.sh serve-start)
"""

import sys

from nat_lab import STUN1, STUN2, OtherTraffic, nat
from porthole_lab import WAN_IP, finish
import labkit  # noqa: E402

SERVE = len(sys.argv) > 1 and sys.argv[1] == "serve"
c = labkit.Checker("nat_modes_serve" if SERVE else "nat_modes")
if SERVE:
    PRIMARY, OTHER_IP = "198.51.100.12", "198.51.100.13"
    r = labkit.lab("serve-start")
    c.check(r.ok, "lab.sh serve-start", r)
else:
    PRIMARY, OTHER_IP = STUN1, STUN2

# mode -> (mapping, filtering, nat_type, port preserved or None when it may go either way)
EXPECTED = {
    "eim": ("endpoint-independent", "address-and-port-dependent", "port-restricted-cone", True),
    "symmetric": ("address-and-port-dependent", "address-and-port-dependent", "symmetric", None),
    "fullcone": ("endpoint-independent", "endpoint-independent", "full-cone", True),
    "restricted": ("endpoint-independent", "address-dependent", "restricted-cone", True),
}

try:
    for mode, (mapping, filtering, nat_type, preserved) in EXPECTED.items():
        r = labkit.lab("nat-mode", "r1", mode)
        c.check(r.ok, f"{mode}: lab.sh nat-mode r1 {mode}", r)
        with OtherTraffic(PRIMARY, OTHER_IP) as other:
            r, j = nat("lan1", stun=(PRIMARY,))
            c.check(r.ok and j is not None, f"{mode}: porthole nat exits 0 with JSON", r)
            if j is None:
                continue
            c.check(j["mapping"] == mapping, f"{mode}: mapping {mapping}", j["mapping"])
            c.check(j["filtering"] == filtering, f"{mode}: filtering {filtering}", j["filtering"])
            c.check(j["nat_type"] == nat_type, f"{mode}: nat_type {nat_type}", j["nat_type"])
            c.check(j["public_ip"] == WAN_IP, f"{mode}: public_ip is r1's WAN address", j["public_ip"])
            if preserved is not None:
                c.check(j["port_preserved"] is preserved and
                        (j["public_port"] == j["local_port"]) is preserved,
                        f"{mode}: port_preserved {preserved}", r.stdout)
            c.check(j["server_other_address"] == f"{OTHER_IP}:3479",
                    f"{mode}: the server's other address was used", j["server_other_address"])
            # 203.0.113.2 is reserved (RFC 5737): the verdict must come from comparing
            # addresses, not from the reserved-address heuristic.
            c.check(j["double_nat"] is False and j["gateway_external_ip"] == WAN_IP,
                    f"{mode}: no double NAT (gateway says {WAN_IP} too)", r.stdout)
            c.check(other.packets() == 0, f"{mode}: nothing but the STUN server was contacted",
                    other.packets())
finally:
    r = labkit.lab("nat-mode", "r1", "eim")
    c.check(r.ok, "r1 back in eim mode", r)
    if SERVE:
        labkit.lab("serve-stop")
finish(c)

#!/usr/bin/python3
"""The lab demo: porthole looks at the NAT from LAN host lan1, opens TCP 8080 on the
lab router and proves it from outside (--verify, with `porthole serve` on the lab's
internet), a public host connects to the router's external address and reaches lan1,
porthole closes the port and the public host no longer gets in."""

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))
import labkit  # noqa: E402

porthole = str(Path(sys.argv[1]).resolve())
state = tempfile.mkdtemp(prefix="porthole-demo-")
# The lab's own servers, never the public defaults.
SERVE = "198.51.100.12"


def step(title: str, argv) -> labkit.Result:
    print(f"\n$ lab.sh exec lan1 {' '.join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))}")
    r = labkit.run("lan1", argv + ["--state-dir", state], timeout=30)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if not r.ok:
        sys.exit(f"demo failed at: {title}")
    return r


try:
    step("probe", [porthole, "probe"])
    print("(the lab's internet uses documentation addresses, 203.0.113.0/24, so porthole "
          "rightly warns that the router's external address is not a public one)")
    step("nat", [porthole, "nat", "--stun", SERVE])
    r = step("open --verify", [porthole, "open", "8080", "--verify", "--stun", SERVE])
    print("(porthole listened on 8080 itself for the check: the serve on the lab's internet "
          "connected to the mapped address and reached it)")
    with labkit.listen("lan1", 8080, "tcp", token="hello-from-lan1"):
        print("\n(a server listens on lan1 192.168.1.100:8080)")
        r = step("open", [porthole, "open", "8080", "--json"])
        m = json.loads(r.stdout)
        ext = (m["external_ip"], m["external_port"])
        reply = labkit.probe("inet", *ext, "tcp")
        if not reply:
            sys.exit(f"demo failed: public host 198.51.100.20 could not reach {ext[0]}:{ext[1]}")
        print(f"\npublic host 198.51.100.20 -> {ext[0]}:{ext[1]}: answered by "
              f"'{reply.token}', which saw the connection come from {reply.peer}")
        step("list", [porthole, "list"])
        step("close", [porthole, "close", "8080"])
        if labkit.reach("inet", *ext, "tcp"):
            sys.exit("demo failed: still reachable after close")
        print(f"\npublic host -> {ext[0]}:{ext[1]}: no longer reachable after close")
    print("\ndemo passed: the port was opened on a real miniupnpd, proven from the lab's "
          "internet, and closed again")
finally:
    shutil.rmtree(state, ignore_errors=True)

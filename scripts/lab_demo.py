#!/usr/bin/python3
"""The lab demo: porthole looks at the NAT from LAN host lan1, opens TCP 8080 on the
lab router and proves it from outside (--verify, with `porthole serve` on the lab's
internet), a public host connects to the router's external address and reaches lan1,
porthole closes the port and the public host no longer gets in. Then the fallback: with
the mapping service switched off on both routers (as behind carrier-grade NAT), lan1 and
lan2 (behind another router) punch a direct UDP path to each other through `porthole
serve` as the rendezvous, and a line goes each way over the punched socket."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))
import labkit  # noqa: E402

porthole = str(Path(sys.argv[1]).resolve())
state = tempfile.mkdtemp(prefix="porthole-demo-")
# Each punching host has its own identity (its own state dir).
peer_state = {ns: tempfile.mkdtemp(prefix=f"porthole-demo-{ns}-") for ns in ("lan1", "lan2")}
# The program each side runs on the punched socket (fd 3): send a line, print the peer's.
EXCHANGE = ("import os, socket; s = socket.socket(fileno=3); s.settimeout(0.3); got = None\n"
            "for _ in range(20):\n"
            "    s.send(b'hello from ' + os.environ['HOSTNAME_LAB'].encode())\n"
            "    try:\n"
            "        d = s.recv(2048)\n"
            "    except OSError:\n"
            "        continue\n"
            "    if d.startswith(b'hello from'): got = d.decode(); break\n"
            "s.send(b'hello from ' + os.environ['HOSTNAME_LAB'].encode())\n"
            "print('received: ' + (got or 'nothing'))\n")
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
    print("\nthe port was opened on a real miniupnpd, proven from the lab's internet, and "
          "closed again")

    print("\n--- when the router won't help: miniupnpd switched off on both routers ---")
    for r in ("r1", "r2"):
        if not labkit.lab("router-stop", r).ok:
            sys.exit(f"demo failed: could not stop miniupnpd on {r}")
    ids = {}
    for ns in peer_state:
        r = labkit.run(ns, [porthole, "id", "--state-dir", peer_state[ns]], timeout=10)
        if not r.ok:
            sys.exit(f"demo failed at: id on {ns}\n{r.stderr}")
        ids[ns] = r.stdout.strip()
        print(f"$ lab.sh exec {ns} porthole id\n{ids[ns]}")
    procs = {}
    for ns, other in (("lan1", "lan2"), ("lan2", "lan1")):
        argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), "env", f"HOSTNAME_LAB={ns}",
                porthole, "punch", ids[other], "--rendezvous", SERVE, "--no-map",
                "--state-dir", peer_state[ns], "-v", "--exec",
                "exec /usr/bin/python3 -c \"$PORTHOLE_DEMO_EXCHANGE\""]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PORTHOLE_DEMO_EXCHANGE": EXCHANGE}
        procs[ns] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
    print(f"$ lab.sh exec lan1 porthole punch {ids['lan2'][:8]}... --rendezvous {SERVE} "
          f"--exec ...   (and lan2 naming lan1, at the same time)")
    for ns, p in procs.items():
        out, err = p.communicate(timeout=30)
        lines = [ln for ln in err.splitlines() if "punched" in ln or "path" in ln][:1]
        print(f"{ns}: {' '.join(lines) or err.strip()}\n{ns}: {out.strip()}")
        if p.returncode != 0 or "received: hello from" not in out:
            sys.exit(f"demo failed: punch on {ns} (exit {p.returncode})")
    print("\ndemo passed: mapped, proven and closed on a real miniupnpd; then, with no "
          "mapping service, a direct UDP path punched between two NATs")
finally:
    # lab-demo.sh takes the whole lab down after this.
    shutil.rmtree(state, ignore_errors=True)
    for d in peer_state.values():
        shutil.rmtree(d, ignore_errors=True)

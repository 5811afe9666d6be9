#!/usr/bin/python3
"""Tunnel speed and cost in the lab, side by side in one run on the same two hosts and
routers (lan1 behind r1 with miniupnpd, lan2 behind r2, both eim):

  porthole connect (lan2) -> porthole expose (lan1), over expose's mapping on r1
  ssh -L (Debian's OpenSSH, default cipher) to an sshd on lan1, over a mapping of r1
  plain TCP to lan1 over a mapping of r1 (the ceiling)

Bulk TCP: an iperf3 server on lan1, the client on lan2 (through 127.0.0.1:LOCAL for the
tunnel and ssh, to r1's WAN address for plain TCP), --runs runs of --seconds each,
interleaved; the median of each, and the ratios tunnel/ssh and tunnel/plain. CPU seconds
per GiB moved on each side (utime + stime from /proc/PID/stat over the transfer: expose
and connect; sshd's processes for that connection and ssh). Peak RSS (VmHWM) of expose
and connect with 100 TCP connections open through one tunnel (a fresh pair, measured
while they are open). The time from starting `porthole connect` to the first byte of an
HTTP answer through it (median of --runs, expose already running).

Usage: bench/tunnel_bench.py --porthole build/porthole [--runs 3] [--json out.json]
(PORTHOLE_BENCH_SECONDS=N: iperf3 seconds per run, default 5)
The lab must be up (tests/lab/lab.sh up) and otherwise idle. sshd, its host key and a
throwaway client key live in a temporary directory and run only inside lan1's namespace;
the mappings on r1 are removed, r2's miniupnpd started again and `porthole serve`
stopped at the end.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchkit import arguments, labkit, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab" / "scenarios"))

IPERF_PORT, SSH_PORT, HOLD_PORT, HTTP_PORT = 5201, 2222, 5300, 8080
TUNNEL_LOCAL, SSH_LOCAL, HOLD_LOCAL, HTTP_LOCAL = 15201, 15202, 15300, 18080
TUNNEL_UDP_PORT = 41040
GIB = 1 << 30
STREAMS = 100

# Runs in lan1: accepts TCP connections and keeps them open until the peer closes;
# prints the number open after each change.
_HOLD = r"""
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(256)
print("READY", flush=True)
n, lock = 0, threading.Lock()
def hold(c):
    global n
    with c:
        while c.recv(4096):
            pass
    with lock:
        n -= 1
        print(n, flush=True)
while True:
    c, _ = s.accept()
    with lock:
        n += 1
        print(n, flush=True)
    threading.Thread(target=hold, args=(c,), daemon=True).start()
"""

# Runs in lan2: N connections to 127.0.0.1:PORT, one byte each, "OPEN" once all are
# connected, then holds them until stdin closes.
_OPEN = r"""
import socket, sys
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), 30)
         for _ in range(int(sys.argv[2]))]
for s in socks:
    s.sendall(b"x")
print("OPEN", flush=True)
sys.stdin.read()
"""

# Runs in lan2: starts porthole connect ARGV..., then connects to 127.0.0.1:PORT until
# an HTTP answer's first byte arrives; prints the milliseconds since the start.
_FIRST_BYTE = r"""
import json, signal, socket, subprocess, sys, time
port, argv = int(sys.argv[1]), sys.argv[2:]
t0 = time.monotonic()
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
ms = None
while ms is None and time.monotonic() - t0 < 30 and p.poll() is None:
    try:
        s = socket.create_connection(("127.0.0.1", port), 30)
        s.settimeout(30)
        s.sendall(b"GET /small.bin HTTP/1.0\r\nHost: lab\r\n\r\n")
        if s.recv(1):
            ms = (time.monotonic() - t0) * 1000
        s.close()
    except OSError:
        time.sleep(0.005)
p.send_signal(signal.SIGTERM)
rc = p.wait(30)
print(json.dumps({"ms": ms, "rc": rc}))
"""


def in_ns(ns: str, argv) -> list:
    return [labkit.IP, "netns", "exec", labkit.ns_name(ns), *argv]


def descendants(pid: int) -> list:
    """pid and every process below it (from /proc/*/stat's ppid)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out


def cpu_of(pids) -> float:
    from tunnel_lab import proc_cpu_seconds
    return sum(proc_cpu_seconds(p) or 0.0 for p in pids)


def iperf(ip: str, port: int, seconds: int) -> dict:
    """One iperf3 run from lan2; {"bps", "bytes"} as the receiver counted them."""
    r = labkit.run("lan2", ["iperf3", "-c", ip, "-p", str(port), "-t", str(seconds), "-J"],
                   timeout=seconds + 30)
    try:
        end = json.loads(r.stdout)["end"]["sum_received"]
        return {"bps": end["bits_per_second"], "bytes": end["bytes"]}
    except (ValueError, KeyError):
        raise RuntimeError(f"iperf3 to {ip}:{port} failed: {r}")


def wait_tcp(ns: str, ip: str, port: int, timeout: float = 15.0) -> None:
    from tunnel_lab import tcp_open
    if not labkit.wait_until(lambda: tcp_open(ns, ip, port), timeout=timeout, interval=0.1):
        raise RuntimeError(f"nothing accepts on {ip}:{port} in {ns}")


class Ssh:
    """sshd on lan1 (port SSH_PORT, keys in `tmp`), reached over r1's mapping `ext`;
    ssh -N -L SSH_LOCAL:127.0.0.1:IPERF_PORT on lan2."""

    def __init__(self, tmp: Path, wan: str, ext: int):
        d = tmp / "ssh"
        d.mkdir(mode=0o700)
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(d / name)], check=True)
        shutil.copy(d / "client.pub", d / "authorized_keys")
        (d / "sshd_config").write_text(
            f"Port {SSH_PORT}\nListenAddress 0.0.0.0\nHostKey {d / 'host'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "AllowTcpForwarding yes\nX11Forwarding no\nPrintMotd no\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        self.sshd = subprocess.Popen(in_ns("lan1", ["/usr/sbin/sshd", "-D", "-e", "-f",
                                                    str(d / "sshd_config")]),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(d / "sshd.log", "w"))
        wait_tcp("lan1", "127.0.0.1", SSH_PORT)
        self.ssh = subprocess.Popen(in_ns("lan2", [
            "ssh", "-N", "-i", str(d / "client"), "-p", str(ext),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-L", f"{SSH_LOCAL}:127.0.0.1:{IPERF_PORT}", f"root@{wan}"]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(d / "ssh.log", "w"))
        wait_tcp("lan2", "127.0.0.1", SSH_LOCAL)
        self.dir = d

    def pids(self) -> tuple:
        return descendants(self.sshd.pid), [self.ssh.pid]

    def stop(self) -> None:
        from tunnel_lab import terminate
        for p in (self.ssh, self.sshd):
            terminate(p)


def map_tcp(bin_: str, state: str, port: int) -> int:
    """`porthole open PORT` on lan1 (r1's miniupnpd); the external port."""
    r = labkit.run("lan1", [bin_, "open", str(port), "--json", "--state-dir", state], timeout=30)
    try:
        return int(json.loads(r.stdout)["external_port"])
    except (ValueError, KeyError, TypeError):
        raise RuntimeError(f"porthole open {port} failed: {r}")


def median(xs):
    return statistics.median(xs) if xs else None


def main() -> int:
    args, bin_ = arguments(__doc__, runs=3, runs_help="runs per path (iperf3, first byte)")
    seconds = int(os.environ.get("PORTHOLE_BENCH_SECONDS", "5"))
    os.environ["PORTHOLE_BIN"] = bin_
    import tunnel_lab as tl  # reads PORTHOLE_BIN
    from porthole_lab import _state_root

    tmp = Path(tempfile.mkdtemp(prefix="porthole-tunnel-bench-"))
    states = {ns: str(tmp / f"state-{ns}") for ns in ("lan1", "lan2")}
    ids = {ns: tl.id_of(ns, Path(states[ns])) for ns in states}
    if not all(ids.values()):
        print(f"porthole id failed: {ids}", file=sys.stderr)
        return 1
    figures, procs, ssh = {}, [], None
    mapped = []
    try:
        for r, cmd in (("r1", "router-start"), ("r2", "router-stop")):
            res = labkit.lab(cmd, r)
            if not res.ok:
                raise RuntimeError(f"lab.sh {cmd} {r}: {res}")
        for r in ("r1", "r2"):
            labkit.lab("nat-mode", r, "eim")
        res = labkit.lab("serve-start")
        if not res.ok:
            raise RuntimeError(f"lab.sh serve-start: {res}")
        wan = labkit.lab_env().get("LAB_R1_WAN", "203.0.113.2")

        iperf_srv = tl.Service("lan1", ["iperf3", "-s", "-p", str(IPERF_PORT)],
                               ready_port=IPERF_PORT)
        holder = subprocess.Popen(in_ns("lan1", [labkit.PYTHON, "-u", "-c", _HOLD,
                                                 str(HOLD_PORT)]),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        procs += [iperf_srv, holder]
        if holder.stdout.readline().strip() != "READY":
            raise RuntimeError("the connection holder did not start")
        www = tl.FileServer("lan1", HTTP_PORT, {"small.bin": 4096})
        procs.append(www)
        plain_ext = map_tcp(bin_, states["lan1"], IPERF_PORT)
        ssh_ext = map_tcp(bin_, states["lan1"], SSH_PORT)
        mapped += [IPERF_PORT, SSH_PORT]

        # Peak RSS with 100 open streams: a fresh pair, nothing else through it before.
        ex = tl.expose("lan1", [str(HOLD_PORT)], [ids["lan2"]], "--no-map",
                       state=states["lan1"])
        procs.append(ex)
        tl.started(ex)
        co = tl.connect("lan2", ids["lan1"], [f"{HOLD_LOCAL}:{HOLD_PORT}"], "--no-map",
                        state=states["lan2"])
        procs.append(co)
        tl.connected(co)
        opener = subprocess.Popen(in_ns("lan2", [labkit.PYTHON, "-u", "-c", _OPEN,
                                                 str(HOLD_LOCAL), str(STREAMS)]),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if opener.stdout.readline().strip() != "OPEN":
            raise RuntimeError("the 100 local connections did not open")
        count = 0
        while count < STREAMS:
            line = holder.stdout.readline()
            if not line:
                raise RuntimeError("the holder ended")
            count = int(line)
        figures["rss_kib_100_streams"] = {"expose": ex.rss_peak_kib(),
                                          "connect": co.rss_peak_kib()}
        opener.stdin.close()
        opener.wait(30)
        tl.stop_all(co, ex)

        # Bulk TCP: tunnel (over the mapped path), ssh -L, plain.
        ex = tl.expose("lan1", [str(IPERF_PORT), str(HTTP_PORT)], [ids["lan2"]],
                       "--port", str(TUNNEL_UDP_PORT), state=states["lan1"])
        procs.append(ex)
        ready = tl.started(ex)
        co = tl.connect("lan2", ids["lan1"], [f"{TUNNEL_LOCAL}:{IPERF_PORT}"], "--no-map",
                        state=states["lan2"])
        procs.append(co)
        ev = tl.connected(co)
        figures["tunnel_path"] = ev.get("path")
        figures["expose_mapping"] = ready.get("mapping")
        ssh = Ssh(tmp, wan, ssh_ext)
        bulk = {"tunnel": [], "ssh": [], "plain": []}
        cpu = {"expose": [], "connect": [], "sshd": [], "ssh": []}
        for run in range(args.runs):
            order = ("tunnel", "ssh", "plain") if run % 2 == 0 else ("plain", "ssh", "tunnel")
            for path in order:
                if path == "tunnel":
                    sides = {"expose": [ex.pid], "connect": [co.pid]}
                    target = ("127.0.0.1", TUNNEL_LOCAL)
                elif path == "ssh":
                    server, client = ssh.pids()
                    sides = {"sshd": server, "ssh": client}
                    target = ("127.0.0.1", SSH_LOCAL)
                else:
                    sides, target = {}, (wan, plain_ext)
                before = {k: cpu_of(p) for k, p in sides.items()}
                got = iperf(*target, seconds)
                bulk[path].append(got["bps"] / 1e6)
                for k, p in sides.items():
                    cpu[k].append((cpu_of(p) - before[k]) / (got["bytes"] / GIB))
        tl.stop_all(co)

        # Time from connect started to the first byte of an HTTP answer.
        first = []
        for _ in range(max(args.runs, 5)):
            argv = [bin_, "connect", ids["lan1"], "--rendezvous", tl.RENDEZVOUS, "--stun",
                    tl.STUN, "-L", f"{HTTP_LOCAL}:{HTTP_PORT}", "--no-map",
                    "--state-dir", states["lan2"]]
            r = labkit.run("lan2", [labkit.PYTHON, "-c", _FIRST_BYTE, str(HTTP_LOCAL), *argv],
                           timeout=60)
            try:
                got = json.loads(r.stdout)
            except ValueError:
                got = {}
            if got.get("ms") is not None:
                first.append(got["ms"])
            else:
                print(f"first byte: no answer: {r}", file=sys.stderr)
        tl.stop_all(ex)

        med = {k: median(v) for k, v in bulk.items()}
        figures.update({"mbit_s": bulk, "mbit_s_median": med,
                        "cpu_s_per_gib_median": {k: median(v) for k, v in cpu.items()},
                        "first_byte_ms": first, "first_byte_ms_median": median(first)})
        if med["tunnel"] and med["ssh"]:
            figures["tunnel_over_ssh"] = med["tunnel"] / med["ssh"]
        if med["tunnel"] and med["plain"]:
            figures["tunnel_over_plain"] = med["tunnel"] / med["plain"]
    finally:
        if ssh:
            ssh.stop()
        for p in reversed(procs):
            tl.terminate(p) if isinstance(p, subprocess.Popen) else p.stop()
        for port in mapped:
            labkit.run("lan1", [bin_, "close", str(port), "--state-dir", states["lan1"]],
                       timeout=30)
        labkit.lab("router-start", "r2")
        labkit.lab("serve-stop")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(_state_root, ignore_errors=True)

    print(f"tunnel path: {figures.get('tunnel_path')} (expose's mapping "
          f"{figures.get('expose_mapping')}), iperf3 {seconds} s x {args.runs} runs each")
    print(f"{'bulk TCP lan2 -> lan1':28} {'median':>12} {'min':>10} {'max':>10}")
    for k, v in figures["mbit_s"].items():
        if v:
            print(f"{k:28} {median(v):>7.0f} Mb/s {min(v):>10.0f} {max(v):>10.0f}")
    for k in ("tunnel_over_ssh", "tunnel_over_plain"):
        if k in figures:
            print(f"{k.replace('_', ' '):28} {figures[k]:>12.2f}")
    print("CPU s per GiB (median):     " +
          ", ".join(f"{k} {v:.2f}" for k, v in figures["cpu_s_per_gib_median"].items()
                    if v is not None))
    rss = figures["rss_kib_100_streams"]
    print(f"peak RSS, {STREAMS} open streams:  expose {rss['expose']} KiB, "
          f"connect {rss['connect']} KiB")
    fb = figures["first_byte_ms_median"]
    print(f"connect start -> first HTTP byte: median {fb:.1f} ms over {len(first)} runs"
          if fb is not None else "connect start -> first HTTP byte: no run succeeded")
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

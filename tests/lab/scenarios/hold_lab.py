#!/usr/bin/python3
"""`porthole hold` in the lab: a background holder whose JSON events are collected."""

import json
import signal
import subprocess
import threading
import time

from porthole_lab import BIN, state_dir
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)


class Holder:
    """`porthole hold ARGS --json` running in a namespace; .events is every JSON line so
    far (each with "t", the monotonic time it arrived). Stop it with .stop() (SIGTERM to
    the PID we started: `ip netns exec` execs porthole itself)."""

    def __init__(self, ns: str, *args: str, state=None):
        argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), BIN, "hold", *args, "--json",
                "--state-dir", str(state or state_dir(ns))]
        self.argv = argv
        self.events = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.stderr = ""
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                e = {"event": "unparsable", "line": line}
            e["t"] = time.monotonic()
            with self.lock:
                self.events.append(e)

    def _pump_err(self):
        for line in self.proc.stderr:
            self.stderr += line

    def of(self, kind: str, since: float = 0.0) -> list:
        with self.lock:
            return [e for e in self.events if e["event"] == kind and e["t"] >= since]

    def wait_event(self, kind: str, timeout: float, since: float = 0.0, count: int = 1,
                   pred=None) -> bool:
        def seen():
            es = self.of(kind, since)
            if pred:
                es = [e for e in es if pred(e)]
            return len(es) >= count
        return labkit.wait_until(seen, timeout=timeout, interval=0.1)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0):
        """SIGTERM; returns the exit status (None if it did not exit in time: killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None

    def summary(self) -> str:
        with self.lock:
            lines = [f'{e["event"]}: {e.get("message", "")}' for e in self.events]
        return "\n".join(lines[-30:]) + "\n--stderr--\n" + self.stderr[-2000:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def ours_on_router(ports) -> list:
    """The router's live redirects (read on r1 itself: the nft DNAT rules miniupnpd keeps
    for UPnP, NAT-PMP and PCP alike) whose external port is one of `ports`."""
    return [m for m in labkit.upnp_table("r1") if m.ext_port in ports]

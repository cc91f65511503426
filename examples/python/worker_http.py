#!/usr/bin/env python3
"""A worker that reports to hbagg over HTTP, with the standard library only.

It beats with POST /v1/beat and, on SIGTERM or Ctrl-C, shuts down the way the
contract asks: stop taking tasks, POST /v1/leave with phase "draining", let
the tasks in hand finish (up to a deadline), POST /v1/leave with phase
"stopped", exit 0. The messages follow schemas/beat.json and schemas/leave.json
(the contract; docs/PROTOCOL.md section 1), built by hand so this file can be
copied into any project.

    python3 examples/python/worker_http.py --url http://127.0.0.1:9470 --worker py-http-1

Environment (flags win): HBAGG_URL, HBAGG_WORKER, HBAGG_INTERVAL_MS,
HBAGG_HTTP_TOKEN (when the daemon's http.token is set).
"""

import argparse
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

PROTOCOL_VERSION = 1


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Hbagg:
    """The two calls of the daemon's HTTP interface a worker needs."""

    def __init__(self, url, token=None, timeout_s=2.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def post(self, path, body):
        """POSTs JSON; returns (status, parsed body). Raises OSError when the daemon is unreachable."""
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as res:
                return res.status, json.loads(res.read() or b"{}")
        except urllib.error.HTTPError as err:  # 4xx/5xx still carry a JSON body
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, {"error": text.decode(errors="replace")[:200]}


class Worker:
    def __init__(self, hbagg, worker_id, interval_ms, max_tasks=3, drain_timeout_ms=10_000):
        self.hbagg = hbagg
        self.worker = worker_id
        # New for every process start: that is how the daemon tells a restart from a late beat.
        self.instance = secrets.token_hex(8)
        self.seq = 0
        self.interval_ms = interval_ms
        self.max_tasks = max_tasks
        self.drain_timeout_ms = drain_timeout_ms
        self.inflight = 0
        self.done = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.unreachable = False

    def next_seq(self):
        # Strictly increasing within an instance, shared by beats and leaves.
        seq = self.seq
        self.seq += 1
        return seq

    # ---- messages, per schemas/beat.json and schemas/leave.json ----

    def beat_message(self):
        with self.lock:
            inflight = self.inflight
        return {
            "v": PROTOCOL_VERSION,
            "worker": self.worker,
            "instance": self.instance,
            "seq": self.next_seq(),
            "interval_ms": self.interval_ms,
            "ts": int(time.time() * 1000),
            "status": "busy" if inflight > 0 else "idle",
            "inflight": inflight,
            "load": min(1.0, inflight / self.max_tasks),
            "meta": {"lang": "python", "transport": "http", "done": self.done},
        }

    def leave_message(self, phase, reason):
        msg = {
            "v": PROTOCOL_VERSION,
            "worker": self.worker,
            "instance": self.instance,
            "seq": self.next_seq(),
            "phase": phase,
            "reason": reason[:256],
        }
        if phase == "draining":
            msg["drain_timeout_ms"] = self.drain_timeout_ms
        return msg

    # ---- the beat loop ----

    def beat(self):
        try:
            status, body = self.hbagg.post("/v1/beat", self.beat_message())
        except OSError as err:
            if not self.unreachable:
                log(f"cannot reach hbagg at {self.hbagg.url}: {err}; will keep trying")
            self.unreachable = True
            return
        if self.unreachable:
            log("hbagg is reachable again")
        self.unreachable = False
        if status != 202 or body.get("rejected"):
            log(f"beat not accepted ({status}): {json.dumps(body)}")

    def run_beats(self):
        log(f"worker {self.worker} instance {self.instance}: beating every {self.interval_ms} ms to {self.hbagg.url}")
        while not self.stopping.is_set():
            self.beat()
            # Jitter keeps a fleet of workers from beating in step.
            gap = self.interval_ms * random.uniform(0.9, 1.1) / 1000
            self.stopping.wait(gap)

    # ---- simulated work ----

    def run_tasks(self):
        """Stands in for a real consumer: takes a task now and then while not stopping."""
        while not self.stopping.wait(0.3):
            with self.lock:
                if self.inflight >= self.max_tasks or random.random() > 0.4:
                    continue
                self.inflight += 1
            threading.Thread(target=self.task, args=(random.uniform(0.3, 1.5),), daemon=True).start()

    def task(self, seconds):
        time.sleep(seconds)
        with self.lock:
            self.inflight -= 1
            self.done += 1

    # ---- graceful shutdown ----

    def leave(self, phase, reason):
        try:
            status, reply = self.hbagg.post("/v1/leave", self.leave_message(phase, reason))
        except OSError as err:
            log(f"leave {phase}: hbagg unreachable ({err}); going on without it")
            return
        if reply.get("ok"):
            log(f"leave {phase}: acknowledged, state {reply.get('state')}")
        else:
            log(f"leave {phase}: refused ({status}): {reply.get('error')}")

    def shutdown(self, reason):
        # 1. Stop taking tasks and beating (the loops watch this event).
        self.stopping.set()
        # 2. Tell the platform we are draining: no beat of this instance counts from here on.
        self.leave("draining", reason)
        # 3. Let the tasks in hand finish, up to the deadline.
        deadline = time.monotonic() + self.drain_timeout_ms / 1000
        while time.monotonic() < deadline:
            with self.lock:
                if self.inflight == 0:
                    break
            time.sleep(0.05)
        with self.lock:
            left = self.inflight
        if left:
            log(f"{left} task(s) still running after {self.drain_timeout_ms} ms; abandoning them")
        # 4. Gone.
        self.leave("stopped", reason)


def main():
    parser = argparse.ArgumentParser(description="An hbagg worker over HTTP (stdlib only).")
    parser.add_argument("--url", default=os.environ.get("HBAGG_URL", "http://127.0.0.1:9470"), help="the daemon's HTTP address")
    parser.add_argument("--worker", default=os.environ.get("HBAGG_WORKER", "py-http-worker"), help="worker id, ^[A-Za-z0-9_-]{1,128}$")
    parser.add_argument("--interval-ms", type=int, default=int(os.environ.get("HBAGG_INTERVAL_MS", "1000")), help="beat every N ms (100..600000)")
    parser.add_argument("--drain-timeout-ms", type=int, default=10_000, help="how long tasks may take to finish on shutdown")
    parser.add_argument("--token", default=os.environ.get("HBAGG_HTTP_TOKEN"), help="bearer token, when the daemon has http.token")
    args = parser.parse_args()

    worker = Worker(Hbagg(args.url, args.token), args.worker, args.interval_ms, drain_timeout_ms=args.drain_timeout_ms)
    received = []

    def on_signal(signum, _frame):
        if received:  # a second signal: stop waiting
            log("second signal: exiting now")
            os._exit(1)
        received.append(signal.Signals(signum).name)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    threading.Thread(target=worker.run_tasks, daemon=True).start()
    worker.run_beats()  # returns once a signal set `stopping`
    reason = received[0] if received else "shutdown"
    log(f"{reason}: shutting down gracefully")
    worker.shutdown(reason)
    log(f"stopped after {worker.done} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A worker that reports to hbagg over NATS, with the nats-py client.

    pip install nats-py
    python3 examples/python/worker_nats.py --nats nats://127.0.0.1:4222 --worker py-nats-1

It publishes a Beat on `<prefix>.beat.<worker>` every interval and, on
SIGTERM or Ctrl-C, sends the Leave requests on `<prefix>.leave.<worker>`:
"draining", then (once its tasks are done) "stopped", waiting each time for
the daemon's LeaveReply. The messages follow schemas/beat.json,
schemas/leave.json and schemas/leave-reply.json (the contract; docs/PROTOCOL.md
section 1), built by hand so this file can be copied into any project.

Environment (flags win): HBAGG_NATS_URL, HBAGG_SUBJECT_PREFIX, HBAGG_WORKER,
HBAGG_INTERVAL_MS.
"""

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import sys
import time

try:
    import nats
    from nats.errors import NoRespondersError, TimeoutError as NatsTimeoutError
except ImportError:  # pragma: no cover - a readable message instead of a traceback
    sys.exit("this example needs the nats-py package: pip install nats-py")

PROTOCOL_VERSION = 1


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Worker:
    def __init__(self, nc, prefix, worker_id, interval_ms, max_tasks=3, drain_timeout_ms=10_000):
        self.nc = nc
        self.worker = worker_id
        self.beat_subject = f"{prefix}.beat.{worker_id}"
        self.leave_subject = f"{prefix}.leave.{worker_id}"
        # New for every process start: that is how the daemon tells a restart from a late beat.
        self.instance = secrets.token_hex(8)
        self.seq = 0
        self.interval_ms = interval_ms
        self.max_tasks = max_tasks
        self.drain_timeout_ms = drain_timeout_ms
        self.tasks = set()
        self.done = 0
        self.stopping = asyncio.Event()

    def next_seq(self):
        # Strictly increasing within an instance, shared by beats and leaves.
        seq = self.seq
        self.seq += 1
        return seq

    # ---- messages, per schemas/beat.json and schemas/leave.json ----

    def beat_message(self):
        inflight = len(self.tasks)
        return {
            "v": PROTOCOL_VERSION,
            "worker": self.worker,
            "instance": self.instance,
            "seq": self.next_seq(),
            "interval_ms": self.interval_ms,
            "ts": int(time.time() * 1000),
            "status": "busy" if inflight else "idle",
            "inflight": inflight,
            "load": min(1.0, inflight / self.max_tasks),
            "meta": {"lang": "python", "transport": "nats", "done": self.done},
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

    # ---- loops ----

    async def run_beats(self):
        log(f"worker {self.worker} instance {self.instance}: beating every {self.interval_ms} ms on {self.beat_subject}")
        while not self.stopping.is_set():
            # Fire and forget: nats-py buffers while it reconnects.
            await self.nc.publish(self.beat_subject, json.dumps(self.beat_message()).encode())
            gap = self.interval_ms * random.uniform(0.9, 1.1) / 1000  # jitter: a fleet does not beat in step
            try:
                await asyncio.wait_for(self.stopping.wait(), gap)
            except asyncio.TimeoutError:
                pass

    async def run_tasks(self):
        """Stands in for a real consumer: takes a task now and then while not stopping."""
        while not self.stopping.is_set():
            await asyncio.sleep(0.3)
            if len(self.tasks) < self.max_tasks and random.random() < 0.4 and not self.stopping.is_set():
                task = asyncio.create_task(self.task(random.uniform(0.3, 1.5)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def task(self, seconds):
        await asyncio.sleep(seconds)
        self.done += 1

    # ---- graceful shutdown ----

    async def leave(self, phase, reason):
        """Request/reply; the daemon answers once this instance's beats are suppressed."""
        for attempt in (1, 2):
            try:
                msg = await self.nc.request(self.leave_subject, json.dumps(self.leave_message(phase, reason)).encode(), timeout=2)
            except NoRespondersError:
                if attempt == 1:  # the daemon may be restarting: one more try
                    await asyncio.sleep(0.2)
                    continue
                log(f"leave {phase}: no daemon listening; going on without it")
                return
            except NatsTimeoutError:
                log(f"leave {phase}: no reply within 2 s; going on without it")
                return
            reply = json.loads(msg.data)
            if reply.get("ok"):
                log(f"leave {phase}: acknowledged, state {reply.get('state')}")
            else:
                log(f"leave {phase}: refused: {reply.get('error')}")
            return

    async def shutdown(self, reason):
        self.stopping.set()  # 1. stop taking tasks and beating
        await self.leave("draining", reason)  # 2. no beat of this instance counts from here on
        if self.tasks:  # 3. let the tasks in hand finish, up to the deadline
            _, pending = await asyncio.wait(set(self.tasks), timeout=self.drain_timeout_ms / 1000)
            if pending:
                log(f"{len(pending)} task(s) still running after {self.drain_timeout_ms} ms; abandoning them")
                for t in pending:
                    t.cancel()
        await self.leave("stopped", reason)  # 4. gone


async def main():
    parser = argparse.ArgumentParser(description="An hbagg worker over NATS (nats-py).")
    parser.add_argument("--nats", default=os.environ.get("HBAGG_NATS_URL", "nats://127.0.0.1:4222"), help="NATS server URL(s), comma separated")
    parser.add_argument("--prefix", default=os.environ.get("HBAGG_SUBJECT_PREFIX", "hb"), help="the daemon's nats.subject_prefix")
    parser.add_argument("--worker", default=os.environ.get("HBAGG_WORKER", "py-nats-worker"), help="worker id, ^[A-Za-z0-9_-]{1,128}$")
    parser.add_argument("--interval-ms", type=int, default=int(os.environ.get("HBAGG_INTERVAL_MS", "1000")), help="beat every N ms (100..600000)")
    parser.add_argument("--drain-timeout-ms", type=int, default=10_000, help="how long tasks may take to finish on shutdown")
    args = parser.parse_args()

    servers = [s.strip() for s in args.nats.split(",") if s.strip()]
    nc = await nats.connect(servers=servers, name=f"hbagg-example:{args.worker}", max_reconnect_attempts=-1)
    worker = Worker(nc, args.prefix, args.worker, args.interval_ms, drain_timeout_ms=args.drain_timeout_ms)

    loop = asyncio.get_running_loop()
    received = []

    def on_signal(name):
        if received:  # a second signal: stop waiting
            log("second signal: exiting now")
            os._exit(1)
        received.append(name)
        worker.stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)

    tasks = asyncio.create_task(worker.run_tasks())
    await worker.run_beats()  # returns once a signal set `stopping`
    reason = received[0] if received else "shutdown"
    log(f"{reason}: shutting down gracefully")
    await worker.shutdown(reason)
    tasks.cancel()
    await nc.drain()  # flushes what is buffered, then closes
    log(f"stopped after {worker.done} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

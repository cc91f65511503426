#!/usr/bin/env python3
"""An OpenCTI-connector-shaped worker that lets hbagg ping OpenCTI for it.

Standard library only. It beats to the node's hbagg daemon (platform.kind
"opencti") over HTTP (POST /v1/beat) or NATS (a minimal NATS client below),
naming its connector in the beat's meta:

    opencti_connector_id      the connector's UUID (pycti's CONNECTOR_ID)
    opencti_connector_state   its state as pycti sends it: json.dumps(state)
    opencti_run_and_terminate, opencti_buffering, opencti_queue_threshold,
    opencti_queue_messages_size, opencti_last_run_datetime   (connectorInfo)

hbagg then calls pingConnector on OpenCTI once per ping_every_ms with that
state, so this process never talks to OpenCTI for liveness. On SIGTERM or
Ctrl-C it leaves "draining", finishes the run in hand, leaves "stopped" and
exits 0; hbagg stops pinging the connector (OpenCTI shows it inactive
within 5 minutes, or deletes it with platform.opencti.delete_on_stop).

    python3 examples/python/connector_worker.py --connector-id 6a1b... --url http://127.0.0.1:9470
    python3 examples/python/connector_worker.py --connector-id 6a1b... --nats nats://127.0.0.1:4222

Beat meta is at most 2 KiB (PROTOCOL.md section 1): a larger state is not
sent, and hbagg keeps sending the last state OpenCTI holds.
"""

import argparse
import datetime
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

MAX_STATE_BYTES = 1500  # leaves room for the other meta keys under the 2 KiB limit


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class HttpTransport:
    def __init__(self, url, token=None):
        self.url = url.rstrip("/")
        self.token = token

    def _post(self, path, body):
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=2.0) as res:
                return json.loads(res.read() or b"{}")
        except urllib.error.HTTPError as err:
            return {"ok": False, "error": err.read().decode(errors="replace")[:200]}

    def beat(self, beat):
        self._post("/v1/beat", beat)

    def leave(self, leave):
        return self._post("/v1/leave", leave)

    def close(self):
        pass


class NatsTransport:
    """Just enough of the NATS protocol: CONNECT, PUB, and one request/reply for Leave."""

    def __init__(self, url, prefix):
        host, _, port = url.replace("nats://", "").partition(":")
        self.sock = socket.create_connection((host, int(port or 4222)), timeout=5)
        self.file = self.sock.makefile("rb")
        self.prefix = prefix
        self.lock = threading.Lock()
        self.file.readline()  # INFO
        self._send(b'CONNECT {"verbose":false,"pedantic":false,"name":"connector_worker.py"}\r\nPING\r\n')
        self._expect_pong()

    def _send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def _expect_pong(self):
        while True:
            line = self.file.readline()
            if not line:
                raise OSError("nats connection closed")
            if line.startswith(b"PONG"):
                return
            if line.startswith(b"-ERR"):
                raise OSError(line.decode().strip())

    def _pub(self, subject, body, reply=None):
        data = json.dumps(body).encode()
        head = f"PUB {subject} {reply + ' ' if reply else ''}{len(data)}\r\n".encode()
        self._send(head + data + b"\r\n")

    def beat(self, beat):
        self._pub(f"{self.prefix}.beat.{beat['worker']}", beat)

    def leave(self, leave):
        inbox = f"_INBOX.{secrets.token_hex(8)}"
        self._send(f"SUB {inbox} 1\r\n".encode())
        self._pub(f"{self.prefix}.leave.{leave['worker']}", leave, reply=inbox)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            line = self.file.readline()
            if line.startswith(b"PING"):
                self._send(b"PONG\r\n")
            elif line.startswith(b"MSG"):
                size = int(line.split()[-1])
                payload = self.file.read(size + 2)[:size]
                self._send(b"UNSUB 1\r\n")
                return json.loads(payload)
        return {"ok": False, "error": "no reply from the daemon within 5 s"}

    def close(self):
        self.sock.close()


class Connector:
    def __init__(self, transport, worker, connector_id, interval_ms, run_every_s):
        self.t = transport
        self.worker = worker
        self.connector_id = connector_id
        self.instance = secrets.token_hex(8)
        self.seq = 0
        self.interval_ms = interval_ms
        self.run_every_s = run_every_s
        self.state = {}
        self.running = False
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def next_seq(self):
        self.seq += 1
        return self.seq

    def meta(self):
        meta = {
            "opencti_connector_id": self.connector_id,
            "opencti_run_and_terminate": False,
            "opencti_buffering": False,
            "opencti_queue_threshold": 500,
            "opencti_queue_messages_size": 0,
        }
        if "last_run" in self.state:
            meta["opencti_last_run_datetime"] = datetime.datetime.fromtimestamp(self.state["last_run"], datetime.timezone.utc).isoformat()
        state = json.dumps(self.state)  # what pycti's ping sends
        if self.state and len(state.encode()) <= MAX_STATE_BYTES:
            meta["opencti_connector_state"] = state
        return meta

    def beat(self):
        with self.lock:
            body = {"v": 1, "worker": self.worker, "instance": self.instance, "seq": self.next_seq(),
                    "interval_ms": self.interval_ms, "status": "busy" if self.running else "idle",
                    "inflight": 1 if self.running else 0, "meta": self.meta()}
        try:
            self.t.beat(body)
        except OSError as err:
            log(f"beat not sent: {err}")

    def leave(self, phase, reason):
        with self.lock:
            body = {"v": 1, "worker": self.worker, "instance": self.instance, "seq": self.next_seq(),
                    "phase": phase, "reason": reason}
        try:
            reply = self.t.leave(body)
        except OSError as err:
            reply = {"ok": False, "error": str(err)}
        log(f"leave {phase}: {'acknowledged, state ' + reply.get('state', '?') if reply.get('ok') else reply.get('error')}")

    def run_once(self):
        """Stands in for the connector's real work: it advances the state pycti would store."""
        with self.lock:
            self.running = True
        time.sleep(0.2)
        with self.lock:
            self.state = {"last_run": int(time.time()), "runs": self.state.get("runs", 0) + 1}
            self.running = False
        log(f"run done, state {json.dumps(self.state)}")

    def serve(self):
        self.beat()
        next_run = time.monotonic()
        while not self.stopping.is_set():
            if time.monotonic() >= next_run:
                self.run_once()
                next_run = time.monotonic() + self.run_every_s
                self.beat()  # the new state reaches hbagg at once
            self.stopping.wait(self.interval_ms / 1000)
            if not self.stopping.is_set():
                self.beat()
        self.leave("draining", "SIGTERM")
        # A run in hand finished inside run_once (signals only set the event): nothing more to wait for.
        self.leave("stopped", "SIGTERM")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connector-id", default=os.environ.get("CONNECTOR_ID"), help="the OpenCTI connector UUID (env CONNECTOR_ID)")
    p.add_argument("--worker", default=os.environ.get("HBAGG_WORKER", "opencti-connector-1"))
    p.add_argument("--url", default=os.environ.get("HBAGG_URL"), help="the daemon's HTTP interface, e.g. http://127.0.0.1:9470")
    p.add_argument("--nats", default=os.environ.get("HBAGG_NATS_URL"), help="beat over NATS instead, e.g. nats://127.0.0.1:4222")
    p.add_argument("--prefix", default=os.environ.get("HBAGG_SUBJECT_PREFIX", "hb"))
    p.add_argument("--interval-ms", type=int, default=int(os.environ.get("HBAGG_INTERVAL_MS", "5000")))
    p.add_argument("--run-every-s", type=float, default=60.0)
    args = p.parse_args()
    if not args.connector_id:
        p.error("--connector-id (or CONNECTOR_ID) is required")
    if bool(args.url) == bool(args.nats):
        p.error("give exactly one of --url and --nats")
    transport = NatsTransport(args.nats, args.prefix) if args.nats else HttpTransport(args.url, os.environ.get("HBAGG_HTTP_TOKEN"))
    c = Connector(transport, args.worker, args.connector_id, args.interval_ms, args.run_every_s)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: c.stopping.set())
    log(f"connector {args.connector_id} beating as {args.worker} via {'nats' if args.nats else 'http'}")
    c.serve()
    transport.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

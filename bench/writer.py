"""A steady-rate writer, run as its own process by harness.Writer: `writer.py JSON` where JSON holds the libpq
keywords (`dsn`), the `statement` and the `rate` per second. It prints `ready` once connected and warm, inserts
until its standard input closes, then prints its samples as JSON: [scheduled wall time, latency seconds]."""

from __future__ import annotations

import json
import sys
import threading
import time

import psycopg


def main() -> None:
    settings = json.loads(sys.argv[1])
    period = 1.0 / settings["rate"]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    samples = []
    with psycopg.connect(autocommit=True, **settings["dsn"]) as conn:
        conn.execute(settings["statement"])  # warm: connection, plan, relcache
        print("ready", flush=True)
        start = time.time()
        tick = 0
        while not stop.is_set():
            scheduled = start + tick * period
            delay = scheduled - time.time()
            if delay > 0:
                time.sleep(delay)
            conn.execute(settings["statement"])
            # Latency from the scheduled time, not from when the insert could be sent: a stalled writer's backlog
            # counts for every insert that should have happened meanwhile (no coordinated omission).
            samples.append((scheduled, time.time() - scheduled))
            tick += 1
    print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    main()

"""Benchmark target: THREADS threads asleep in `time.sleep` loops, and a main thread
that keeps busy, as in a server with a large thread pool.

    python sleepers.py THREADS [MAX_SECONDS]

Prints "ready" once every thread has started. Exits by itself after MAX_SECONDS
(default 900) so that it can never be left behind.
"""

import sys
import threading
import time

THREADS = int(sys.argv[1])
MAX_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 900.0


def sleeper():
    while True:
        time.sleep(0.5)


for _ in range(THREADS):
    thread = threading.Thread(target=sleeper)
    thread.daemon = True
    thread.start()
print("ready")
sys.stdout.flush()
deadline = time.time() + MAX_SECONDS
while time.time() < deadline:
    sum(range(1000))

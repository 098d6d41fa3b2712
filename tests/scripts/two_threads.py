# The 1:2:3 workload of ratio.py in two named threads at once.
# Usage: two_threads.py [UNIT_SECONDS] [ROUNDS]
import sys
import threading
import time


def burn(seconds):
    end = time.time() + seconds
    while time.time() < end:
        pass


def one(unit):
    burn(unit)


def two(unit):
    burn(2 * unit)


def three(unit):
    burn(3 * unit)


def workload(unit, rounds):
    for _ in range(rounds):
        one(unit)
        two(unit)
        three(unit)


unit = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
threads = [
    threading.Thread(target=workload, args=(unit, rounds), name=name)
    for name in ("worker-a", "worker-b")
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

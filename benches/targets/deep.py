"""Benchmark target: THREADS threads (the main thread included), each with exactly DEPTH
Python frames, spinning in the innermost one.

    python deep.py DEPTH THREADS [COUNTER_FILE|-] [MAX_SECONDS] [VARY] [PAUSE_MS] [DISTINCT]

Prints "ready" once every thread is at its full depth and spinning. With COUNTER_FILE,
thread i adds 1 to the i-th native-endian u64 of that file (which it creates, 8 bytes
per thread) after each batch of work, so that another process can read the target's
work rate at any moment, without waiting for the GIL: the rate with and without a
profiler attached gives the slowdown the profiler causes.
Exits by itself after MAX_SECONDS (default 900) so that it can never be left behind.
With VARY > 0 (at most 4), each batch of work runs in a chain of 0 to VARY further
functions, a different length from one batch to the next: the top of every stack keeps
changing, as in a real program, instead of spinning in place. With PAUSE_MS > 0, each
batch ends with a sleep of that many milliseconds in its innermost frame: a mostly idle
target, for long runs that share the machine with other measurements. With DISTINCT = 1,
the frames that make up the depth run functions of their own, each of its own size and
compiled as its own file, instead of all one recursive function: their code objects lie
apart in memory, as those of a real program's modules do.
"""

import mmap
import os
import sys
import threading
import time

DEPTH = int(sys.argv[1])
THREADS = int(sys.argv[2])
COUNTER_FILE = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
MAX_SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 900.0
VARY = int(sys.argv[5]) if len(sys.argv) > 5 else 0
PAUSE = float(sys.argv[6]) / 1000 if len(sys.argv) > 6 else 0.0
DISTINCT = len(sys.argv) > 7 and sys.argv[7] == "1"

if COUNTER_FILE:
    with open(COUNTER_FILE, "wb") as f:
        f.write(bytes(8 * THREADS))
    with open(COUNTER_FILE, "r+b") as f:
        shared = mmap.mmap(f.fileno(), 8 * THREADS)
    counts = memoryview(shared).cast("Q")
else:
    counts = [0] * THREADS
arrived = [False] * THREADS
go = False
deadline = time.monotonic() + MAX_SECONDS


def work(n):
    for _ in range(n):
        pass
    if PAUSE:
        time.sleep(PAUSE)


def work_b(n):
    work(n)


def work_c(n):
    work_b(n)


def work_d(n):
    work_c(n)


# Chains of 1 to 4 frames, each ending in `work`.
CHAINS = [work, work_b, work_c, work_d]


def spin(index):
    global go
    arrived[index] = True
    if index == 0:
        while not all(arrived):
            time.sleep(0.001)
        go = True
        print("ready", flush=True)
    else:
        while not go:
            time.sleep(0.001)
    batches = 0
    while True:
        # 0 to VARY extra frames, in an order that is not periodic at any small period.
        extra = (batches * 7 + batches // 5) % (VARY + 1) if VARY else 0
        if extra:
            CHAINS[extra - 1](200)
        else:
            for _ in range(200):
                pass
            if PAUSE:
                time.sleep(PAUSE)
        counts[index] += 1
        batches += 1
        if index == 0 and batches % 1000 == 0 and time.monotonic() > deadline:
            os._exit(0)


def descend(levels, index):
    """Adds `levels` frames (this one included), then spins in the last."""
    if levels > 1:
        descend(levels - 1, index)
    else:
        spin(index)


def distinct_levels(levels):
    """`descend` as `levels` functions of their own (`level_0`, the outermost, to
    `level_{levels-1}`, which calls `spin`), of different sizes, each compiled as its own
    file, so that the allocator puts their code objects apart."""
    namespace = {"spin": spin}
    call = "spin(index)"
    for k in reversed(range(levels)):
        padding = "".join("    x%d = %d\n" % (j, j) for j in range(3 * k))
        source = "def level_%d(levels, index):\n%s    %s\n" % (k, padding, call)
        exec(compile(source, "level_%d.py" % k, "exec"), namespace)
        call = "level_%d(levels, index)" % k
    return namespace["level_0"]


def outermost(levels):
    """The function that adds `levels` frames, given (levels, thread index)."""
    return distinct_levels(levels) if DISTINCT else descend


# Frames besides `descend`'s: spin adds 1; a worker thread has threading's _bootstrap,
# _bootstrap_inner and run (3); the main thread has <module> (1).
worker = outermost(DEPTH - 4)
for i in range(1, THREADS):
    threading.Thread(target=worker, args=(DEPTH - 4, i), daemon=True).start()
outermost(DEPTH - 2)(DEPTH - 2, 0)

#!/usr/bin/env python3
"""What each output format of `pyscry record` costs while recording, and its size.

    python3 benches/formats.py [--python PATH] [--threads 1,21] [--rate 1000]
                               [--seconds 4] [--repeats 4]

Builds pyscry in release mode, starts benches/targets/deep.py (depth 30, THREADS
threads spinning in the innermost frame), and attaches `pyscry record --pid` to it once
per format and repeat, the formats interleaved within each repeat. Prints, per format,
pyscry's CPU time (utime + stime, from wait4) over its ticks, whole run (attach
included), median and every run, and the size of the last output file. The formats
differ only in what the aggregating thread does with each sample: count it (svg, txt,
pprof, written at the end) or also stream it to the file (pyscry).
"""

import argparse
import os
import statistics
import tempfile

from recording import DEFAULT_PYTHON, build, record, start_target

FORMATS = ["svg", "txt", "pb.gz", "pyscry"]


def cost(pid, rate, seconds, path):
    """CPU microseconds per tick of one recording of `pid` into `path`."""
    cpu, ticks = record(pid, rate, seconds, path)
    return 1e6 * cpu / ticks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=DEFAULT_PYTHON)
    parser.add_argument("--threads", default="1,21")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    build()
    out_dir = tempfile.mkdtemp(prefix="pyscry-formats-")
    for threads in args.threads.split(","):
        target = start_target(args.python, 30, threads)
        try:
            costs = {fmt: [] for fmt in FORMATS}
            for _ in range(args.repeats):
                for fmt in FORMATS:
                    path = os.path.join(out_dir, "out." + fmt)
                    costs[fmt].append(cost(target.pid, args.rate, args.seconds, path))
        finally:
            target.kill()
            target.wait()
        print("deep.py 30 %s, %d Hz, %.0f s, %s" % (threads, args.rate, args.seconds,
                                                   args.python))
        print("| format | CPU µs/tick (median) | runs | file size (bytes) |")
        print("|---|---:|---|---:|")
        for fmt in FORMATS:
            size = os.path.getsize(os.path.join(out_dir, "out." + fmt))
            runs = ", ".join("%.1f" % c for c in costs[fmt])
            print("| %s | %.1f | %s | %d |" % (fmt, statistics.median(costs[fmt]), runs,
                                              size))
        print()


if __name__ == "__main__":
    main()

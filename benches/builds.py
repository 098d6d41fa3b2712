#!/usr/bin/env python3
"""Two or more pyscry builds against the same live targets, runs interleaved.

    python3 benches/builds.py BINARY BINARY... [--python PATH] [--threads 1] [--distinct]
                              [--rates 100,1000] [--short 1] [--long 4] [--repeats 5]
                              [--options="--native ..."]

The machine's speed drifts within minutes (see docs/performance.md, "The machine's
floor"), so a change is judged by running the builds alternately: for each repeat and
rate, each build records benches/targets/deep.py (depth 30, THREADS threads; with
--distinct, each frame a function of its own, as in a real program, instead of one
recursive function) for SHORT and for LONG seconds, in a random order. Prints each build's marginal CPU per tick,
(CPU of the long run - CPU of the short run) / (extra ticks), so that attach and
start-up cancel out, as a median with every repeat's value. OPTIONS are passed to
every `record` (e.g. `--native`, `--blocking`).
"""

import argparse
import os
import random
import statistics
import tempfile

from recording import DEFAULT_PYTHON, record, start_target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--python", default=DEFAULT_PYTHON)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--distinct", action="store_true",
                        help="frames of distinct functions (deep.py's DISTINCT)")
    parser.add_argument("--rates", default="100,1000")
    parser.add_argument("--short", type=float, default=1)
    parser.add_argument("--long", type=float, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--options", default="", help="further options of record")
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    out = os.path.join(tempfile.mkdtemp(prefix="pyscry-builds-"), "out.txt")
    target = start_target(args.python, 30, args.threads, args.distinct)
    marginal = {(binary, rate): [] for binary in args.binaries for rate in rates}
    try:
        for _ in range(args.repeats):
            for rate in rates:
                runs = [(binary, seconds) for binary in args.binaries
                        for seconds in (args.short, args.long)]
                random.shuffle(runs)
                measured = {run: record(target.pid, rate, run[1], out, run[0],
                                        args.options.split())
                            for run in runs}
                for binary in args.binaries:
                    short_cpu, short_ticks = measured[(binary, args.short)]
                    long_cpu, long_ticks = measured[(binary, args.long)]
                    per_tick = 1e6 * (long_cpu - short_cpu) / (long_ticks - short_ticks)
                    marginal[(binary, rate)].append(per_tick)
    finally:
        target.kill()
        target.wait()
    print("deep.py 30 %d%s, %s; short %.0f s, long %.0f s, %d repeats; record %s" % (
        args.threads, " (distinct functions)" if args.distinct else "", args.python,
        args.short, args.long, args.repeats, args.options))
    print("| build | rate (Hz) | marginal CPU µs/tick (median) | repeats |")
    print("|---|---:|---:|---|")
    for rate in rates:
        for binary in args.binaries:
            values = marginal[(binary, rate)]
            print("| %s | %d | %.1f | %s |" % (binary, rate, statistics.median(values),
                                              ", ".join("%.1f" % v for v in values)))


if __name__ == "__main__":
    main()

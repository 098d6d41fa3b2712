#!/usr/bin/env python3
"""How close non-blocking samples of a fast-changing stack come to exact ones.

    python3 benches/consistency.py [--pyscry PATH] PYTHON...

For each interpreter, records two workloads at 1 kHz, without and with `--blocking`
(threads paused while read: exact stacks), and prints the share of samples by
innermost function as markdown rows (docs/performance.md, "Consistency under a
changing stack"):

- `tests/scripts/call_churn.py 2 100`: a call about every microsecond; `leaf` does the
  work, `one` and `two` only call on.
- `benches/targets/deep.py 30 1 - 3 4` (3 s): 30 frames, the top 0-4 changing every
  few microseconds; `work` does the work under chains `work_d` > `work_c` > `work_b` >
  `work`. Also the share of samples dropped as torn and of "impossible" stacks (a
  chain of `work*` frames this program never makes).
"""

import argparse
import collections
import os
import re
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHURN = os.path.join(ROOT, "tests", "scripts", "call_churn.py")
DEEP = os.path.join(ROOT, "benches", "targets", "deep.py")
CHAINS = [("work",), ("work_b", "work"), ("work_c", "work_b", "work"),
          ("work_d", "work_c", "work_b", "work")]
# What deep.py's `spin` can have above it: a chain, or the start of one being called.
POSSIBLE = {chain[:i] for chain in CHAINS for i in range(len(chain) + 1)}


def record(pyscry, python, script_args, blocking):
    """Collapsed stacks (list of (function names, count)) and the dropped share."""
    fd, out = tempfile.mkstemp(suffix=".txt")
    os.close(fd)
    try:
        command = [pyscry, "record", "--rate", "1000", "--format", "collapsed", "-o", out]
        if blocking:
            command.append("--blocking")
        run = subprocess.run(command + ["--", python] + script_args,
                             capture_output=True, text=True, check=True)
        with open(out) as f:
            stacks = []
            for line in f:
                stack, count = line.rsplit(" ", 1)
                names = [frame.split(" ")[0] for frame in stack.split(";")]
                stacks.append((names, int(count)))
    finally:
        os.unlink(out)
    summary = re.search(r"(\d+) ticks, \d+ samples, (\d+) errors", run.stderr)
    ticks, errors = (int(n) for n in summary.groups())
    return stacks, 100.0 * errors / max(ticks, 1)


def shares(stacks, under, names):
    """Percent of the samples with `under` on the stack whose innermost is each name."""
    innermost = collections.Counter()
    total = 0
    for frames, count in stacks:
        if under in frames:
            innermost[frames[-1]] += count
            total += count
    return [100.0 * innermost[name] / max(total, 1) for name in names], total


def impossible(stacks):
    total = bad = 0
    for frames, count in stacks:
        if "spin" in frames:
            total += count
            if tuple(frames[frames.index("spin") + 1:]) not in POSSIBLE:
                bad += count
    return 100.0 * bad / max(total, 1)


def header(workload, columns):
    print("%s\n\n| interpreter | mode | %s |" % (workload, " | ".join(columns)))
    print("|---|---|%s" % ("---:|" * len(columns)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyscry", default=os.path.join(ROOT, "target", "release", "pyscry"))
    parser.add_argument("pythons", nargs="+")
    args = parser.parse_args()
    churn_names = ["leaf", "one", "two", "main"]
    deep_names = ["work", "spin", "work_b", "work_c", "work_d"]
    header("call_churn.py 2 100", churn_names)
    for python in args.pythons:
        for blocking in (False, True):
            stacks, _ = record(args.pyscry, python, [CHURN, "2", "100"], blocking)
            values, _ = shares(stacks, "main", churn_names)
            print("| %s | %s | %s |" % (python, "--blocking" if blocking else "non-blocking",
                                        " | ".join("%.1f %%" % v for v in values)))
    print()
    header("deep.py 30 1 - 3 4", deep_names + ["dropped", "impossible"])
    for python in args.pythons:
        for blocking in (False, True):
            stacks, dropped = record(args.pyscry, python,
                                     [DEEP, "30", "1", "-", "3", "4"], blocking)
            values, _ = shares(stacks, "spin", deep_names)
            print("| %s | %s | %s | %.1f %% | %.1f %% |" % (
                python, "--blocking" if blocking else "non-blocking",
                " | ".join("%.1f %%" % v for v in values), dropped, impossible(stacks)))


if __name__ == "__main__":
    main()

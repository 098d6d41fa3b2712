"""What the small benchmark scripts share: a target to attach to, and one recording."""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYSCRY = os.path.join(ROOT, "target/release/pyscry")
DEFAULT_PYTHON = os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python")


def build():
    """Build pyscry in release mode, as the scripts measure it."""
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def start_target(python, depth, threads, distinct=False):
    """benches/targets/deep.py with `threads` threads of `depth` frames, once it spins;
    with `distinct`, frames of distinct functions (deep.py's DISTINCT)."""
    extra = ["-", "900", "0", "0", "1"] if distinct else []
    target = subprocess.Popen(
        [python, os.path.join(ROOT, "benches/targets/deep.py"), str(depth), str(threads),
         *extra],
        stdout=subprocess.DEVNULL)
    time.sleep(1.5)
    return target


def record(pid, rate, seconds, path, binary=PYSCRY, options=()):
    """CPU seconds (utime + stime, from wait4) and ticks of one recording of `pid`,
    with further `options` of `record`."""
    command = [binary, "record", "--pid", str(pid), "-r", str(rate), "-d", str(seconds),
               "-o", path, *options]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        sys.exit("pyscry failed: " + stderr)
    # "pyscry: wrote PATH (N ticks, ...": the sampler's own tick count.
    ticks = int(stderr.split(" (", 1)[1].split(" ticks", 1)[0])
    return usage.ru_utime + usage.ru_stime, ticks

#!/usr/bin/env python3
"""End-to-end comparison of pyscry and py-spy attached to live CPython targets.

    python3 benches/e2e.py [--repeats 3] [--python PATH] [--no-pyspy]

Builds pyscry in release mode, installs py-spy from PyPI into a throwaway venv under
/tmp (its columns are skipped, with a note, when that fails; the project never depends
on it), then, for each workload (benches/targets/deep.py: depth 30, depth 300, 21
threads x depth 30, all spinning in the innermost frame; and depth 30 whose top 0 to 4
frames change all the time), attaches each profiler
(pyscry non-blocking; py-spy --nonblocking; py-spy's default, which pauses the target
at each sample) at 100 Hz, 1 kHz and 10 kHz, and prints:

- CPU us/tick: the profiler's CPU time (utime + stime of the child, from wait4) for a
  LONG run minus that of a SHORT run, divided by the extra ticks: start-up cost
  (symbol tables, attaching) cancels out;
- achieved Hz: extra ticks of the long run over the short one / extra wall time (pyscry:
  its own tick count; py-spy: samples / threads, sampled with --idle so that every
  thread counts at every tick). py-spy is stopped with SIGINT after the run's wall
  time: its --duration counts rate x duration samples, however long they take;
- slowdown: the target's work rate (batches per second, read from a shared counter file
  with no help from the target's GIL) while the profiler runs, against the second just
  before it was started;
- peak RSS: the profiler's VmHWM over the long run (polled every 20 ms);

each the median of --repeats repeats, and the pyscry / py-spy ratios. A last section
records 20 s (--memory-run S) at 1 kHz of depth 30 whose top changes and reports the
profilers' resident memory over time; its target sleeps 1 ms after each batch of work
(mostly idle, so that a long run, --memory-only --memory-run 3600 --no-pyspy for an
hour, leaves the machine to other measurements; wall mode samples it all the same).
--paired-slowdown N measures only the target's slowdown, finer than single runs can:
N pairs of 50 ms windows with and without each profiler (and, as a control, with
nothing in either), at each rate, with the two sharing the CPUs and on separate ones.
--floor measures only how far pyscry is above the machine's floor: on the one-thread
workloads, pyscry's CPU per tick (marginal, as above) against that of a C loop
(benches/floor.c, built with gcc) that sleeps to each tick and makes the very
process_vm_readv call a pyscry tick makes (regions taken from strace), and against
sleeping alone.

Every child gets PR_SET_PDEATHSIG(SIGKILL) and is killed on exit or on a signal; the
targets also exit by themselves after a while: no process is ever left behind.
"""

import argparse
import collections
import ctypes
import datetime
import os
import platform
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SCRIPT = ROOT / "benches" / "targets" / "deep.py"
PYSCRY = ROOT / "target" / "release" / "pyscry"
VENV = Path("/tmp/pyscry-e2e-pyspy")
# (label, depth, threads, vary): see benches/targets/deep.py.
WORKLOADS = [
    ("depth 30", 30, 1, 0),
    ("depth 300", 300, 1, 0),
    ("21 thr x depth 30", 30, 21, 0),
    ("depth 30, top 0-4 changing", 30, 1, 4),
]
RATES = [100, 1000, 10000]
SHORT, LONG = 1, 3  # seconds (py-spy takes whole seconds)
BASELINE = 1.0  # seconds of unprofiled target just before each long run
MEMORY_RUN = 20  # seconds of the memory-over-time run
TARGET_LIFETIME = 900  # seconds after which a target exits by itself

children = []  # every Popen still possibly alive


def die_with_parent():
    """preexec_fn: have the kernel kill the child if this script dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(argv, cpus=None, **kwargs):
    """Start a child that dies with this script, on `cpus` if given (its threads too)."""
    def setup():
        die_with_parent()
        if cpus:
            os.sched_setaffinity(0, cpus)
    proc = subprocess.Popen(argv, preexec_fn=setup, **kwargs)
    children.append(proc)
    return proc


def kill(proc):
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()
    if proc in children:
        children.remove(proc)


def kill_all(*_):
    for proc in list(children):
        kill(proc)


def on_signal(signum, _frame):
    kill_all()
    sys.exit(128 + signum)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# --- targets -------------------------------------------------------------------------


class Target:
    """A running deep.py with a counter file the profilers cannot disturb."""

    def __init__(self, python, depth, threads, workdir, vary=0, pause_ms=0, lifetime=None):
        self.threads = threads
        self.counter = Path(workdir) / f"counter-{depth}-{threads}-{time.monotonic_ns()}"
        self.proc = spawn(
            [python, str(TARGET_SCRIPT), str(depth), str(threads), str(self.counter),
             str(lifetime or TARGET_LIFETIME), str(vary), str(pause_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            kill(self.proc)
            raise RuntimeError(f"target did not start (said {line!r})")
        self.pid = self.proc.pid
        self.file = open(self.counter, "rb")

    def count(self):
        self.file.seek(0)
        return sum(struct.unpack(f"{self.threads}Q", self.file.read(8 * self.threads)))

    def rate_over(self, seconds):
        """Work rate measured over the next `seconds`."""
        t0, c0 = time.monotonic(), self.count()
        time.sleep(seconds)
        t1, c1 = time.monotonic(), self.count()
        return (c1 - c0) / (t1 - t0)

    def close(self):
        self.file.close()
        kill(self.proc)
        self.counter.unlink(missing_ok=True)


# --- profilers -----------------------------------------------------------------------


class Profiler:
    name = ""
    # Stopped with SIGINT after the wall time asked for, rather than by --duration.
    interrupt = False

    def command(self, pid, rate, seconds, output):
        raise NotImplementedError

    def ticks(self, stderr, output, threads):
        raise NotImplementedError


class Pyscry(Profiler):
    name = "pyscry"

    def command(self, pid, rate, seconds, output):
        return [str(PYSCRY), "record", "--pid", str(pid), "--rate", str(rate),
                "--duration", str(seconds), "-f", "collapsed", "-o", output]

    def ticks(self, stderr, output, threads):
        found = re.search(r"\((\d+) ticks,", stderr)
        if not found:
            raise RuntimeError(f"no tick count in pyscry's output:\n{stderr}")
        return int(found.group(1))


class PySpy(Profiler):
    def __init__(self, binary, blocking):
        self.binary = binary
        self.blocking = blocking
        self.name = "py-spy" if blocking else "py-spy nb"
        # py-spy's --duration means rate x duration samples, however long they take
        # (minutes when it cannot keep up); on SIGINT it writes what it has and exits.
        self.interrupt = True

    def command(self, pid, rate, seconds, output):
        argv = [self.binary, "record", "--pid", str(pid), "--rate", str(rate),
                "--idle", "-f", "raw", "-o", output]
        return argv if self.blocking else argv + ["--nonblocking"]

    def ticks(self, stderr, output, threads):
        # One line per distinct stack, its count last; every thread is in every sample.
        total = 0
        with open(output) as f:
            for line in f:
                total += int(line.rsplit(" ", 1)[1])
        return total / threads


def run_profiler(profiler, target, rate, seconds, workdir, watch_rss=False):
    """Run one recording to its end: CPU seconds, ticks, peak RSS (KiB), the target's
    work rate while sampling ran (runs of 2 s or more), and RSS over time if asked.

    Peak RSS is polled from VmHWM every 20 ms: wait4's ru_maxrss cannot be used, as a
    forked child inherits its parent's (this script's) high-water mark across exec."""
    output = os.path.join(workdir, f"out-{profiler.name.replace(' ', '_')}")
    err_path = os.path.join(workdir, "stderr")
    with open(err_path, "w") as err:
        start = time.monotonic()
        proc = spawn(profiler.command(target.pid, rate, seconds, output),
                     stdout=subprocess.DEVNULL, stderr=err)
        hwm, series, first, last, interrupted = 0, [], None, None, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            now = time.monotonic()
            if pid:
                break
            hwm = max(hwm, status_kb(proc.pid, "VmHWM") or 0)
            if watch_rss and (not series or now - start - series[-1][0] >= 0.5):
                series.append((now - start, status_kb(proc.pid, "VmRSS")))
            # The target's rate while sampling runs: skip attaching, stop before the end.
            if seconds >= 2 and first is None and now - start >= 0.5:
                first = (now, target.count())
            if seconds >= 2 and last is None and now - start >= seconds - 0.2:
                last = (now, target.count())
            if profiler.interrupt and not interrupted and now - start >= seconds:
                proc.send_signal(signal.SIGINT)
                interrupted = True
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        children.remove(proc)
    stderr = Path(err_path).read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{profiler.name} exited with {proc.returncode}:\n{stderr}")
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "wall": now - start,
        "ticks": profiler.ticks(stderr, output, target.threads),
        "rss": hwm,
        "work": (last[1] - first[1]) / (last[0] - first[0]) if first and last else None,
        "rss_over_time": [(t, r) for t, r in series if r is not None],
    }


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# --- set-up --------------------------------------------------------------------------


def find_python(requested):
    candidates = [requested] if requested else [
        "/root/.pyenv/versions/3.11.7/bin/python", "/usr/bin/python3.11",
        shutil.which("python3.11"), shutil.which("python3")]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            return candidate
    sys.exit("no Python found for the targets; pass --python")


def python_version(python):
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def build_pyscry():
    log("building pyscry (release)...")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def install_pyspy():
    """The py-spy binary in a throwaway venv, or None with the reason."""
    binary = VENV / "bin" / "py-spy"
    if binary.exists():
        return str(binary), None
    log(f"installing py-spy into {VENV}...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                       capture_output=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "py-spy"],
                       check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as e:
        return None, f"py-spy could not be installed ({e}); its columns are skipped"
    return str(binary), None


def pyspy_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return out.strip()


# --- measuring -----------------------------------------------------------------------


def measure(profilers, python, repeats, workdir):
    """results[workload][profiler][rate] = dict of medians."""
    results = {}
    for label, depth, threads, vary in WORKLOADS:
        results[label] = {}
        for profiler in profilers:
            log(f"{label}: {profiler.name}")
            target = Target(python, depth, threads, workdir, vary)
            try:
                per_rate = {}
                for rate in RATES:
                    cpu_per_tick, achieved, slowdown, rss, cpu_total, wall = [], [], [], [], [], []
                    for _ in range(repeats):
                        short = run_profiler(profiler, target, rate, SHORT, workdir)
                        base = target.rate_over(BASELINE)
                        long = run_profiler(profiler, target, rate, LONG, workdir)
                        extra = long["ticks"] - short["ticks"]
                        if extra > 0:
                            cpu_per_tick.append(marginal_cpu(short, long))
                        cpu_total.append(long["cpu"] / max(long["ticks"], 1) * 1e6)
                        # Extra ticks over extra wall time: start-up cancels out.
                        achieved.append(extra / (long["wall"] - short["wall"]))
                        wall.append(long["wall"])
                        if long["work"] is not None:
                            slowdown.append(100.0 * (1.0 - long["work"] / base))
                        rss.append(long["rss"])
                    per_rate[rate] = {
                        "cpu_per_tick": median(cpu_per_tick),
                        "cpu_per_tick_all": median(cpu_total),
                        "achieved": median(achieved),
                        "slowdown": median(slowdown),
                        "rss": median(rss),
                        "wall": median(wall),
                    }
                    log(f"  {rate:>5} Hz: {fmt_row(per_rate[rate], threads)}")
                results[label][profiler.name] = per_rate
            finally:
                target.close()
    return results


def marginal_cpu(short, long):
    """CPU µs per tick of the ticks `long` made beyond `short`: start-up cancels out."""
    return (long["cpu"] - short["cpu"]) / (long["ticks"] - short["ticks"]) * 1e6


PAIRED_WINDOW = 0.05  # seconds of each window of the paired slowdown run
PAIRED_SETTLE = 0.01  # seconds between starting or stopping the profiler and a window
PAIRED_TRIM = 0.1  # share of pairs cut at each end for the trimmed mean
BOOTSTRAP = 1000  # resamples for the confidence interval


def paired_slowdown(profiler, python, pairs, workdir, separate_cpus):
    """The target's slowdown under `profiler` (None: under nothing, the method's own
    zero) at each rate, resolved below the noise of single runs.

    The host's speed here changes by up to 1.8x from one second to the next, so windows
    with and without the profiler must be short and interleaved: one recording runs for
    the whole measurement and is stopped and continued (SIGSTOP, SIGCONT: the profiler,
    never the target, which a non-blocking profiler does not pause) around PAIRS pairs
    of PAIRED_WINDOW windows, in random order within each pair. With `separate_cpus`,
    the target runs on CPU 1 and the profiler on CPU 0, so that what is measured is the
    profiler's interference (memory, page tables, locks), not the two sharing a CPU.
    Per rate: the trimmed mean of the per-pair slowdowns (percent) with a bootstrap 95 %
    interval, and the median."""
    out = {}
    order = random.Random(0)
    target = Target(python, 30, 1, workdir)
    try:
        if separate_cpus:
            pin(target.pid, {1})
        for rate in RATES:
            name = profiler.name if profiler else "nothing"
            log(f"paired slowdown, {pairs} pairs of {PAIRED_WINDOW} s, "
                f"{'separate CPUs' if separate_cpus else 'CPUs shared'}: {name} at {rate} Hz")
            proc = None
            if profiler:
                output = os.path.join(workdir, "paired-out")
                proc = spawn(profiler.command(target.pid, rate, TARGET_LIFETIME, output),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cpus={0} if separate_cpus else None)
                time.sleep(2)  # attached and sampling
                proc.send_signal(signal.SIGSTOP)
            slowdowns = []
            try:
                for _ in range(pairs):
                    rates = {}
                    for attached in order.sample([False, True], 2):
                        if attached and proc:
                            proc.send_signal(signal.SIGCONT)
                        time.sleep(PAIRED_SETTLE)
                        rates[attached] = target.rate_over(PAIRED_WINDOW)
                        if attached and proc:
                            proc.send_signal(signal.SIGSTOP)
                    slowdowns.append(100 * (1 - rates[True] / rates[False]))
            finally:
                if proc:
                    proc.send_signal(signal.SIGCONT)
                    kill(proc)
            resampled = random.Random(1)
            trimmed = sorted(trimmed_mean([resampled.choice(slowdowns) for _ in slowdowns])
                             for _ in range(BOOTSTRAP))
            out[rate] = {"trimmed": trimmed_mean(slowdowns),
                         "low": trimmed[int(BOOTSTRAP * 0.025)],
                         "high": trimmed[int(BOOTSTRAP * 0.975) - 1],
                         "median": statistics.median(slowdowns),
                         "pairs": len(slowdowns)}
    finally:
        target.close()
    return out


def trimmed_mean(values):
    """The mean of `values` without the PAIRED_TRIM share at each end: pairs that
    straddle a change in the host's speed say nothing about the profiler."""
    values = sorted(values)
    cut = int(len(values) * PAIRED_TRIM)
    return statistics.mean(values[cut:len(values) - cut])


def pin(pid, cpus):
    """Run every thread of `pid` on `cpus` only."""
    for task in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(task), cpus)


FLOOR_SOURCE = ROOT / "benches" / "floor.c"


def floor_tools(workdir):
    """The floor program, built into `workdir`, or None with the reason."""
    for tool in ("gcc", "strace"):
        if not shutil.which(tool):
            return None, f"floor: {tool} not found; the floor comparison is skipped"
    binary = os.path.join(workdir, "floor")
    built = subprocess.run(["gcc", "-O2", "-o", binary, str(FLOOR_SOURCE)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        return None, f"floor: building {FLOOR_SOURCE.name} failed:\n{built.stderr}"
    return binary, None


def tick_regions(target, workdir):
    """The regions of the target one pyscry tick reads, as floor.c takes them
    (`ADDR+LEN,...`): those of the most frequent process_vm_readv call of a short
    recording (in a steady state, each tick's batch reads the same regions)."""
    trace = os.path.join(workdir, "strace")
    subprocess.run(["strace", "-f", "-s", "64", "-e", "trace=process_vm_readv", "-o", trace]
                   + Pyscry().command(target.pid, 1000, 1, os.path.join(workdir, "out")),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    calls = [line for line in Path(trace).read_text().splitlines()
             if "process_vm_readv(" in line and "iov_base=0x" in line]
    if not calls:
        raise RuntimeError("no process_vm_readv call found in the trace of pyscry")
    batches = collections.Counter(
        tuple(re.findall(r"iov_base=0x([0-9a-f]+), iov_len=(\d+)", call)) for call in calls)
    remote = batches.most_common(1)[0][0]
    return ",".join(f"{address}+{length}" for address, length in remote), len(remote)


def floor_cpu(binary, target, rate, seconds, regions):
    """CPU µs per tick of floor.c at `rate` (its own getrusage, like wait4's): reading
    `regions` each tick, or only sleeping if None."""
    out = subprocess.run([binary, str(rate), str(seconds), str(target.pid), "0",
                          regions or "0", "0"], capture_output=True, text=True, check=True)
    return float(re.search(r": ([\d.]+) us CPU per tick", out.stdout).group(1))


def floor_comparison(binary, python, repeats, workdir):
    """rows[(workload, rate)] = medians of pyscry's marginal CPU per tick, floor.c's with
    the same reads, and floor.c's sleeping alone; all runs interleaved."""
    rows = {}
    for label, depth, threads, vary in WORKLOADS:
        if threads != 1:
            continue  # floor.c does not read the /proc files of waiting threads
        target = Target(python, depth, threads, workdir, vary)
        try:
            regions, pieces = tick_regions(target, workdir)
            for rate in RATES:
                log(f"floor: {label} at {rate} Hz ({pieces} pieces)")
                pyscry, same, sleep = [], [], []
                for _ in range(repeats):
                    short = run_profiler(Pyscry(), target, rate, SHORT, workdir)
                    long = run_profiler(Pyscry(), target, rate, LONG, workdir)
                    if long["ticks"] > short["ticks"]:
                        pyscry.append(marginal_cpu(short, long))
                    same.append(floor_cpu(binary, target, rate, LONG, regions))
                    sleep.append(floor_cpu(binary, target, rate, LONG, None))
                rows[label, rate] = {"pyscry": median(pyscry), "same": median(same),
                                     "sleep": median(sleep), "pieces": pieces}
        finally:
            target.close()
    return rows


MEMORY_POINTS = [2, 10, 60, 600]  # seconds at which the memory run reports VmRSS


def memory_over_time(profilers, python, workdir):
    """RSS of each profiler over a MEMORY_RUN-second recording at 1 kHz, depth 30 with a
    changing top (more distinct stacks than a still one), mostly idle."""
    out = {}
    for profiler in profilers:
        log(f"memory over {MEMORY_RUN} s: {profiler.name}")
        target = Target(python, 30, 1, workdir, vary=4, pause_ms=1, lifetime=MEMORY_RUN + 120)
        try:
            run = run_profiler(profiler, target, 1000, MEMORY_RUN, workdir, watch_rss=True)
        finally:
            target.close()
        series = run["rss_over_time"]

        def at(seconds):
            return min(series, key=lambda p: abs(p[0] - seconds))[1] if series else None

        points = {f"{s} s": at(s) for s in MEMORY_POINTS if s < MEMORY_RUN}
        out[profiler.name] = {**points, "end": at(MEMORY_RUN - 0.5), "peak": run["rss"],
                              "ticks": run["ticks"]}
    return out


def median(values):
    return statistics.median(values) if values else None


def fmt_row(r, threads):
    return (f"{fmt(r['cpu_per_tick'], 1)} us/tick ({fmt(per_thread(r, threads), 1)} per "
            f"thread), {fmt(r['achieved'], 0)} Hz, slowdown {fmt(r['slowdown'], 1)} %, "
            f"RSS {r['rss'] / 1024:.1f} MiB")


def per_thread(r, threads):
    return None if r["cpu_per_tick"] is None else r["cpu_per_tick"] / threads


def fmt(value, digits):
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


# --- report --------------------------------------------------------------------------


def cpu_tables(results, names, threads_of):
    """The per-tick table and, with py-spy, the ratio table."""
    lines = ["", "| workload | rate (Hz) | profiler | CPU µs/tick (marginal) | "
             "µs/tick/thread | CPU µs/tick (whole run) | achieved Hz | target slowdown | "
             f"peak RSS (MiB) | wall s of the {LONG} s run |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, by_profiler in results.items():
        for rate in RATES:
            for name in names:
                r = by_profiler.get(name, {}).get(rate)
                if r is None:
                    continue
                lines.append(
                    f"| {label} | {rate} | {name} | {fmt(r['cpu_per_tick'], 1)} | "
                    f"{fmt(per_thread(r, threads_of[label]), 2)} | "
                    f"{fmt(r['cpu_per_tick_all'], 1)} | {fmt(r['achieved'], 0)} | "
                    f"{fmt(r['slowdown'], 1)} % | {r['rss'] / 1024:.1f} | {r['wall']:.1f} |")
    if "py-spy nb" in names:
        lines += ["", "pyscry / py-spy ratios (below 1: pyscry uses less; slowdown is "
                  "against py-spy --nonblocking and py-spy's default blocking mode):", "",
                  "| workload | rate (Hz) | CPU/tick vs nb | achieved Hz vs nb | "
                  "peak RSS vs nb | slowdown pyscry / nb / blocking |",
                  "|---|---:|---:|---:|---:|---|"]
        for label, by_profiler in results.items():
            for rate in RATES:
                a = by_profiler.get("pyscry", {}).get(rate)
                b = by_profiler.get("py-spy nb", {}).get(rate)
                c = by_profiler.get("py-spy", {}).get(rate)
                if a is None or b is None:
                    continue
                blocking = fmt(c["slowdown"], 1) if c else "n/a"
                lines.append(
                    f"| {label} | {rate} | {ratio(a['cpu_per_tick'], b['cpu_per_tick'])} | "
                    f"{ratio(a['achieved'], b['achieved'])} | {ratio(a['rss'], b['rss'])} | "
                    f"{fmt(a['slowdown'], 1)} % / {fmt(b['slowdown'], 1)} % / {blocking} % |")
    return lines


def report(results, memory, paired, floor, names, header):
    lines = header[:]
    threads_of = {label: threads for label, _, threads, _ in WORKLOADS}
    if results:
        lines += cpu_tables(results, names, threads_of)
    if floor:
        lines += ["", "pyscry against the machine's floor: CPU µs per tick of pyscry "
                  "(marginal), of a C loop making the same process_vm_readv call each tick, "
                  "and of the same loop only sleeping (medians):", "",
                  "| workload | rate (Hz) | pieces read | pyscry | same reads from C | "
                  "sleeping only | pyscry above the same reads |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for (label, rate), r in floor.items():
            above = r["pyscry"] - r["same"] if r["pyscry"] is not None else None
            lines.append(f"| {label} | {rate} | {r['pieces']} | {fmt(r['pyscry'], 1)} | "
                         f"{r['same']:.1f} | {r['sleep']:.1f} | {fmt(above, 1)} |")
    if paired:
        lines += ["", f"Target slowdown, depth 30, from pairs of {PAIRED_WINDOW} s windows "
                  "with and without the profiler (percent; trimmed mean of the pairs, "
                  f"{PAIRED_TRIM:.0%} cut at each end, and its bootstrap 95 % interval):", "",
                  "| profiler | CPUs | rate (Hz) | slowdown | 95 % interval | median | pairs |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for (name, placement), by_rate in paired.items():
            for rate, r in by_rate.items():
                lines.append(f"| {name} | {placement} | {rate} | {r['trimmed']:.2f} | "
                             f"{r['low']:.2f} to {r['high']:.2f} | {r['median']:.2f} | "
                             f"{r['pairs']} |")
    if memory:
        points = [k for k in next(iter(memory.values())) if k not in ("peak", "ticks")]
        lines += ["", f"Resident memory over a {MEMORY_RUN} s recording at 1 kHz, depth 30 "
                  "with a changing top, sleeping 1 ms between batches (VmRSS, MiB):", "",
                  "| profiler | " + " | ".join(f"at {k}" for k in points)
                  + " | peak (VmHWM) | ticks |",
                  "|---|" + "---:|" * (len(points) + 2)]
        for name, m in memory.items():
            cells = [fmt(m[k] / 1024 if m[k] else None, 1) for k in points]
            lines.append(f"| {name} | {' | '.join(cells)} | {m['peak'] / 1024:.1f} | "
                         f"{m['ticks']:.0f} |")
    return "\n".join(lines)


def main():
    global WORKLOADS, RATES, MEMORY_RUN
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", help="interpreter for the targets")
    parser.add_argument("--no-pyspy", action="store_true", help="measure pyscry only")
    parser.add_argument("--no-build", action="store_true", help="use the existing build")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: depth 30 at 1 kHz only, no memory run")
    parser.add_argument("--rates", help="comma-separated rates instead of 100,1000,10000")
    parser.add_argument("--workloads", help="comma-separated indexes into "
                        + ", ".join(f"{i}: {w[0]}" for i, w in enumerate(WORKLOADS)))
    parser.add_argument("--memory-run", type=int, default=MEMORY_RUN,
                        help="seconds of the memory-over-time run (0: none)")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory-over-time run")
    parser.add_argument("--paired-slowdown", type=int, default=0, metavar="PAIRS",
                        help="instead of the tables, measure the target's slowdown from "
                        "PAIRS pairs of windows with and without each profiler")
    parser.add_argument("--floor", action="store_true",
                        help="instead of the tables, compare pyscry with a C loop making "
                        "the same reads (needs gcc and strace)")
    args = parser.parse_args()
    MEMORY_RUN = args.memory_run
    if args.memory_only or args.paired_slowdown:
        WORKLOADS = []
    if args.paired_slowdown or args.floor:
        MEMORY_RUN = 0
    if args.quick:
        WORKLOADS, RATES, MEMORY_RUN = WORKLOADS[:1], [1000], 0
    if args.rates:
        RATES = [int(r) for r in args.rates.split(",")]
    if args.workloads:
        WORKLOADS = [WORKLOADS[int(i)] for i in args.workloads.split(",")]

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started = time.monotonic()
    python = find_python(args.python)
    if not args.no_build:
        build_pyscry()
    profilers = [Pyscry()]
    notes = []
    pyspy = None
    if args.no_pyspy or args.floor:
        notes.append("py-spy: not run (" + ("--floor" if args.floor else "--no-pyspy") + ")")
    else:
        pyspy, why = install_pyspy()
        if pyspy:
            profilers += [PySpy(pyspy, blocking=False), PySpy(pyspy, blocking=True)]
        else:
            notes.append(why)
    with tempfile.TemporaryDirectory(prefix="pyscry-e2e-") as workdir:
        try:
            floor = {}
            if args.floor:
                binary, why = floor_tools(workdir)
                if binary:
                    floor = floor_comparison(binary, python, args.repeats, workdir)
                else:
                    notes.append(why)
            results = {} if args.floor else measure(profilers, python, args.repeats, workdir)
            memory = memory_over_time(profilers[:2], python, workdir) if MEMORY_RUN else {}
            paired = {}
            placements = [("shared", False)] + ([("separate", True)]
                                                 if os.cpu_count() > 1 else [])
            for profiler in [None] + profilers[:2] if args.paired_slowdown else []:
                for placement, separate in placements:
                    name = profiler.name if profiler else "nothing (the method's zero)"
                    paired[name, placement] = paired_slowdown(
                        profiler, python, args.paired_slowdown, workdir, separate)
        finally:
            kill_all()
    load = os.getloadavg()
    header = [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}"
        f", load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        f"target: CPython {python_version(python)} ({python})",
        f"profilers: pyscry {PYSCRY.relative_to(ROOT)}"
        + (f"; {pyspy_version(pyspy)} ({pyspy})" if pyspy else ""),
        f"repeats: {args.repeats} (medians); short run {SHORT} s, long run {LONG} s; "
        f"total time {time.monotonic() - started:.0f} s",
    ] + [f"note: {n}" for n in notes]
    print(report(results, memory, paired, floor, [p.name for p in profilers], header))


if __name__ == "__main__":
    try:
        main()
    finally:
        kill_all()

#!/usr/bin/env python3
"""Regenerate docs/supported-versions.md from a real test run.

Runs the per-interpreter integration tests once (cargo test), then writes a table with
one row per interpreter: its version, flavour and build type (asked from the
interpreter itself) and, for each check, whether it passed, failed or was skipped.

    python3 tests/pythons/support_matrix.py        # from the repository root
"""
import datetime
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (test binary, module in it, what the column means)
CHECKS = [
    ("dump", "three_threads", "dump: names, files, lines of 3 threads"),
    ("dump", "under_churn", "dump: stacks hold together while calls come every 10 µs"),
    ("dump", "locals", "dump --locals: arguments and locals of every kind, containers' items, target left running"),
    ("dump", "tasks", "dump --tasks: asyncio tasks, each with the coroutines it waits in and their lines, a running one on another thread's loop (before 3.14: refused, saying why)"),
    ("dump", "native_stack", "dump --native: C frames around and between Python frames, source lines and inlined functions where the file has DWARF (3.15: stated fallback)"),
    ("core_dump", "core_stacks", "dump --core: both threads' stacks, names, locals and C frames from the core file of a process that aborted (3.15: stated fallback)"),
    ("record", "one_two_three", "record: 1:2:3 shares within 3 points"),
    ("record", "native_samples", "record --native: the same in at least 90 % of samples (3.15: stated fallback)"),
    ("attach", "leaves_target_running", "attach: target keeps running"),
    ("sampling", "modes", "wall/cpu/gil modes, with and without --blocking (free-threaded: gil mode refused, then accepted with `PYTHON_GIL=1`)"),
    ("sampling", "jitter", "periodic work not aliased"),
    ("sampling", "threads", "per-thread shares and names"),
    ("sampling", "gc_frames", "record: <GC> tops the stack while gc.collect() runs (90 %+), not elsewhere; --no-gc"),
    ("sampling", "gc_finalizers", "record: weakref callbacks the collector runs under <GC> from 3.15, below it before; free-threaded: without it"),
    ("dump", "gc_thread", "dump: the thread running the garbage collector is marked"),
    ("record", "waits", "record: idle stacks marked by what they wait for: lock, pipe, sleep, and the GIL while 2 threads spin (free-threaded: never the GIL, and once more with `PYTHON_GIL=1`: the GIL too)"),
    ("dump", "dump_waits", "dump: the same waits, each thread's own, and the GIL holder"),
    ("code_cache", "churn", "code-object cache under address reuse"),
    ("report", "lines", "record -f pyscry, then report: same table; --lines gives 3:1 lines"),
    ("subprocesses", "pool", "record --subprocesses: both pool workers sampled"),
    ("subprocesses", "dump_pool", "dump --subprocesses: the target and both workers dumped"),
]
ASK = (
    "import sys, sysconfig, platform\n"
    "v = sysconfig.get_config_var\n"
    "flavour = 'free-threaded' if v('Py_GIL_DISABLED') else ('debug' if v('Py_DEBUG') else 'default')\n"
    "maps = open('/proc/self/maps').read()\n"
    "build = 'shared libpython' if 'libpython' in maps else 'libpython in the executable'\n"
    "print(platform.python_version()); print(flavour); print(build)\n"
)


def interpreters():
    """(test-name suffix, name, path) for every interpreter the tests know."""
    out = []
    pyenv = os.environ.get("PYENV_ROOT", "/root/.pyenv")
    versions = sorted(os.listdir(os.path.join(pyenv, "versions"))) if os.path.isdir(os.path.join(pyenv, "versions")) else []
    for minor in ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]:
        found = [v for v in versions if re.match(re.escape(minor) + r"\.\d+$", v)]
        path = os.path.join(pyenv, "versions", found[-1], "bin", "python") if found else None
        out.append((minor, path))
    out.append(("3.11-debian-static", "/usr/bin/python3.11"))
    cache = os.environ.get("PYSCRY_PYTHONS", os.path.expanduser("~/.cache/pyscry/pythons"))
    listed = {}
    try:
        for line in open(os.path.join(cache, "list.txt")):
            name, _, path = line.strip().partition(" ")
            listed[name] = path
    except OSError:
        pass
    for name in ["3.9-debian-static", "3.13-sid", "3.14", "3.15", "3.14d", "3.15d", "3.13t", "3.14t"]:
        out.append((name, listed.get(name)))
    return [("py" + n.replace(".", "_").replace("-", "_"), n, p) for n, p in out]


def describe(path):
    if not path or not os.path.exists(path):
        return None
    result = subprocess.run([path, "-c", ASK], capture_output=True, text=True)
    return result.stdout.split("\n")[:3] if result.returncode == 0 else None


def main():
    binaries = sorted({binary for binary, _, _ in CHECKS})
    skip_log = os.path.join(ROOT, "target", "tmp", "skipped.txt")
    if os.path.exists(skip_log):
        os.remove(skip_log)
    command = ["cargo", "test", "--no-fail-fast"] + [a for b in binaries for a in ("--test", b)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    # Kept so that a failing cell can be looked into.
    log = os.path.join(ROOT, "target", "tmp", "support-matrix.log")
    with open(log, "w") as out:
        out.write(run.stdout + run.stderr)
    results = dict(re.findall(r"^test (\S+) \.\.\. (ok|FAILED)", run.stdout, re.M))
    skipped = open(skip_log).read() if os.path.exists(skip_log) else ""
    rows = []
    for suffix, name, path in interpreters():
        info = describe(path)
        cells = []
        for _, module, _ in CHECKS:
            test = "%s::%s" % (module, suffix)
            if test in skipped:
                cells.append("skipped (not found)")
            else:
                cells.append({"ok": "pass", "FAILED": "FAIL"}.get(results.get(test), "not run"))
        version, flavour, build = info if info else ("-", "-", "-")
        rows.append([name, version, flavour, build] + cells)
    header = ["interpreter", "version", "flavour", "build type"] + [m for _, m, _ in CHECKS]
    lines = [
        "# Supported CPython versions",
        "",
        "Generated by `python3 tests/pythons/support_matrix.py` from a test run on %s"
        % datetime.date.today().isoformat(),
        "(Linux x86_64, 2 cores). Each cell is the result of that check's integration test",
        "for that interpreter; interpreters beyond the machine's own come from",
        "`tests/pythons/provision.sh`.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Checks:", ""]
    lines += ["- `%s`: %s" % (module, meaning) for _, module, meaning in CHECKS]
    lines += [
        "",
        "Also tested (see `tests/environments.rs`, `tests/dump.rs`): a Python in its own",
        "mount namespace, and in its own PID namespace as well (thread ids shown as the host's,",
        "3.12 and 3.10), a C program embedding libpython, stripped interpreters (among them",
        "Debian's own 3.9 and 3.11), a version banner with a distributor's note between bars,",
        "as Anaconda's and conda-forge's builds have it (2.7, 3.8 and 3.10, whose versions are",
        "read from that text), a library (3.10) or executable (Debian's 3.11) replaced after",
        "the process loaded it, as a package upgrade does, and a patch release (3.13.18) read",
        "with the table of another (3.13.0) corrected by its `_Py_DebugOffsets`.",
        "",
    ]
    with open(os.path.join(ROOT, "docs", "supported-versions.md"), "w") as out:
        out.write("\n".join(lines))
    failed = [t for t, r in results.items() if r == "FAILED"]
    print("wrote docs/supported-versions.md; %d tests, %d failed" % (len(results), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

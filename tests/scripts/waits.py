# Threads that each wait in a different way, for a wall-mode recording to tell apart:
# on a lock, on a pipe, asleep, and two that spin and so wait for the GIL in turn
# (where there is one). Usage: waits.py [SECONDS [GIL_AFTER]]: with GIL_AFTER, a
# free-threaded build turns its GIL on for good after that many seconds, as it does
# when it loads an extension module that does not say it can run without one.
import os
import sys
import threading
import time


def hold_lock(lock):
    lock.acquire()  # at: lock


def read_pipe(fd):
    os.read(fd, 1)  # at: pipe


def nap(seconds):
    time.sleep(seconds)  # at: nap


def spin(until):
    while time.time() < until:  # at: spin
        pass


# 2.7 hands the GIL over every 100 bytecodes, and its waiter, woken each time, finds
# it taken again and is seen awake, not waiting; hand it over less often.
if sys.version_info[0] == 2:
    sys.setcheckinterval(10000)
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
held = threading.Lock()
held.acquire()
read_end, write_end = os.pipe()
until = time.time() + seconds


def start(name, target, args):
    thread = threading.Thread(target=target, args=args, name=name)
    thread.daemon = True
    thread.start()


start("locked", hold_lock, (held,))
start("reader", read_pipe, (read_end,))
# Let those two settle in their waits before the spinners take the CPUs: a
# free-threaded build spins on a lock another thread holds, 40 times, yielding the CPU
# in between, and with both CPUs busy with its spinners each yield can last a time
# slice (its "locked" thread was seen running in the lock for 175 ms).
time.sleep(0.1)
start("spinner-1", spin, (until,))
start("spinner-2", spin, (until,))
print("ready")
sys.stdout.flush()
if len(sys.argv) > 2:
    gil_after = float(sys.argv[2])
    nap(gil_after)
    import importlib.util
    import warnings

    import _testmultiphase

    # A test module's second entry point, whose module is not a module object, which
    # the interpreter cannot ask whether it needs the GIL.
    where = _testmultiphase.__file__
    spec = importlib.util.spec_from_file_location("_testmultiphase_nonmodule", where)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        importlib.util.module_from_spec(spec)
    assert sys._is_gil_enabled()
    print("gil on")
    sys.stdout.flush()
    seconds -= gil_after
nap(seconds)

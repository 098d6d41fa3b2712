# Dumps core (os.abort) with the main thread inside inner() and a second thread,
# "waiter", asleep in worker_wait(), for `dump --core`. Core files go to the current
# directory as the machine's core_pattern says; the size limit is raised here.
# Usage: core_dump.py
import os
import threading
import time

try:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
except (ImportError, ValueError, OSError):
    pass


def worker_wait():
    time.sleep(3600)


def inner(label):
    os.abort()


def outer():
    label = "name42"
    inner(label)


waiter = threading.Thread(target=worker_wait, name="waiter")
waiter.daemon = True
waiter.start()
time.sleep(0.3)
outer()

# A thread that waits in C (time.sleep) under Python functions, one of them called back
# from C (sorted's key), for `dump --native`; prints "ready" once it is about to wait.
# Usage: native.py
import sys
import time


def inner(item):
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(3600)
    return item


def outer():
    return sorted([1], key=inner)


outer()

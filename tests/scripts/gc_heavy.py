# Alternates pure-Python work that allocates nothing the garbage collector tracks with
# full collections over many live objects, so that a good share of the time is spent
# in the collector, always called from `collect`.
# usage: gc_heavy.py SECONDS
import gc
import sys
import time

seconds = float(sys.argv[1])
# Live container objects that each full collection traverses.
keep = [[i] for i in range(300000)]
sys.stdout.write("ready\n")
sys.stdout.flush()


def spin(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def collect():
    gc.collect()


def main():
    deadline = time.time() + seconds
    while time.time() < deadline:
        spin(300000)
        collect()


main()

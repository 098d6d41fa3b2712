# Calls all the time: each batch of work (ARGV[2] loop turns, default 100) runs in
# `leaf`, under a chain of 0 to 2 more small functions, a different length each time,
# for ARGV[1] seconds. Most of the time is spent in `leaf`'s loop; with 100 turns the
# top of the stack changes about every microsecond.
import sys
import time


def leaf(n):
    for _ in range(n):
        pass


def one(n):
    leaf(n)


def two(n):
    one(n)


CHAINS = [leaf, one, two]


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    turns = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    deadline = time.time() + seconds
    i = 0
    while time.time() < deadline:
        for _ in range(100):
            CHAINS[i % 3](turns)
            i += 1


main()

# Three functions that burn CPU for 1:2:3 units of wall-clock time, repeated.
# Usage: ratio.py [UNIT_SECONDS] [ROUNDS] [UNITS_OF_ONE,TWO,THREE (default 1,2,3)]
#                 [LEAD_IN_SECONDS (default 0)]
# The lead-in spins in a function of its own before the first round, so that a profiler
# that starts sampling late on a loaded machine still sees every round whole.
import sys
import time


def burn(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1


def one(seconds):
    burn(seconds)


def two(seconds):
    burn(seconds)


def three(seconds):
    burn(seconds)


def lead_in(seconds):
    end = time.time() + seconds
    while time.time() < end:
        pass


def main():
    unit = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    units = [float(u) for u in (sys.argv[3] if len(sys.argv) > 3 else "1,2,3").split(",")]
    lead_in(float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
    for _ in range(rounds):
        one(units[0] * unit)
        two(units[1] * unit)
        three(units[2] * unit)


main()

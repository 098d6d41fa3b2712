# Three functions that burn CPU for 1:2:3 units of wall-clock time, repeated.
# Usage: ratio.py [UNIT_SECONDS] [ROUNDS]
import sys
import time


def burn(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1


def one(unit):
    burn(unit)


def two(unit):
    burn(2 * unit)


def three(unit):
    burn(3 * unit)


def main():
    unit = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for _ in range(rounds):
        one(unit)
        two(unit)
        three(unit)


main()

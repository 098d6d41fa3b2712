# One function whose two call lines take 3:1 of the time, for per-line tables.
# Usage: lines.py [SECONDS]
import sys
import time


def spin(n):
    x = 0
    for i in range(n):
        x += i
    return x


def work(seconds):
    end = time.time() + seconds
    while time.time() < end:
        spin(3000)  # at: heavy
        spin(1000)  # at: light


work(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)

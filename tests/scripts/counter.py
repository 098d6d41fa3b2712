# Counts forever, printing the count every 50 ms, so a test can see that the process
# keeps making progress. Exits after ARGV[1] seconds if given.
import sys
import time


def work(n):
    total = 0
    for i in range(2000):
        total += i * n
    return total


def main():
    limit = float(sys.argv[1]) if len(sys.argv) > 1 else None
    start = time.time()
    count = 0
    last = 0.0
    while limit is None or time.time() - start < limit:
        work(count)
        count += 1
        now = time.time()
        if now - last > 0.05:
            sys.stdout.write("%d\n" % count)
            sys.stdout.flush()
            last = now


main()

# Local variables of many kinds, for `dump --locals`; prints "ready" once they are set.
# Usage: locals.py
import sys
import time


def inner(count, label, *rest, **options):
    ratio = 0.5
    big = 2 ** 70
    negative = -1234567
    text = "it's\n"
    data = b"\x00ab"
    items = [1, 2, 3]
    pair = (1, "a")
    mapping = {"a": 1}
    nothing = None
    flag = True
    nested = {"k": [1, (2, None)]}
    numbers = list(range(100))
    deep = [[[[1]]]]
    empty = ()
    no_items = []
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        time.sleep(0.05)


def outer(n):
    captured = n * 2

    def closure():
        return captured

    return inner(n, "name%d" % n, 7, key="v")


outer(42)

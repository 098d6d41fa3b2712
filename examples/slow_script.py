"""A slow script with the classic mistakes, for trying pyscry.

    pyscry record -- python3 examples/slow_script.py

The time goes to `find_words`, which asks `re.compile` for the same pattern on every
line (the table shows `re._compile`'s cache lookup under it), and to `count_common`,
whose `x in b` scans a list inside a loop.
"""
import re
import time


def count_common(a, b):
    # `x in b` scans the whole list every time: O(len(a) * len(b)).
    return sum(1 for x in a if x in b)


def find_words(lines):
    found = 0
    for line in lines:
        pattern = re.compile(r"\b(py\w+)\b")  # recompiled (cache lookup) every line
        found += len(pattern.findall(line))
    return found


def main():
    start = time.time()
    a = list(range(0, 6000, 2))
    b = list(range(0, 6000, 3))
    lines = ["pyscry profiles python programs, pyspy too %d" % i for i in range(150000)]
    for _ in range(3):
        common = count_common(a, b)
        words = find_words(lines)
    print("common=%d words=%d in %.1f s" % (common, words, time.time() - start))


if __name__ == "__main__":
    main()

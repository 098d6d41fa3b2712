# Collections whose time goes to Python code the collector calls: weakref callbacks of
# cyclic garbage (run during the collection on every version, 2.7 included), each
# spinning for a while; always collected from `collect`.
# usage: gc_finalizers.py SECONDS
import gc
import sys
import time
import weakref

seconds = float(sys.argv[1])


class Node(object):
    pass


refs = []


def in_finalizer(ref):
    total = 0
    for i in range(20000):
        total += i
    return total


def make_garbage():
    for _ in range(50):
        a, b = Node(), Node()
        a.other, b.other = b, a
        refs.append(weakref.ref(a, in_finalizer))


def collect():
    gc.collect()


def main():
    # Collections only where collect() asks for them.
    gc.disable()
    deadline = time.time() + seconds
    while time.time() < deadline:
        make_garbage()
        collect()
        del refs[:]


main()

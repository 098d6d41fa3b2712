# A main thread that spins for ever under the same three functions, so that no code
# object is made or freed, until SIGUSR1: its handler compiles a function and drops it,
# which makes code objects and frees them (3.12 and 3.13 count those made, 3.14+ those
# freed). Prints "ready" once spinning and "freed" after each such round.
import gc
import signal
import sys


def free_code_objects(signum, frame):
    namespace = {}
    exec(compile("def dropped():\n    return 0\n", "<dropped>", "exec"), namespace)
    del namespace
    gc.collect()
    sys.stdout.write("freed\n")
    sys.stdout.flush()


def spin():
    n = 0
    while True:
        n += 1


def middle():
    spin()


def outer():
    middle()


signal.signal(signal.SIGUSR1, free_code_objects)
sys.stdout.write("ready\n")
sys.stdout.flush()
outer()

# Two worker processes (multiprocessing) wait in child_wait while the main process
# lives; once both wait, the main process prints "ready PID PID" (the workers' PIDs)
# and waits in main_wait while its parent lives (a shell that started it, say).
# Usage: waiting_pool.py
import multiprocessing
import os
import sys
import time


def child_wait(queue, parent):
    queue.put(os.getpid())
    while True:
        try:
            os.kill(parent, 0)
        except OSError:
            return
        time.sleep(0.05)


def main_wait(parent):
    while os.getppid() == parent:
        time.sleep(0.05)


def main():
    queue = multiprocessing.Queue()
    args = (queue, os.getpid())
    workers = [multiprocessing.Process(target=child_wait, args=args) for _ in range(2)]
    for worker in workers:
        # Ended when the main process ends, which then does not wait for them.
        worker.daemon = True
        worker.start()
    pids = sorted(queue.get() for _ in workers)
    sys.stdout.write("ready %d %d\n" % tuple(pids))
    sys.stdout.flush()
    main_wait(os.getppid())


if __name__ == "__main__":
    main()

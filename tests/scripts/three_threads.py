# Three threads in known places, for `pyscry dump` tests. Prints "ready" once every
# thread has reached its spot. Lines marked "# at: NAME" are where each thread waits;
# tests find them by the marker, so the file can change without breaking them.
import sys
import threading
import time


def spin():
    while True: pass  # at: spin


class Worker(object):
    def wait_for(self, event):
        event.wait()  # at: wait_for


def sleeper_inner():
    time.sleep(1000)  # at: sleeper_inner


def sleeper():
    sleeper_inner()  # at: sleeper


event = threading.Event()
threading.Thread(target=spin, name="spinner").start()
threading.Thread(target=Worker().wait_for, args=(event,), name="waiter").start()
time.sleep(0.2)
sys.stdout.write("ready\n")
sys.stdout.flush()
sleeper()  # at: module

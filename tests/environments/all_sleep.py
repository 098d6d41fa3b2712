# Three threads that all sleep in known places, so that no thread holds the GIL while
# they are read. Prints "ready" once every thread is at its spot. Lines marked
# "# at: NAME" are where each thread waits; tests find them by the marker.
import sys
import threading
import time


def nap_inner():
    time.sleep(1000)  # at: nap_inner


def nap():
    nap_inner()  # at: nap


class Dozer(object):
    def doze(self):
        time.sleep(1000)  # at: doze


def main_sleep():
    time.sleep(1000)  # at: main_sleep


for name, target in (("napper", nap), ("dozer", Dozer().doze)):
    thread = threading.Thread(target=target, name=name)
    thread.daemon = True
    thread.start()
time.sleep(0.3)
sys.stdout.write("ready\n")
sys.stdout.flush()
main_sleep()  # at: module

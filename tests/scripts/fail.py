# Burns CPU briefly, then exits with code 3.
import sys
import time


def busy():
    end = time.time() + 0.5
    while time.time() < end:
        pass


busy()
sys.exit(3)

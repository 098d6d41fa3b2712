# A sub-interpreter that sleeps in a known function, next to a sleeping main thread.
# Prints "ready" once both are in place. Needs _testcapi.run_in_subinterp (3.x).
import sys
import threading
import time

import _testcapi

CODE = """
import time
def in_subinterpreter():
    time.sleep(1000)
in_subinterpreter()
"""


def host():
    _testcapi.run_in_subinterp(CODE)


thread = threading.Thread(target=host, name="host")
thread.daemon = True
thread.start()
time.sleep(0.5)
sys.stdout.write("ready\n")
sys.stdout.flush()
time.sleep(1000)  # at: main

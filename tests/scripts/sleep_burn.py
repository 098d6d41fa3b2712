# Alternates a function that sleeps and one that burns CPU, for equal wall time.
# Usage: sleep_burn.py [UNIT_SECONDS] [ROUNDS]
# Prints the time really spent in each as "truth sleeper=SECONDS burner=SECONDS".
import sys
import time


def sleeper(unit):
    time.sleep(unit)


def burner(unit):
    end = time.time() + unit
    while time.time() < end:
        pass


def main():
    unit = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    spent = {"sleeper": 0.0, "burner": 0.0}
    for _ in range(rounds):
        t0 = time.time()
        sleeper(unit)
        t1 = time.time()
        burner(unit)
        spent["sleeper"] += t1 - t0
        spent["burner"] += time.time() - t1
    sys.stdout.write("truth sleeper=%f burner=%f\n" % (spent["sleeper"], spent["burner"]))


main()

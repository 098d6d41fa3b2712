# A function that runs every 10 ms exactly: 3 ms of `periodic`, then `rest` until the
# next 10 ms boundary, for ARGV[1] seconds. Sampling at 100 Hz without jitter would
# see `periodic` always or never; its share is 30% on an idle machine. The time really
# spent in each is printed at the end as "truth periodic=SECONDS rest=SECONDS".
import sys
import time


def spin_until(deadline):
    while time.time() < deadline:
        pass


def periodic(deadline):
    spin_until(deadline)


def rest(deadline):
    spin_until(deadline)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    start = time.time()
    boundary = start
    spent = {"periodic": 0.0, "rest": 0.0}
    while boundary - start < seconds:
        t0 = time.time()
        periodic(boundary + 0.003)
        t1 = time.time()
        boundary += 0.010
        rest(boundary)
        spent["periodic"] += t1 - t0
        spent["rest"] += time.time() - t1
    sys.stdout.write("truth periodic=%f rest=%f\n" % (spent["periodic"], spent["rest"]))


main()

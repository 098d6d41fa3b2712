# Two worker processes (a multiprocessing pool) burn CPU in child_work while the main
# process waits for them. Usage: pool.py [SECONDS]
import multiprocessing
import sys
import time


def child_work(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1
    return x


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5
    pool = multiprocessing.Pool(2)
    try:
        pool.map(child_work, [seconds, seconds], 1)
    finally:
        pool.close()
        pool.join()


if __name__ == "__main__":
    main()

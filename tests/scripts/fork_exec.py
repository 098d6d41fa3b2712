# A forked child spins in before_exec for 0.5 s, then execs `sleep 1.5`; the parent
# waits for it. Usage: fork_exec.py
import os
import time


def before_exec():
    end = time.time() + 0.5
    while time.time() < end:
        pass
    os.execvp("sleep", ["sleep", "1.5"])


pid = os.fork()
if pid == 0:
    before_exec()
os.waitpid(pid, 0)

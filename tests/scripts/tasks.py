# asyncio tasks at known places, for `dump --tasks`: a named worker waits three
# coroutines deep on an event, another sleeps, a task with the default name waits on a
# queue, the main coroutine waits for them all, and a second thread's event loop runs
# a task that spins. Prints "ready" once every task is in place.
# Usage: tasks.py [SECONDS]
import asyncio
import sys
import threading
import time


async def innermost(event):
    await event.wait()  # at: innermost


async def middle(event):
    await innermost(event)  # at: middle


async def worker(event):
    await middle(event)  # at: worker


async def sleeper(seconds):
    await asyncio.sleep(seconds)  # at: sleeper


async def consumer(queue):
    await queue.get()  # at: consumer


async def spinner(seconds):
    until = time.time() + seconds
    while time.time() < until:  # at: spinner
        pass


def spin_in_a_loop_of_its_own(seconds):
    asyncio.run(spinner(seconds))


async def main(seconds):
    event = asyncio.Event()
    queue = asyncio.Queue()
    tasks = [
        asyncio.create_task(worker(event), name="worker-1"),
        asyncio.create_task(sleeper(seconds), name="sleeper-1"),
        asyncio.create_task(consumer(queue)),
    ]
    thread = threading.Thread(target=spin_in_a_loop_of_its_own, args=(seconds,))
    thread.start()
    await asyncio.sleep(0.1)
    print("ready", flush=True)
    await asyncio.sleep(seconds)  # at: main
    event.set()
    queue.put_nowait(None)
    await asyncio.gather(*tasks)
    thread.join()


asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0))

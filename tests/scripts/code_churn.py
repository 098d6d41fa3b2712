# Many short-lived functions, each compiled fresh and freed after running for 20 ms, so
# new code objects keep landing at addresses freed ones used. Function K is called
# churn_K, lives in file "<churn-K>", starts on line K+1 and loops on lines K+2 and K+3;
# a profiler whose code-object cache goes stale would report a function that no longer
# exists, or a name that does not match its file and lines. Prints how many distinct code-object
# addresses the N functions had (fewer than N means memory was reused), and how long
# each function really ran ("ran K SECONDS"), since a loaded machine can stretch one.
import gc
import sys
import time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
addresses = set()
for k in range(count):
    source = "\n" * k + "def churn_%d(end):\n    while time.time() < end:\n        pass\n" % k
    namespace = {"time": time}
    exec(compile(source, "<churn-%d>" % k, "exec"), namespace)
    function = namespace["churn_%d" % k]
    addresses.add(id(function.__code__))
    start = time.time()
    function(start + 0.02)
    sys.stdout.write("ran %d %f\n" % (k, time.time() - start))
    # The function and its globals form a cycle: collect it so its code is freed now.
    del function, namespace
    gc.collect()
sys.stdout.write("distinct code addresses %d of %d\n" % (len(addresses), count))

"""Helpers of the benchmark scripts: peak memory, one measurement per process.

Authors
 * speechbrain-textsep contributors
"""

import multiprocessing as mp
import resource


def peak_rss_mb():
    """Peak resident set size of this process so far, in MiB.

    Linux keeps ``ru_maxrss`` across ``exec``, so a spawned process would
    start from its parent's peak: its own peak (``VmHWM``) is read instead
    where ``/proc`` has it.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(target, *args):
    """Runs ``target(*args, queue)`` in a fresh process; returns what it puts."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result

"""Generate ``wq_transactions.log`` (a real Work Queue transaction log) and
``wq_summaries.jsonl`` (the resource_monitor summaries of the same run, JSON
lines, the first one the manager's own summary).

Run with the system Python, which sees Debian's python3-workqueue (9.9):

    /usr/bin/python3 tests/data/make_wq_log.py tests/data [--quick]

A manager on a free local port with resource monitoring runs, on one local
``work_queue_worker`` (2 cores, 1000 MB): three ``light`` tasks, one ``hog``
task that exceeds its 60 MB memory limit (FIXED mode: it fails exhausted), one
``grow`` task whose first allocation (60 MB) is too small and is retried with
the category maximum (MAX mode), and one ``light`` task exiting with status 3.
``--quick`` leaves out the two memory hogs (which must hold their memory for
seconds for the monitor's sampling to see it): a run of about two seconds.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import work_queue as wq

HOG = "/usr/bin/python3 -c 'import time; x = bytearray({mb} * 2**20); x[::4096] = b\"1\" * len(x[::4096]); time.sleep(12)'"


def main(out_dir: str, quick: bool = False) -> None:
    workdir = tempfile.mkdtemp(prefix="wqlog-")
    q = wq.WorkQueue(port=0)
    q.specify_transactions_log(os.path.abspath(os.path.join(out_dir, "wq_transactions.log")))
    q.enable_monitoring(os.path.join(workdir, "monitor"))
    q.specify_category_mode("hog", wq.WORK_QUEUE_ALLOCATION_MODE_FIXED)
    q.specify_category_mode("grow", wq.WORK_QUEUE_ALLOCATION_MODE_MAX)
    q.specify_category_first_allocation_guess("grow", {"memory": 60, "cores": 1, "disk": 100})
    q.specify_category_max_resources("grow", {"memory": 600, "cores": 1, "disk": 100})
    tasks = []
    for i in range(3):
        t = wq.Task(f"/usr/bin/python3 -c 'sum(range({i + 1} * 10**6))'")
        t.specify_category("light")
        t.specify_cores(1); t.specify_memory(100); t.specify_disk(50)
        tasks.append(t)
    if not quick:
        t = wq.Task(HOG.format(mb=300))
        t.specify_category("hog")
        t.specify_cores(1); t.specify_memory(60); t.specify_disk(50)
        tasks.append(t)
        t = wq.Task(HOG.format(mb=200))
        t.specify_category("grow")
        tasks.append(t)
    t = wq.Task("exit 3")
    t.specify_category("light")
    t.specify_cores(1); t.specify_memory(100); t.specify_disk(50)
    tasks.append(t)
    for t in tasks:
        q.submit(t)
    worker = subprocess.Popen(["work_queue_worker", "--cores", "2", "--memory", "1000", "--disk", "2000",
                               "--timeout", "30", "localhost", str(q.port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not q.empty():
            t = q.wait(5)
            if t:
                print(t.id, t.category, t.result, t.return_status, file=sys.stderr)
    finally:
        worker.terminate()
        worker.wait()
    del q  # the manager writes its own summary when it is destroyed
    (summaries,) = glob.glob(os.path.join(workdir, "monitor", "*.summaries"))
    shutil.copy(summaries, os.path.join(out_dir, "wq_summaries.jsonl"))
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main(sys.argv[1], quick="--quick" in sys.argv[2:])

"""Soak: thousands of executor calls on each backend, none may hang or be lost.

2,000 calls through ``AutolabelExecutor`` on the local backend and on real Work
Queue (two local workers), a mix of what a long unattended workflow meets:

* most calls return a value (``i + 1``);
* every 10th raises ``ValueError`` (an ordinary app failure);
* every 50th calls ``sys.exit(3)`` (an ``argparse``-style exit inside the call):
  its future must fail with ``lfm.CallExited``;
* every 100th allocates 60 MB under a declared first guess of 30 MB: it
  exhausts its label and is retried with a larger one, then succeeds.

Before them, 10,000 monitored no-op calls (``@monitored``, isolated: each in
its own process from lfm's fork server), two threads calling at once, each
call returning its argument.

A call is **hung** when its future is not done by the deadline, **lost** when
its future resolved with anything but the expected value or exception. Both
must be 0. Also printed: the wall time and the calls per second (and for the
monitored calls the median and 99th-percentile latency of one call, ms).

``--quick``: 1,000 monitored calls and 300 calls per backend.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import time

MB = 2 ** 20
CALLS = 2000
QUICK_CALLS = 300
MONITORED_CALLS = 10000
QUICK_MONITORED_CALLS = 1000
#: seconds after the last submission by which every future must be done
DEADLINE = 900.0
WQ_WORKERS = [{"cores": 2, "memory": 2000, "disk": 4000}, {"cores": 2, "memory": 2000, "disk": 4000}]


def soak_call(i: int) -> int:
    """The soak's call ``i``: see the module docstring for the mix."""
    if i % 100 == 11:
        block = b"\1" * (60 * MB)
        time.sleep(0.05)
        del block
    elif i % 50 == 7:
        sys.exit(3)
    elif i % 10 == 3:
        raise ValueError(f"call {i} fails as an app does")
    return i + 1


def expected(i: int) -> tuple[str, object]:
    """("value", v) or ("error", exception class) for call ``i``."""
    import lfm
    if i % 100 == 11:
        return "value", i + 1
    if i % 50 == 7:
        return "error", lfm.CallExited
    if i % 10 == 3:
        return "error", ValueError
    return "value", i + 1


def soak(backend: str, n: int, **options) -> dict:
    """Run ``n`` soak calls on ``backend``; counts of ok, expected errors,
    retried calls, hangs and lost calls, and the seconds it took."""
    from lfm.executors import AutolabelExecutor

    started = time.monotonic()
    with AutolabelExecutor(backend=backend, predictor="max-seen", resources=("cores", "memory"),
                           **options) as ex:
        futures = []
        for i in range(n):
            view = ex.options(category="soak-big", resources={"memory": 30}) if i % 100 == 11 \
                else ex.options(category="soak")
            futures.append(view.submit(soak_call, i))
        done, not_done = cf.wait(futures, timeout=DEADLINE)
        hung = len(not_done)
        for f in not_done:
            f.cancel()
        stats = ex.stats()
    elapsed = time.monotonic() - started
    ok = errors = lost = 0
    for i, f in enumerate(futures):
        if f not in done:
            continue
        kind, want = expected(i)
        exc = f.exception()
        if kind == "value" and exc is None and f.result() == want:
            ok += 1
        elif kind == "error" and isinstance(exc, want):
            errors += 1
        else:
            lost += 1
            if lost <= 3:
                got = repr(exc) if exc is not None else repr(f.result())
                print(f"  lost: call {i} expected {kind} {want!r}, got {got:.300}", flush=True)
    retried = int(stats["tasks_retried"].sum()) if "tasks_retried" in stats else 0
    return {"backend": backend, "calls": n, "ok": ok, "errors": errors, "retried": retried,
            "hung": hung, "lost": lost, "seconds": elapsed}


def noop(i: int) -> int:
    """The monitored soak's call: nothing but its argument back."""
    return i


def soak_monitored(n: int, threads: int = 2) -> dict:
    """``n`` isolated ``@monitored`` no-op calls from ``threads`` threads: counts
    of ok, hung and lost calls, the seconds it took, and the median and 99th
    percentile of one call's latency (ms)."""
    from lfm import monitored

    call = monitored(return_resources=False)(noop)
    call(-1)  # the fork server starts once, outside the timing

    def timed(i: int) -> tuple[int, float]:
        started = time.perf_counter()
        value = call(i)
        return value, time.perf_counter() - started

    started = time.monotonic()
    with cf.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(timed, i) for i in range(n)]
        done, not_done = cf.wait(futures, timeout=DEADLINE)
        for f in not_done:
            f.cancel()
    elapsed = time.monotonic() - started
    ok = lost = 0
    latencies = []
    for i, f in enumerate(futures):
        if f not in done:
            continue
        if f.exception() is None and f.result()[0] == i:
            ok += 1
            latencies.append(f.result()[1])
        else:
            lost += 1
            if lost <= 3:
                got = repr(f.exception()) if f.exception() is not None else repr(f.result()[0])
                print(f"  lost: monitored call {i} gave {got:.300}", flush=True)
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) \
        if latencies else (lambda q: float("nan"))
    return {"backend": "@monitored", "calls": n, "ok": ok, "errors": 0, "retried": 0,
            "hung": len(not_done), "lost": lost, "seconds": elapsed, "p50_ms": pick(0.5),
            "p99_ms": pick(0.99)}


HEADER = (f"{'backend':<10} {'calls':>6} {'ok':>6} {'expected errors':>15} {'retried':>7} "
          f"{'hung':>5} {'lost':>5} {'time s':>7} {'calls/s':>8}")


def _row(r: dict) -> str:
    return (f"{r['backend']:<10} {r['calls']:>6} {r['ok']:>6} {r['errors']:>15} {r['retried']:>7} "
            f"{r['hung']:>5} {r['lost']:>5} {r['seconds']:>7.1f} {r['calls'] / r['seconds']:>8.1f}")


def main(argv: list[str]) -> None:
    from lfm.executors import work_queue_available

    quick = "--quick" in argv
    n = QUICK_CALLS if quick else CALLS
    m = QUICK_MONITORED_CALLS if quick else MONITORED_CALLS
    print(f"monitored soak: {m} isolated @monitored no-op calls from 2 threads; "
          f"deadline {DEADLINE:g} s", flush=True)
    print(HEADER, flush=True)
    rows = [soak_monitored(m)]
    print(_row(rows[-1]) + f"   one call: median {rows[-1]['p50_ms']:.1f} ms, "
          f"99th percentile {rows[-1]['p99_ms']:.1f} ms", flush=True)
    print(f"executor soak: {n} calls per backend (every 10th raises, every 50th calls sys.exit, "
          f"every 100th exhausts a 30 MB first guess); deadline {DEADLINE:g} s", flush=True)
    print(HEADER, flush=True)
    rows.append(soak("local", n))
    print(_row(rows[-1]), flush=True)
    ok, why = work_queue_available()
    if ok:
        rows.append(soak("workqueue", n, workers=WQ_WORKERS, verbose=False))
        print(_row(rows[-1]), flush=True)
    else:
        print(f"{'workqueue':<10} skipped: {why}", flush=True)
    bad = sum(r["hung"] + r["lost"] for r in rows)
    print(f"target: 0 hung and 0 lost calls on every backend: {'ok' if bad == 0 else 'MISSED'} "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Timeline engine and validator speed on a large 1F1B schedule (default p=64, m=1024).

Times ``compute_timeline`` on the 1F1B orders (131,072 tasks by default) over several
repeats and prints median and minimum seconds and tasks per second; then the same for the
independent validator (``validate`` with the memory limit, and ``check_tight``) on the result.

    python benchmarks/bench_timeline.py            # p=64, m=1024, 5 repeats
    python benchmarks/bench_timeline.py -p 16 -m 64 --repeats 9
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.problem import Problem
from ppopt.timeline import compute_timeline
from ppopt.validate import check_tight, validate

T = TypeVar("T")


def timed(action: Callable[[], T], repeats: int) -> tuple[list[float], T]:
    """Wall times of ``repeats`` (>= 1) runs of ``action`` and the result of the last run."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def report(what: str, seconds: list[float], tasks: int) -> None:
    """One line: median and minimum seconds, tasks per second at the median."""
    median = statistics.median(seconds)
    print(
        f"{what:<22} median {median:7.3f} s   min {min(seconds):7.3f} s   "
        f"{tasks / median:>12,.0f} tasks/s   ({len(seconds)} runs)"
    )


def main() -> None:
    """Parse the options, run the timings, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--devices", type=int, default=64)
    parser.add_argument("-m", "--microbatches", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (>= 1)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats: must be >= 1")

    problem = Problem.create(args.devices, args.microbatches, forward=1.0, backward=2.0)
    orders = one_f_one_b_orders(problem)
    tasks = problem.num_tasks
    print(f"1F1B p={args.devices} m={args.microbatches}: {tasks:,} tasks")

    seconds, schedule = timed(lambda: compute_timeline(problem, orders, "1f1b"), args.repeats)
    report("compute_timeline", seconds, tasks)

    limit = (float(args.devices),)  # 1F1B's peak on device 0: p activations of 1
    seconds, violations = timed(lambda: validate(schedule, limit=limit), args.repeats)
    report("validate (+memory)", seconds, tasks)
    seconds, slack = timed(lambda: check_tight(schedule), args.repeats)
    report("check_tight", seconds, tasks)

    expected = (args.microbatches + args.devices - 1) * 3.0
    print(
        f"makespan {schedule.makespan:g} (closed form {expected:g}); "
        f"violations {len(violations)}; not tight {len(slack)}"
    )


if __name__ == "__main__":
    main()

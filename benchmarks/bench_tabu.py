"""How fast the large path's tabu search iterates: a fixed number of iterations from the best
baseline of a scaling-study case, timed in the process (the floor is built first, not timed).

The search is deterministic in its moves, so two versions of ppopt that choose the same moves
end at the same schedule after the same number of iterations; the printed makespan checks
that, the seconds compare their speed. To compare two commits, run this file from two
checkouts (``git worktree add /tmp/old <commit>``) in turns and quote the medians:

    python benchmarks/bench_tabu.py --case 16,128,0,1 --iterations 150 --repeat 3
    cd /tmp/old && PYTHONPATH=. python /path/to/benchmarks/bench_tabu.py --case 16,128,0,1

``--case p,m,split,vshape`` as in ``bench_scaling.py``; the default is the p=16 m=128 full-V
case, whose moves sit early in the timeline (most tasks are timed again after each one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scaling import make_problem  # noqa: E402

from ppopt.solver.floor import best_floor  # noqa: E402
from ppopt.solver.local import TabuSearch  # noqa: E402


def time_iterations(case: tuple[int, int, bool, bool], iterations: int) -> tuple[float, float]:
    """Seconds for ``iterations`` iterations of the search from the case's best baseline, and
    the makespan of the best schedule it yields (the baseline's if none)."""
    problem = make_problem(*case)
    limit = problem.memory_caps
    floor = best_floor(problem, limit, "makespan")
    if floor is None:
        raise SystemExit(f"case {case}: no baseline fits the memory limit")
    search = TabuSearch(floor, limit)
    choose, calls = search._best_move, 0

    def counted(*args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return None if calls > iterations else choose(*args)  # None ends the search

    search._best_move = counted  # type: ignore[method-assign]
    began = time.perf_counter()
    found = list(search.run(1e9, deterministic=True))
    seconds = time.perf_counter() - began
    return seconds, found[-1].makespan if found else floor.makespan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", default="16,128,0,1", help="p,m,split,vshape (0 or 1)")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    p, m, split, vshape = (int(x) for x in args.case.split(","))
    case = (p, m, bool(split), bool(vshape))
    runs = [time_iterations(case, args.iterations) for _ in range(args.repeat)]
    seconds = [s for s, _ in runs]
    print(
        f"case {args.case}: {args.iterations} iterations, median {statistics.median(seconds):.2f} s"
        f" (runs {', '.join(f'{s:.2f}' for s in seconds)}), best makespan {runs[0][1]:.2f}"
    )


if __name__ == "__main__":
    main()

"""Drawing time of the Gantt picture (with its memory panel) and of the interactive page.

    python benchmarks/bench_drawing.py                 # p=16 m=64 and p=32 m=256, ZB-H1
    python benchmarks/bench_drawing.py --repeat 5 --out /tmp/draw

Each case is the ZB-H1 schedule of a split problem (F=B=W=1); the picture is drawn as
``ppopt solve -o x.png`` draws it (``ppopt.cli.outputs.draw_schedule``), the page as
``-o x.html`` writes it. Prints the median and the range of ``--repeat`` runs (seconds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ppopt.baselines import baseline  # noqa: E402
from ppopt.cli.outputs import draw_schedule  # noqa: E402
from ppopt.problem import Problem  # noqa: E402

CASES = ((16, 64), (32, 256))


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="keep the drawings in this folder")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    draw_schedule(baseline("1f1b", Problem.create(2, 2)), out / "warm.png")  # imports
    print("| case | tasks | picture (.png) median [min, max] s | page (.html) median s |")
    print("|---|---|---|---|")
    for p, m in CASES:
        schedule = baseline("zb-h1", Problem.create(p, m, 1, 1, weight=1))
        png = [timed(lambda: draw_schedule(schedule, out / f"p{p}m{m}.png"))  # noqa: B023
               for _ in range(args.repeat)]  # fmt: skip
        html = [timed(lambda: draw_schedule(schedule, out / f"p{p}m{m}.html"))  # noqa: B023
                for _ in range(args.repeat)]  # fmt: skip
        tasks = sum(len(row) for row in schedule.device_ops)
        print(f"| p={p} m={m} | {tasks} | {statistics.median(png):.2f} "
              f"[{min(png):.2f}, {max(png):.2f}] | {statistics.median(html):.2f} |")  # fmt: skip
    print(f"(drawings in {out})")


if __name__ == "__main__":
    main()

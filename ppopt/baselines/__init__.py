"""Hand-made schedules from the literature, each a function problem -> per-device orders.

:func:`baseline` times the orders with the timeline engine, so every baseline's times are the
exact float timeline of its order.
"""

from __future__ import annotations

from collections.abc import Callable

from ppopt.baselines.gpipe import gpipe_orders
from ppopt.baselines.greedy import greedy_baseline_orders
from ppopt.baselines.interleaved import interleaved_orders
from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.baselines.recompute import insert_recomputes
from ppopt.baselines.vmemory import vhalf_orders, vmin_orders
from ppopt.baselines.vshape import dualpipev_orders, dualpipev_pairs, v1f1b_orders, zbv_orders
from ppopt.baselines.zbauto import zb_auto_orders, zbv_auto_orders
from ppopt.baselines.zerobubble import zb_h1_orders, zb_h2_orders
from ppopt.checks import did_you_mean
from ppopt.errors import NoScheduleError, NotApplicableError, UnknownScheduleError
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline

OrderMaker = Callable[[Problem], list[list[Task]]]
PairMaker = Callable[[Problem], list[tuple[Task, Task]]]

#: Every baseline by its command-line name.
BASELINES: dict[str, OrderMaker] = {
    "1f1b": one_f_one_b_orders,
    "gpipe": gpipe_orders,
    "interleaved-1f1b": interleaved_orders,
    "zb-v": zbv_orders,
    "v-1f1b": v1f1b_orders,
    "dualpipev": dualpipev_orders,
    "v-half": vhalf_orders,
    "v-min": vmin_orders,
    "zb-h1": zb_h1_orders,
    "zb-h2": zb_h2_orders,
    "zb-auto": zb_auto_orders,
    "zbv-auto": zbv_auto_orders,
    "greedy": greedy_baseline_orders,
}


#: Baselines that run overlapped F+B pairs when the problem gives ``overlap_times``.
PAIRS: dict[str, PairMaker] = {"dualpipev": dualpipev_pairs}


def baseline(name: str, problem: Problem) -> Schedule:
    """The named baseline schedule of a problem, timed by the engine.

    A problem that recomputes gets the baseline's order with each recomputed micro-batch's
    R right before its backward (``recompute: all``: the full-recompute variant). Raises
    :class:`UnknownScheduleError` for a name not in :data:`BASELINES` and
    :class:`NotApplicableError` when the baseline is not defined for the problem."""
    try:
        make = BASELINES[name]
    except KeyError:
        known = ", ".join(BASELINES)
        raise UnknownScheduleError(
            f"schedule: unknown baseline {name!r}{did_you_mean(name, tuple(BASELINES))} "
            f"(known: {known})"
        ) from None
    orders = make(problem.without_recompute())
    pairs = PAIRS[name](problem) if problem.overlap is not None and name in PAIRS else ()
    return compute_timeline(problem, insert_recomputes(problem, orders), name, pairs)


def applicable_baselines(problem: Problem) -> dict[str, Schedule]:
    """Every baseline that can schedule this problem, by name."""
    out = {}
    for name in BASELINES:
        try:
            out[name] = baseline(name, problem)
        except (NotApplicableError, NoScheduleError):
            continue
    return out

"""Hand-made schedules from the literature, each a function problem -> per-device orders.

:func:`baseline` times the orders with the timeline engine, so every baseline's times are the
exact float timeline of its order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ppopt.baselines.gpipe import gpipe_orders
from ppopt.baselines.greedy import greedy_baseline_orders
from ppopt.baselines.interleaved import interleaved_orders
from ppopt.baselines.offload import insert_copies
from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.baselines.recompute import insert_recomputes
from ppopt.baselines.vmemory import vhalf_orders, vmin_orders
from ppopt.baselines.vshape import (
    dualpipe_orders,
    dualpipe_pairs,
    dualpipev_orders,
    dualpipev_pairs,
    v1f1b_orders,
    zbv_orders,
)
from ppopt.baselines.zbauto import zb_auto_orders, zbv_auto_orders
from ppopt.baselines.zerobubble import zb_h1_orders, zb_h2_orders
from ppopt.checks import did_you_mean
from ppopt.errors import NoScheduleError, NotApplicableError, UnknownScheduleError
from ppopt.microbatches import MICROBATCH_ORDERS, microbatch_permutation
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
    "dualpipe": dualpipe_orders,
    "v-half": vhalf_orders,
    "v-min": vmin_orders,
    "zb-h1": zb_h1_orders,
    "zb-h2": zb_h2_orders,
    "zb-auto": zb_auto_orders,
    "zbv-auto": zbv_auto_orders,
    "greedy": greedy_baseline_orders,
}


#: Baselines that run overlapped F+B pairs when the problem gives ``overlap_times``.
PAIRS: dict[str, PairMaker] = {"dualpipev": dualpipev_pairs, "dualpipe": dualpipe_pairs}

#: Baselines defined on two model copies (``copies: 2``); every other runs one copy.
TWO_COPIES = ("dualpipe", "gpipe", "greedy")


def baseline(name: str, problem: Problem) -> Schedule:
    """The named baseline schedule of a problem, timed by the engine.

    A problem that recomputes gets the baseline's order with each recomputed micro-batch's
    R right before its backward (``recompute: all``: the full-recompute variant); one that
    offloads gets its copies merged in (:func:`insert_copies`, ``offload: all``). Raises
    :class:`UnknownScheduleError` for a name not in :data:`BASELINES` and
    :class:`NotApplicableError` when the baseline is not defined for the problem.

    ``NAME@ORDER`` runs the micro-batches in another order (:data:`MICROBATCH_ORDERS`:
    ``given``, ``longest-first``, ``shortest-first`` by ``microbatch_scale``): the baseline
    schedules the problem with its micro-batches renumbered in that order, and its orders
    are mapped back to the problem's micro-batches."""
    base, order = split_order(name)
    try:
        make = BASELINES[base]
    except KeyError:
        known = ", ".join(BASELINES)
        raise UnknownScheduleError(
            f"schedule: unknown baseline {base!r}{did_you_mean(base, tuple(BASELINES))} "
            f"(known: {known})"
        ) from None
    if problem.copies == 2 and base not in TWO_COPIES:
        raise NotApplicableError(
            f"schedule: {base} runs one model copy; with copies: 2 use "
            f"{', '.join(TWO_COPIES)} or optimal"
        )
    plain = problem.without_recompute().without_offload()
    sequence = microbatch_permutation(plain.microbatch_scale, plain.num_microbatches, order)
    orders = make(plain.reordered(sequence))
    if sequence != sorted(sequence):
        orders = [[Task(t.kind, t.stage, sequence[t.microbatch]) for t in row] for row in orders]
    if problem.num_offloaded:
        return compute_timeline(problem, insert_copies(problem, orders), name)
    pairs = PAIRS[base](problem) if problem.overlap is not None and base in PAIRS else ()
    return compute_timeline(problem, insert_recomputes(problem, orders), name, pairs)


def split_order(name: str) -> tuple[str, str]:
    """``NAME@ORDER`` as ``(NAME, ORDER)`` (``given`` when no order is named); an unknown
    order is an :class:`UnknownScheduleError`."""
    base, _, order = name.partition("@")
    if not order:
        return base, "given"
    if order not in MICROBATCH_ORDERS:
        raise UnknownScheduleError(
            f"schedule: unknown micro-batch order {order!r} in {name!r} "
            f"(known: {', '.join(MICROBATCH_ORDERS)})"
        )
    return base, order


def ordered_names(problem: Problem, names: Iterable[str]) -> list[str]:
    """Each baseline name, followed, when the micro-batches differ, by its longest-first and
    shortest-first variants (``NAME@longest-first``, ``NAME@shortest-first``)."""
    out = []
    for name in names:
        out.append(name)
        if problem.is_scaled and "@" not in name and name in BASELINES:
            out += [f"{name}@{order}" for order in MICROBATCH_ORDERS[1:]]
    return out


def applicable_baselines(problem: Problem) -> dict[str, Schedule]:
    """Every baseline that can schedule this problem, by name."""
    out = {}
    for name in ordered_names(problem, BASELINES):
        try:
            out[name] = baseline(name, problem)
        except (NotApplicableError, NoScheduleError):
            continue
    return out

"""Choosing the partition of a layer profile jointly with the schedule (``partition: auto``).

The search, under the time limit of the whole run:

1. **Seeds**: the partitions ppopt compares against (:func:`baseline_partitions`): the even
   split, torchtitan's first/last stage with fewer layers (its best offset), the
   balanced-by-time min-max split; and the minimiser of the relaxation of step 4.
2. **Descent on the bound**: from each seed, move one cut point by one or two layers while
   that lowers the problem's lower bound (:func:`ppopt.solver.bounds.lower_bound`, memory
   idle included), ties broken by the other devices' bounds, largest first (so a plateau of
   the largest still moves the rest down).
3. **Exact**: the baseline partitions and the best few by bound are timed with the
   baselines (the optimizer's floor, :func:`ppopt.solver.floor.best_floor`); up to
   :data:`SOLVED` of them are solved by :func:`ppopt.solver.solve`, the best floor last
   with twice the others' share of the time left (one whose bound is not below the best
   floor or the best solve so far cannot win and is left out), and the shortest wins: the
   final choice is the optimizer's. A partition is timed once (cached).
4. **Bound over every partition**: a makespan no partition can beat, for the reported gap: the
   largest of one micro-batch's critical path (the same for every partition with the fewest
   layers on stage 0), the total work over the devices, and the exact min over cut points
   (:func:`ppopt.partition.bottleneck_partition`) of the largest per-stage bound "forward
   chain before the stage + all of its work + (full backward) the backward chain below it",
   which holds for every schedule of every partition since one device runs the whole stage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from ppopt.errors import NoScheduleError, ProblemError
from ppopt.limits import MemoryLimit
from ppopt.partition import (
    LayeredProblem,
    balanced_sizes,
    bottleneck_partition,
    even_sizes,
    fewer_first_last_offsets,
    fewer_first_last_sizes,
)
from ppopt.problem import Problem
from ppopt.solver.bounds import critical_path, device_bound, device_span_bound, lower_bound
from ppopt.solver.floor import best_floor, objective_value
from ppopt.solver.options import Objective, ProgressCallback, SolverOptions
from ppopt.solver.result import SolveResult
from ppopt.solver.run import MIN_SOLVE_SECONDS, solve

#: Partitions solved exactly by the optimizer, and timed with the baselines before that.
SOLVED = 3
TIMED = 8
#: torchtitan offsets timed with the baselines, of those with the lowest bounds.
OFFSETS_TIMED = 3
#: Shares of the time limit for the descent and for timing the baselines, each counted from
#: the start of its phase (the optimizer gets the rest), and the most bound evaluations of
#: the descent (also its whole budget when deterministic).
DESCENT_SHARE = 0.1
TIMING_SHARE = 0.1
MAX_EVALUATIONS = 20_000
#: Timing stops past this share of the limit, baseline partitions or not (one is always
#: timed): the solves need the rest.
PRESOLVE_SHARE = 0.4
#: Weight of the best floor's solve in the solving time (:func:`_solve_share`).
LEAD_WEIGHT = 2.0
#: Time kept back at the end of the search (seconds, and at most this share of the limit).
RESERVE_SECONDS = 2.0
RESERVE_SHARE = 0.1
#: Cut-point moves of the descent, in layers.
MOVES = (1, 2)

Sizes = tuple[int, ...]
Score = tuple[float, tuple[float, ...]]


@dataclass(frozen=True)
class Candidate:
    """One partition the search looked at closely: its name (``even``, ``balanced``,
    ``fewer-first-last(a,b)``, or ``searched`` when the descent found it), layer counts,
    lower bound, the best baseline's makespan (``None``: none fits) and the optimizer's
    (``None``: not solved)."""

    label: str
    sizes: Sizes
    bound: float
    floor: float | None = None
    solved: float | None = None


@dataclass(frozen=True)
class PartitionResult:
    """The chosen partition's solve, every candidate looked at closely, how many partitions
    the descent evaluated, a lower bound valid for every partition and the search's time."""

    result: SolveResult
    sizes: Sizes
    candidates: tuple[Candidate, ...]
    evaluated: int
    lower_bound: float
    wall_time: float

    @property
    def gap(self) -> float:
        """``(value - bound over every partition) / value``: how far from the best partition
        with its best schedule the choice can be."""
        value = self.result.objective_value
        return max(0.0, (value - self.lower_bound) / value) if value > 0 else 0.0


def solve_partition(
    layered: LayeredProblem,
    options: SolverOptions | None = None,
    progress: ProgressCallback | None = None,
) -> PartitionResult:
    """Choose the partition and its schedule (see the module); the whole search keeps to
    ``options.time_limit``. Raises :class:`NoScheduleError` when no partition fits."""
    return _Search(layered, options or SolverOptions(), progress).run()


def baseline_partitions(
    layered: LayeredProblem,
    objective: str = Objective.MAKESPAN,
    floor: Callable[[Sizes], float] | None = None,
) -> dict[str, Sizes]:
    """The partitions ppopt compares against, by name: ``even``, torchtitan's
    ``fewer-first-last(a,b)`` at its best offset (the lowest bound of every offset, then the
    best baseline schedule of the :data:`OFFSETS_TIMED` lowest) and ``balanced``. Partitions
    whose parameters do not fit are left out. ``floor`` gives a partition's best baseline
    value (default: computed here; the search passes its cache, so no partition is timed
    twice)."""
    if floor is None:
        floor = lambda sizes: _floor(layered.problem(sizes), objective)  # noqa: E731
    n, stages = len(layered.profile), layered.num_stages
    out = {"even": even_sizes(n, stages)}
    offsets = {}
    for first, last in fewer_first_last_offsets(n, stages):
        sizes = fewer_first_last_sizes(n, stages, first, last)
        if sizes is not None and (first, last) != (0, 0) and layered.fits(sizes):
            offsets[sizes] = f"fewer-first-last({first},{last})"
    offsets = {sizes: label for sizes, label in offsets.items() if _buildable(layered, sizes)}
    if offsets:
        ranked = sorted(offsets, key=lambda sizes: _bound(layered.problem(sizes), objective))
        best = min(ranked[:OFFSETS_TIMED], key=floor)
        out[offsets[best]] = best
    out["balanced"] = balanced_sizes(layered.profile, stages)
    return {label: sizes for label, sizes in out.items() if _buildable(layered, sizes)}


def _solve_share(left: float, k: int, planned: int) -> float:
    """The seconds of solve ``k`` (0-based) of ``planned``, the last being the best floor's
    (the likeliest winner): it counts :data:`LEAD_WEIGHT` times, the others once, so the
    optimizer's result on the winner, which improves with its time, is not starved by an
    equal split; and as it runs last it also gets whatever the others' bounds spared."""
    rest = planned - k - 1  # solves after this one, the lead among them unless this is it
    if rest == 0:
        return left
    return left / (rest - 1 + LEAD_WEIGHT + 1)


def _buildable(layered: LayeredProblem, sizes: Sizes) -> bool:
    """Whether a partition fits the memory and gives a valid problem (every stage's sums
    > 0: a stage of layers without weights has no W)."""
    if not layered.fits(sizes):
        return False
    try:
        layered.problem(sizes)
    except ProblemError:
        return False
    return True


def _bound(problem: Problem, objective: str) -> float:
    return lower_bound(problem, objective, problem.memory_caps)


def _floor(problem: Problem, objective: str) -> float:
    """The best baseline schedule's value under the limit (infinite when none fits)."""
    floor = best_floor(problem, problem.memory_caps, objective)
    return math.inf if floor is None else objective_value(floor, objective)


def partition_lower_bound(layered: LayeredProblem, objective: str = Objective.MAKESPAN) -> float:
    """A makespan (or span) that no schedule of any partition of the layers can beat
    (module, step 4)."""
    work = layered.even.total_work() / layered.num_devices
    if objective == Objective.SPAN:
        return max(work, relaxation(layered, objective)[0])
    n, stages = len(layered.profile), layered.num_stages
    fewest_first = (1, *even_sizes(n - 1, stages - 1)) if stages > 1 else (n,)
    unlimited = replace(layered, memory_limit=MemoryLimit())
    path = critical_path(unlimited.problem(fewest_first))
    return max(path, work, relaxation(layered, objective)[0])


def relaxation(layered: LayeredProblem, objective: str = Objective.MAKESPAN) -> tuple[float, Sizes]:
    """The min over cut points of the largest per-stage bound, and its minimiser (for the
    span: the stage's work alone)."""
    profile, even = layered.profile, layered.even
    forward, backward = profile.prefix("forward"), profile.prefix("backward")
    step = profile.prefix("step")
    hops, back_hops = [0.0], [0.0]  # latencies down to stage s: forward, and backward back
    for s in range(1, layered.num_stages):
        hops.append(hops[-1] + even.hop(s - 1, s))
        back_hops.append(back_hops[-1] + even.hop(s, s - 1))
    m, split = layered.num_microbatches, profile.is_split
    span = objective == Objective.SPAN

    def cost(stage: int, start: int, stop: int) -> float:
        work = m * (step[stop] - step[start])
        if span:
            return work
        tail = 0.0 if split else backward[start] + back_hops[stage]
        return forward[start] + hops[stage] + work + tail

    return bottleneck_partition(len(profile), layered.num_stages, cost)


@dataclass
class _Search:
    """One partition search's state: the clock, the bound of every partition evaluated."""

    layered: LayeredProblem
    options: SolverOptions
    progress: ProgressCallback | None

    def __post_init__(self) -> None:
        self.started = time.perf_counter()
        self.scores: dict[Sizes, Score] = {}
        self.problems: dict[Sizes, Problem] = {}
        self.floors: dict[Sizes, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def run(self) -> PartitionResult:
        seeds = baseline_partitions(self.layered, self.objective, self.floor)
        minimiser = relaxation(self.layered, self.objective)[1]
        starts = [*seeds.values(), *([minimiser] if self.layered.fits(minimiser) else [])]
        for sizes in starts:
            self.score(sizes)
        self._descend(list(dict.fromkeys(starts)))
        timed = self._time_baselines(seeds)
        if not timed:
            raise NoScheduleError("no schedule: no partition of the layers fits the memory limit")
        return self._solve_best(timed)

    # ---------------------------------------------------------------------------- scoring

    def problem(self, sizes: Sizes) -> Problem:
        if sizes not in self.problems:
            self.problems[sizes] = self.layered.problem(sizes)
        return self.problems[sizes]

    def floor(self, sizes: Sizes) -> float:
        """The partition's best baseline value (infinite: none fits), timed once."""
        if sizes not in self.floors:
            self.floors[sizes] = _floor(self.problem(sizes), self.objective)
        return self.floors[sizes]

    def score(self, sizes: Sizes) -> Score:
        """The partition's lower bound, then its devices' bounds largest first (ties)."""
        if sizes not in self.scores:
            try:
                problem = self.problem(sizes)
            except ProblemError:  # e.g. a stage of layers without weights: W sums to 0
                self.scores[sizes] = (math.inf, ())
                return self.scores[sizes]
            caps = problem.memory_caps or (None,) * problem.num_devices
            per_device = device_span_bound if self.objective == Objective.SPAN else device_bound
            devices = sorted(
                (per_device(problem, d, caps[d]) for d in range(problem.num_devices)), reverse=True
            )
            bound = lower_bound(problem, self.objective, problem.memory_caps)
            self.scores[sizes] = (bound, tuple(devices))
        return self.scores[sizes]

    def _reserve(self) -> float:
        """Seconds kept back from the last solves for what follows them (reading back a
        solve, the bound over every partition), so the search ends inside its limit."""
        return min(RESERVE_SECONDS, RESERVE_SHARE * self.options.time_limit)

    @property
    def objective(self) -> Objective:
        return self.options.objective

    # ---------------------------------------------------------------------------- descent

    def _descend(self, starts: list[Sizes]) -> None:
        """Steepest descent on the score from every start, within its share of the time."""
        budget = self.elapsed() + DESCENT_SHARE * self.options.time_limit
        for sizes in starts:
            while not self._out_of_descent_budget(budget):
                better = min(self._neighbours(sizes), key=self.score, default=None)
                if better is None or self.score(better) >= self.score(sizes):
                    break
                sizes = better

    def _out_of_descent_budget(self, budget: float) -> bool:
        if len(self.scores) >= MAX_EVALUATIONS:
            return True
        return not self.options.deterministic and self.elapsed() > budget

    def _neighbours(self, sizes: Sizes) -> Iterator[Sizes]:
        """Partitions one cut point away (by :data:`MOVES` layers) that fit the memory."""
        for cut in range(len(sizes) - 1):
            for move in (*MOVES, *(-k for k in MOVES)):
                left, right = sizes[cut] + move, sizes[cut + 1] - move
                if left < 1 or right < 1:
                    continue
                out = (*sizes[:cut], left, right, *sizes[cut + 2 :])
                if self.layered.fits(out):
                    yield out

    # ---------------------------------------------------------------------------- exact

    def _time_baselines(self, seeds: dict[str, Sizes]) -> list[Candidate]:
        """Every baseline partition, then the best by bound, timed with the floor (the
        latter while the phase's time lasts)."""
        labels = {sizes: label for label, sizes in reversed(list(seeds.items()))}
        ranked = [
            sizes
            for sizes in sorted(self.scores, key=self.score)
            if self.score(sizes)[0] < math.inf
        ]
        usable = list(
            dict.fromkeys(sizes for sizes in seeds.values() if self.score(sizes)[0] < math.inf)
        )
        chosen = list(dict.fromkeys([*usable, *ranked[:TIMED]]))
        budget = math.inf  # the baseline partitions are always timed, then the phase's share
        out = []
        for k, sizes in enumerate(chosen):
            if k == len(usable):
                budget = self.elapsed() + TIMING_SHARE * self.options.time_limit
            if k >= len(usable) and sizes not in self.floors and self._out_of_timing(budget):
                break
            floor = self.floor(sizes)
            out.append(
                Candidate(
                    label=labels.get(sizes, "searched"),
                    sizes=sizes,
                    bound=self.score(sizes)[0],
                    floor=None if floor == math.inf else floor,
                )
            )
        return out

    def _out_of_timing(self, budget: float) -> bool:
        """Past the timing phase's share, or past :data:`PRESOLVE_SHARE` of the limit (the
        solves need the rest); never when deterministic."""
        if self.options.deterministic:
            return False
        elapsed = self.elapsed()
        return elapsed > budget or elapsed > PRESOLVE_SHARE * self.options.time_limit

    def _solve_best(self, timed: list[Candidate]) -> PartitionResult:
        """Solve up to :data:`SOLVED` candidates: the best floor and the next best floors
        whose bound is below it (the others cannot beat the schedule already there), the
        best floor last with the largest share (:func:`_solve_share`), leaving out those
        whose bound cannot beat the best solve so far; keep the shortest."""
        order = sorted(timed, key=lambda c: (math.inf if c.floor is None else c.floor, c.bound))
        best_floor_value = order[0].floor if order[0].floor is not None else math.inf
        others = [c for c in order[1:] if c.bound < best_floor_value][: SOLVED - 1]
        planned = [*others, order[0]]
        best: tuple[SolveResult, Sizes] | None = None
        solved: dict[Sizes, float] = {}
        for k, candidate in enumerate(planned):
            if best is not None and best[0].objective_value <= candidate.bound:
                continue  # its bound says it cannot be shorter
            left = self.options.time_limit - self.elapsed() - self._reserve()
            if self.options.deterministic:
                share = self.options.time_limit / SOLVED
            elif best is not None and left < MIN_SOLVE_SECONDS:
                break
            else:
                share = _solve_share(left, k, len(planned))
            options = replace(self.options, time_limit=max(share, MIN_SOLVE_SECONDS))
            try:
                result = solve(self.problem(candidate.sizes), options, self.progress)
            except NoScheduleError:
                continue
            solved[candidate.sizes] = result.objective_value
            if best is None or result.objective_value < best[0].objective_value:
                best = (result, candidate.sizes)
            if result.interrupted:
                break
        if best is None:
            raise NoScheduleError("no schedule: the optimizer found none for any partition")
        candidates = tuple(replace(c, solved=solved.get(c.sizes)) for c in order)
        return PartitionResult(
            result=best[0],
            sizes=best[1],
            candidates=candidates,
            evaluated=len(self.scores),
            lower_bound=min(
                partition_lower_bound(self.layered, self.objective), best[0].objective_value
            ),
            wall_time=self.elapsed(),
        )

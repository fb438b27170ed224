"""Tabu search over device orders along the critical path: the large path's first improver,
and with ``overlap_times`` the improver of overlapped F&B pairs on either path.

The makespan of a schedule timed from its orders is the length of a *critical path*: a chain
of tasks, each starting the moment its dependency (plus latency) or its device predecessor
ends. Only changing the order on that path can shorten it, and (as in Nowicki and Smutnicki's
job-shop search) only at the ends of its *blocks*, the runs of tasks back to back on one
device: each move swaps the first two or the last two *slots* of a block. A slot is one task,
or an overlapped pair (docs/contract.md §1), which moves as one. For the span objective the
path is the one that ends the device with the largest span, and the key its span. With
``overlap_times`` two more moves act on the slots of the path: *pair* an adjacent F and B
(different micro-batches, either way round) into one slot, and *unpair* a pair into its F
then its B or its B then its F. Every candidate is scored by the longest path through the
slots it changes (Taillard's estimate), the most promising are timed exactly by the engine
(:class:`ppopt.timeline.TaskTable`, :meth:`~ppopt.timeline.TaskTable.paired_times` with
pairs), the best one is taken even when it is worse (the way out of local optima), and undoing
it is forbidden for :data:`TENURE` iterations unless that gives a new best. Ties on the
makespan go to the smaller sum of end times, which favours moves that pull work earlier.

A swap never deadlocks: the second slot started when the first ended, so no chain leads from
it to the first (that chain would make the first start after the second ended). Unpairing
never deadlocks either (merging the two tasks again gives the pair's graph back); pairing can
(the forward then waits for its partner's inputs), and such a candidate is dropped. A move is
taken only if the device's memory fits at the start of every slot it moves (memory at a start
depends on the device's order alone; a pair allocates both parts' memory at its start). The
search sees whole micro-batch timelines of 10k-50k tasks, where exact window re-solves
(:mod:`ppopt.solver.window`) are blind to warm-up congestion spread over many devices.

An iteration costs about one timing, not one per candidate: a trial is timed again only from
the first moved task's start on (:meth:`~ppopt.timeline.TaskTable.times_after`; everything
that started before stands), the estimate is a lower bound of a move's makespan so the
shortlist stops timing once estimates pass the chosen move's makespan, only the tails of
tasks that can reach the moved slots are recomputed, and a new best is built into a
:class:`~ppopt.schedule.Schedule` once the run of iterations improving it ends.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from ppopt.errors import DeadlockError
from ppopt.limits import within
from ppopt.metrics import Objective
from ppopt.schedule import Schedule
from ppopt.tasks import Kind
from ppopt.timeline import TaskTable, compute_timeline

#: Iterations during which a move may not be undone (measured on the p=32 m=256 split
#: benchmark case: tenures 5, 8 and 12 end within 0.01 of each other).
TENURE = 8
#: Candidates timed exactly per iteration, the most promising by the estimate of
#: :meth:`TabuSearch._estimate` (Taillard's: the longest path through the changed slots).
SHORTLIST = 3
#: How far above a move's exact makespan its estimate can come out in floats (the estimate
#: adds the same durations in another order; tests/solver/test_local.py checks 1e-9).
ESTIMATE_SLACK = 2e-9
#: Seconds at most between two new bests yielded while the search keeps improving (unless
#: ``--deterministic``, whose yields must not depend on the clock): the progress lines.
REPORT_SECONDS = 0.5
#: ``--deterministic``: task timings per second of budget (one timing of a 24,576-task
#: schedule takes about 27 ms on the 2-core benchmark machine: ~0.9 million tasks a second).
TASKS_PER_SECOND = 900_000

#: Overlapped pairs: forward id -> (backward id, the pair's duration), as the engine takes them.
Pairs = dict[int, tuple[int, float]]


class Move(NamedTuple):
    """A change of ``device``'s order at flat position ``k``: ``SWAP`` the slot starting
    there with the next one, ``PAIR`` the two single tasks at ``k, k+1``, or ``UNPAIR`` the
    pair at ``k`` into its forward then backward (``backward_first``: the other way)."""

    kind: int
    device: int
    k: int
    backward_first: bool = False


SWAP, PAIR, UNPAIR = 0, 1, 2


@dataclass
class _Timed:
    """Orders as task ids, their pairs, their exact times, and the search's key for them."""

    orders: list[list[int]]
    start: list[float]
    end: list[float]
    pairs: Pairs

    @property
    def makespan(self) -> float:
        return max(self.end)

    def widest(self) -> int:
        """The device with the largest span (first start to last end)."""
        return max(
            (d for d, row in enumerate(self.orders) if row),
            key=lambda d: self.end[self.orders[d][-1]] - self.start[self.orders[d][0]],
        )

    def value(self, objective: str) -> float:
        """The makespan, or the largest per-device span."""
        if objective == Objective.SPAN:
            row = self.orders[self.widest()]
            return self.end[row[-1]] - self.start[row[0]]
        return self.makespan

    def key(self, objective: str = Objective.MAKESPAN) -> tuple[float, float]:
        """The objective first (rounded off float noise), then the sum of end times."""
        return round(self.value(objective), 9), sum(self.end)


class TabuSearch:
    """The search state for one problem: the timing table, memory changes and the limit."""

    def __init__(
        self,
        schedule: Schedule,
        limit: tuple[float, ...] | None,
        objective: str = Objective.MAKESPAN,
    ) -> None:
        self.problem = schedule.problem
        self.objective = objective
        self.name = schedule.name
        self.table = TaskTable(self.problem)
        self.limit = limit
        index = self.table.index
        self.alloc = [0.0] * index.size  # memory a task takes when it starts
        self.change = [0.0] * index.size  # ... less what it frees when it ends
        for tid in range(index.size):
            kind, stage, microbatch = index.task(tid)
            taken, freed = self.problem.op_memory_change(kind, stage, microbatch)
            self.alloc[tid], self.change[tid] = taken, taken - freed
        orders = self.table.ids(schedule.orders())
        pairs = {
            index.id(f): (index.id(b), self.problem.pair_duration(f.stage, b.stage))
            for f, b in schedule.pairs
        }
        timed = self._timed(orders, pairs)
        assert timed is not None  # a valid schedule's orders run
        self.current = timed
        self.where = [(0, 0)] * index.size  # (device, position) of each task, kept current
        #: The tails of :meth:`_tails` (and a sentinel 0.0), and the tasks the last move
        #: moved (``None``: no move since the tails were computed).
        self._tail: list[float] | None = None
        self._moved: list[int] | None = None
        self._memory: dict[int, list[float]] = {}  # per device, :meth:`_levels`
        for device, order in enumerate(orders):
            self._place(device, 0, len(order), order)

    def run(
        self, seconds: float, deterministic: bool = False, patience: int | None = None
    ) -> Iterator[Schedule]:
        """Search for ``seconds`` (wall clock, or a fixed amount of work when
        ``deterministic``), or until ``patience`` iterations in a row shorten nothing;
        yield every schedule shorter than all before it once the iterations that keep
        shortening it stop (building a schedule costs more than an iteration) or, unless
        ``deterministic``, :data:`REPORT_SECONDS` after the last one yielded (the progress
        a user sees), and the last one when the search ends or Ctrl-C comes."""
        pending: _Timed | None = None
        reported = time.perf_counter()
        try:
            for shorter in self._iterations(seconds, deterministic, patience):
                if shorter is not None:
                    pending = shorter
                    if deterministic or time.perf_counter() - reported < REPORT_SECONDS:
                        continue
                if pending is not None:
                    yield self.schedule(pending)
                    pending, reported = None, time.perf_counter()
        except KeyboardInterrupt:
            if pending is not None:
                yield self.schedule(pending)
            raise
        if pending is not None:
            yield self.schedule(pending)

    def _iterations(
        self, seconds: float, deterministic: bool, patience: int | None
    ) -> Iterator[_Timed | None]:
        """The search's iterations: after each, the new orders if they are shorter than all
        before them, else ``None``."""
        best = self.current.key(self.objective)
        shortest = best[0]  # the objective of the last new best
        tabu: dict[tuple[int, ...], int] = {}
        budget = seconds * TASKS_PER_SECOND
        clock, iteration, last_best = time.perf_counter(), 0, 0
        while patience is None or iteration - last_best < patience:
            elapsed = (time.perf_counter() - clock) * TASKS_PER_SECOND
            if (self.table.timed if deterministic else elapsed) >= budget:
                return
            iteration += 1
            chosen = self._best_move(tabu, iteration, best)
            if chosen is None:
                return
            key, move, trial = chosen
            tabu[self._undo(move)] = iteration + TENURE
            span = self._extent(move)
            self.current = trial
            row = trial.orders[move.device]
            self._place(move.device, move.k, move.k + span, row)
            self._memory.pop(move.device, None)
            self._moved = row[move.k : move.k + span]
            best = min(best, key)
            if best[0] < shortest:
                shortest, last_best = best[0], iteration
                yield trial
            else:
                yield None

    def _best_move(
        self, tabu: dict[tuple[int, ...], int], iteration: int, best: tuple[float, float]
    ) -> tuple[tuple[float, float], Move, _Timed] | None:
        """The best of the :data:`SHORTLIST` most promising moves, each timed exactly; a
        tabu move counts only if it gives a new best (and is timed only if its estimate
        could). For the makespan the estimate is a lower bound of the move's makespan, so
        once it exceeds the chosen move's the rest are not timed: they cannot be chosen."""
        tails = self._tails()
        scored = sorted((self._estimate(move, tails), move) for move in self.candidates())
        chosen: tuple[tuple[float, float], Move, _Timed] | None = None
        timed = 0
        bounded = self.objective == Objective.MAKESPAN
        for estimate, move in scored:
            if timed >= SHORTLIST and chosen is not None:
                break
            if bounded and chosen is not None and estimate > chosen[0][0] + ESTIMATE_SLACK:
                break
            banned = tabu.get(self._made(move), 0) >= iteration
            if banned and estimate >= best[0]:
                continue
            trial = self._trial(move)
            if trial is None:
                continue  # a pairing that deadlocks
            timed += 1
            key = trial.key(self.objective)
            if (not banned or key < best) and (chosen is None or key < chosen[0]):
                chosen = (key, move, trial)
        return chosen

    def schedule(self, timed: _Timed | None = None) -> Schedule:
        """The current orders (or ``timed``'s) as a schedule: the engine's timeline of the
        validated orders."""
        timed = self.current if timed is None else timed
        task = self.table.index.task
        pairs = [(task(f), task(b)) for f, (b, _) in timed.pairs.items()]
        tasks = self.table.tasks(timed.orders)
        return compute_timeline(self.problem, tasks, self.name, pairs, table=self.table)

    def _timed(
        self, orders: list[list[int]], pairs: Pairs, since: float | None = None
    ) -> _Timed | None:
        """The orders timed exactly (``None`` if they deadlock); ``since``: the current start
        of the first task they move, before which the current times stand (only the rest is
        timed again, :meth:`~ppopt.timeline.TaskTable.times_after`)."""
        try:
            if pairs:
                return _Timed(orders, *self.table.paired_times(orders, pairs), pairs)
            if since is None:
                return _Timed(orders, *self.table.times(orders), pairs)
            cur = self.current
            cuts = [bisect_left(row, since, key=cur.start.__getitem__) for row in cur.orders]
            return _Timed(orders, *self.table.times_after(orders, cur.start, cur.end, cuts), pairs)
        except DeadlockError:
            return None

    def _place(self, device: int, first: int, last: int, row: list[int]) -> None:
        """Record the positions ``first .. last-1`` of ``device``'s order in :attr:`where`."""
        for k in range(first, last):
            self.where[row[k]] = (device, k)

    # ------------------------------------------------------------------------------- slots

    def _slot(self, device: int, k: int) -> tuple[int, ...]:
        """The slot starting at position ``k`` of ``device``: its task, or a pair's two."""
        tid = self.current.orders[device][k]
        pair = self.current.pairs.get(tid)
        return (tid,) if pair is None else (tid, pair[0])

    def _slot_start(self, device: int, k: int) -> int:
        """Position of the first task of the slot holding position ``k``."""
        order, pairs = self.current.orders[device], self.current.pairs
        if k > 0 and order[k - 1] in pairs and pairs[order[k - 1]][0] == order[k]:
            return k - 1
        return k

    def _slot_time(self, slot: tuple[int, ...]) -> float:
        """How long a slot runs: its task's duration, or the pair's."""
        if len(slot) == 1:
            return self.table.dur[slot[0]]
        pair = self.current.pairs.get(slot[0])
        return pair[1] if pair is not None else self._pair_time(*slot)

    def _pair_time(self, forward: int, backward: int) -> float:
        task = self.table.index.task
        return self.problem.pair_duration(task(forward).stage, task(backward).stage)

    # ------------------------------------------------------------------------------- moves

    def _extent(self, move: Move) -> int:
        """How many positions of its device's order a move rewrites, from ``move.k``."""
        if move.kind == SWAP:
            first = self._slot(move.device, move.k)
            return len(first) + len(self._slot(move.device, move.k + len(first)))
        return 2

    def _rewrite(self, move: Move) -> list[tuple[int, ...]]:
        """The slots that replace positions ``k .. k + extent - 1`` under the move."""
        device, k = move.device, move.k
        if move.kind == SWAP:
            first = self._slot(device, k)
            return [self._slot(device, k + len(first)), first]
        f, b = self._two(move)
        if move.kind == PAIR:
            return [(f, b)]
        return [(b,), (f,)] if move.backward_first else [(f,), (b,)]

    def _two(self, move: Move) -> tuple[int, int]:
        """A pairing's or a split's forward and backward (positions ``k, k+1``, either way
        round for a pairing)."""
        a, b = self.current.orders[move.device][move.k : move.k + 2]
        return (b, a) if self.table.index.task(a).kind == Kind.B else (a, b)

    def _made(self, move: Move) -> tuple[int, ...]:
        """The tabu key of what a move makes: a slot order (first tasks, earlier first), a
        pair ``(f, b, 1)`` or a split ``(f, b, 2)``."""
        row = self.current.orders[move.device]
        if move.kind == SWAP:
            second = move.k + len(self._slot(move.device, move.k))
            return (row[second], row[move.k])
        f, b = self._two(move)
        return (f, b, 1) if move.kind == PAIR else (f, b, 2)

    def _undo(self, move: Move) -> tuple[int, ...]:
        """The tabu key of the move that would undo ``move`` (taken before it is made)."""
        row = self.current.orders[move.device]
        if move.kind == SWAP:
            second = move.k + len(self._slot(move.device, move.k))
            return (row[move.k], row[second])
        f, b = self._two(move)
        return (f, b, 2) if move.kind == PAIR else (f, b, 1)

    def _trial(self, move: Move) -> _Timed | None:
        """The current orders with the move made, timed (``None`` if they deadlock)."""
        cur = self.current
        device, k = move.device, move.k
        slots = self._rewrite(move)
        orders = list(cur.orders)
        row = list(orders[device])
        row[k : k + self._extent(move)] = [tid for slot in slots for tid in slot]
        orders[device] = row
        pairs = cur.pairs
        if move.kind == PAIR:
            f, b = slots[0]
            pairs = {**pairs, f: (b, self._pair_time(f, b))}
        elif move.kind == UNPAIR:
            pairs = dict(pairs)
            del pairs[cur.orders[device][k]]
        return self._timed(orders, pairs, since=cur.start[cur.orders[device][k]])

    def _swapped(self, device: int, k: int) -> _Timed:
        """The current orders with the slot at ``k`` of ``device`` and the next swapped."""
        trial = self._trial(Move(SWAP, device, k))
        assert trial is not None  # a swap of a critical block's slots never deadlocks
        return trial

    def candidates(self) -> list[Move]:
        """Swaps of the first two and the last two slots of each of the critical path's
        blocks, where the second slot does not depend on the first, and with
        ``overlap_times`` pairings and splits of the path's slots; all where memory allows."""
        moves = []
        for device, first, last in self._blocks():
            final = self._slot_start(device, last)
            for k in {first, self._slot_start(device, final - 1)}:
                move = Move(SWAP, device, k)
                if self._independent(device, k) and self._fits(move):
                    moves.append(move)
        if self.problem.overlap is not None:
            moves += [move for move in self._pair_moves() if self._fits(move)]
        return moves

    def _pair_moves(self) -> list[Move]:
        """Pairing a single F or B of the critical path with the single task next to it
        (if that is a B or an F of another micro-batch), and splitting each pair of the path
        both ways."""
        moves: set[Move] = set()
        task = self.table.index.task
        for device, k in self._path():
            order = self.current.orders[device]
            slot = self._slot(device, k)
            if len(slot) == 2:
                moves.update(Move(UNPAIR, device, k, flip) for flip in (False, True))
                continue
            for at in (k - 1, k):
                if at < 0 or at + 1 >= len(order):
                    continue
                a, b = order[at], order[at + 1]
                if self._slot_start(device, at) != at or len(self._slot(device, at + 1)) != 1:
                    continue
                if len(self._slot(device, at)) != 1:
                    continue
                ta, tb = task(a), task(b)
                if ta.kind == Kind.B:
                    ta, tb = tb, ta  # a B then an F: the pair runs the F first
                if self.problem.pair_fault(ta, tb) is None:
                    moves.add(Move(PAIR, device, at))
        return sorted(moves)

    def _independent(self, device: int, k: int) -> bool:
        """Whether no task of the slot after position ``k``'s slot depends on that slot."""
        first = self._slot(device, k)
        second = self._slot(device, k + len(first))
        deps = self.table.deps
        return not any(before in first for tid in second for before, _ in deps[tid])

    def _fits(self, move: Move) -> bool:
        """Whether memory fits at the start of every slot the move rewrites."""
        if self.limit is None:
            return True
        device = move.device
        level = self._levels(device)[move.k]
        cap = self.limit[device]
        for slot in self._rewrite(move):
            if not within(level + sum(self.alloc[tid] for tid in slot), cap):
                return False
            level += sum(self.change[tid] for tid in slot)
        return True

    def _levels(self, device: int) -> list[float]:
        """The memory ``device`` holds before each position of its current order (kept until
        a move changes the order)."""
        levels = self._memory.get(device)
        if levels is None:
            change = self.change
            order = self.current.orders[device]
            levels = self._memory[device] = [0.0, *accumulate(change[tid] for tid in order)]
        return levels

    # ------------------------------------------------------------------------ the critical path

    def _tails(self) -> list[float]:
        """For every task, the longest chain from its start to the end of the schedule under
        the current orders: its slot's duration, then the longest of the device's next slot
        and the dependents (of either part of a pair) plus latency. Tasks are taken latest
        start first, a reverse topological order of the slots since every edge goes to a
        later start (durations are positive). A chain is a fixed sum of durations and
        latencies, so after a move only the tails of the tasks that can reach the moved slots
        change: those that start before the last of them, and the moved slots themselves
        (:attr:`_moved`); the others are kept."""
        cur, dur = self.current, self.table.dur
        pairs = cur.pairs
        size = len(dur)
        if self._tail is None or self._moved is None:
            todo = sorted(range(size), key=cur.start.__getitem__, reverse=True)
            tail = [0.0] * (size + 1)
        else:
            todo = self._reaching_moved(self._moved)
            tail = self._tail
        self._tail, self._moved = tail, None
        self.table.timed += len(todo)
        orders, where = cur.orders, self.where
        dependents = self.table.dependents
        partner = {b: f for f, (b, _) in pairs.items()}
        for tid in todo:
            if tid in partner:
                continue  # a pair's backward: timed with its forward
            pair = pairs.get(tid)
            last = tid if pair is None else pair[0]
            device, k = where[last]
            row = orders[device]
            longest = tail[row[k + 1]] if k + 1 < len(row) else 0.0
            for member in (tid,) if pair is None else (tid, last):
                for nxt, latency in dependents[member]:
                    via = latency + tail[nxt]
                    if via > longest:
                        longest = via
            tail[tid] = (dur[tid] if pair is None else pair[1]) + longest
            if pair is not None:
                tail[last] = tail[tid]
        return tail[:size]

    def _reaching_moved(self, moved: list[int]) -> list[int]:
        """The tasks whose tails moving ``moved`` can change, latest start first: the moved
        and every task that starts before the last of them (only those can reach it)."""
        start = self.current.start.__getitem__
        stale = max(map(start, moved))
        todo = set(moved)
        for row in self.current.orders:
            todo.update(row[: bisect_left(row, stale, key=start)])
        return sorted(todo, key=start, reverse=True)

    def _estimate(self, move: Move, tail: list[float]) -> float:
        """The longest path through the slots the move rewrites, from the current starts
        and ``tail``s of their neighbours (exact for that path)."""
        cur, deps, dependents = self.current, self.table.deps, self.table.dependents
        device, k = move.device, move.k
        order = cur.orders[device]
        slots = self._rewrite(move)
        extent = sum(len(slot) for slot in slots)
        inside = set(order[k : k + extent])
        new_end: dict[int, float] = {}
        free = cur.end[order[k - 1]] if k else 0.0
        starts, lengths = [], []
        for slot in slots:
            at = free
            for tid in slot:
                for before, latency in deps[tid]:
                    at = max(at, new_end.get(before, cur.end[before]) + latency)
            length = self._slot_time(slot)
            for tid in slot:
                new_end[tid] = at + length
            free = at + length
            starts.append(at)
            lengths.append(length)
        rest = tail[order[k + extent]] if k + extent < len(order) else 0.0
        longest = 0.0
        for slot, at, length in zip(
            reversed(slots), reversed(starts), reversed(lengths), strict=True
        ):
            after = rest
            for tid in slot:
                for nxt, latency in dependents[tid]:
                    if nxt not in inside:
                        after = max(after, latency + tail[nxt])
            rest = length + after
            longest = max(longest, at + rest)
        return longest

    def _path(self) -> list[tuple[int, int]]:
        """The critical path's slots as ``(device, position of the slot's first task)``,
        last first: the path that ends the schedule, or for ``span`` the one that ends the
        widest device (its first start is where its input arrives; only its end can come
        earlier)."""
        return [(device, k) for device, k, _ in self._walk()]

    def _walk(self) -> list[tuple[int, int, bool]]:
        """The critical path's slots, last first, each with whether its device
        predecessor's end (not a dependency) explains its start."""
        cur, deps = self.current, self.table.deps
        where = self.where
        if self.objective == Objective.SPAN:
            tid = cur.orders[cur.widest()][-1]
        else:
            tid = max(range(len(cur.end)), key=cur.end.__getitem__)
        out: list[tuple[int, int, bool]] = []
        while True:
            device, k = where[tid]
            k = self._slot_start(device, k)
            slot = self._slot(device, k)
            start = cur.start[slot[0]]
            before = next((b for t in slot for b, lat in deps[t] if cur.end[b] + lat == start), -1)
            tight_device = before < 0 and k > 0 and cur.end[cur.orders[device][k - 1]] == start
            out.append((device, k, tight_device))
            if before >= 0:
                tid = before
            elif tight_device:
                tid = cur.orders[device][k - 1]
            else:
                return out

    def _blocks(self) -> list[tuple[int, int, int]]:
        """The critical path's blocks as ``(device, first, last)`` positions (the first task
        of its first slot, the last task of its last slot), of two slots or more."""
        blocks: list[tuple[int, int, int]] = []
        run_end: int | None = None  # last position of the current block
        for device, k, tight_device in self._walk():
            if run_end is None:
                run_end = k + len(self._slot(device, k)) - 1
            if not tight_device:
                if run_end > k + len(self._slot(device, k)) - 1:
                    blocks.append((device, k, run_end))
                run_end = None
        return blocks


def tabu_search(
    schedule: Schedule,
    limit: tuple[float, ...] | None,
    seconds: float,
    deterministic: bool = False,
    patience: int | None = None,
    objective: str = Objective.MAKESPAN,
) -> Iterator[Schedule]:
    """Improve ``schedule``'s makespan (or largest per-device span) for ``seconds`` (or until
    ``patience`` iterations in a row shorten nothing); yields each schedule better than all
    before it."""
    yield from TabuSearch(schedule, limit, objective).run(seconds, deterministic, patience)

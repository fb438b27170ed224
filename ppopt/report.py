"""The printed report of ``ppopt solve`` and the table of ``ppopt compare``
(docs/contract.md §3, §5).

The chosen schedule always stands beside the 1F1B reference: plain 1F1B for a plain problem,
the *classic* 1F1B of the unsplit problem for a split backward (what the zero-bubble paper
compares against), and 1F1B with each device's chunks merged into one stage for virtual stages.
Every bubble number says which bubble it is: the bubble *rate* is the idle share of device
time, the bubble *ratio* is idle over compute time.
"""

from __future__ import annotations

from collections.abc import Sequence

from ppopt.baselines import baseline
from ppopt.links import is_matrix
from ppopt.metrics import Metrics, Objective, compute_metrics, improvement
from ppopt.microbatches import describe_scale
from ppopt.offload import Offload
from ppopt.problem import Problem
from ppopt.recompute import Recompute
from ppopt.runtime import Runtime
from ppopt.schedule import Schedule
from ppopt.solver.partition import PartitionResult
from ppopt.solver.result import SolveResult, Status
from ppopt.tasks import Kind, Task, device_name, stage_name
from ppopt.timeline import compute_timeline

RATE = "bubble rate (idle share)"
RATIO = "bubble ratio (idle/compute)"
ZB = "zero-bubble bubble (span-work)/span"
#: Stage lists longer than this are summarised as min..max in the problem line.
MAX_LISTED = 8
#: Links of a non-uniform ``p2p_time`` named in the problem line before ``+N more``.
MAX_LINKS_LISTED = 4


def reference_problem(problem: Problem) -> Problem:
    """The problem the 1F1B reference runs on: unsplit backward, chunks merged, nothing
    recomputed."""
    return problem.without_recompute().without_offload().unsplit().merged_chunks()


def reference_schedule(problem: Problem) -> Schedule:
    """The 1F1B reference schedule that every report compares against."""
    return baseline("1f1b", reference_problem(problem))


def reference_label(problem: Problem) -> str:
    """Column title of the reference, saying which 1F1B it is."""
    notes = []
    if problem.is_split:
        notes.append("unsplit B+W")
    if problem.copies == 2:
        notes.append("one model copy, all micro-batches")
    elif problem.merged_chunks() is not problem:
        notes.append("chunks merged")
    return "1f1b reference" + (f" ({', '.join(notes)})" if notes else "")


def format_report(
    schedule: Schedule, result: SolveResult | None = None, reference: Schedule | None = None
) -> str:
    """The full report: problem, memory limit, metrics table, solver and improvement lines."""
    problem = schedule.problem
    reference = reference_schedule(problem) if reference is None else reference
    same = schedule.name == "1f1b" and reference.problem == problem
    columns = [(schedule.name, compute_metrics(schedule))]
    if not same:
        columns.append((reference_label(problem), compute_metrics(reference)))
    show_span = problem.is_split or (result is not None and result.objective == Objective.SPAN)
    lines = [problem_line(problem), *partition_lines(problem), limit_line(problem)]
    if problem.recompute != Recompute.NONE:
        lines.append(recompute_line(schedule))
    scale_line = describe_scale(problem.microbatch_scale)
    if scale_line is not None:
        lines.append(scale_line)
    if problem.offload != Offload.NONE:
        lines.append(offload_line(schedule))
    if problem.overlap is not None:
        lines.append(overlap_line(schedule))
    lines += metrics_table(columns, show_span)
    lines.append("peak memory per device:")
    width = max(len(name) for name, _ in columns)
    limit = problem.memory_caps
    for name, metrics in columns:
        peaks = _values(metrics.peak_memory, summarise=False)
        note = "  (exceeds the memory limit)" if _exceeds(metrics.peak_memory, limit) else ""
        lines.append(f"  {name:<{width}}  {peaks}{note}")
    if result is not None:
        lines += solver_lines(result, columns[0][1], columns[-1][1])
    if schedule.interrupted:
        lines.append("note: interrupted; this is the best schedule found before the stop")
    return "\n".join(lines)


def offload_line(schedule: Schedule) -> str:
    """What was offloaded (per stage) and what it cost: the copy-lane time, and the makespan
    against the same compute orders run without the copies (which hold more memory)."""
    problem = schedule.problem
    pairs = problem.num_offloaded
    total = problem.num_stages * problem.num_microbatches
    head = f"offload: {problem.offload}, {pairs} of {total} (stage, micro-batch) offloaded"
    if pairs == 0:
        return head
    per_stage = [0] * problem.num_stages
    for row in schedule.copy_ops:
        for op in row:
            per_stage[op.stage] += op.kind == Kind.O
    copying = sum(op.duration for row in schedule.copy_ops for op in row)
    plain = compute_timeline(problem.without_offload(), _compute_orders(schedule))
    stages = ", ".join(f"s{s + 1}: {n}" for s, n in enumerate(per_stage) if n)
    return (
        f"{head} ({stages}); copies {_num(copying)} on the copy lanes; makespan "
        f"{_num(schedule.makespan)} vs {_num(plain.makespan)} for the same order without copies"
    )


def _compute_orders(schedule: Schedule) -> list[list[Task]]:
    return [[op.task for op in row] for row in schedule.device_ops]


def overlap_line(schedule: Schedule) -> str:
    """How many overlapped F+B pairs the schedule runs and the time they save (against
    running each pair's parts one after the other)."""
    pairs = len(schedule.pairs)
    forwards = sum(op.kind == Kind.F for op in schedule.ops())  # m/2 a stage on two copies
    return (
        f"overlap: {pairs} F+B pairs (of {forwards} forwards), saving "
        f"{_num(schedule.pair_saving())} of device time"
    )


def recompute_line(schedule: Schedule) -> str:
    """What was recomputed (per stage) and what it cost: the R work and its share."""
    problem = schedule.problem
    pairs = problem.num_recomputed
    total = problem.num_stages * problem.num_microbatches
    head = f"recompute: {problem.recompute}, {pairs} of {total} (stage, micro-batch) recomputed"
    if pairs == 0:
        return head
    per_stage = [0] * problem.num_stages
    cost = 0.0
    for op in schedule.ops():
        if op.kind == Kind.R:
            per_stage[op.stage] += 1
            cost += op.end - op.start
    work = sum(op.end - op.start for op in schedule.ops())
    stages = ", ".join(f"s{s + 1}: {n}" for s, n in enumerate(per_stage) if n)
    return f"{head} ({stages}); R work {_num(cost)} = {cost / work:.1%} of all work"


def problem_line(problem: Problem) -> str:
    """One line describing the problem."""
    parts = [f"{problem.num_devices} devices x {problem.num_microbatches} micro-batches"]
    if problem.copies == 2:
        p, half = problem.num_devices, problem.num_microbatches // 2
        parts[0] += (
            f", 2 model copies of {p} stages (DualPipe: copy 1 enters at device 1, copy 2 at "
            f"device {p}, {half} micro-batches each; stages s1-s{p} copy 1, "
            f"s{p + 1}-s{2 * p} copy 2)"
        )
    elif problem.num_chunks > 1:
        parts[0] += (
            f", {problem.num_chunks} chunks per device "
            f"({problem.num_stages} virtual stages, {problem.placement_name} placement)"
        )
    times = f"F {_values(problem.forward)}, B {_values(problem.backward)}"
    if problem.weight is not None:
        times += f", W {_values(problem.weight)}"
    parts.append(times)
    parts.append(latency_text(problem))
    if problem.runtime != Runtime.ABSTRACT:
        parts.append(f"runtime {problem.runtime}")
    if any(a != 1.0 for a in problem.activation) or problem.is_split:
        memory = f"activation {_values(problem.activation)}"
        if problem.is_split:
            memory += f", retained {_values(problem.retained)}"
        parts.append(memory)
    return "problem: " + "; ".join(parts)


def latency_text(problem: Problem) -> str:
    """``p2p 0.5``; with per-link latencies the most common one and the links that differ,
    e.g. ``p2p 0.05 (stage 4→5: 0.5)`` for a boundary of the list (both directions) or
    ``p2p 0.05 (device 4↔5: 0.5, device 1→2: 0.1)`` for the matrix (devices and stages
    counted from 1, as on every screen); only links some edge can use are counted."""
    if problem.uniform_latency:
        return f"p2p {_num(problem.max_latency)}"
    links = _used_links(problem)
    if not links:
        return "p2p 0 (every edge within a device)"
    values = list(links.values())
    usual = min(set(values), key=lambda v: (-values.count(v), v))
    odd = [f"{name}: {_num(v)}" for name, v in links.items() if v != usual]
    if len(odd) > MAX_LINKS_LISTED:
        odd = [*odd[:MAX_LINKS_LISTED], f"+{len(odd) - MAX_LINKS_LISTED} more"]
    return f"p2p {_num(usual)}" + (f" ({', '.join(odd)})" if odd else "")


def _used_links(problem: Problem) -> dict[str, float]:
    """Each cross-device link's name and latency: per stage boundary for a list, per
    device pair (a symmetric pair once, ``↔``) for a matrix."""
    placement, S = problem.placement, problem.num_stages
    if not is_matrix(problem.p2p):
        return {
            f"{stage_name(s)}→{s + 2}": problem.hop(s, s + 1)
            for s in range(S - 1)
            if placement[s] != placement[s + 1]
        }
    pairs = {(placement[s], placement[s + 1]) for s in range(S - 1)}
    pairs |= {(b, a) for a, b in pairs}
    out: dict[str, float] = {}
    for a, b in sorted(pair for pair in pairs if pair[0] != pair[1]):
        there, back = problem.p2p[a][b], problem.p2p[b][a]  # type: ignore[index]
        if there == back and (b, a) in pairs and a > b:
            continue  # named once as a↔b
        arrow = "↔" if there == back and (b, a) in pairs else "→"
        out[f"{device_name(a)}{arrow}{b + 1}"] = float(there)
    return out


def partition_lines(problem: Problem) -> list[str]:
    """The layers of each virtual stage, when the stages were cut from a layer profile."""
    partition = problem.partition
    if partition is None:
        return []
    ranges = " | ".join(partition.range_label(s) for s in range(problem.num_stages))
    sizes = ", ".join(str(size) for size in partition.sizes)
    return [f"partition: layers per virtual stage [{sizes}]: {ranges}"]


def partition_search_lines(search: PartitionResult) -> list[str]:
    """How ``partition: auto`` chose: the candidates looked at closely (their lower bound,
    best baseline schedule and optimizer makespan), and the bound over every partition."""
    lines = [
        f"partition search: {search.evaluated} partitions bounded, "
        f"{sum(c.floor is not None for c in search.candidates)} timed with the baselines, "
        f"{sum(c.solved is not None for c in search.candidates)} solved, "
        f"{search.wall_time:.2f} s; chosen [{', '.join(map(str, search.sizes))}]",
        f"  lower bound over every partition {_num(search.lower_bound)}, "
        f"gap {_percent(search.gap)}",
    ]
    for c in search.candidates:
        sizes = ", ".join(map(str, c.sizes))
        lines.append(
            f"  {c.label:<24} [{sizes}]  bound {_num(c.bound)}, baselines {_num(c.floor)}, "
            f"optimal {_num(c.solved)}"
        )
    return lines


def limit_line(problem: Problem) -> str:
    """The memory limit as the user wrote it and in absolute units per device."""
    limit = problem.memory_limit
    if limit.is_none:
        return "memory limit: none"
    absolute = problem.memory_caps
    assert absolute is not None  # only a 'none' limit resolves to None
    if limit.factor is not None:
        written = f"{limit.factor:.4g}x"
        return f"memory limit: {written} the 1F1B peak = {_values(absolute)} per device"
    return f"memory limit: {_values(absolute)} per device"


def metrics_table(
    columns: Sequence[tuple[str, Metrics]],
    show_span: bool,
    extra: Sequence[tuple[str, list[str]]] = (),
) -> list[str]:
    """Rows of metrics, one column per schedule, then the ``extra`` rows."""
    rows: list[tuple[str, list[str]]] = [
        ("", [name for name, _ in columns]),
        ("makespan", [_num(m.makespan) for _, m in columns]),
        (RATE, [_percent(m.bubble_rate) for _, m in columns]),
        (RATIO, [f"{m.bubble_ratio:.4g}" for _, m in columns]),
    ]
    if show_span:
        rows.append(("span (largest per device)", [_num(m.span) for _, m in columns]))
        rows.append((ZB, [_percent(m.zb_bubble) for _, m in columns]))
    rows.append(("peak memory (max device)", [_num(max(m.peak_memory)) for _, m in columns]))
    rows.extend(extra)
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(cells[k]) for _, cells in rows) for k in range(len(columns))]
    out = []
    for label, cells in rows:
        text = "  ".join(f"{cell:<{w}}" for cell, w in zip(cells, widths, strict=True))
        out.append(f"{label:<{label_width}}  {text}".rstrip())
    return out


def _bound_note(result: SolveResult) -> str:
    """Say when the bound is CP-SAT's: it depends on how long the search ran."""
    return " (cp-sat's, depends on the search time)" if result.bound_source == "cp-sat" else ""


def solver_lines(result: SolveResult, chosen: Metrics, reference: Metrics) -> list[str]:
    """Status, bound, gap, time and the improvement over the 1F1B reference."""
    proven = " (proven)" if result.status == Status.OPTIMAL else ""
    lines = [
        f"solver: {result.status}{proven}, objective {result.objective}, "
        f"lower bound {_num(result.lower_bound)}{_bound_note(result)}, gap {_percent(result.gap)}, "
        f"solve time {result.wall_time:.2f} s, schedule from {result.source}"
    ]
    key = str(result.objective)
    before, after = getattr(reference, key), getattr(chosen, key)
    gain = improvement(before, after)
    lines.append(
        f"improvement over 1F1B: {gain * 100:.2f}% ({key} {_num(before)} -> {_num(after)})"
    )
    return lines


def compare_table(schedules: Sequence[Schedule]) -> list[str]:
    """The ``ppopt compare`` table: the memory limit, then one column per schedule, with a row
    saying whether each schedule fits the limit."""
    if not schedules:
        return []
    problem = schedules[0].problem
    columns = [(s.name, compute_metrics(s)) for s in schedules]
    limit = problem.memory_caps
    extra = []
    if limit is not None:
        fits = ["no" if _exceeds(m.peak_memory, limit) else "yes" for _, m in columns]
        extra.append(("fits the memory limit", fits))
    return [limit_line(problem), *metrics_table(columns, problem.is_split, extra)]


def summary_line(schedule: Schedule) -> str:
    """One line about a schedule (used by ``ppopt validate``)."""
    problem = schedule.problem
    metrics = compute_metrics(schedule)
    text = (
        f"{schedule.name} schedule, {problem.num_devices} devices x "
        f"{problem.num_microbatches} micro-batches, {problem.num_tasks} tasks, "
        f"makespan {_num(metrics.makespan)}, {RATE} {_percent(metrics.bubble_rate)}, "
        f"peak memory {_num(max(metrics.peak_memory))}"
    )
    return text + (" (interrupted)" if schedule.interrupted else "")


def _exceeds(peaks: Sequence[float], limit: Sequence[float] | None) -> bool:
    """True when some device's peak is above its limit (beyond float rounding)."""
    if limit is None:
        return False
    return any(peak > cap * (1 + 1e-9) for peak, cap in zip(peaks, limit, strict=True))


# ---------------------------------------------------------------------------- formatting


def _num(value: float | None) -> str:
    """A time or amount: up to 6 significant digits, no trailing zeros."""
    return "-" if value is None else f"{value:.6g}"


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def _values(values: Sequence[float], summarise: bool = True) -> str:
    """One number when all are equal, the list when short, else ``min..max``; with
    ``summarise`` off, always the full list."""
    if summarise and len(set(values)) == 1:
        return _num(values[0])
    if summarise and len(values) > MAX_LISTED:
        return f"{_num(min(values))}..{_num(max(values))}"
    return "[" + ", ".join(_num(v) for v in values) + "]"

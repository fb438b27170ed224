"""Sleep-emulated pipeline stages run by PyTorch's ``_PipelineScheduleRuntime``, with a record
of every compute action's start and end on every rank.

Shared by ``benchmarks/bench_runtime.py`` (planned versus measured step time of ppopt
schedules) and by tests; nothing here imports ppopt, the CSV table is the only interface.

**The emulated stage.** A stage is ``layers`` emulated layers (default 2), each with its own
parameter, built so that PyTorch's autograd splits the work exactly as it splits a real
``nn.Linear`` stack:

* ``y = ActivationPath(x) + WeightPath(x.detach(), weight)``: the forward of the activation
  path sleeps ``forward / layers``; its backward (the activation-gradient node, the analogue of
  ``mm(grad, W)`` in ``AddmmBackward0``) sleeps ``backward / layers``; the weight path's backward
  (the weight-gradient node, the analogue of ``mm(grad.T, x)``) sleeps ``weight / layers`` and
  returns a real gradient for ``weight``. The ``AddBackward0`` node joining them is what
  ``torch.distributed.pipelining._backward.get_param_groups`` records as the layer's
  "intermediate", so:

  - ``I`` (``stage_backward_input``: ``autograd.grad`` towards the stage input) runs only the
    activation-path nodes: ``backward`` seconds;
  - ``W`` (``stage_backward_weight``: ``autograd.grad`` from the saved intermediates towards
    the weights) runs only the weight-path nodes: ``weight`` seconds;
  - ``B`` (``stage_backward``: ``autograd.backward``) runs both: ``backward + weight``.

* The first stage starts with an additive embedding parameter (``x + embed``), as a language
  model's stage 0 starts with its embedding table: the stage input needs no gradient but every
  layer's activation gradient is still needed (it flows to the embedding's weight), so stage 0's
  "B work" is the whole activation-gradient chain, like every other stage's. PyTorch 2.13 runs
  none of it in ``I`` on stage 0 (``backward_one_chunk`` skips ``stage_backward_input`` when
  ``is_first``) and all of it in ``W`` (``backward_weight_one_chunk`` runs the full
  ``stage_backward`` on stage 0): measured ``I`` ~ 0 and ``W`` = ``backward + weight`` there.
  With ``embed=False`` stage 0's first layer has no activation-gradient node (nothing before it
  needs a gradient) and its ``W`` is ``weight + backward * (layers - 1) / layers``.

For an unsplit (full-backward) schedule give the whole backward as ``backward`` and
``weight=0``: ``B`` then sleeps ``backward``.

**The record.** :func:`instrument` wraps a ``PipelineStage``'s ``forward_one_chunk``,
``backward_one_chunk`` and ``backward_weight_one_chunk`` (the three calls
``_PipelineScheduleRuntime._perform_action`` makes for ``F``, ``I``/``B`` and ``W``) and
appends ``(step, stage, kind, microbatch, start, end)`` with ``time.perf_counter()`` stamps
(CLOCK_MONOTONIC on Linux, shared by all processes of the machine). The wait for a received
tensor happens in ``_perform_action`` *before* the call, so a recorded action is compute only
and a wait shows as idle time between actions.

:func:`run_emulated` spawns one process per rank (gloo, 127.0.0.1), loads the table with
``_load_csv(path, format=...)``, runs ``steps`` training steps (a barrier before each) and
returns every rank's records and step wall times (:func:`run_emulated_many`: several tables in
one set of processes, one after the other); :func:`measured_step` is the median step
span over the steps after the warm-up.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

WIDTH = 8
ROWS_PER_MICROBATCH = 4
#: seconds for a whole spawned run before it is killed (a hung collective must not block)
RUN_TIMEOUT = 600.0


@dataclass(frozen=True)
class StageCost:
    """Seconds of one stage's work per micro-batch: forward, activation-gradient chain, weight
    gradient (``weight=0`` for a full backward of ``backward`` seconds)."""

    forward: float
    backward: float
    weight: float = 0.0


class _ActivationPath(torch.autograd.Function):
    """Identity whose forward sleeps the layer's F share and whose backward (the activation
    gradient) sleeps its B share."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, forward_s: float, backward_s: float) -> torch.Tensor:
        _sleep(forward_s)
        ctx.backward_s = backward_s
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        _sleep(ctx.backward_s)
        return grad.clone(), None, None


class _WeightPath(torch.autograd.Function):
    """``x * weight`` (x detached) whose backward (the weight gradient) sleeps the W share."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, weight_s: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.weight_s = weight_s
        return x * weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        _sleep(ctx.weight_s)
        (x,) = ctx.saved_tensors
        return None, (grad * x).sum(0), None


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


class EmulatedLayer(nn.Module):
    """One layer: ``ActivationPath(x) + WeightPath(x.detach(), weight)`` (see the module doc)."""

    def __init__(self, width: int, forward_s: float, backward_s: float, weight_s: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((width,), 0.01))
        self.forward_s, self.backward_s, self.weight_s = forward_s, backward_s, weight_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = _ActivationPath.apply(x, self.forward_s, self.backward_s)
        return act + _WeightPath.apply(x.detach(), self.weight, self.weight_s)


class EmulatedStage(nn.Module):
    """``layers`` emulated layers sharing the stage's cost equally; the first stage adds an
    embedding parameter in front (``embed=True``) so that its activation-gradient chain runs."""

    def __init__(
        self,
        cost: StageCost,
        *,
        first: bool,
        layers: int = 2,
        width: int = WIDTH,
        embed: bool = True,
    ):
        super().__init__()
        self.embed = nn.Parameter(torch.zeros(width)) if first and embed else None
        share = 1.0 / layers
        self.layers = nn.ModuleList(
            EmulatedLayer(width, cost.forward * share, cost.backward * share, cost.weight * share)
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            x = x + self.embed
        for layer in self.layers:
            x = layer(x)
        return x


@dataclass(frozen=True)
class ActionRecord:
    """One compute action as run: step index, virtual stage, kind (F, I, W or B), micro-batch,
    and its start and end (``time.perf_counter()`` seconds)."""

    step: int
    stage: int
    kind: str
    microbatch: int
    start: float
    end: float


@dataclass
class Recorder:
    """Collects the action records of one rank; ``step`` is the step being run."""

    records: list[ActionRecord] = field(default_factory=list)
    step: int = 0


def instrument(stage, recorder: Recorder) -> None:
    """Wrap the stage's compute calls so that each appends an :class:`ActionRecord`."""
    forward, backward, weight = (
        stage.forward_one_chunk,
        stage.backward_one_chunk,
        stage.backward_weight_one_chunk,
    )

    def timed(kind: str, microbatch: int, call, *args, **kwargs):
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            end = time.perf_counter()
            recorder.records.append(
                ActionRecord(recorder.step, stage.stage_index, kind, microbatch, start, end)
            )

    def forward_one_chunk(fwd_chunk_id, *args, **kwargs):
        return timed("F", fwd_chunk_id, forward, fwd_chunk_id, *args, **kwargs)

    def backward_one_chunk(bwd_chunk_id, *args, full_backward=True, **kwargs):
        kind = "B" if full_backward else "I"
        return timed(
            kind,
            bwd_chunk_id,
            backward,
            bwd_chunk_id,
            *args,
            full_backward=full_backward,
            **kwargs,
        )

    def backward_weight_one_chunk(bwd_chunk_id, *args, **kwargs):
        return timed("W", bwd_chunk_id, weight, bwd_chunk_id, *args, **kwargs)

    stage.forward_one_chunk = forward_one_chunk
    stage.backward_one_chunk = backward_one_chunk
    stage.backward_weight_one_chunk = backward_weight_one_chunk


@dataclass(frozen=True)
class EmulatedSpec:
    """What to run: the table, its format, per-virtual-stage costs (seconds), micro-batches,
    steps (the first ``warmup`` are not counted by callers), layers per stage."""

    csv_path: str
    costs: tuple[StageCost, ...]
    num_microbatches: int
    steps: int = 4
    csv_format: Literal["compute_only", "compute_comms"] = "compute_only"
    layers: int = 2
    embed: bool = True
    defer_pp_recv: bool = False  # the runtime's option: each RECV just before its consumer


@dataclass
class RankResult:
    """One rank's run: its stages, action records, step walls ``(start, end)``, the lowered
    table it executed (``pipeline_order_with_comms`` of its rank, as strings) and the
    gradients of its stages' parameters after the last step (``"{stage}.{name}"``)."""

    rank: int
    stages: list[int]
    records: list[ActionRecord]
    step_walls: list[tuple[float, float]]
    executed: list[str]
    grads: dict[str, list[float]] = field(default_factory=dict)


def table_rows(csv_path: str) -> list[list[str]]:
    """The non-empty cells of each row of a CSV table."""
    with open(csv_path, encoding="utf-8") as handle:
        return [
            [c.strip() for c in line.split(",") if c.strip()] for line in handle.read().splitlines()
        ]


def stages_of_row(row: Sequence[str]) -> list[int]:
    """The stages whose actions sit in one row of a table (compute and comms cells alike)."""
    stages = set()
    for cell in row:
        match = re.match(r"\d+", cell)
        if match:
            stages.add(int(match[0]))
    return sorted(stages)


def run_emulated(spec: EmulatedSpec, timeout: float = RUN_TIMEOUT) -> list[RankResult]:
    """Run the table on one CPU process per row with emulated stages; every rank's result."""
    return run_emulated_many([spec], timeout)[0]


def run_emulated_many(
    specs: Sequence[EmulatedSpec], timeout: float = RUN_TIMEOUT
) -> list[list[RankResult]]:
    """Run several tables of the same number of rows one after the other in one set of rank
    processes (starting the processes, torch's import and gloo's set-up cost ~5-20 s, paid
    once); every rank's result of each table, in the order given."""
    if not specs:
        return []
    counts = {len(table_rows(spec.csv_path)) for spec in specs}
    if len(counts) != 1:
        raise ValueError(f"tables with different numbers of rows {sorted(counts)}")
    (world,) = counts
    with tempfile.TemporaryDirectory() as out:
        spawn(_rank_main, (tuple(specs), _free_port(), out), world, timeout)
        every = []
        for index in range(len(specs)):
            results = []
            for rank in range(world):
                saved = json.loads((Path(out) / f"rank{rank}_{index}.json").read_text())
                saved["records"] = [ActionRecord(**r) for r in saved["records"]]
                saved["step_walls"] = [tuple(w) for w in saved["step_walls"]]
                results.append(RankResult(**saved))
            every.append(results)
    return every


def step_spans(results: Sequence[RankResult], warmup: int = 1) -> list[float]:
    """Seconds from the first compute action's start to the last one's end over all ranks, one
    value per step from ``warmup`` on (the steps before it are not counted)."""
    steps = sorted({r.step for res in results for r in res.records if r.step >= warmup})
    spans = []
    for step in steps:
        records = [r for res in results for r in res.records if r.step == step]
        spans.append(max(r.end for r in records) - min(r.start for r in records))
    return spans


def measured_step(results: Sequence[RankResult], warmup: int = 1) -> float:
    """The median of :func:`step_spans` (seconds)."""
    spans = sorted(step_spans(results, warmup))
    if not spans:
        raise ValueError(f"no step after the {warmup} warm-up step(s)")
    return statistics.median(spans)


def spawn(fn, args: tuple, nprocs: int, timeout: float = RUN_TIMEOUT) -> None:
    """``mp.spawn(fn, args, nprocs)`` that kills the processes after ``timeout`` seconds."""
    context = mp.spawn(fn, args=args, nprocs=nprocs, join=False)
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"pipeline run did not finish in {timeout:g} s")


def init_rank(rank: int, world: int, port: int) -> None:
    """gloo on 127.0.0.1, one thread."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of one micro-batch."""
    return nn.functional.mse_loss(output, target)


def _rank_main(rank: int, specs: tuple[EmulatedSpec, ...], port: int, out: str) -> None:
    init_rank(rank, len(table_rows(specs[0].csv_path)), port)
    try:
        for index, spec in enumerate(specs):
            saved = _run_table(rank, spec)
            (Path(out) / f"rank{rank}_{index}.json").write_text(json.dumps(asdict(saved)))
    finally:
        dist.destroy_process_group()


def _run_table(rank: int, spec: EmulatedSpec) -> RankResult:
    """Build this rank's stages and runtime for one table and run its steps."""
    from torch.distributed.pipelining import PipelineStage
    from torch.distributed.pipelining.schedules import _PipelineScheduleRuntime

    rows = table_rows(spec.csv_path)
    num_stages = len(spec.costs)
    mine = stages_of_row(rows[rank])
    recorder = Recorder()
    stages = []
    for s in mine:
        module = EmulatedStage(spec.costs[s], first=s == 0, layers=spec.layers, embed=spec.embed)
        stage = PipelineStage(module, s, num_stages, torch.device("cpu"))
        instrument(stage, recorder)
        stages.append(stage)
    runtime = _PipelineScheduleRuntime(
        stages,
        n_microbatches=spec.num_microbatches,
        loss_fn=loss_fn,
        scale_grads=True,
        defer_pp_recv=spec.defer_pp_recv,
    )
    runtime._load_csv(spec.csv_path, format=spec.csv_format)
    generator = torch.Generator().manual_seed(0)
    rows_total = spec.num_microbatches * ROWS_PER_MICROBATCH
    x = torch.randn(rows_total, WIDTH, generator=generator)
    y = torch.randn(rows_total, WIDTH, generator=generator)
    walls = []
    for step in range(spec.steps):
        recorder.step = step
        for stage in stages:
            stage.submod.zero_grad(set_to_none=True)
        dist.barrier()
        start = time.perf_counter()
        runtime.step(
            *((x,) if 0 in mine else ()),
            target=y if num_stages - 1 in mine else None,
            losses=[] if num_stages - 1 in mine else None,
        )
        walls.append((start, time.perf_counter()))
    dist.barrier()
    return RankResult(
        rank,
        mine,
        recorder.records,
        walls,
        [str(a) for a in runtime.pipeline_order_with_comms[rank]],
        {
            f"{stage.stage_index}.{name}": param.grad.flatten().tolist()
            for stage in stages
            for name, param in stage.submod.named_parameters()
            if param.grad is not None
        },
    )


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

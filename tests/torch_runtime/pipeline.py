"""Run a ppopt CSV schedule table with PyTorch's pipelining runtime, and the same model without.

The model is a stack of ``S`` small blocks (``Linear`` + ``Tanh``; the last block is a plain
``Linear``), one block per virtual stage, built from one seed so that every process and the
reference build identical weights. :func:`run_pipeline` spawns one process per rank (gloo on
127.0.0.1, a free port); each rank wraps the blocks of its stages in ``PipelineStage`` objects,
loads the table with ``_PipelineScheduleRuntime._load_csv`` (which infers the stage-to-rank
mapping from the table and, for a compute-only table, adds the send/receive actions) and runs
one ``step``. The ranks save their gradients and losses; :func:`reference_run` computes the
same quantities with plain autograd on the unsplit model. Nothing here imports ppopt: the
table is the only interface.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.distributed.pipelining import PipelineStage
from torch.distributed.pipelining.schedules import _PipelineScheduleRuntime

WIDTH = 8
ROWS_PER_MICROBATCH = 3
#: A hung collective must fail the test, not block it: seconds for the whole spawned run.
RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Spec:
    """What to run: the table, the rank count, the virtual stage count, micro-batches, seed,
    and the table's format (``_load_csv``'s: ``compute_only`` is lowered by the runtime,
    ``compute_comms`` holds the send/receive actions and runs as written)."""

    csv_path: str
    num_ranks: int
    num_stages: int
    num_microbatches: int
    seed: int = 0
    csv_format: Literal["compute_only", "compute_comms"] = "compute_only"


def build_model(spec: Spec) -> nn.Sequential:
    """The whole model, one block per virtual stage, identical in every process (seeded)."""
    torch.manual_seed(spec.seed)
    blocks: list[nn.Module] = []
    for s in range(spec.num_stages):
        linear = nn.Linear(WIDTH, WIDTH)
        blocks.append(linear if s == spec.num_stages - 1 else nn.Sequential(linear, nn.Tanh()))
    return nn.Sequential(*blocks)


def batch(spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of the whole batch (split into micro-batches along dim 0)."""
    generator = torch.Generator().manual_seed(spec.seed + 1)
    rows = spec.num_microbatches * ROWS_PER_MICROBATCH
    x = torch.randn(rows, WIDTH, generator=generator)
    y = torch.randn(rows, WIDTH, generator=generator)
    return x, y


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of one micro-batch (the runtime divides the gradients by ``m``)."""
    return nn.functional.mse_loss(output, target)


def reference_run(spec: Spec) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Gradients (``"{stage}.{name}"``) and per-micro-batch losses without pipelining.

    The loss is the mean over micro-batches of each micro-batch's mean squared error, which is
    what the runtime's ``scale_grads=True`` computes.
    """
    model = build_model(spec)
    x, y = batch(spec)
    losses = [
        loss_fn(model(xs), ys)
        for xs, ys in zip(
            x.chunk(spec.num_microbatches), y.chunk(spec.num_microbatches), strict=True
        )
    ]
    (torch.stack(losses).sum() / spec.num_microbatches).backward()
    return _grads(model, range(spec.num_stages)), [loss.detach() for loss in losses]


@dataclass
class PipelineRun:
    """What the ranks of one pipelined step report back."""

    grads: dict[str, torch.Tensor]  # every stage's parameter gradients, "{stage}.{name}"
    losses: list[torch.Tensor]  # per micro-batch, from the rank holding the last stage
    executed: dict[int, list[str]]  # per rank: the compute actions the runtime ran, in order
    stage_to_rank: dict[int, int]  # the runtime's stage_index_to_group_rank (from the table)
    actions: dict[int, list[str]] = field(default_factory=dict)  # per rank: every action run


def run_pipeline(spec: Spec) -> PipelineRun:
    """Run the table on ``num_ranks`` CPU processes (one step) and collect what they report."""
    with tempfile.TemporaryDirectory() as out:
        context = mp.spawn(
            _rank_main,
            args=(spec, _free_port(), out),
            nprocs=spec.num_ranks,
            join=False,
        )
        deadline = time.monotonic() + RUN_TIMEOUT
        while not context.join(timeout=1.0):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError(f"pipeline run did not finish in {RUN_TIMEOUT:g} s")
        run = PipelineRun({}, [], {}, {})
        for rank in range(spec.num_ranks):
            saved = torch.load(Path(out) / f"rank{rank}.pt")
            run.grads.update(saved["grads"])
            run.losses.extend(saved["losses"])
            run.executed[rank] = saved["executed"]
            run.stage_to_rank.update(saved["stage_to_rank"])
            run.actions[rank] = saved["actions"]
    return run


def assert_equal_to_reference(spec: Spec, run: PipelineRun) -> None:
    """The run's gradients and per-micro-batch losses equal :func:`reference_run`'s."""
    grads, losses = reference_run(spec)
    assert sorted(run.grads) == sorted(grads)
    for name, grad in grads.items():
        torch.testing.assert_close(run.grads[name], grad, msg=lambda m, n=name: f"{n}: {m}")
    torch.testing.assert_close(torch.stack(run.losses), torch.stack(losses))


def _rank_main(rank: int, spec: Spec, port: int, out: str) -> None:
    """One rank: its stages, the runtime loaded from the table, one training step."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=spec.num_ranks)
    try:
        model = build_model(spec)
        mine = _stages_of(spec, rank)
        stages = [PipelineStage(model[s], s, spec.num_stages, torch.device("cpu")) for s in mine]
        runtime = _PipelineScheduleRuntime(
            stages, n_microbatches=spec.num_microbatches, loss_fn=loss_fn, scale_grads=True
        )
        runtime._load_csv(spec.csv_path, format=spec.csv_format)
        x, y = batch(spec)
        losses: list[torch.Tensor] = []
        args = (x,) if 0 in mine else ()
        target = y if spec.num_stages - 1 in mine else None
        runtime.step(*args, target=target, losses=losses)
        saved = {
            "grads": _grads(model, mine),
            "losses": [loss.detach() for loss in losses],
            "executed": [
                str(action)
                for action in runtime.pipeline_order_with_comms[rank]
                if action.is_compute_op
            ],
            "stage_to_rank": dict(runtime.stage_index_to_group_rank),
            "actions": [str(action) for action in runtime.pipeline_order_with_comms[rank]],
        }
        torch.save(saved, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _stages_of(spec: Spec, rank: int) -> list[int]:
    """The stages whose actions sit in this rank's row of the table."""
    with open(spec.csv_path, encoding="utf-8") as handle:
        row = handle.read().splitlines()[rank]
    # a plain cell starts with its stage; an overlapped pair ``(0F3;3I1)OVERLAP_F_B`` names two
    return sorted({int(stage) for stage in re.findall(r"(?:^|[(;,])(\d+)[FIBW]", row)})


def _grads(model: nn.Sequential, stages: Iterable[int]) -> dict[str, torch.Tensor]:
    """Each parameter's gradient of the given stages, named ``"{stage}.{parameter}"``."""
    out: dict[str, torch.Tensor] = {}
    for s in stages:
        for name, parameter in model[s].named_parameters():
            assert parameter.grad is not None, f"stage {s} {name}: no gradient"
            out[f"{s}.{name}"] = parameter.grad.detach().clone()
    return out


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""What PyTorch's pipelining runtime really computes and keeps alive in F, I, W and B.

Runs a real model (each stage ``Linear -> GELU -> Linear``, then ``GELU`` with ``--tail gelu``;
the last stage adds a ``Linear`` head and a mean-squared-error loss) with
``_PipelineScheduleRuntime`` on CPU/gloo, one process per rank, a 1F1B order written here
(split: ``I`` then ``W`` one action later; unsplit: ``B``), and records around every compute
action of the measured step (the second; the first includes PyTorch's metadata inference):

* **saved tensors**: a ``torch.autograd.graph.saved_tensors_hooks`` pack hook wraps every saved
  tensor that is not a parameter (nor a view of one) in a small object, registered with its
  stage, micro-batch, storage and size; a ``weakref.finalize`` on the object drops it from the
  registry when autograd releases it. After each action the probe sums the bytes of distinct
  storages still registered per micro-batch (``gc.collect()`` first changes nothing: checked
  and reported);
* **stage-held tensors**: storages reachable from the stage object — ``fwd_cache`` (stage
  outputs and inputs kept for backward), ``backward_state`` (what ``I`` leaves for ``W``),
  ``output_chunks`` (the last stage's outputs, for the merged step output), ``bwd_cache``
  (input gradients waiting for ``SEND_B``) and the preallocated receive buffers;
* **aten ops**: a ``TorchDispatchMode`` logs every aten op run inside the action; matrix
  products are classified by output shape as activation gradients (``dX``, shape of an
  activation) or weight gradients (``dW``, shape of a weight).

    python benchmarks/probe_torch_stage.py                 # p=4, m=6, width 128, rows 32
    python benchmarks/probe_torch_stage.py --json-out probe.json

Prints, per stage position (first, middle, last), tail and schedule kind, what is held after F,
after I, after W and after B (in activations, and as a fraction of what F allocated), and the
aten ops each action ran. Results are in docs/runtime_torch.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import weakref
from collections import Counter, defaultdict
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.torch_runtime.emulated import _free_port, init_rank, spawn  # noqa: E402


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error written out: on CPU ``F.mse_loss``'s 0-dim result aliases a
    [rows, width] buffer (its storage is a whole activation), which would count as held."""
    return ((output - target) ** 2).mean()


def one_f_one_b(p: int, m: int, split: bool) -> list[list[str]]:
    """Classic 1F1B per rank; split backward as ``I`` then that micro-batch's ``W`` after the
    next action (so that the state between ``I`` and ``W`` is observed with other work between)."""
    rows = []
    for r in range(p):
        warm = min(p - r - 1, m)
        order: list[tuple[str, int]] = [("F", i) for i in range(warm)]
        for i in range(m - warm):
            order += [("F", warm + i), ("B", i)]
        order += [("B", i) for i in range(m - warm, m)]
        cells: list[str] = []
        pending_w: list[int] = []
        for kind, mb in order:
            if kind == "F":
                cells.append(f"{r}F{mb}")
            elif split:
                cells.append(f"{r}I{mb}")
                pending_w.append(mb)
                continue
            else:
                cells.append(f"{r}B{mb}")
            while len(pending_w) > 1 or (pending_w and kind == "F"):
                cells.append(f"{r}W{pending_w.pop(0)}")
        cells += [f"{r}W{mb}" for mb in pending_w]
        rows.append(cells)
    return rows


def build_stage(s: int, num_stages: int, width: int, tail: str) -> nn.Sequential:
    """``Linear GELU Linear`` then ``GELU`` (``tail="gelu"``: an op after the stage's last
    weight) or nothing (``tail="none"``: the stage ends with its last weight's op, like a
    transformer block ending in its MLP projection and residual add); the last stage adds a
    ``Linear`` head whose output goes to the MSE loss."""
    torch.manual_seed(100 + s)
    layers: list[nn.Module] = [nn.Linear(width, width), nn.GELU(), nn.Linear(width, width)]
    if tail == "gelu":
        layers.append(nn.GELU())
    if s == num_stages - 1:
        layers.append(nn.Linear(width, width))
    return nn.Sequential(*layers)


class _Packed:
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class SavedTracker:
    """Registry of the saved (non-parameter) tensors alive, by (stage, micro-batch)."""

    def __init__(self, params: list[torch.Tensor]):
        self.param_ptrs = {_ptr(p) for p in params}
        self.current: tuple[int, int] | None = None
        self.alive: dict[int, tuple[int, int, int, int]] = {}
        self._next = 0

    def pack(self, t: torch.Tensor):
        if _ptr(t) in self.param_ptrs or self.current is None:
            return t
        packed = _Packed(t)
        key = self._next
        self._next += 1
        stage, mb = self.current
        self.alive[key] = (stage, mb, _ptr(t), t.untyped_storage().nbytes())
        weakref.finalize(packed, self.alive.pop, key, None)
        return packed

    @staticmethod
    def unpack(p):
        return p.tensor if isinstance(p, _Packed) else p

    def storages(self, stage: int, mb: int) -> dict[int, int]:
        return {ptr: n for s, b, ptr, n in self.alive.values() if (s, b) == (stage, mb)}


def _storages(obj, out: dict[int, int]) -> None:
    """Distinct tensor storages reachable through tuples, lists and dicts."""
    if isinstance(obj, torch.Tensor):
        out[_ptr(obj)] = obj.untyped_storage().nbytes()
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _storages(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _storages(o, out)


def stage_held(stage, mb: int) -> dict[str, dict[int, int]]:
    """Storages the stage object keeps for one micro-batch, by container."""
    held: dict[str, dict[int, int]] = {}
    for name in ("fwd_cache", "backward_state", "bwd_cache"):
        found: dict[int, int] = {}
        _storages(getattr(stage, name).get(mb), found)
        held[name] = found
    for name, infos in (
        ("act_recv_buffer", stage.args_recv_info.get(mb, ())),
        ("grad_recv_buffer", stage.grad_recv_info.get(mb, ())),
    ):
        found = {}
        for info in infos:
            if getattr(info, "buffer", None) is not None:
                _storages(info.buffer, found)
        held[name] = found
    return held


def stage_parts(stage, mb: int) -> dict[str, dict[int, int]]:
    """What the stage object keeps for one micro-batch besides saved tensors and buffers:
    its output (``fwd_cache`` before the backward, ``backward_state`` after ``I``), the
    gradients ``I`` captured at the weights' intermediates (for ``W``), and the input
    gradient in ``bwd_cache`` (sent by the next ``SEND_B``)."""
    output: dict[int, int] = {}
    captured: dict[int, int] = {}
    if mb in stage.fwd_cache:
        _storages(stage.fwd_cache[mb][0], output)
    if mb in stage.backward_state:
        _, param_groups, stage_output, _ = stage.backward_state[mb]
        _storages(stage_output, output)
        for group in param_groups or ():
            _storages(group.get("grads"), captured)
    grad_in: dict[int, int] = {}
    _storages(stage.bwd_cache.get(mb), grad_in)
    return {"output": output, "captured_grads": captured, "input_grad": grad_in}


class OpLog(TorchDispatchMode):
    """Counts aten ops; matrix products by output shape (dW: a weight's shape, else act)."""

    IGNORED = ("detach", "view", "t", "alias", "_to_copy", "empty_like", "lift_fresh", "clone")

    def __init__(self, weight_shape: tuple[int, ...]):
        super().__init__()
        self.weight_shape = weight_shape
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.__name__.split(".")[0]
        if name in ("mm", "addmm") and isinstance(out, torch.Tensor):
            name += "(dW)" if tuple(out.shape) == self.weight_shape else "(act)"
        if name not in self.IGNORED:
            self.counts[name] += 1
        return out


def _rank_main(rank: int, args: argparse.Namespace, csv_path: str, port: int, out: str) -> None:
    from torch.distributed.pipelining import PipelineStage
    from torch.distributed.pipelining.schedules import _PipelineScheduleRuntime

    p, m, width, rows = args.p, args.m, args.width, args.rows
    init_rank(rank, p, port)
    module = build_stage(rank, p, width, args.tail)
    stage = PipelineStage(module, rank, p, torch.device("cpu"))
    tracker = SavedTracker(list(module.parameters()))
    events: list[dict] = []
    state = {"measuring": False, "log": None}
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(m * rows, width, generator=generator)
    y = torch.randn(m * rows, width, generator=generator)
    user_ptrs = {_ptr(x), _ptr(y)}

    def snapshot(kind: str, mb: int, log: OpLog) -> None:
        held = stage_held(stage, mb)
        buffers = {**held["act_recv_buffer"], **held["grad_recv_buffer"]}
        inputs = set(buffers) | user_ptrs
        saved = tracker.storages(rank, mb)
        snap = {"stage": rank, "kind": kind, "mb": mb, "ops": dict(log.counts)}
        snap["saved_internal"] = sum(n for ptr, n in saved.items() if ptr not in inputs)
        snap["saved_input"] = sum(n for ptr, n in saved.items() if ptr in buffers)
        parts = stage_parts(stage, mb)
        counted = set(saved) | inputs
        for name, found in parts.items():
            snap[name] = sum(n for ptr, n in found.items() if ptr not in counted)
            counted |= set(found)
        snap["held"] = {k: sum(v.values()) for k, v in held.items()}
        gc.collect()
        snap["saved_internal_after_gc"] = sum(
            n for ptr, n in tracker.storages(rank, mb).items() if ptr not in inputs
        )
        snap["output_chunks"] = sum(
            t.untyped_storage().nbytes() for t in stage.output_chunks if isinstance(t, torch.Tensor)
        )
        events.append(snap)

    def wrap(name: str, kind_of):
        call = getattr(stage, name)

        def wrapped(mb, *a, **kw):
            kind = kind_of(kw)
            tracker.current = (rank, mb)
            if not state["measuring"]:
                return call(mb, *a, **kw)
            log = OpLog((width, width))
            with log:
                result = call(mb, *a, **kw)
            if kind == "F" and stage.is_last:
                state["log"] = log  # snapshot after the loss (below)
            else:
                snapshot(kind, mb, log)
            return result

        setattr(stage, name, wrapped)

    wrap("forward_one_chunk", lambda kw: "F")
    wrap("backward_one_chunk", lambda kw: "B" if kw.get("full_backward", True) else "I")
    wrap("backward_weight_one_chunk", lambda kw: "W")
    runtime = _PipelineScheduleRuntime([stage], n_microbatches=m, loss_fn=loss_fn)
    compute_loss = runtime._maybe_compute_loss

    def maybe_compute_loss(stage_, output, target_mbs, mb_index, *a, **kw):
        log = state["log"]
        if log is None:
            return compute_loss(stage_, output, target_mbs, mb_index, *a, **kw)
        with log:
            result = compute_loss(stage_, output, target_mbs, mb_index, *a, **kw)
        state["log"] = None
        snapshot("F", mb_index, log)
        return result

    setattr(runtime, "_maybe_compute_loss", maybe_compute_loss)  # noqa: B010
    runtime._load_csv(csv_path)
    try:
        with torch.autograd.graph.saved_tensors_hooks(tracker.pack, tracker.unpack):
            for step in range(2):
                state["measuring"] = step == 1
                runtime.step(
                    *((x,) if rank == 0 else ()),
                    target=y if rank == p - 1 else None,
                    losses=[] if rank == p - 1 else None,
                )
                tracker.current = None
        gc.collect()
        Path(out, f"rank{rank}.json").write_text(
            json.dumps({"events": events, "leftover_after_step": len(tracker.alive)})
        )
    finally:
        import torch.distributed as dist

        dist.destroy_process_group()


def run(args: argparse.Namespace, split: bool) -> dict[int, dict]:
    with tempfile.TemporaryDirectory() as out:
        csv_path = Path(out, "schedule.csv")
        csv_path.write_text("\n".join(",".join(r) for r in one_f_one_b(args.p, args.m, split)))
        spawn(_rank_main, (args, str(csv_path), _free_port(), out), args.p)
        return {r: json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(args.p)}


def summarize(results: dict[int, dict], p: int, act: int) -> list[dict]:
    """Per stage: what is held after each action of one steady micro-batch (mb 1).

    ``A`` = what F allocated beyond the input buffers: the saved tensors that are not the stage
    input ("internal") plus the stage output kept in ``fwd_cache``. After each action: the
    internal saved tensors still alive, the stage output still referenced (``backward_state``
    keeps it, detached, after ``I``), the gradients ``I`` captured at the weights'
    intermediates for ``W``, and, apart, the input gradient waiting in ``bwd_cache`` for
    ``SEND_B``; ``fraction_of_A`` = (saved + output + captured) / A.
    """
    rows = []
    for rank, res in sorted(results.items()):
        by_mb: dict[int, dict[str, dict]] = defaultdict(dict)
        for e in res["events"]:
            by_mb[e["mb"]][e["kind"]] = e
        mb = 1
        f = by_mb[mb]["F"]
        base = f["saved_internal"] + f["output"]
        row = {
            "stage": rank,
            "position": "first" if rank == 0 else "last" if rank == p - 1 else "middle",
            "A_bytes": base,
            "A_activations": base / act,
            "leftover_after_step": res["leftover_after_step"],
            "actions": {},
        }
        for kind, e in by_mb[mb].items():
            row["actions"][kind] = {
                "saved_internal": e["saved_internal"] / act,
                "saved_input": e["saved_input"] / act,
                "output": e["output"] / act,
                "captured_grads": e["captured_grads"] / act,
                "input_grad": e["input_grad"] / act,
                "fraction_of_A": (e["saved_internal"] + e["output"] + e["captured_grads"]) / base,
                "saved_fraction": e["saved_internal"] / f["saved_internal"],
                "gc_changes": e["saved_internal"] != e["saved_internal_after_gc"],
                "held_bytes": e["held"],
                "ops": e["ops"],
            }
        row["all_microbatches_same"] = all(
            by_mb[b][k]["saved_internal"] == by_mb[mb][k]["saved_internal"]
            and by_mb[b][k]["captured_grads"] == by_mb[mb][k]["captured_grads"]
            for b in by_mb
            for k in by_mb[mb]
            if b not in (0, len(by_mb) - 1)
        )
        row["output_chunks_at_end"] = res["events"][-1]["output_chunks"] / act
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-p", type=int, default=4, help="ranks = stages")
    parser.add_argument("-m", type=int, default=6, help="micro-batches")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--rows", type=int, default=32, help="rows per micro-batch")
    parser.add_argument("--tail", choices=("gelu", "none", "both"), default="both")
    parser.add_argument("--json-out", help="save the summaries and raw events here")
    args = parser.parse_args()
    act = args.rows * args.width * 4
    report: dict[str, dict] = {}
    for tail in ("gelu", "none") if args.tail == "both" else (args.tail,):
        args.tail = tail
        for split in (True, False):
            name = f"tail={tail} {'split' if split else 'full'}"
            results = run(args, split)
            summary = summarize(results, args.p, act)
            report[name] = {"summary": summary, "raw": results}
            print(f"\n== {name}: one activation = {act} B; numbers in activations ==")
            for row in summary:
                print(
                    f"stage {row['stage']} ({row['position']}): F allocates A = "
                    f"{row['A_activations']:g}; every steady micro-batch alike: "
                    f"{row['all_microbatches_same']}; saved tensors left after the step: "
                    f"{row['leftover_after_step']}; output_chunks at step end: "
                    f"{row['output_chunks_at_end']:g}"
                )
                for kind, a in row["actions"].items():
                    print(
                        f"   after {kind}: internal saved {a['saved_internal']:g} "
                        f"(+input {a['saved_input']:g}), output {a['output']:g}, captured grads "
                        f"{a['captured_grads']:g} (+input grad {a['input_grad']:g}) "
                        f"= {a['fraction_of_A']:.3f} A (saved only {a['saved_fraction']:.3f})"
                        f"{'  [gc.collect changes it]' if a['gc_changes'] else ''}"
                    )
                    print(f"      ops {a['ops']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

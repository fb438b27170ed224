"""Megatron-LM's ``--pipeline-model-parallel-layout`` string of a schedule's partition.

Megatron writes one virtual stage after the other, in model order, separated by ``|``; each
stage is its layers in order: ``E`` the embedding, ``t`` a transformer (decoder) layer, ``m``
a multi-token-prediction layer, ``L`` the loss (LM head and loss); ``t*3`` is three ``t``.
With chunks Megatron places virtual stage ``s`` on rank ``s mod p`` (interleaved), so only
that placement can be written. A layer's symbol comes from its name without the ``.k`` run
index: ``embed``, ``embedding``, ``embeddings``, ``tok_embeddings``, ``wte`` are ``E``;
``head``, ``lm_head``, ``output``, ``loss`` are ``L``; ``mtp`` is ``m``; anything else ``t``.
"""

from __future__ import annotations

from ppopt.atomic import atomic_write_text
from ppopt.errors import ConfigError
from ppopt.partition import stage_partition
from ppopt.problem import Problem
from ppopt.schedule import Schedule

EMBEDDING_NAMES = frozenset({"embed", "embedding", "embeddings", "tok_embeddings", "wte"})
LOSS_NAMES = frozenset({"head", "lm_head", "output", "loss"})
MTP_NAMES = frozenset({"mtp"})


def layer_symbol(name: str) -> str:
    """Megatron's symbol of one layer, from its name (module docstring)."""
    base = name.rsplit(".", 1)[0] if name.rsplit(".", 1)[-1].isdigit() else name
    base = base.lower()
    if base in EMBEDDING_NAMES:
        return "E"
    if base in LOSS_NAMES:
        return "L"
    if base in MTP_NAMES:
        return "m"
    return "t"


def megatron_layout(problem: Problem) -> str:
    """The layout string of the problem's partition (refused, one line, when the problem has
    none, is not placed interleaved, or puts an embedding or loss anywhere but at the ends)."""
    partition = stage_partition(problem)
    if problem.num_chunks > 1 and problem.placement_name != "interleaved":
        raise ConfigError(
            f"--format megatron: Megatron places virtual stages interleaved (stage s on rank "
            f"s mod p); this schedule's placement is {problem.placement_name}"
        )
    symbols = [layer_symbol(name) for name in partition.names]
    for k, symbol in enumerate(symbols):
        if (symbol == "E" and k != 0) or (symbol == "L" and k != len(symbols) - 1):
            where = "first" if symbol == "E" else "last"
            raise ConfigError(
                f"--format megatron: layer {partition.names[k]!r} ({symbol}) must be the "
                f"{where} layer in a Megatron layout"
            )
    stages = []
    for first, last in partition.ranges():
        stages.append(_compress(symbols[first : last + 1]))
    return "|".join(stages)


def _compress(symbols: list[str]) -> str:
    """A stage's symbols with runs written ``t*3``."""
    out, k = [], 0
    while k < len(symbols):
        run = 1
        while k + run < len(symbols) and symbols[k + run] == symbols[k]:
            run += 1
        out.append(symbols[k] if run == 1 else f"{symbols[k]}*{run}")
        k += run
    return "".join(out)


def write_megatron_layout(path: str, schedule: Schedule) -> None:
    """Write the layout string (one line) atomically."""
    atomic_write_text(path, megatron_layout(schedule.problem) + "\n")

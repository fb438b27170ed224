"""The config keys ``layers:`` and ``partition:`` (docs/contract.md §2).

``layers:`` (a list of layers and ``{name, count}`` runs, or the path of a profile CSV) takes
the place of the per-stage times; ``partition:`` says how to cut the layers into virtual
stages: ``even`` (the default), ``auto`` (the optimizer chooses, :mod:`ppopt.solver.partition`)
or a list of layers per virtual stage. A schedule file's problem carries the chosen cut in the
normalised form ``partition: {layers: [names], sizes: [counts]}`` beside the per-stage times,
which names the stages without a profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ppopt.errors import ConfigError, ProblemError
from ppopt.layers import Partition, Profile
from ppopt.limits import MemoryLimit
from ppopt.links import parse_p2p
from ppopt.partition import PARTITION_WORDS, LayeredProblem, even_sizes
from ppopt.problem import Problem
from ppopt.runtime import Runtime

#: Keys whose values ``layers:`` replaces (the stage times and memory come from the layers).
REPLACED_KEYS = ("forward_times", "backward_times", "weight_times")
REPLACED_MEMORY_KEYS = ("activation", "retained")
AUTO = "auto"
EVEN = "even"


def layered_problem(raw: Mapping[str, Any], limit: MemoryLimit) -> LayeredProblem | None:
    """The config's :class:`LayeredProblem`, or ``None`` when it gives no ``layers:``."""
    if raw.get("layers") is None:
        return None
    for key in REPLACED_KEYS:
        if raw.get(key) is not None:
            raise ConfigError(
                f"{key}: cannot be given with layers (the stage times are sums "
                "over each stage's layers)"
            )
    memory = raw.get("memory") or {}
    for key in REPLACED_MEMORY_KEYS:
        if memory.get(key) is not None:
            raise ConfigError(
                f"memory.{key}: cannot be given with layers (each layer gives its activation)"
            )
    placement = raw.get("placement", "interleaved")
    return LayeredProblem(
        profile=Profile.from_config(raw["layers"]),
        num_devices=raw["num_stages"],
        num_microbatches=raw["num_batches"],
        num_chunks=raw.get("num_chunks") or 1,
        placement=placement if isinstance(placement, str) else tuple(placement),
        p2p=parse_p2p(0.0 if raw.get("p2p_time") is None else raw["p2p_time"]),
        memory_limit=limit,
        runtime=raw.get("runtime") or Runtime.ABSTRACT,
    )


def partition_choice(raw: Mapping[str, Any]) -> str | tuple[int, ...]:
    """``even``, ``auto`` or the layer counts of the config's ``partition:`` (with layers)."""
    value = raw.get("partition", EVEN)
    if isinstance(value, str) and value in PARTITION_WORDS:
        return value
    if isinstance(value, list | tuple) and value:
        for i, size in enumerate(value):
            if isinstance(size, bool) or not isinstance(size, int):
                raise ConfigError(
                    f"partition[{i}]: expected a whole number of layers, got {size!r}"
                )
        return tuple(value)
    raise ConfigError(
        f"partition: expected {', '.join(PARTITION_WORDS)} or a list of layers per virtual "
        f"stage, got {value!r}"
    )


def cut_problem(layered: LayeredProblem, choice: str | tuple[int, ...]) -> Problem:
    """The problem of an even or explicit partition; for ``auto`` the even split, which the
    search starts from (:func:`ppopt.runs.run_schedule` replaces it by the chosen one)."""
    if isinstance(choice, str):
        return layered.problem(even_sizes(len(layered.profile), layered.num_stages))
    return layered.problem(choice)


def named_stages(raw: Mapping[str, Any], problem: Problem) -> Problem:
    """A problem given by per-stage times, named by a normalised ``partition:`` mapping (a
    schedule file's ``{layers, sizes}``); any other ``partition`` needs ``layers:``."""
    value = raw.get("partition")
    if value is None:
        return problem
    if not isinstance(value, Mapping):
        raise ConfigError(
            "partition: needs layers: (a profile to cut); with per-stage times "
            "only the normalised form {layers: [names], sizes: [counts]} applies"
        )
    extra = [key for key in value if key not in ("layers", "sizes")]
    if extra or "layers" not in value or "sizes" not in value:
        raise ConfigError("partition: expected {layers: [names], sizes: [counts]}")
    names, sizes = value["layers"], value["sizes"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError("partition.layers: expected a list of layer names")
    if not isinstance(sizes, list):
        raise ConfigError("partition.sizes: expected a list of layer counts")
    try:
        return replace(problem, partition=Partition(tuple(names), tuple(sizes)))
    except ProblemError as error:
        raise ConfigError(str(error)) from None

"""A model's per-layer profile (problem input) and a partition of its layers into stages.

A :class:`Layer` is one layer, or a run of ``count`` identical layers, with its forward (F),
backward (B: the input gradient when ``weight`` is given, else the whole backward) and
optional weight-gradient (W) times, the activation memory one micro-batch's forward keeps,
and optionally its parameter memory. A :class:`Profile` is the model's layers in order, each
run expanded into single layers; :meth:`Profile.sums` adds up a contiguous range of them,
which is what a pipeline stage runs. A :class:`Partition` says which layers each virtual
stage holds (contiguous ranges in model order); it travels with the problem so the report,
the schedule file, the picture and the exports can name them.

The CSV form (:func:`read_profile_csv`, docs/contract.md §2) has a header row; the columns
are ``name``, ``forward``, ``backward``, ``activation`` (required) and ``count``, ``weight``,
``parameters`` (optional); ``#`` starts a comment line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ppopt.atomic import atomic_write_text, read_input_text
from ppopt.checks import as_float, check_count, check_nonnegative, check_positive
from ppopt.errors import ProblemError

#: CSV columns a profile must have, and those it may have.
REQUIRED_COLUMNS = ("name", "forward", "backward", "activation")
OPTIONAL_COLUMNS = ("count", "weight", "parameters")
#: Keys of one layer in a config's ``layers:`` list.
LAYER_KEYS = ("name", "count", "forward", "backward", "weight", "activation", "parameters")


@dataclass(frozen=True)
class Layer:
    """One layer, or ``count`` identical ones (checked on construction; ``key`` names the
    layer in error messages, e.g. ``layers[2]``)."""

    name: str
    forward: float
    backward: float
    activation: float
    weight: float | None = None
    parameters: float | None = None
    count: int | None = None
    key: str = "layer"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ProblemError(
                f"{field_key(self.key, 'name')}: expected a layer name, got {self.name!r}"
            )
        if self.count is not None:
            check_count(field_key(self.key, "count"), self.count)
        for field_name in ("forward", "backward", "weight", "activation", "parameters"):
            value = getattr(self, field_name)
            if value is None:
                continue
            where = field_key(self.key, field_name)
            as_float(where, value)
            if field_name == "forward":
                check_positive(where, value)
            else:  # a layer may have no input gradient (token ids) or no weights (Tanh)
                check_nonnegative(where, value)

    @classmethod
    def from_mapping(cls, raw: object, key: str) -> Layer:
        """A layer from a config entry ``{name, count, forward, backward, weight, activation,
        parameters}``; unknown or missing keys are refused."""
        if not isinstance(raw, Mapping):
            raise ProblemError(
                f"{key}: expected a mapping {{name, forward, backward, ...}}, got {raw!r}"
            )
        for name in raw:
            if name not in LAYER_KEYS:
                raise ProblemError(f"{key}.{name}: unknown key (known: {', '.join(LAYER_KEYS)})")
        for name in REQUIRED_COLUMNS:
            if raw.get(name) is None:
                raise ProblemError(f"{key}.{name}: missing")
        return cls(
            name=raw["name"],
            forward=raw["forward"],
            backward=raw["backward"],
            activation=raw["activation"],
            weight=raw.get("weight"),
            parameters=raw.get("parameters"),
            count=raw.get("count"),
            key=key,
        )


def field_key(key: str, field_name: str) -> str:
    """How an error names one field of a layer: ``layers[2].forward`` in a config,
    ``p.csv: row 3, forward`` in a CSV (whose row key holds the path)."""
    return f"{key}, {field_name}" if ": row " in key else f"{key}.{field_name}"


@dataclass(frozen=True)
class StageSums:
    """What a contiguous range of layers adds up to: one virtual stage's F, B, W times (W
    ``None`` for a full backward), activation memory and parameter memory."""

    forward: float
    backward: float
    weight: float | None
    activation: float
    parameters: float


@dataclass(frozen=True)
class Profile:
    """A model's layers in order, every run expanded into single layers (named ``name.k``,
    ``k`` counting the layers of that name over the whole model; a layer without ``count``
    keeps its bare name)."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ProblemError("layers: empty; give at least one layer")
        split = [layer.weight is not None for layer in self.layers]
        if any(split) and not all(split):
            first = self.layers[split.index(not split[0])]
            raise ProblemError(
                f"{field_key(first.key, 'weight')}: give weight on every layer or on none "
                "(a split backward needs W on every stage)"
            )

    @classmethod
    def expand(cls, runs: Sequence[Layer]) -> Profile:
        """The profile of a list of layers and runs of identical layers."""
        seen: dict[str, int] = {}
        out = []
        for run in runs:
            for _ in range(run.count or 1):
                index = seen.get(run.name, 0)
                seen[run.name] = index + 1
                name = run.name if run.count is None else f"{run.name}.{index}"
                out.append(
                    Layer(
                        name,
                        run.forward,
                        run.backward,
                        run.activation,
                        run.weight,
                        run.parameters,
                        key=run.key,
                    )
                )
        return cls(tuple(out))

    @classmethod
    def from_config(cls, raw: object) -> Profile:
        """The profile of a config's ``layers:`` value: a list of layer mappings, or the path
        of a profile CSV."""
        if isinstance(raw, str | Path):
            return read_profile_csv(raw)
        if not isinstance(raw, list | tuple):
            raise ProblemError(f"layers: expected a list of layers or a CSV path, got {raw!r}")
        return cls.expand([Layer.from_mapping(item, f"layers[{i}]") for i, item in enumerate(raw)])

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def names(self) -> tuple[str, ...]:
        """Every layer's name, in model order."""
        return tuple(layer.name for layer in self.layers)

    @property
    def is_split(self) -> bool:
        """True when the layers give W times (the backward is split into B and W)."""
        return self.layers[0].weight is not None

    def sums(self, start: int, stop: int) -> StageSums:
        """The layers ``start..stop-1`` added up (exact float sums, :func:`math.fsum`)."""
        if not 0 <= start < stop <= len(self.layers):
            raise ProblemError(
                f"layers {start}..{stop - 1}: not a range of the profile's "
                f"{len(self.layers)} layers"
            )
        part = self.layers[start:stop]
        return StageSums(
            forward=math.fsum(layer.forward for layer in part),
            backward=math.fsum(layer.backward for layer in part),
            weight=math.fsum(layer.weight or 0.0 for layer in part) if self.is_split else None,
            activation=math.fsum(layer.activation for layer in part),
            parameters=math.fsum(layer.parameters or 0.0 for layer in part),
        )

    def prefix(self, what: str) -> tuple[float, ...]:
        """Running sums ``out[k]`` = the first ``k`` layers' ``what`` (``forward``,
        ``backward``, ``weight``, ``activation``, ``parameters`` or ``step`` = F + B + W), for
        range sums in O(1) where a search needs many (:meth:`sums` adds exactly)."""
        return self._prefixes[what]

    @cached_property
    def _prefixes(self) -> dict[str, tuple[float, ...]]:
        out: dict[str, tuple[float, ...]] = {}
        for what in ("forward", "backward", "weight", "activation", "parameters", "step"):
            total, sums = 0.0, [0.0]
            for layer in self.layers:
                if what == "step":
                    total += layer.forward + layer.backward + (layer.weight or 0.0)
                else:
                    total += getattr(layer, what) or 0.0
                sums.append(total)
            out[what] = tuple(sums)
        return out


@dataclass(frozen=True)
class Partition:
    """Which layers each virtual stage holds: ``sizes[s]`` consecutive layers for stage
    ``s``, in model order, every stage at least one; ``names`` are the layers' names."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        check_sizes(self.sizes, len(self.names))

    def ranges(self) -> tuple[tuple[int, int], ...]:
        """``(first, last)`` layer index of each virtual stage (both inclusive)."""
        out, start = [], 0
        for size in self.sizes:
            out.append((start, start + size - 1))
            start += size
        return tuple(out)

    def stage_layers(self, stage: int) -> tuple[str, ...]:
        """The names of the layers of one virtual stage."""
        first, last = self.ranges()[stage]
        return self.names[first : last + 1]

    def range_label(self, stage: int) -> str:
        """A short label of a stage's layers: ``L0-4`` (indices from 0), ``L7`` for one."""
        first, last = self.ranges()[stage]
        return f"L{first}" if first == last else f"L{first}-{last}"

    def to_dict(self) -> dict[str, list[str] | list[int]]:
        """The schedule file's ``problem.partition`` (docs/contract.md §4)."""
        return {"layers": list(self.names), "sizes": list(self.sizes)}


def check_sizes(sizes: Sequence[int], num_layers: int, num_stages: int | None = None) -> None:
    """Layers per virtual stage: whole numbers >= 1 adding up to the number of layers (and,
    when given, one per virtual stage)."""
    if num_stages is not None and len(sizes) != num_stages:
        raise ProblemError(
            f"partition: expected {num_stages} layer counts (one per virtual stage), "
            f"got {len(sizes)}"
        )
    for i, size in enumerate(sizes):
        check_count(f"partition[{i}]", size)
    if sum(sizes) != num_layers:
        raise ProblemError(
            f"partition: the layer counts add up to {sum(sizes)}, the profile has {num_layers} "
            "layers"
        )


# ------------------------------------------------------------------------------------ CSV


def read_profile_csv(path: str | Path) -> Profile:
    """Read a profile CSV (columns in the module docstring); every error is one line naming
    the file, the row and the column."""
    path = Path(path)
    text = read_input_text(path, ProblemError, "profile")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(lines))
    if not rows:
        raise ProblemError(f"{path}: profile file is empty")
    header = [column.strip() for column in rows[0]]
    _check_header(path, header)
    layers = []
    for number, row in enumerate(rows[1:], start=2):
        where = f"{path}: row {number}"
        if len(row) != len(header):
            raise ProblemError(f"{where}: expected {len(header)} columns, got {len(row)}")
        cells = {column: cell.strip() for column, cell in zip(header, row, strict=True)}
        layers.append(_layer_from_cells(cells, where))
    if not layers:
        raise ProblemError(f"{path}: profile has a header but no layers")
    try:
        return Profile.expand(layers)
    except ProblemError as error:
        raise ProblemError(f"{path}: {error}") from None


def write_profile_csv(path: str | Path, layers: Sequence[Layer]) -> str:
    """The CSV text of ``layers`` (written atomically to ``path``); returns the text."""
    split = any(layer.weight is not None for layer in layers)
    params = any(layer.parameters is not None for layer in layers)
    columns = [
        "name",
        "forward",
        "backward",
        *(["weight"] if split else []),
        "activation",
        *(["parameters"] if params else []),
    ]
    out = [",".join(columns)]
    for layer in layers:
        out.append(",".join(_cell(getattr(layer, column)) for column in columns))
    text = "\n".join(out) + "\n"
    atomic_write_text(path, text)
    return text


def _cell(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def _check_header(path: Path, header: list[str]) -> None:
    for column in header:
        if column not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
            known = ", ".join((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))
            raise ProblemError(f"{path}: unknown column {column!r} (known: {known})")
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ProblemError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(a profile has {', '.join(REQUIRED_COLUMNS)})"
        )


def _layer_from_cells(cells: dict[str, str], where: str) -> Layer:
    def number(column: str) -> float | None:
        text = cells.get(column, "")
        if not text:
            if column in REQUIRED_COLUMNS:
                raise ProblemError(f"{where}, {column}: empty")
            return None
        try:
            return float(text)
        except ValueError:
            raise ProblemError(f"{where}, {column}: expected a number, got {text!r}") from None

    count_text = cells.get("count", "")
    if count_text and not count_text.isdigit():
        raise ProblemError(f"{where}, count: expected a whole number >= 1, got {count_text!r}")
    forward, backward, activation = number("forward"), number("backward"), number("activation")
    assert forward is not None and backward is not None and activation is not None
    return Layer(
        name=cells["name"],
        forward=forward,
        backward=backward,
        activation=activation,
        weight=number("weight"),
        parameters=number("parameters"),
        count=int(count_text) if count_text else None,
        key=where,
    )

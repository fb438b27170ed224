"""Config files (docs/contract.md §2): read strictly, merged with command-line options, built
into a :class:`RunConfig`.

The seed's keys work unchanged (``num_stages``, ``num_batches``, ``forward_times``,
``backward_times``, ``output_file``, ``p2p_time``). Every error is a :class:`ConfigError` whose
one-line message names the key (``forward_times[2]: must be > 0, got -1``) and, when the bad
value came from the file, the file. Command-line overrides are a merge in which only options
the user actually gave replace file values: the seed silently ignored its config file, ppopt
does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ppopt import links
from ppopt.baselines import BASELINES
from ppopt.checks import did_you_mean
from ppopt.config.files import one_line, read_data_file
from ppopt.config.layers import AUTO, cut_problem, layered_problem, named_stages, partition_choice
from ppopt.errors import ConfigError, ProblemError, SolverOptionError
from ppopt.limits import MemoryLimit
from ppopt.microbatches import MICROBATCH_ORDERS
from ppopt.offload import Offload
from ppopt.partition import LayeredProblem
from ppopt.placement import placement_stages
from ppopt.problem import Problem
from ppopt.recompute import Recompute, RecomputePer
from ppopt.runtime import Runtime
from ppopt.solver.options import SolverOptions

#: Keys that describe the problem itself (docs/contract.md §1), in the order the schedule file uses.
PROBLEM_KEYS = (
    "num_stages",
    "num_batches",
    "num_chunks",
    "placement",
    "forward_times",
    "backward_times",
    "weight_times",
    "p2p_time",
    "memory",
    "runtime",
    "recompute_times",
    "microbatch_scale",
    "overlap_times",
    "copies",
)
#: Written only by a problem that offloads (files without offload stay as they were).
OFFLOAD_KEYS = ("offload_times",)
#: A layer profile to cut into stages instead of per-stage times (:mod:`ppopt.config.layers`);
#: a schedule file's problem carries the cut as ``partition`` (when there was one).
LAYER_KEYS = ("layers", "partition")
#: Every top-level key of a config file.
TOP_KEYS = (
    *PROBLEM_KEYS,
    *LAYER_KEYS,
    *OFFLOAD_KEYS,
    "schedule",
    "solver",
    "output_file",
    "json_file",
    "trace_file",
)
MEMORY_KEYS = (
    "activation",
    "retained",
    "limit",
    "recompute",
    "checkpoint",
    "recomputed",
    "recompute_per",
    "offload",
    "offloaded",
)
SOLVER_KEYS = ("time_limit", "workers", "seed", "order", "objective", "deterministic", "method")
SECTIONS = {"memory": MEMORY_KEYS, "solver": SOLVER_KEYS}
PICTURE_SUFFIXES = (".png", ".svg", ".pdf", ".html")  # .html: the interactive page
OPTIMAL = "optimal"

Raw = dict[str, Any]


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``ppopt solve`` run needs, validated.

    ``output_file`` is the picture path (``None``: the default ``pipeline_<schedule>.png``);
    ``memory_limit_given`` says whether the user chose the limit or ppopt's default applied.
    With ``layers:``, ``layered`` is the profile to cut and ``auto_partition`` says that the
    partition is still to be chosen (``problem`` is then the even split).
    """

    problem: Problem
    schedule: str
    solver: SolverOptions
    output_file: str | None = None
    json_file: str | None = None
    trace_file: str | None = None
    memory_limit_given: bool = False
    layered: LayeredProblem | None = None
    auto_partition: bool = False


# ------------------------------------------------------------------------------ reading


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    max_tasks: int | None = None,
) -> RunConfig:
    """Read ``path`` (if any), apply command-line ``overrides``, validate, build the run.

    ``overrides`` has the shape of a config file; a ``None`` value means "not given" and never
    replaces the file's value. ``max_tasks`` is the size guard (:func:`check_size`).
    """
    raw = read_config_file(path) if path is not None else {}
    overrides = dict(overrides or {})
    try:
        return build_run_config(merge(raw, overrides), max_tasks)
    except ConfigError as error:
        raise ConfigError(_blame(str(error), overrides, path)) from None


def read_config_file(path: str | Path) -> Raw:
    """Parse a config file into a dict with only known keys (values are checked later)."""
    path = Path(path)
    data = read_data_file(path, "config")
    try:
        raw = dict(check_keys(data))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    if isinstance(raw.get("layers"), str):  # a profile CSV, relative to the config file
        raw["layers"] = str(path.parent / raw["layers"])
    return raw


def check_keys(data: object) -> Mapping[str, Any]:
    """Reject anything but a mapping of known keys (also inside ``memory:`` and ``solver:``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of config keys, got {_kind(data)}")
    if "format" in data and "ops" in data:
        raise ConfigError(
            "a schedule file, not a config: check it with 'ppopt validate', draw it with "
            "'ppopt plot', convert it with 'ppopt export'"
        )
    _check_known(data, TOP_KEYS, "")
    for section, known in SECTIONS.items():
        value = data.get(section)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{section}: expected a mapping ({', '.join(known)}), got {_kind(value)}"
            )
        _check_known(value, known, f"{section}.")
    return data


def _check_known(data: Mapping[Any, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in data:
        if key not in known:
            hint = did_you_mean(str(key), known)
            raise ConfigError(f"{prefix}{key}: unknown key{hint} (known: {', '.join(known)})")


# ------------------------------------------------------------------------------ merging


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Raw:
    """``base`` with every non-``None`` override applied; sections merge key by key."""
    out: Raw = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in SECTIONS and isinstance(value, Mapping):
            section = dict(out.get(key) or {})
            section.update({k: v for k, v in value.items() if v is not None})
            if section:
                out[key] = section
        else:
            out[key] = value
    return out


def _blame(message: str, overrides: Mapping[str, Any], path: str | Path | None) -> str:
    """Prefix an error with the config file unless the command line set the culprit key."""
    if path is None or message.startswith(f"{path}:"):
        return message
    top, sub = culprit_key(message)
    given = overrides.get(top)
    if isinstance(given, Mapping):
        given = given.get(sub) if sub else None
    if given is not None:
        return message
    return f"{path}: {message}"


#: The config key an error message starts with: ``p2p_time``, ``forward_times[2]``,
#: ``memory.limit[0]``, ``solver.time_limit`` (names hold digits: ``p2p_time``).
_CULPRIT = re.compile(r"([a-z][a-z0-9_]*)(?:\[\d+\])?(?:\.([a-z][a-z0-9_]*))?")


def culprit_key(message: str) -> tuple[str, str | None]:
    """``(top key, key inside its section or None)`` of the key an error message names first,
    e.g. ``("memory", "limit")`` for ``memory.limit[0]: must be > 0``; ``("", None)`` if none."""
    match = _CULPRIT.match(message)
    return (match.group(1), match.group(2)) if match else ("", None)


# ----------------------------------------------------------------------------- building


def build_run_config(raw: Mapping[str, Any], max_tasks: int | None = None) -> RunConfig:
    """Validate a merged config dict and build the :class:`RunConfig` (``max_tasks``: the
    size guard, :func:`check_size`)."""
    check_keys(raw)
    schedule = _schedule_name(raw.get("schedule", OPTIMAL))
    memory = dict(raw.get("memory") or {})
    limit_given = "limit" in memory
    if not limit_given:
        memory["limit"] = "1x" if schedule == OPTIMAL else "none"
    if max_tasks is not None:
        check_size(raw, max_tasks)
    full = {**raw, "memory": memory}
    layered = _layered(full) if raw.get("layers") is not None else None
    problem = build_problem(full) if layered is None else _cut(layered, full)
    return RunConfig(
        problem=problem,
        layered=layered,
        auto_partition=layered is not None and partition_choice(raw) == AUTO,
        schedule=schedule,
        solver=build_solver_options(raw.get("solver") or {}),
        output_file=_path_value(raw, "output_file"),
        json_file=_path_value(raw, "json_file"),
        trace_file=_path_value(raw, "trace_file"),
        memory_limit_given=limit_given,
    )


def build_problem(raw: Mapping[str, Any]) -> Problem:
    """The :class:`Problem` of a config dict (problem keys only are read)."""
    _required(raw)
    memory = raw.get("memory") or {}
    placement = raw.get("placement", "interleaved")
    if not isinstance(placement, str | list | tuple):
        raise ConfigError(
            f"placement: expected interleaved, vshape or a list of device indices, "
            f"got {_kind(placement)}"
        )
    copies = _given(raw, "copies", 1)
    if isinstance(copies, bool) or copies not in (1, 2):
        raise ConfigError(f"copies: must be 1 or 2 (two model copies, DualPipe), got {copies!r}")
    if raw.get("layers") is not None:
        if copies == 2:
            raise ConfigError("copies: 2 cannot be combined with layers yet (give stage times)")
        if raw.get("microbatch_scale") is not None:
            raise ConfigError("microbatch_scale: not supported with layers (give stage times)")
        return _cut(_layered(raw), raw)
    try:
        problem = Problem.create(
            num_devices=raw["num_stages"],
            num_microbatches=raw["num_batches"],
            forward=_given(raw, "forward_times", 1.0),
            backward=_given(raw, "backward_times", 2.0),
            weight=raw.get("weight_times"),
            p2p=_given(raw, "p2p_time", 0.0),
            num_chunks=_given(raw, "num_chunks", 1),
            placement=placement,
            activation=_given(memory, "activation", 1.0),
            retained=_given(memory, "retained", 0.0),
            memory_limit=MemoryLimit.parse(memory.get("limit")),
            runtime=_word(raw, "runtime", Runtime.ABSTRACT),
            recompute=_word(memory, "recompute", Recompute.NONE, "memory."),
            recompute_times=raw.get("recompute_times"),
            checkpoint=memory.get("checkpoint"),
            recompute_per=_word(memory, "recompute_per", RecomputePer.MICROBATCH, "memory."),
            microbatch_scale=raw.get("microbatch_scale"),
            offload=_word(memory, "offload", Offload.NONE, "memory."),
            offload_times=raw.get("offload_times"),
            overlap=raw.get("overlap_times"),
            copies=copies,
        )
        if memory.get("recomputed") is not None:
            problem = problem.with_recomputed(_pairs(memory["recomputed"]))
        if memory.get("offloaded") is not None:
            problem = problem.with_offloaded(_pairs(memory["offloaded"], "memory.offloaded"))
    except ProblemError as error:
        raise ConfigError(one_line(str(error))) from None
    return named_stages(raw, problem)


def _layered(raw: Mapping[str, Any]) -> LayeredProblem:
    """The profile to cut of a config with ``layers:`` (checked like the rest)."""
    _required(raw)
    memory = raw.get("memory") or {}
    try:
        layered = layered_problem(raw, MemoryLimit.parse(memory.get("limit")))
    except ProblemError as error:
        raise ConfigError(one_line(str(error))) from None
    assert layered is not None
    return layered


def _cut(layered: LayeredProblem, raw: Mapping[str, Any]) -> Problem:
    """The problem of the config's partition of ``layered``."""
    try:
        return cut_problem(layered, partition_choice(raw))
    except ProblemError as error:
        raise ConfigError(one_line(str(error))) from None


def _required(raw: Mapping[str, Any]) -> None:
    for key in ("num_stages", "num_batches"):
        if raw.get(key) is None:
            option = "--" + key.replace("_", "-")
            raise ConfigError(f"{key}: missing; give it in the config file or as {option}")


#: The size guard of ``ppopt solve`` and ``ppopt compare``: more tasks than this are refused
#: unless ``--allow-large`` (docs/contract.md §3). At 200,000 tasks a run takes about 6 s and
#: 240 MB before the search starts; the issue's 8 billion tasks would have needed 9.6 TB.
MAX_TASKS = 200_000
#: Measured per task on the shared 2-core machine (p=16, m=10,000: 320,000 tasks, 9.9 s and
#: 365 MB for the whole run with a 2 s limit): the size guard's estimate.
SECONDS_PER_TASK = 3.0e-5
BYTES_PER_TASK = 1.2e3


def check_size(raw: Mapping[str, Any], max_tasks: int) -> None:
    """Refuse, before anything is built, a problem of more than ``max_tasks`` tasks, with the
    time and memory it would take, naming the largest count. Counts that are not whole
    numbers >= 1 are left to the problem's own checks."""
    counts = [raw.get("num_stages"), raw.get("num_batches"), raw.get("num_chunks") or 1]
    whole = [n for n in counts if isinstance(n, int) and not isinstance(n, bool) and n >= 1]
    if len(whole) != len(counts):
        return
    devices, batches, chunks = whole
    kinds = 2 if raw.get("weight_times") is None else 3
    tasks = kinds * devices * chunks * batches
    if tasks <= max_tasks:
        return
    scale = float(tasks) if tasks < 10**300 else math.inf
    seconds, gigabytes = scale * SECONDS_PER_TASK, scale * BYTES_PER_TASK / 1e9
    key = max(zip(counts, ("num_stages", "num_batches", "num_chunks"), strict=True))[1]
    raise ConfigError(
        f"{key}: too large: {_count(devices)} devices x {_count(chunks)} chunks x "
        f"{_count(batches)} micro-batches = {_count(tasks)} tasks, above the size guard of "
        f"{max_tasks:,} (estimated {_amount(seconds)} s and {_amount(gigabytes)} GB before the "
        "search starts); pass --allow-large to run it anyway"
    )


def _count(n: int) -> str:
    """A whole number with thousands separators, or its magnitude when it is huge (an int of
    more than 4300 digits cannot even be printed)."""
    return f"{n:,}" if n < 10**15 else f"about 1e{int(math.log10(n))}"


def _amount(x: float) -> str:
    """A positive estimate in three significant digits (``6``, ``0.24``, ``9.6e+03``)."""
    return f"{x:.3g}" if math.isfinite(x) else "over 1e300"


def build_solver_options(raw: Mapping[str, Any]) -> SolverOptions:
    """:class:`SolverOptions` from a ``solver:`` section, every value type-checked."""
    kwargs: dict[str, Any] = {}
    if raw.get("time_limit") is not None:
        value = raw["time_limit"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(
                f"solver.time_limit: expected a finite number of seconds, got {value!r}"
            )
        kwargs["time_limit"] = float(value)
    for key in ("workers", "seed"):
        value = raw.get(key)
        if value is None:
            continue
        kwargs[key] = value  # range and type: SolverOptions
    for key in ("order", "objective", "method"):
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise ConfigError(f"solver.{key}: expected a word, got {value!r}")
            kwargs[key] = value
    if raw.get("deterministic") is not None:
        if not isinstance(raw["deterministic"], bool):
            raise ConfigError(
                f"solver.deterministic: expected true or false, got {raw['deterministic']!r}"
            )
        kwargs["deterministic"] = raw["deterministic"]
    try:
        return SolverOptions(**kwargs)
    except SolverOptionError as error:
        raise ConfigError(one_line(str(error))) from None


def known_schedules() -> tuple[str, ...]:
    """Every valid ``schedule`` value: the optimizer and each registered baseline."""
    return (OPTIMAL, *BASELINES)


def is_known_schedule(name: object) -> bool:
    """Whether ``name`` is a schedule: a known one, or a baseline ``NAME@ORDER``."""
    if not isinstance(name, str):
        return False
    base, _, order = name.partition("@")
    if order:
        return base in BASELINES and order in MICROBATCH_ORDERS
    return name in known_schedules()


def _schedule_name(value: object) -> str:
    if not isinstance(value, str) or not is_known_schedule(value):
        raise ConfigError(
            f"schedule: unknown schedule {value!r}"
            f"{did_you_mean(str(value), known_schedules())} (known: {', '.join(known_schedules())})"
        )
    return value


def _path_value(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected a file path, got {value!r}")
    if key == "output_file":
        check_picture_suffix(key, value)
    return value


def check_picture_suffix(key: str, path: str) -> None:
    """A picture path must end in .png, .svg, .pdf or .html (the format follows the
    extension; .html is the interactive page)."""
    suffix = Path(path).suffix.lower()
    if suffix not in PICTURE_SUFFIXES:
        known = ", ".join(PICTURE_SUFFIXES[:-1]) + " or " + PICTURE_SUFFIXES[-1]
        raise ConfigError(f"{key}: picture must end in {known}, got {suffix or 'no extension'!r}")


def _word(raw: Mapping[str, Any], key: str, default: str, prefix: str = "") -> str:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{prefix}{key}: expected a word, got {value!r}")
    return value


def _pairs(value: object, key: str = "memory.recomputed") -> list[tuple[int, int]]:
    """``memory.recomputed`` (or ``offloaded``): a list of ``[stage, micro-batch]`` pairs of
    whole numbers."""
    pairs = list(value) if isinstance(value, list | tuple) else None
    whole = [
        (pair[0], pair[1])
        for pair in pairs or ()
        if isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
    ]
    if pairs is None or len(whole) != len(pairs):
        raise ConfigError(f"{key}: expected a list of [stage, micro-batch], got {value!r}")
    return whole


def _given(raw: Mapping[str, Any], key: str, default: Any) -> Any:
    value = raw.get(key)
    return default if value is None else value


# ------------------------------------------------------------------------------- output


def problem_to_dict(problem: Problem) -> Raw:
    """The complete, normalised problem as config keys (every stage listed, every default)."""
    out: Raw = {
        "num_stages": problem.num_devices,
        "num_batches": problem.num_microbatches,
        "num_chunks": problem.num_chunks,
        "placement": list(problem.placement),
        "forward_times": list(problem.forward),
        "backward_times": list(problem.backward),
        "weight_times": None if problem.weight is None else list(problem.weight),
        "p2p_time": links.to_config(problem.p2p),
        "memory": {
            "activation": list(problem.activation),
            "retained": list(problem.retained),
            "limit": problem.memory_limit.to_config(),
        },
        "runtime": str(problem.runtime),
        **({} if problem.partition is None else {"partition": problem.partition.to_dict()}),
    }
    extra = _recompute_to_dict(problem)
    out["memory"].update(extra.pop("memory"))
    out.update(extra)
    if problem.offload != Offload.NONE:  # absent otherwise: files without offload unchanged
        out["memory"]["offload"] = str(problem.offload)
        if problem.offload == Offload.AUTO:
            out["memory"]["offloaded"] = [list(pair) for pair in sorted(problem.offloaded)]
        times = problem.offload_times
        out["offload_times"] = None if times is None else list(times)
    out["overlap_times"] = None if problem.overlap is None else list(problem.overlap)
    out["copies"] = problem.copies
    return out


def _recompute_to_dict(problem: Problem) -> Raw:
    """The recomputation keys (``None``: not given, the default applies);
    ``memory.recomputed`` lists an ``auto`` problem's choice."""
    memory: Raw = {
        "recompute": str(problem.recompute),
        "checkpoint": None if problem.checkpoint is None else list(problem.checkpoint),
    }
    if problem.recompute == Recompute.AUTO:
        memory["recomputed"] = [list(pair) for pair in sorted(problem.recomputed)]
        memory["recompute_per"] = str(problem.recompute_per)
    times = None if problem.recompute_times is None else list(problem.recompute_times)
    scale = None if problem.microbatch_scale is None else list(problem.microbatch_scale)
    return {"recompute_times": times, "microbatch_scale": scale, "memory": memory}


def problem_from_dict(raw: object) -> Problem:
    """Rebuild a problem from :func:`problem_to_dict` output, as strictly as a config file.

    An explicit placement list equal to a named placement gets that name back.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"problem: expected a mapping of config keys, got {_kind(raw)}")
    known = (*PROBLEM_KEYS, *OFFLOAD_KEYS, "partition")
    extra = [key for key in raw if key not in known]
    if extra:
        raise ConfigError(f"problem.{extra[0]}: unknown key (known: {', '.join(known)})")
    check_keys(raw)
    memory = dict(raw.get("memory") or {})
    memory.setdefault("limit", "none")
    problem = build_problem({**raw, "memory": memory})
    for name in ("interleaved", "vshape"):
        try:
            named = placement_stages(name, problem.num_devices, problem.num_chunks)
        except ProblemError:
            continue
        if named == problem.placement:
            return replace(problem, placement_name=name)
    return problem


# -------------------------------------------------------------------------------- utils


def _kind(value: object) -> str:
    """A short description of a value's type for error messages."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)

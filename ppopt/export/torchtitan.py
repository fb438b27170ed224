"""torchtitan's ``module_fqns_per_model_part`` of a schedule's partition.

torchtitan (``parallelism.module_fqns_per_model_part``) takes one list of module names
(FQNs) per model part, i.e. per virtual stage in model order; it maps the parts to ranks by
its schedule's style (``loop`` for interleaved schedules, ``v`` for ZB-V and DualPipeV), so
the interleaved and V placements both carry over. The names are the profile's layer names
(a run ``{name: layers, count: 30}`` gives ``layers.0`` … ``layers.29``, as torchtitan's
Llama names its blocks). The output is JSON: ``{"module_fqns_per_model_part": [[...], ...]}``.
"""

from __future__ import annotations

import json

from ppopt.atomic import atomic_write_text
from ppopt.errors import ConfigError
from ppopt.partition import stage_partition
from ppopt.problem import Problem
from ppopt.schedule import Schedule

#: torchtitan's rank-assignment style for a ppopt placement.
STYLES = {"interleaved": "loop", "vshape": "v"}


def module_fqns_per_model_part(problem: Problem) -> list[list[str]]:
    """One list of layer names per virtual stage, in model order."""
    partition = stage_partition(problem)
    if problem.num_chunks > 1 and problem.placement_name not in STYLES:
        raise ConfigError(
            "--format torchtitan: torchtitan places model parts by loop or v style; this "
            f"schedule's placement is {problem.placement_name}"
        )
    return [list(partition.stage_layers(s)) for s in range(problem.num_stages)]


def torchtitan_parts(problem: Problem) -> dict[str, object]:
    """The JSON object written: the parts and, with chunks, the rank style they assume."""
    out: dict[str, object] = {"module_fqns_per_model_part": module_fqns_per_model_part(problem)}
    if problem.num_chunks > 1:
        out["style"] = STYLES[problem.placement_name]
    return out


def write_torchtitan_parts(path: str, schedule: Schedule) -> None:
    """Write the JSON atomically."""
    atomic_write_text(path, json.dumps(torchtitan_parts(schedule.problem), indent=2) + "\n")

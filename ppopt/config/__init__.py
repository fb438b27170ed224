"""Config files (docs/contract.md §2): :mod:`~ppopt.config.files` reads a YAML or JSON file
strictly; :mod:`~ppopt.config.build` checks its keys, merges command-line overrides and builds
the :class:`RunConfig` (problem, schedule name, solver options, output paths)."""

from __future__ import annotations

from ppopt.config.build import (
    MAX_TASKS,
    MEMORY_KEYS,
    OPTIMAL,
    PICTURE_SUFFIXES,
    PROBLEM_KEYS,
    SECTIONS,
    SOLVER_KEYS,
    TOP_KEYS,
    RunConfig,
    build_problem,
    build_run_config,
    build_solver_options,
    check_keys,
    check_picture_suffix,
    culprit_key,
    is_known_schedule,
    known_schedules,
    load_config,
    merge,
    problem_from_dict,
    problem_to_dict,
    read_config_file,
)
from ppopt.config.files import CONFIG_SUFFIXES, read_data_file
from ppopt.errors import ConfigError

__all__ = [
    "CONFIG_SUFFIXES",
    "MAX_TASKS",
    "MEMORY_KEYS",
    "OPTIMAL",
    "PICTURE_SUFFIXES",
    "PROBLEM_KEYS",
    "SECTIONS",
    "SOLVER_KEYS",
    "TOP_KEYS",
    "ConfigError",
    "RunConfig",
    "build_problem",
    "build_run_config",
    "build_solver_options",
    "check_keys",
    "check_picture_suffix",
    "culprit_key",
    "is_known_schedule",
    "known_schedules",
    "load_config",
    "merge",
    "problem_from_dict",
    "problem_to_dict",
    "read_config_file",
    "read_data_file",
]

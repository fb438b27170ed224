"""Sweep results: ``runs.jsonl`` (one line per finished run, appended) and ``results.csv``.

The JSONL file is the sweep's memory: a line is appended and flushed to disk as each run
finishes, so a sweep stopped at any point (Ctrl-C, a crash, a lost cluster) resumes by reading
it and skipping every run whose key is there. A torn last line from a crash is ignored. The CSV
is derived from it, one row per finished run in grid order, and rewritten atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ppopt.atomic import atomic_write_text
from ppopt.config.files import loads_json
from ppopt.errors import ConfigError
from ppopt.limits import tidy
from ppopt.sweep.spec import Run

RUNS_FILE = "runs.jsonl"
RESULTS_FILE = "results.csv"
#: Result columns after the grid keys; ``bubble_rate`` is the idle share of device time and
#: ``bubble_ratio`` idle over compute time (docs/contract.md §5); ``peak_memory`` is the
#: largest device's;
#: ``solve_time`` is CP-SAT's own wall time, ``wall_time`` the whole run's (with start-up).
RESULT_COLUMNS = (
    "schedule",
    "makespan",
    "bubble_rate",
    "bubble_ratio",
    "peak_memory",
    "status",
    "gap",
    "lower_bound",
    "reference_makespan",
    "improvement",
    "num_tasks",
    "solve_time",
    "wall_time",
    "error",
    "key",
)

Record = dict[str, Any]


def read_records(path: Path) -> dict[str, Record]:
    """Every complete record of a ``runs.jsonl`` by run key (the last one wins); a line that
    is not a record (torn by a crash, not UTF-8, nested too deeply, an over-long integer) is
    skipped, so its run is redone."""
    records: dict[str, Record] = {}
    if not path.exists():
        return records
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = loads_json(raw.decode("utf-8"))
            except (UnicodeDecodeError, ConfigError):
                continue  # a torn or corrupt line (bad UTF-8, deep, huge): that run is redone
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                records[record["key"]] = record
    return records


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as a JSON line and force it to disk before returning.

    After a crash the file may end in a torn line without its newline; the record then starts
    on a new line so that it does not join (and get lost with) the torn one."""
    line = json.dumps(tidy(dict(record)), sort_keys=True, default=str) + "\n"
    if _ends_torn(path):
        line = "\n" + line
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _ends_torn(path: Path) -> bool:
    """Whether ``path`` is a non-empty file whose last byte is not a newline."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


def result_rows(
    runs: Iterable[Run], records: Mapping[str, Record], grid_keys: Sequence[str]
) -> list[Record]:
    """One row per finished run, in the sweep's order: its grid values, then the results."""
    rows = []
    for run in runs:
        record = records.get(run.key)
        if record is None:
            continue
        row: Record = {key: run.params[key] for key in grid_keys}
        row.update({column: record.get(column) for column in RESULT_COLUMNS})
        row["schedule"] = run.schedule
        rows.append(row)
    return rows


def write_csv(path: Path, rows: Sequence[Record], grid_keys: Sequence[str]) -> None:
    """Write the rows as CSV atomically; lists are JSON text, missing values empty cells."""
    columns = [*grid_keys, *RESULT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _cell(row.get(column)) for column in columns})
    atomic_write_text(path, buffer.getvalue())


def _cell(value: object) -> object:
    """A CSV cell: ``None`` empty, lists and mappings as JSON, anything else as is (numbers
    tidied, :func:`ppopt.limits.tidy`)."""
    value = tidy(value)
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return value

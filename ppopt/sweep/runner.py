"""Running a sweep: each run in a worker that gets the run's config dict, never a solver model.

Executors: ``--jobs 1`` runs in this process; ``--jobs N`` a local process pool; ``--cluster
ADDRESS`` the executor of a ``distributed.Client`` on an existing Dask cluster (imported only
then). Every optimizer solve gets an explicit CP-SAT worker count so that parallel solves do not
fight over the cores. Finished runs are appended to ``runs.jsonl`` as they complete; a rerun
skips every run already there. A run's own error (a baseline that does not apply, no schedule
in the time limit) is recorded and final; an executor failure (a worker process died, the
cluster went away) is shown in the results but not saved, so the next rerun retries it.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ppopt.config import build_run_config
from ppopt.errors import ConfigError
from ppopt.metrics import compute_metrics
from ppopt.runs import run_schedule
from ppopt.sweep.results import (
    RESULTS_FILE,
    RUNS_FILE,
    Record,
    append_record,
    read_records,
    result_rows,
    write_csv,
)
from ppopt.sweep.spec import Run, Sweep

Warn = Callable[[str], None]


@dataclass
class SweepOutcome:
    """What one ``run_sweep`` call did: ``executed`` runs now, ``skipped`` found done."""

    total: int
    skipped: int
    executed: int = 0
    #: Runs of the sweep whose results hold an error (this call's or an earlier one's).
    failed: int = 0
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the user."""
        failed = f"; {self.failed} failed (see the error column)" if self.failed else ""
        return (
            f"sweep: {self.total} runs: {self.executed} run now, {self.skipped} already done"
            f"{failed}"
        )


# ------------------------------------------------------------------------------ one run


def execute_run(config: dict[str, Any], workers: int) -> Record:
    """Run one (problem, schedule) from its plain config dict; never raises.

    The worker rebuilds the problem itself (a CP-SAT model cannot be pickled). ``workers`` is
    the CP-SAT worker count of an optimizer solve. The record holds the metrics of
    docs/contract.md §5
    (``peak_memory`` of the most loaded device, per device in ``peak_memory_per_device``), the
    solver status, bound and gap, and for the optimizer the 1F1B reference makespan (the one
    ``ppopt solve`` reports) and the improvement over it; on failure ``status`` is ``ERROR``
    and ``error`` says why.
    """
    start = time.perf_counter()
    record: Record = {"status": None, "error": None}
    try:
        record.update(_measure(config, workers))
    except Exception as error:  # noqa: BLE001 - a failed run is a result, the sweep goes on
        record.update(status="ERROR", error=_one_line(f"{type(error).__name__}: {error}"))
    record["wall_time"] = time.perf_counter() - start
    return record


def _measure(config: dict[str, Any], workers: int) -> Record:
    """Schedule the run as ``ppopt solve`` would and measure it (raises on any failure); a
    baseline is measured whatever the memory limit (no one-micro-batch check)."""
    run = build_run_config(config)
    run = replace(run, solver=replace(run.solver, workers=workers))
    outcome = run_schedule(run, check_fits=False)
    record: Record = {"num_tasks": run.problem.num_tasks}
    result = outcome.result
    if result is not None:
        record.update(
            status=result.status,
            gap=result.gap,
            lower_bound=result.lower_bound,
            reference_makespan=outcome.reference_value,
            improvement=outcome.improvement,
            solve_time=result.wall_time,
            interrupted=result.interrupted,
        )
    metrics = compute_metrics(outcome.schedule)
    record.update(
        makespan=metrics.makespan,
        bubble_rate=metrics.bubble_rate,
        bubble_ratio=metrics.bubble_ratio,
        peak_memory=max(metrics.peak_memory),
        peak_memory_per_device=list(metrics.peak_memory),
    )
    return record


# ------------------------------------------------------------------------------ the sweep


def run_sweep(
    sweep: Sweep,
    out_dir: Path,
    jobs: int = 1,
    cluster: str | None = None,
    workers_per_solve: int | None = None,
    quiet: bool = False,
    warn: Warn | None = None,
) -> SweepOutcome:
    """Run every unfinished run of ``sweep``; write ``runs.jsonl``, ``results.csv`` and plots.

    ``workers_per_solve`` defaults to the cores divided by ``jobs`` (1 on a cluster); asking
    for more than the cores is allowed with a warning.
    """
    warn = warn or _stderr
    out_dir = _out_dir(out_dir)
    with _locked(out_dir):
        return _run_locked(sweep, out_dir, jobs, cluster, workers_per_solve, quiet, warn)


def _run_locked(
    sweep: Sweep,
    out_dir: Path,
    jobs: int,
    cluster: str | None,
    workers_per_solve: int | None,
    quiet: bool,
    warn: Warn,
) -> SweepOutcome:
    """:func:`run_sweep` once the output directory is this sweep's."""
    records = read_records(out_dir / RUNS_FILE)
    pending = [run for run in sweep.runs if run.key not in records]
    outcome = SweepOutcome(total=len(sweep.runs), skipped=len(sweep.runs) - len(pending))
    pending = assign_workers(pending, jobs, workers_per_solve, cluster is not None, warn)
    with _executor(jobs, cluster) as (executor, slots):
        try:
            _execute(pending, executor, slots, out_dir, records, outcome, quiet)
        finally:  # also after Ctrl-C: the CSV then holds the runs finished so far
            rows = result_rows(sweep.runs, records, sweep.grid_keys)
            outcome.failed = sum(row["status"] == "ERROR" for row in rows)
            write_csv(out_dir / RESULTS_FILE, rows, sweep.grid_keys)
    # matplotlib (~0.4 s): not imported by the spawned workers, which load this module
    from ppopt.sweep.plots import make_plots

    plots = make_plots(rows, sweep.grid_keys, out_dir, sweep.path.name)
    outcome.files = [out_dir / RESULTS_FILE, out_dir / RUNS_FILE, *plots]
    return outcome


def assign_workers(
    runs: Sequence[Run], jobs: int, per_solve: int | None, on_cluster: bool, warn: Warn
) -> list[Run]:
    """Give each run its CP-SAT worker count: ``--workers-per-solve``, else the run's own
    ``solver.workers``, else the cores shared among the jobs (warning when oversubscribed)."""
    explicit = max((_config_workers(run) for run in runs), default=0)
    workers = plan_workers(jobs, per_solve or explicit or None, on_cluster, warn)
    if per_solve is not None:
        return [replace(run, workers=workers) for run in runs]
    return [replace(run, workers=_config_workers(run) or workers) for run in runs]


def plan_workers(jobs: int, requested: int | None, on_cluster: bool, warn: Warn) -> int:
    """CP-SAT workers per solve: ``requested`` (``--workers-per-solve`` or the sweep's
    ``solver.workers``), or the cores shared among the jobs."""
    cores = available_cores()
    if requested is None:
        return 1 if on_cluster else max(1, cores // jobs)
    if not on_cluster and jobs * requested > cores:
        warn(
            f"warning: {jobs} jobs x {requested} CP-SAT workers per solve = {jobs * requested} "
            f"workers on {cores} cores; solves will compete for the cores"
        )
    return requested


def available_cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _execute(
    pending: Sequence[Run],
    executor: Executor | None,
    slots: int,
    out_dir: Path,
    records: dict[str, Record],
    outcome: SweepOutcome,
    quiet: bool,
) -> None:
    """Run ``pending`` on the executor (``None``: here), saving each record as it arrives."""
    with _progress_bar(outcome.total, outcome.skipped, quiet) as bar:
        results = (
            _inline(pending, bar) if executor is None else _pooled(pending, executor, slots, bar)
        )
        for run, record, final in results:
            if record.get("interrupted"):  # Ctrl-C (or SIGTERM) stopped the solve: stop here
                raise KeyboardInterrupt
            record.update(key=run.key, schedule=run.schedule, params=run.params)
            records[run.key] = record
            if final:
                append_record(out_dir / RUNS_FILE, record)
            outcome.executed += 1
            bar.finished()


Results = Iterator[tuple[Run, Record, bool]]


class _Bar:
    """The progress display's two events; this base class shows nothing (``--quiet``)."""

    def running(self, count: int) -> None:
        """``count`` runs are executing now."""

    def finished(self) -> None:
        """One more run finished."""


def _inline(runs: Sequence[Run], bar: _Bar) -> Results:
    """Run one at a time in this process."""
    for run in runs:
        bar.running(1)
        record = execute_run(run.config, run.workers)
        bar.running(0)
        yield run, record, True


def _pooled(runs: Sequence[Run], executor: Executor, slots: int, bar: _Bar) -> Results:
    """Submit every run, then yield them as they finish; an executor failure is not final."""
    futures: dict[Future[Record], Run] = {
        executor.submit(execute_run, run.config, run.workers): run for run in runs
    }
    outstanding = len(futures)
    bar.running(min(slots, outstanding))
    try:
        for future in as_completed(futures):
            outstanding -= 1
            bar.running(min(slots, outstanding))
            try:
                yield futures[future], future.result(), True
            except Exception as error:  # noqa: BLE001 - the worker died, not the run
                text = _one_line(f"executor: {type(error).__name__}: {error}")
                yield futures[future], {"status": "ERROR", "error": text}, False
    finally:
        for future in futures:
            future.cancel()


@contextlib.contextmanager
def _executor(jobs: int, cluster: str | None) -> Iterator[tuple[Executor | None, int]]:
    """The executor and how many runs it runs at once; ``None`` means run here."""
    if cluster is not None:
        with _dask_executor(cluster) as pair:
            yield pair
    elif jobs == 1:
        yield None, 1
    else:
        pool = ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("spawn"), initializer=quiet_worker
        )
        try:
            yield pool, jobs
        except BaseException:
            _stop_workers(pool)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def quiet_worker() -> None:
    """In a pool worker: Ctrl-C (sent to the whole process group) or SIGTERM ends the worker
    at once and silently; the main process stops the sweep and reports it (no traceback)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_quietly)


def _exit_quietly(signum: int, frame: object) -> None:
    os._exit(128 + signum)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes now: a stopped sweep must not wait for their runs.
    (``_processes`` is the executor's own table; there is no public way to end workers.)"""
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(OSError, AttributeError):
            process.terminate()


@contextlib.contextmanager
def _dask_executor(address: str) -> Iterator[tuple[Executor, int]]:
    """A ``concurrent.futures`` executor on the Dask cluster at ``address``."""
    try:  # dask: an optional extra, ~0.8 s to import
        from distributed import Client
    except ImportError:
        raise ConfigError(
            "--cluster: Dask is not installed; install it with pip install -e '.[dask]'"
        ) from None
    try:
        client = Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as error:
        raise ConfigError(f"--cluster: cannot connect to {address}: {error}") from None
    try:
        slots = max(1, sum(client.nthreads().values()))
        yield client.get_executor(), slots
    finally:
        client.close()


class _RichBar(_Bar):
    """A rich progress bar on stderr: done/total, running, elapsed, ETA."""

    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task

    def running(self, count: int) -> None:
        self.progress.update(self.task, running=count)

    def finished(self) -> None:
        self.progress.update(self.task, advance=1)


@contextlib.contextmanager
def _progress_bar(total: int, done: int, quiet: bool) -> Iterator[_Bar]:
    """The progress display: a rich bar on stderr, or nothing when ``quiet``."""
    if quiet:
        yield _Bar()
        return
    from rich.console import Console  # rich.progress: ~80 ms, only for a visible bar
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs, {task.fields[running]} running, elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("sweep", total=total, completed=done, running=0)
        yield _RichBar(progress, task)


def _out_dir(path: Path) -> Path:
    """Create the output directory and check, before any run, that the results can be
    written there; a file in its place or a read-only directory is bad input."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out: {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # os.access says yes to root on read-only mounts
            pass
        for name in (RUNS_FILE, RESULTS_FILE):
            if (path / name).exists() and not os.access(path / name, os.W_OK):
                raise ConfigError(f"--out: cannot write {path / name}: file is read-only")
    except OSError as error:
        raise ConfigError(f"--out: cannot write to {path}: {error.strerror or error}") from None
    return path


#: The lock file that keeps two sweeps out of one output directory.
LOCK_FILE = ".ppopt-sweep.lock"


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s lock while the sweep runs: a second sweep into the same directory
    is refused at once (it would run the same runs again and append them twice)."""
    with (out_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"--out: {out_dir} is in use by another sweep; wait for it or give another "
                "directory"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _config_workers(run: Run) -> int:
    """The ``solver.workers`` a run's config sets (0: not set, or "every core")."""
    value = (run.config.get("solver") or {}).get("workers")
    return value if isinstance(value, int) else 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)

"""``ppopt sweep``: grids of problems x schedules, run locally or on a Dask cluster.

:func:`load_sweep` reads and validates a sweep file (every grid point's problem checked before
any run starts); :func:`run_sweep` runs what is not done yet and writes ``results.csv``,
``runs.jsonl`` and the plots.
"""

from ppopt.sweep.runner import SweepOutcome, execute_run, run_sweep
from ppopt.sweep.spec import Run, Sweep, SweepError, load_sweep

__all__ = ["Run", "Sweep", "SweepError", "SweepOutcome", "execute_run", "load_sweep", "run_sweep"]

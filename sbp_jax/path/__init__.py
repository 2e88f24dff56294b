"""Regularisation paths and automatic λ (glmnet's vocabulary: λ_max, path, 1-SE rule).

* `run_path` (run.py): C seeds through a rising λ grid, warm-started, one
  compiled program (`program.py`); per step and run the pruned net's metrics,
  edge counts, selected inputs and edges (`PathRecords`).
* model choice (rules.py, verify.py): `best_validation`, `one_se`,
  `sparsest_meeting` a `Condition` after a short retrain, `polish` (verified
  greedy edge removal), `best_of_k` restarts; each returns a `Choice` with its reason.
* `search_sparsest` (search.py): per trial the sparsest net meeting a condition, from
  k restarts of the path, polished (`--path`); `parse_condition` reads 'r2>=0.99'.
* `importances` (importance.py): the λ at which each input leaves the path, and its stability.
* `auto_lam`, `run_outputs`, `outputs_of`, `plot_path`, `step_table`, `npz_arrays` (auto.py): `--lam auto`
  by 1-SE on validation, and the results layer's inputs for any chosen nets.
"""

from .auto import (AutoLam, auto_lam, npz_arrays, outputs_of, plot_data, plot_path, run_outputs, sample_se,
                   step_table)
from .importance import exit_lams, importances
from .program import PathRecords
from .rules import Choice, best_validation, one_se, step_stats
from .run import Path, run_path
from .search import Search, parse_condition, search_sparsest
from .verify import Condition, best_of_k, polish, retrain, sparsest_meeting

__all__ = [
    "AutoLam",
    "Choice",
    "Condition",
    "Path",
    "Search",
    "PathRecords",
    "auto_lam",
    "best_of_k",
    "best_validation",
    "exit_lams",
    "importances",
    "npz_arrays",
    "one_se",
    "parse_condition",
    "outputs_of",
    "plot_data",
    "plot_path",
    "polish",
    "retrain",
    "run_outputs",
    "run_path",
    "sample_se",
    "search_sparsest",
    "sparsest_meeting",
    "step_stats",
    "step_table",
]

"""What every experiment CLI shares: its flags (the training options from
`sbp_jax.options`, the data sources from `sbp_jax.sources`), turning them into
a data set, a config and a grid, and one-line errors.

Every CLI takes every training option and every data source. A library
error reaching a CLI becomes one `error:` line naming the flag, the value and
what is allowed, with exit status 2; `--debug` (or `SBP_DEBUG=1`) shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from sbp_jax import options, sources, sweep
from sbp_jax.path import search
from sbp_jax.config import TrainConfig
from sbp_jax.datasets import KINDS, Dataset

# Data flags: flag -> (source parameter, type, help). Each applies to the sources that take the parameter.
DATA_FLAGS = {
    "--data-seed": ("data_seed", options._integer, "seed of the data: the generated paper data, the split of "
                    "real data (shared by every run; --seed varies the initialisation)"),
    "--val-frac": ("val_frac", options._number, "real data: fraction of samples in the validation split (0.2)"),
    "--test-frac": ("test_frac", options._number, "real data: fraction of samples in the test split (0.2)"),
    "--task-kind": ("task", str, "--csv/--npz: binary, multiclass or regression (default: inferred from the target)"),
    "--n-samples": ("n_samples", options._integer, "mnist1d, planted: samples to generate"),
    "--copies": ("copies", options._integer, "xor: noisy copies of each corner (25)"),
    "--noise": ("noise", options._number, "xor: std of the Gaussian noise on the corners (0.1)"),
    "--val-copies": ("val_copies", options._integer, "xor: copies per corner in a validation draw (0: none)"),
    "--n-train": ("n_train", options._integer, "addition: training samples (200)"),
    "--n-test": ("n_test", options._integer, "addition: test samples, a separate draw (1000)"),
    "--n-val": ("n_val", options._integer, "addition: validation samples, a separate draw (0: none)"),
}


def _hidden(text: str) -> tuple[int, ...]:
    return () if text.strip() in ("", "none") else options._ints(text)


def parser(prog: str, description: str, *, dataset: str | None = None, grid: bool = False,
           epilog: str | None = None, lam_default: str | None = None) -> argparse.ArgumentParser:
    """The flags every CLI shares: data source, training options, runs and output.

    `dataset` is the default `--dataset` (None: one of --dataset / --csv /
    --npz is required); `grid` gives λ, lr and ε grid flags and the sweep's
    chunking, resume and multi-host flags; otherwise `--lam` also takes
    'auto' (the default when `lam_default='auto'`) and the λ path's flags
    (`--lam auto`, `--path`) are added. Parse with `parse`."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("data (one source: --dataset, --csv or --npz)")
    d.add_argument("--dataset", "--task", default=dataset, metavar="NAME",
                   help="a named source: " + "; ".join(f"{k} ({s.about})" for k, s in sources.SOURCES.items()
                                                      if k in sources.NAMED) + (f". Default: {dataset}" if dataset else ""))
    d.add_argument("--csv", type=Path, default=None, metavar="FILE", help="your CSV file (header row, numeric "
                   "columns); with --target")
    d.add_argument("--target", default=None, metavar="COLUMN", help="--csv: the column to predict")
    d.add_argument("--npz", type=Path, default=None, metavar="FILE", help="your .npz with x (n, d), y (n,) "
                   "[, feature_names]")
    for flag, (dest, typ, text) in DATA_FLAGS.items():
        d.add_argument(flag, dest=dest, type=typ, default=None, help=text)
    d.add_argument("--bare", action="store_true", default=None, help="xor: the four bare corners instead of noisy XOR")
    t = options.add_flags(p, grid=grid)
    t.add_argument("--hidden", type=_hidden, default=None, metavar="W,...",
                   help="hidden widths when --layers is not given (default: the source's: xor 4, addition 8, "
                        f"real data {','.join(map(str, sources.TABULAR_HIDDEN))}; 'none' for no hidden layer)")
    if not grid:
        a = p.add_argument_group("λ path (--lam auto, --path)")
        a.add_argument("--path", action="store_true", help="per trial, the sparsest net meeting --condition on a λ "
                       "path (each candidate judged after a short retrain of its survivors), then the verified "
                       "polish (greedy edge removal); on the paper's tasks reports how often it is the minimal "
                       f"graph. Trials: --seeds (10), each from --restarts paths; lr {search.LR:g} unless --lr")
        a.add_argument("--condition", default=None, metavar="METRIC>=X",
                       help="--path: what the chosen net must do on the training split, e.g. accuracy>=1, "
                            "r2>=0.99, mse<=0.01 (@val or @test for another split); default: xor accuracy>=1, "
                            "addition r2>=0.99, required for other data")
        a.add_argument("--restarts", type=_at_least("--restarts", 1), default=1,
                       help="--path: independent paths per trial, the sparsest meeting the condition kept (1)")
        a.add_argument("--no-polish", action="store_true", help="--path: skip the verified greedy edge removal")
        a.add_argument("--path-retrain", type=_at_least("--path-retrain", 1), default=search.RETRAIN,
                       help=f"--path: epochs of each candidate's and each removal's retrain ({search.RETRAIN})")
        a.add_argument("--path-candidates", type=_at_least("--path-candidates", 1), default=search.CANDIDATES,
                       help=f"--path: distinct edge sets per run retrained, sparsest first ({search.CANDIDATES})")
        a.add_argument("--path-steps", type=_at_least("--path-steps", 2), default=None,
                       help="λ values on the path (100), rising geometrically to where every edge is pruned")
        a.add_argument("--path-ratio", type=options._number, default=None, help="λ grows by this factor per step (1.08)")
        a.add_argument("--path-epochs", type=_at_least("--path-epochs", 1), default=None,
                       help="epochs at each λ, warm-started from the previous step (100)")
        a.add_argument("--path-warmup", type=_at_least("--path-warmup", 0), default=None,
                       help="unpenalised epochs before the path starts (200)")
    r = p.add_argument_group("runs and output")
    r.add_argument("--seed", type=_at_least("--seed", 0), default=0, help="first initialisation seed (0)")
    r.add_argument("--seeds", type=_at_least("--seeds", 1), default=None,
                   help="seeds seed, seed+1, ... per (λ, lr, ε), run as one vmapped program "
                        f"({10 if grid else '1; 5 with --lam auto'})")
    r.add_argument("--retrain", type=_at_least("--retrain", 0), default=0, metavar="EPOCHS",
                   help="after training, fine-tune the surviving edges without penalty for EPOCHS epochs; adds "
                        "retrained_* metrics (0: off)")
    r.add_argument("--rewind", action="store_true", help="with --retrain: also the lottery-ticket variant "
                   "(survivors rewound to their initial values, then retrained); adds rewound_* metrics")
    r.add_argument("--out", type=Path, default=None, help="output folder (default runs/<name>)")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    r.add_argument("--debug", action="store_true", help="show the full traceback of an error (also SBP_DEBUG=1)")
    if grid:
        r.add_argument("--chunk", type=_at_least("--chunk", 1), default=None,
                       help=f"configs per device per chunk (default: balanced, at most {sweep.DEFAULT_CHUNK}); "
                            "memory is bounded by one chunk")
        r.add_argument("--resume", action="store_true", help="reuse the finished chunks under OUT/chunks of an "
                       "interrupted run of the same command (damaged chunks are recomputed)")
        r.add_argument("--no-progress", action="store_true", help="no progress bar")
        m = p.add_argument_group("multi-host (jax.distributed)")
        m.add_argument("--distributed", action="store_true",
                       help="join a JAX cluster first; every process runs the same command, process 0 writes")
        m.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (default $JAX_COORDINATOR_ADDRESS)")
        m.add_argument("--num-processes", type=_at_least("--num-processes", 1), default=None,
                       help="processes in the cluster (default $JAX_NUM_PROCESSES)")
        m.add_argument("--process-id", type=_at_least("--process-id", 0), default=None,
                       help="this process's index (default $JAX_PROCESS_ID)")
    p.set_defaults(_default_dataset=dataset, _lam_default=lam_default, _grid=grid)
    return p


def parse(p: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """`p.parse_args(argv)` with the defaults that depend on other flags: `--lam`
    (the CLI's `lam_default`, e.g. 'auto'; none with `--path`) and `--seeds` (10 in a
    sweep or with `--path`, 5 with `--lam auto`, else 1)."""
    args = p.parse_args(argv)
    if getattr(args, "path", False):
        if args.lam is not None:
            raise ValueError(f"--lam={args.lam} is invalid with --path: allowed no --lam (the path sets λ)")
    elif args.lam is None and args._lam_default is not None:
        args.lam = args._lam_default
    if args.seeds is None:
        args.seeds = 10 if args._grid or getattr(args, "path", False) else 5 if args.lam == options.AUTO else 1
    return args


def _at_least(flag: str, minimum: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise argparse.ArgumentTypeError(f"{flag}={text!r} is invalid: allowed an integer >= {minimum}")
        return v
    return parse


def load_data(args) -> tuple[sources.Source, Dataset, dict]:
    """The data set the flags name: `(source, dataset, the parameters it was loaded with)`."""
    default = getattr(args, "_default_dataset", None)
    files = [f for f, v in (("--csv", args.csv), ("--npz", args.npz)) if v is not None]
    named = [] if args.dataset in (None, default) else ["--dataset"]
    if len(files) > 1 or (files and named):
        raise ValueError(f"{' and '.join(named + files)} are given: allowed one data source")
    params = {dest: getattr(args, dest) for dest, _, _ in DATA_FLAGS.values() if getattr(args, dest) is not None}
    if args.bare:
        params["bare"] = True
    if args.csv is not None:
        if not args.target:
            raise ValueError("--csv needs --target COLUMN: allowed the name of the column to predict")
        name, params = "csv", params | {"path": args.csv, "target": args.target}
    elif args.npz is not None:
        name, params = "npz", params | {"path": args.npz}
    elif args.dataset is not None:
        name = args.dataset
    else:
        raise ValueError("no data: allowed --dataset NAME (" + ", ".join(sources.NAMED) + "), --csv FILE --target "
                         "COLUMN or --npz FILE")
    if args.target is not None and name != "csv":
        raise ValueError(f"--target={args.target!r} is invalid without --csv: allowed only with --csv FILE")
    if "task" in params and params["task"] not in ("auto",) + KINDS:
        raise ValueError(f"--task-kind={params['task']!r} is invalid: allowed auto, " + ", ".join(KINDS))
    try:
        ds = sources.load_source(name, **params)
    except ValueError as e:
        raise ValueError(_data_flag_message(str(e))) from None
    return sources.SOURCES[name], ds, {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}


def _data_flag_message(message: str) -> str:
    """A source's `param=value is invalid` message in terms of its flag."""
    for flag, (dest, _, _) in DATA_FLAGS.items():
        if message.startswith(f"{dest}="):
            return flag + message[len(dest):]
    for name, flag in (("task=", "--task-kind="), ("dataset=", "--dataset=")):
        if message.startswith(name):
            return flag + message[len(name):]
    return message


def make_config(args, src: sources.Source, ds: Dataset, *, history_every: int | None = None) -> TrainConfig:
    """The config of the run: the source's defaults, the data's widths and
    loss, then every training flag given. Grid flags (lists) set the config's
    λ, lr, ε to their first value (the grid carries the rest)."""
    changes = options.changes(args)
    if changes.get("lam") == options.AUTO:
        del changes["lam"]  # chosen later, on the validation split
    if getattr(args, "path", False) and "lr" not in changes:
        changes["lr"] = search.LR  # the path's measured learning rate (sbp_jax.path.search)
    first = {k: v[0] for k, v in changes.items() if isinstance(v, list)}
    changes |= first
    hidden = args.hidden if args.hidden is not None else src.hidden
    layers = changes.pop("layers", None) or (ds.n_in, *hidden, ds.n_out)
    if layers[0] != ds.n_in or layers[-1] != ds.n_out:
        raise ValueError(f"--layers={','.join(map(str, layers))} is invalid for {ds.name}: allowed first width "
                         f"{ds.n_in} (its features) and last width {ds.n_out} ({ds.kind} outputs)")
    if history_every is not None and "history_every" not in changes:
        changes["history_every"] = history_every(changes.get("epochs", src.defaults.get("epochs", 1000))) \
            if callable(history_every) else history_every
    cfg = sources.default_config(src.name, ds).replace(layers=layers, **changes)
    if cfg.history_every > cfg.epochs:
        raise ValueError(f"--history-every={cfg.history_every} is invalid: allowed 0..epochs ({cfg.epochs})")
    if args.rewind and not args.retrain:
        raise ValueError("--rewind needs --retrain EPOCHS > 0: allowed --rewind only together with --retrain")
    return cfg


PATH_FLAGS = {"n_steps": "--path-steps", "ratio": "--path-ratio", "epochs_per_step": "--path-epochs",
              "warmup": "--path-warmup"}


def path_options(args) -> dict:
    """The λ path's settings the user gave (`sbp_jax.path.run_path` keywords)."""
    given = {k: getattr(args, flag[2:].replace("-", "_")) for k, flag in PATH_FLAGS.items()}
    return {k: v for k, v in given.items() if v is not None}


def make_grid(args, cfg: TrainConfig) -> sweep.Grid:
    """The grid: the grid flags' λ, lr, ε values (or the config's) × the seeds."""
    lists = {k: v for k, v in options.changes(args).items() if isinstance(v, list)}
    return sweep.make_grid(cfg, lams=lists.get("lam"), lrs=lists.get("lr"), epss=lists.get("eps"),
                           seeds=range(args.seed, args.seed + args.seeds))


def _flag_message(message: str) -> str:
    """A library message in terms of the CLI's flags (training options, λ path settings)."""
    for name, flag in PATH_FLAGS.items() | {"condition": "--condition", "restarts": "--restarts"}.items():
        if message.startswith(f"{name}="):
            return flag + message[len(name):]
    return options.flag_message(message)


def guarded(prog: str):
    """Decorate a CLI `main(argv)`: library errors become one `prog: error:`
    line (in terms of the flag) with exit status 2; `--debug` or
    `SBP_DEBUG=1` re-raise them with their traceback."""
    def wrap(main):
        @functools.wraps(main)
        def run(argv: list[str] | None = None):
            argv = sys.argv[1:] if argv is None else list(argv)
            try:
                return main(argv)
            except (ValueError, TypeError, OSError) as e:
                if "--debug" in argv or os.environ.get("SBP_DEBUG", "") not in ("", "0"):
                    raise
                print(f"usage: {prog} [-h] ...\n{prog}: error: {_flag_message(str(e))}", file=sys.stderr)
                raise SystemExit(2) from None
        return run
    return wrap

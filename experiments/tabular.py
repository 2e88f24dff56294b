"""Real data: `python -m experiments.tabular --dataset digits | --csv FILE --target COL | --npz FILE`.

Loads the data (`sbp_jax.datasets`: stratified train/validation/test splits,
inputs standardised on the training split), trains `--seeds` seeds as one
vmapped sweep, and reports train / validation / test metrics, active edges
and the input features the pruned nets still use.
"""

from __future__ import annotations

import sys

from sbp_jax import datasets
from sbp_jax.config import TrainConfig

from . import _cli

DEFAULTS = TrainConfig(layers=(2, 32, 1), loss="bce", lam=1e-3, lr=3e-3, epochs=1000)
DEFAULT_HIDDEN = (32,)


def _hidden(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    return _cli._layers(text)


def build_parser():
    p = _cli.parser("python -m experiments.tabular",
                    "Structure-aware backprop on real tabular data: a pruned net and the features it uses.",
                    DEFAULTS)
    p.set_defaults(layers=None)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(datasets.BUNDLED), help="a bundled data set (offline)")
    src.add_argument("--csv", help="your CSV file: header row, numeric columns (use with --target)")
    src.add_argument("--npz", help="your .npz with arrays x (n, d) and y (n,) [and feature_names]")
    p.add_argument("--target", help="target column of --csv")
    p.add_argument("--task-kind", default="auto", choices=("auto",) + datasets.KINDS,
                   help="binary → bce, multiclass → cross-entropy, regression → mse; auto infers it from the target")
    p.add_argument("--hidden", type=_hidden, default=DEFAULT_HIDDEN,
                   help="hidden widths when --layers is not given (layers = n_features, hidden..., n_outputs)")
    p.add_argument("--batch-size", type=int, default=0, help="minibatch size (0: full batch, the paper's setting)")
    p.add_argument("--val-frac", type=float, default=0.2, help="fraction of samples in the validation split")
    p.add_argument("--test-frac", type=float, default=0.2, help="fraction of samples in the test split")
    return p


def load_data(args) -> datasets.Dataset:
    kw = dict(val_frac=args.val_frac, test_frac=args.test_frac, seed=args.data_seed)
    if args.csv is not None:
        if not args.target:
            raise ValueError("--csv needs --target COLUMN (the column to predict)")
        return datasets.load_csv(args.csv, args.target, task=args.task_kind, **kw)
    if args.target:
        raise ValueError("--target is only used with --csv")
    if args.npz is not None:
        return datasets.load_npz(args.npz, task=args.task_kind, **kw)
    if args.task_kind != "auto":
        raise ValueError("--task-kind is only used with --csv or --npz (bundled sets have a fixed kind)")
    return datasets.load(args.dataset, **kw)


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        ds = load_data(args)
    except (ValueError, FileNotFoundError, TypeError) as e:
        p.error(str(e))
    layers = args.layers if args.layers is not None else (ds.n_in, *args.hidden, ds.n_out)
    if layers[0] != ds.n_in or layers[-1] != ds.n_out:
        p.error(f"--layers={','.join(map(str, layers))} is invalid for {ds.name}: allowed first width "
                f"{ds.n_in} (features) and last width {ds.n_out} ({ds.kind} outputs)")
    args.layers = layers
    cfg = _cli.config_from_args(args, DEFAULTS.replace(loss=ds.loss, layers=layers))
    cfg = cfg.replace(batch_size=args.batch_size)
    data = (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    task = f"tabular/{ds.name}"
    results = _cli.run(task, cfg, data, args, {}, ds.info(), argv,
                       extra_splits={"val": (ds.x_val, ds.y_val)}, feature_names=ds.feature_names)
    s = results["summary"]
    counts = s.get("selected_features_counts", {})
    n = s["n_runs"] - s["n_diverged"]
    print(f"selected features ({len(counts)} of {ds.n_in} used by at least one of {n} run(s); "
          f"runs using each): " + (", ".join(f"{f} ({c})" for f, c in counts.items()) or "none"))
    dropped = [f for f in ds.feature_names if f not in counts]
    if dropped:
        print(f"dropped by every run ({len(dropped)}): " + ", ".join(dropped))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])

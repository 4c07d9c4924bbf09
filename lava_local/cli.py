"""The ``lava-local`` command: train, demo, bench.

Errors in what the user asked for (unknown rule, negative T, missing checkpoint, ...)
end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import fields
from pathlib import Path

from .rules.base import positive_int as _positive_int

DEFAULT_SWEEP_STEPS = (10, 50, 100, 200)


def _seed_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or any(v < 0 for v in vals):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seeds (integers >= 0) such as 0,1,2, got {text!r}")
    return vals


def _int_list(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 128,128, got {text!r}"
        ) from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 128,128, got {text!r}")
    return vals


def _str_list(text: str) -> tuple[str, ...]:
    vals = tuple(v.strip() for v in text.split(",") if v.strip())
    if not vals:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return vals


def _add_flag(p: argparse.ArgumentParser, spec, help: str, flag: str | None = None) -> None:
    """One rule option (a :class:`~lava_local.rules.base.FlagSpec`) as an argparse flag
    whose value lands under its flat key (absent when not given)."""
    kw = {"dest": spec.key, "default": argparse.SUPPRESS, "help": help}
    if spec.action:
        kw["action"] = spec.action
    else:
        kw["type"] = spec.type or (type(spec.default) if spec.default is not None else str)
        if spec.choices:
            kw["choices"] = spec.choices
        if spec.metavar:
            kw["metavar"] = spec.metavar
    p.add_argument(flag or spec.flag, **kw)


def _add_run_options(p: argparse.ArgumentParser, rename: dict[str, str] | None = None) -> None:
    """Options that map one-to-one onto :class:`TrainConfig` fields (defaults from it) and
    every rule's own options (from the rule registry); ``rename`` maps a flag to another
    name where a command uses the flag itself."""
    from . import rules
    from .data import DATASETS, ENCODINGS
    from .functional import SURROGATES
    from .torch.conv import PRESETS
    from .torch.train import TrainConfig

    d = {f.name: f.default for f in fields(TrainConfig)}
    S = argparse.SUPPRESS

    rename = rename or {}

    def opt(flag, dest, help, **kw):
        p.add_argument(rename.get(flag, flag), dest=dest, default=S,
                       help=f"{help} (default: {d[dest]})", **kw)

    opt("--dataset", "dataset", "data set", choices=DATASETS)
    opt("--root", "root", "folder of the event data sets (see `lava-local data list`)",
        type=str)
    p.add_argument("--data", dest="data_file", default=S, type=str, metavar="FILE.npz",
                   help="your own spikes: an .npz with x (N, T, F) of 0/1, y (N,) and "
                        "optionally x_test, y_test (else 20%% held out); sets --dataset npz "
                        "and T from the file")
    opt("--workers", "workers", "DataLoader worker processes for event data", type=int)
    opt("--holdout-speaker", "holdout_speaker", "gsc: leave this speaker (or auto: the one "
        "with the most clips) out of pre-training, for `lava-local finetune`", type=str)
    opt("--encoding", "encoding", "spike encoding of the digits", choices=ENCODINGS)
    opt("--steps", "n_steps", "time steps T per sample", type=_positive_int, metavar="T")
    opt("--hidden", "hidden", "hidden LIF layer widths", type=_int_list, metavar="N,N")
    opt("--batch-size", "batch_size", "batch size", type=_positive_int)
    opt("--lr", "lr", "Adam learning rate", type=float)
    opt("--seed", "seed", "seed of initialisation, encoding and shuffling", type=int)
    opt("--window", "window", "learning window: the last W steps learn (T_l = T - W); "
        "default all steps", type=_positive_int, metavar="W")
    opt("--gamma", "gamma", "LIF leak γ", type=float)
    opt("--v-th", "v_th", "LIF threshold", type=float)
    opt("--kappa", "kappa", "readout leak κ", type=float)
    opt("--surrogate", "surrogate", "Ψ / surrogate derivative", choices=sorted(SURROGATES))
    opt("--init-gain", "init_gain", "hidden weight init gain", type=float)
    p.add_argument("--recurrent", dest="recurrent", action="store_true", default=S,
                   help="recurrent hidden layers (rules that train them: `lava-local rules`)")
    for flag, dest, text in (
            ("--weight-std", "weight_std", "weight standardisation with a learned gain per "
             "neuron in every hidden layer (the public S-TLLR/TESS code's)"),
            ("--bias", "bias", "a learned bias per neuron (per conv channel) and readout unit"),
            ("--learn-leak", "learn_leak", "learn each layer's leak γ = σ(ℓ)"),
            ("--learn-threshold", "learn_threshold", "learn each layer's threshold θ")):
        p.add_argument(flag, dest=dest, action="store_true", default=S,
                       help=f"{text} (S-TLLR, TESS, BPTT)")
    opt("--pooling", "pooling", "what the conv presets' 2×2 pooling P does", choices=["avg", "max"])
    opt("--augment", "augment", "training-time augmentation of image-like frames: a "
        "random crop after zero-padding 4 pixels (crop), and a left-right flip (crop-flip)",
        choices=["none", "crop", "crop-flip"])
    opt("--lr-schedule", "lr_schedule", "learning rate over the epochs: constant or cosine "
        "annealing to 0", choices=["none", "cosine"])
    opt("--dropout", "dropout", "training: drop each hidden neuron's output with this "
        "probability, one mask per sample held over all steps, not rescaled (S-TLLR, BPTT)",
        type=float)
    opt("--v-th-min", "v_th_min", "threshold clamp: firing, reset and Ψ use max(θ, this)",
        type=float)
    opt("--preset", "preset", "architecture: mlp/rec-mlp (dense, --hidden) or the conv "
        "presets vgg9/alexnet-snn/vgg9-gap/vgg9-gap2", choices=PRESETS)
    opt("--width", "width", "channel multiplier of the conv presets", type=float)
    opt("--device", "device", "torch device", choices=("auto", "cpu", "cuda"))
    g = p.add_argument_group("rule options (each applies to the rules named)")
    for spec, users in rules.flags():
        _add_flag(g, spec, f"{spec.help} (default: {spec.default}; {', '.join(users)})",
                  rename.get(spec.flag))
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _given(args: argparse.Namespace) -> dict:
    """The run fields and rule options given on the command line (flat keys)."""
    from . import rules
    from .torch.train import TrainConfig

    names = ({f.name for f in fields(TrainConfig)} - {"params"}) | rules.option_keys()
    given = {k: v for k, v in vars(args).items() if k in names}
    data_file = vars(args).get("data_file")
    if data_file is not None:
        given.update(_npz_options(data_file, given))
    return given


def _npz_options(path: str, given: dict) -> dict:
    """``--data FILE``: the npz data set, its file, and T from the file."""
    from .data import load_npz
    from .torch.train import RunError

    if given.get("dataset", "npz") != "npz":
        raise RunError(f"--data reads your own file; drop --dataset {given['dataset']}")
    try:
        t = load_npz(path, "train").n_steps
    except ValueError as e:
        raise RunError(str(e)) from None
    if given.get("n_steps", t) != t:
        raise RunError(f"{path} has T = {t} time steps; drop --steps or give --steps {t}")
    return {"dataset": "npz", "root": str(Path(path).expanduser().resolve()), "n_steps": t}


def _config(args: argparse.Namespace, strict: bool = True, **override):
    """The TrainConfig of the command line (``strict``: every rule option given must be
    one of the rule's own; otherwise options of other rules are left out)."""
    from .torch.train import TrainConfig

    return TrainConfig.from_flat(strict=strict, **{**_given(args), **override})


def _check_options_used(args: argparse.Namespace, rules: list[str]) -> None:
    """Every rule option given applies to at least one of ``rules``."""
    from . import rules as registry
    from .torch.train import RunError

    used = set().union(*(registry.get(r).Params.keys() for r in rules))
    flags = {s.key: s.flag for s, _ in registry.flags()}
    unused = sorted(k for k in _given(args) if k in registry.option_keys() and k not in used)
    if unused:
        raise RunError(f"{', '.join(flags[k] for k in unused)} apply to none of the rules "
                       f"run here ({', '.join(rules)}); see `lava-local rules`")


def build_parser() -> argparse.ArgumentParser:
    from . import rules as registry
    from .networks.graph import BACKENDS, LEARN_MODES

    RULES = registry.RULES

    parser = argparse.ArgumentParser(
        prog="lava-local",
        description="Local learning rules for spiking neural networks (Lava / Loihi 2).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train one rule, with checkpoints and a results JSON")
    p.add_argument("--recipe", default=None,
                   help="a paper setup from `lava-local recipes` (options override it)")
    p.add_argument("--rule", choices=RULES, default=argparse.SUPPRESS,
                   help="learning rule (default: stllr)")
    p.add_argument("--epochs", type=_positive_int, default=argparse.SUPPRESS,
                   help="epochs (default: 10)")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: runs/RULE-DATASET-seedS)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run already in --out")
    _add_run_options(p)

    p = sub.add_parser("recipes", help="the papers' setups, with their reported numbers; "
                       "`recipes show NAME`: every setting and where it comes from")
    p.add_argument("action", nargs="?", choices=["show"], help="show one recipe's card")
    p.add_argument("name", nargs="?", help="the recipe to show")
    p.add_argument("--json", action="store_true", help="print as JSON")

    p = sub.add_parser("reproduce", help="run a recipe once per seed (resumable) and print "
                       "mean ± std beside the paper's number")
    p.add_argument("recipe", help="a recipe from `lava-local recipes`")
    p.add_argument("--seeds", type=_seed_list, default=[0, 1, 2], metavar="S,S",
                   help="seeds, one run each (default: 0,1,2)")
    p.add_argument("--epochs", type=_positive_int, default=argparse.SUPPRESS,
                   help="epochs per seed (default: the recipe's)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder of the reproduction (default: runs/reproduce-RECIPE); run "
                        "the same command again to continue it")
    _add_run_options(p)

    p = sub.add_parser("rules", help="every learning rule: layers, costs, what runs on the "
                       "Lava graph (or why not)")
    p.add_argument("--json", action="store_true", help="print the registry as JSON")

    p = sub.add_parser("demo", help="S-TLLR vs BPTT on the embedded digits data, one table")
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default: 10)")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default: results/demo-TIMESTAMP)")
    p.add_argument("--sweep-steps", type=_int_list, default=DEFAULT_SWEEP_STEPS,
                   metavar="T,T", help="T values of the memory-vs-T measurement "
                   f"(default: {','.join(map(str, DEFAULT_SWEEP_STEPS))})")
    _add_run_options(p)

    p = sub.add_parser("compare", help="every rule on the same network, data and seed")
    p.add_argument("--rules", default="all",
                   help=f"comma-separated rules or 'all' ({','.join(RULES)})")
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default: 10)")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default: results/compare-TIMESTAMP)")
    _add_run_options(p)

    p = sub.add_parser("sweep", help="TTL-BPTT's design space: window K x block size b")
    p.add_argument("rule", choices=("ttlbptt",), help="the rule to sweep")
    p.add_argument("--window", dest="sweep_windows", default="1,2,5,T", metavar="K,K",
                   help="truncation windows; T = the whole sequence (default: 1,2,5,T)")
    p.add_argument("--block", dest="sweep_blocks", default="1,2,all", metavar="B,B",
                   help="block sizes; all = one block (default: 1,2,all)")
    p.add_argument("--epochs", type=_positive_int, default=5, help="epochs (default: 5)")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default: results/sweep-TIMESTAMP)")
    _add_run_options(p, rename={"--window": "--learn-window"})

    p = sub.add_parser("run", help="run a trained network as a Lava graph (and keep learning)")
    p.add_argument("run_dir", type=Path, help="folder of a `lava-local train` run")
    p.add_argument("--backend", choices=BACKENDS,
                   default="sim-float", help="Lava backend (default: sim-float)")
    p.add_argument("--learn", choices=LEARN_MODES, default="none",
                   help="keep learning on the graph with a rule's on-graph form "
                   "(`lava-local rules`; default: none)")
    for mode, g in registry.graph_modes().items():
        if g.Options is not None:
            grp = p.add_argument_group(f"options of --learn {mode}")
            for spec in g.Options.flags():
                _add_flag(grp, spec, f"{spec.help} (default: {spec.default})")
    p.add_argument("--samples", type=_positive_int, default=None,
                   help="first N test samples (default: the whole test split)")
    p.add_argument("--learned-out", type=Path, default=None, metavar="DIR",
                   help="with --learn: the new run folder for the learned net (default: "
                        "RUN_DIR-lava-BACKEND-MODE beside the run); `run`, `finetune` and "
                        "`train --resume` accept it")
    p.add_argument("--learn-samples", type=_positive_int, default=200,
                   help="with --learn: training samples streamed through the learning "
                   "graph (a seeded shuffle of the train split; default: 200); the test "
                   "samples are measured before and after, never learned from")
    p.add_argument("--eta", type=float, default=None,
                   help="SGD step of online learning (default: the mode's, "
                   + ", ".join(f"{m} 2^{math.log2(g.default_eta):.0f}"
                               for m, g in registry.graph_modes().items()) + ")")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the learning engines and of the training stream's order")
    p.add_argument("--dataset", default=None,
                   help="data set to stream (default: the one the run was trained on)")
    p.add_argument("--root", default=None,
                   help="folder of the event data sets (default: the run's)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("finetune", help="k-shot fine-tuning on a run's held-out speaker "
                       "(keyword spotting, Traces Propagation's protocol)")
    p.add_argument("run_dir", type=Path, help="folder of a gsc run with --holdout-speaker")
    p.add_argument("--shots", type=_int_list, default=(1, 5), metavar="K,K",
                   help="clips per word of the held-out speaker (default: 1,5)")
    p.add_argument("--epochs", type=_positive_int, default=20,
                   help="passes over the shots (default: 20)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the run's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shot selection")
    p.add_argument("--root", default=None, help="data folder (default: the run's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="torch device (default: auto)")
    p.add_argument("--on-graph", action="store_true",
                   help="also run the protocol on the Lava graph (same shots, same "
                   "evaluation clips), beside the batched one")
    p.add_argument("--backends", type=_str_list, default=("sim-float", "sim-fixed"),
                   metavar="B,B", help="Lava backends of --on-graph (default: "
                   "sim-float,sim-fixed)")
    p.add_argument("--learn", default=None, help="on-graph learning mode of --on-graph "
                   "(default: the run's rule's, e.g. tp)")
    p.add_argument("--eta", type=float, default=None,
                   help="SGD step of the on-graph learning (default: the mode's)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    p = sub.add_parser("data", help="event data sets: list them, fetch them")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    d = dsub.add_parser("list", help="data sets, sizes, where they go, whether present")
    d.add_argument("--root", type=Path, default=None, help="data folder to inspect")
    d = dsub.add_parser("fetch", help="download a data set through tonic")
    d.add_argument("name", help="data set name (see `lava-local data list`)")
    d.add_argument("--root", type=Path, required=True, help="data folder")

    p = sub.add_parser("bench", help="benchmarks that print tables and write plots")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    b = bsub.add_parser("memory", help="learning-state memory and MACs vs T, every rule")
    b.add_argument("--sweep-steps", type=_int_list, default=DEFAULT_SWEEP_STEPS, metavar="T,T",
                   help=f"T values (default: {','.join(map(str, DEFAULT_SWEEP_STEPS))})")
    b.add_argument("--out", type=Path, default=None, help="write memory.json/.png here")
    _add_run_options(b)
    b = bsub.add_parser("speed", help="time per training batch of every rule vs BPTT on "
                        "one net and batch, GFLOP/s achieved, learning state per sample")
    b.add_argument("--n-in", type=int, default=64, help="input channels (default: 64)")
    b.add_argument("--hidden", type=_int_list, default=(128, 128), metavar="N,N",
                   help="hidden widths (default: 128,128)")
    b.add_argument("--n-out", type=int, default=10, help="classes (default: 10)")
    b.add_argument("--steps", type=int, default=20, help="time steps T (default: 20)")
    b.add_argument("--batch-size", type=int, default=32, help="batch (default: 32)")
    b.add_argument("--window", type=int, default=None, metavar="K",
                   help="learning window: the last K steps learn (the papers' T - T_l, "
                   "e.g. 10 of 100 in S-TLLR's SHD recipe); default: every step")
    b.add_argument("--recurrent", action="store_true", help="recurrent hidden layers")
    b.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    b.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default 0: torch's own choice)")
    b.add_argument("--repeats", type=int, default=5, help="timed batches (default: 5)")
    b.add_argument("--warmup", type=int, default=2, help="untimed batches first (default: 2)")
    b.add_argument("--rules", default="all", help="variants: all or a comma list of "
                   "bptt, stllr-bp, stllr-bp-merged, stllr-dfa, stllr-dfa-merged, tess, "
                   "tess-merged, tp (BPTT is always timed; 'merged': --merge-terms)")
    b.add_argument("--out", type=Path, default=None, help="write speed.json/.png here")
    b.add_argument("--no-progress", action="store_true", help="hide progress bars")
    b = bsub.add_parser("recipes", help="time and memory of one training batch of every "
                        "recipe at full size, and the full run they imply")
    b.add_argument("--recipes", default="all", help="all or a comma list of recipe names")
    b.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    b.add_argument("--repeats", type=int, default=1, help="timed batches (default: 1)")
    b.add_argument("--warmup", type=int, default=1, help="untimed batches first (default: 1)")
    b.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default 0: torch's own choice)")
    b.add_argument("--out", type=Path, default=None, help="write recipes.json here")
    b.add_argument("--no-progress", action="store_true", help="hide progress lines")
    b = bsub.add_parser("lava-speed", help="Lava steps/s: inference and every on-graph "
                        "learning mode, float and fixed (demo net and a 2312-200-10 net)")
    b.add_argument("--run", type=Path, default=None,
                   help="a trained run to time (default: the demo net, trained here, and "
                        "an untrained N-MNIST-size 2312-200-10 net on random spikes)")
    b.add_argument("--samples", type=int, default=20, help="samples per graph (default: 20)")
    b.add_argument("--repeats", type=int, default=1,
                   help="runs of every graph, round robin; the median counts (default: 1)")
    b.add_argument("--learn", default="all",
                   help="learning modes: all or a comma list (see `lava-local rules`)")
    b.add_argument("--out", type=Path, default=None, help="write lava-speed.json/.png here")
    b.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


# -- formatting ---------------------------------------------------------------------------

def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def human_count(n: float) -> str:
    for unit, s in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= s:
            return f"{n / s:.2f} {unit}"
    return f"{n:.0f}"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def results_table(results: dict[str, dict]) -> str:
    header = ["rule", "test acc", "mem analytic/sample", "mem measured/sample",
              "learn MACs analytic/sample", "MACs measured/sample", "train time"]
    rows = []
    for name, r in results.items():
        c = r["cost"]
        rows.append([name, f"{100 * r['test_acc']:.2f}%",
                     human_bytes(c["memory_analytic_bytes_per_sample"]),
                     human_bytes(c["memory_measured_bytes_per_sample"]),
                     human_count(c["macs_analytic_learning_per_sample"]),
                     human_count(c["macs_measured_per_sample"]),
                     f"{r['train_time_s']:.1f} s"])
    return format_table(header, rows)


def sweep_table(sweep: list[dict]) -> str:
    rules = sorted({r["rule"] for r in sweep})
    steps = sorted({r["n_steps"] for r in sweep})
    cell = {(r["rule"], r["n_steps"]): r for r in sweep}
    header = ["T"] + [f"{rule} {kind}" for rule in rules for kind in ("analytic", "measured")]
    rows = []
    for t in steps:
        row = [str(t)]
        for rule in rules:
            c = cell[(rule, t)]
            row += [human_bytes(c["memory_analytic_bytes_per_sample"]),
                    human_bytes(c["memory_measured_bytes_per_sample"])]
        rows.append(row)
    return format_table(header, rows)


def sweep_ratio(sweep: list[dict], a: str = "bptt", b: str = "stllr") -> tuple[int, float]:
    """(largest T, measured memory ratio a/b at that T)."""
    t = max(r["n_steps"] for r in sweep)
    m = {r["rule"]: r["memory_measured_bytes_per_sample"] for r in sweep if r["n_steps"] == t}
    return t, m[a] / m[b]


# -- commands -----------------------------------------------------------------------------

def cmd_train(args) -> int:
    from . import rules
    from .plots import caption, plot_training
    from .torch.train import RunError, TrainConfig, train

    base = {"rule": "stllr", "epochs": 10}
    if args.recipe:
        from .recipes import get_recipe

        try:
            base.update(get_recipe(args.recipe).config)
        except ValueError as e:
            raise RunError(str(e)) from None
    given = {**_given(args), **{k: v for k, v in vars(args).items() if k in ("rule", "epochs")}}
    rule = given.get("rule", base["rule"])
    if rule != base["rule"]:   # a recipe run with another rule keeps the shared options
        own = set(rules.get(rule).Params.keys()) if rule in rules.REGISTRY else set()
        base = {k: v for k, v in base.items() if k not in rules.option_keys() or k in own}
    cfg = TrainConfig.from_flat(**{**base, **given})
    out = args.out or Path("runs") / (f"{args.recipe}-seed{cfg.seed}" if args.recipe
                                      else f"{cfg.rule}-{cfg.dataset}-seed{cfg.seed}")
    res = train(cfg, out, resume=args.resume, overwrite=args.overwrite,
                progress=not args.no_progress)
    plot_training({cfg.rule: res["history"]}, out / "training.png",
                  f"{cfg.spec.title}: {caption(res)}")
    print(results_table({cfg.rule: res}))
    print(f"\nresults: {out / 'results.json'}  checkpoint: {out / 'checkpoint.pt'}")
    return 0


def _new_folder(path: Path | None, prefix: str) -> Path:
    from .torch.train import RunError

    if path is None:
        path = Path("results") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    if path.exists() and any(path.iterdir()):
        raise RunError(f"{path} exists and is not empty; choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cmd_demo(args) -> int:
    import json

    from .plots import caption, plot_demo
    from .torch.train import memory_sweep, train

    out = _new_folder(args.out, "demo")
    progress = not args.no_progress
    results = {}
    pair = ("stllr", "bptt")
    _check_options_used(args, list(pair))
    for rule in pair:
        cfg = _config(args, strict=False, rule=rule, epochs=args.epochs)
        results[rule] = train(cfg, out / rule, progress=progress)
    sweep = memory_sweep(_config(args, strict=False, epochs=args.epochs),
                         list(args.sweep_steps), rules=pair, progress=progress,
                         options=_given(args))
    t_max, ratio = sweep_ratio(sweep)
    summary = {"results": results, "memory_vs_steps": sweep,
               "bptt_over_stllr_memory_at_max_T": {"n_steps": t_max, "ratio": ratio}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_demo({k: v["history"] for k, v in results.items()}, sweep, out / "summary.png",
              f"S-TLLR vs BPTT: {caption(results['stllr'])}; memory: one batch")
    cfg = results["stllr"]["config"]
    print(f"\nS-TLLR vs BPTT on digits ({cfg['encoding']} code, T={cfg['n_steps']}, "
          f"net {'-'.join(map(str, results['stllr']['layer_sizes']))}, "
          f"batch {cfg['batch_size']}, {args.epochs} epochs, seed {cfg['seed']})\n")
    print(results_table(results))
    print("\nlearning-state memory per sample vs T (same network, same batch)\n")
    print(sweep_table(sweep))
    print(f"\nat T={t_max}: BPTT needs {ratio:.1f}x the learning-state memory of S-TLLR")
    print(f"\nresults: {out / 'summary.json'}  plot: {out / 'summary.png'}")
    return 0


def cmd_bench(args) -> int:
    if args.bench == "speed":
        return _bench_speed(args)
    if args.bench == "lava-speed":
        return _bench_lava_speed(args)
    if args.bench == "recipes":
        return _bench_recipes(args)
    return _bench_memory(args)


def _bench_recipes(args) -> int:
    import json

    from .bench import recipe_cost_table, recipe_costs
    from .recipes import RECIPES
    from .torch.train import RunError

    names = list(RECIPES) if args.recipes == "all" else \
        [n.strip() for n in args.recipes.split(",") if n.strip()]
    bad = [n for n in names if n not in RECIPES]
    if bad:
        raise RunError(f"unknown recipe(s) {bad}; see `lava-local recipes`")
    if args.repeats < 1 or args.warmup < 0 or args.threads < 0:
        raise RunError("--repeats must be >= 1, --warmup >= 0 and --threads >= 0")
    out = _new_folder(args.out, "bench-recipes") if args.out is not None else None
    rows = recipe_costs(names, args.device, args.repeats, args.warmup, args.threads,
                        progress=None if args.no_progress else
                        lambda n: print(f"timing {n} ...", flush=True))
    print(format_table(*recipe_cost_table(rows)))
    print("\none training batch of each recipe at full size on random input spikes of its "
          "data set's shape; memory: the batch's peak above the model and input; full run: "
          "s/batch × batches/epoch × epochs (training only)")
    if out is not None:
        (out / "recipes.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(f"\nresults: {out / 'recipes.json'}")
    return 0


def _bench_speed(args) -> int:
    import json

    import torch

    from .bench import VARIANTS, SpeedSetup, speed_table, speed_title, trainer_speed
    from .plots import plot_speed
    from .torch.train import RunError

    ref = next(iter(VARIANTS))          # BPTT, the reference of every ratio, always runs
    wanted = list(VARIANTS) if args.rules == "all" else \
        list(dict.fromkeys([ref, *(r.strip() for r in args.rules.split(",") if r.strip())]))
    bad = [r for r in wanted if r not in VARIANTS]
    if bad:
        raise RunError(f"unknown variant(s) {bad}; choose from {', '.join(VARIANTS)} or all")
    if args.threads < 0 or args.repeats < 1 or args.warmup < 0:
        raise RunError("--threads must be >= 0, --repeats >= 1 and --warmup >= 0")
    try:
        setup = SpeedSetup(args.n_in, tuple(args.hidden), args.n_out, args.steps,
                           args.batch_size, args.recurrent, window=args.window)
    except ValueError as e:
        raise RunError(str(e)) from None
    out = _new_folder(args.out, "bench-speed") if args.out is not None else None
    if args.threads:
        torch.set_num_threads(args.threads)
    res = trainer_speed(setup, args.device, args.repeats, args.warmup,
                        [VARIANTS[r] for r in wanted], progress=not args.no_progress)
    print(f"\n{speed_title(res)}\n")
    print(format_table(*speed_table(res)))
    if out is not None:
        (out / "speed.json").write_text(json.dumps(res, indent=2) + "\n")
        plot_speed(res, out / "speed.png")
        print(f"\nwritten: {out / 'speed.json'}, {out / 'speed.png'}")
    return 0


def _bench_lava_speed(args) -> int:
    import json

    from .bench import lava_speed, lava_speed_table, synthetic_net
    from .data import load_dataset
    from .networks import export_run, load_exported
    from .plots import plot_lava_speed
    from .rules import graph_modes
    from .torch.train import RunError, TrainConfig, train

    if args.samples < 1:
        raise RunError("--samples must be >= 1")
    if args.repeats < 1:
        raise RunError("--repeats must be >= 1")
    modes = None if args.learn == "all" else [m.strip() for m in args.learn.split(",")]
    bad = [m for m in modes or [] if m not in graph_modes()]
    if bad:
        raise RunError(f"unknown learning mode(s) {bad}; choose from "
                       f"{', '.join(graph_modes())} or all")
    out = _new_folder(args.out, "bench-lava-speed") if args.out is not None else None
    progress = not args.no_progress
    nets = []
    if args.run is not None:
        net = load_exported(export_run(args.run))
        nets.append((net, load_dataset(net.dataset, "test", root=net.root,
                                       n_steps=net.n_steps, encoding=net.encoding,
                                       seed=net.seed)))
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            print("training the demo net (S-TLLR, digits, 3 epochs) ...")
            train(TrainConfig(epochs=3), Path(tmp) / "demo", progress=progress)
            net = load_exported(export_run(Path(tmp) / "demo"))
        nets.append((net, load_dataset("digits", "test", n_steps=net.n_steps)))
        nets.append(synthetic_net(2312, (200,), 10, net.n_steps, args.samples))
    results = []
    for net, data in nets:
        res = lava_speed(net, data, min(args.samples, len(data)), modes,
                         repeats=args.repeats, progress=progress)
        print(f"\nLava steps/s, net {res['net']}, T={res['n_steps']}, {res['samples']} "
              f"samples, median of {res['repeats']} run(s) per graph\n")
        print(format_table(*lava_speed_table(res)))
        results.append(res)
    if out is not None:
        (out / "lava-speed.json").write_text(json.dumps(results, indent=2) + "\n")
        plot_lava_speed(results, out / "lava-speed.png")
        print(f"\nwritten: {out / 'lava-speed.json'}, {out / 'lava-speed.png'}")
    return 0


def _bench_memory(args) -> int:
    import json

    from . import rules
    from .plots import plot_memory
    from .torch.train import memory_sweep

    _check_options_used(args, list(rules.RULES))
    sweep = memory_sweep(_config(args, strict=False), list(args.sweep_steps),
                         progress=not args.no_progress, options=_given(args))
    print(sweep_table(sweep))
    header = ["T", "rule", "saved-for-backward/batch", "learn MACs analytic/sample",
              "MACs measured/sample"]
    print()
    print(format_table(header, [[str(r["n_steps"]), r["rule"],
                                 human_bytes(r["memory_measured_saved_for_backward_bytes_batch"]),
                                 human_count(r["macs_analytic_learning_per_sample"]),
                                 human_count(r["macs_measured_per_sample"])] for r in sweep]))
    t_max, ratio = sweep_ratio(sweep)
    print(f"\nat T={t_max}: BPTT / S-TLLR learning-state memory = {ratio:.1f}x")
    if args.out is not None:
        out = _new_folder(args.out, "bench")
        (out / "memory.json").write_text(json.dumps(sweep, indent=2) + "\n")
        c = _config(args, strict=False)
        plot_memory(sweep, out / "memory.png",
                    f"{c.dataset}, hidden {'-'.join(map(str, c.hidden))}, batch "
                    f"{c.batch_size}, seed {c.seed}: one training batch per T")
        print(f"written: {out / 'memory.json'}, {out / 'memory.png'}")
    return 0


def _parse_rules(text: str) -> list[str]:
    from .rules import RULES
    from .torch.train import RunError

    rules = list(RULES) if text == "all" else [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise RunError(f"unknown rule(s) {bad or text!r}; choose from {', '.join(RULES)} "
                       "or 'all'")
    return rules


def cmd_compare(args) -> int:
    import json

    from .plots import caption, plot_compare
    from .torch.train import train

    rules = _parse_rules(args.rules)
    _check_options_used(args, rules)
    cfgs = {r: _config(args, strict=False, rule=r, epochs=args.epochs)  # validate first
            for r in rules}
    out = _new_folder(args.out, "compare")
    results = {r: train(c, out / r, progress=not args.no_progress) for r, c in cfgs.items()}
    for r in results.values():
        r["epoch_time_s"] = r["train_time_s"] / max(1, len(r["history"]))
    (out / "compare.json").write_text(json.dumps(results, indent=2) + "\n")
    plot_compare(results, out / "compare.png",
                 f"every rule, same net, data and seed: {caption(next(iter(results.values())))}")
    cfg = next(iter(results.values()))["config"]
    print(f"\n{cfg['dataset']}, T={cfg['n_steps']}, net "
          f"{'-'.join(map(str, next(iter(results.values()))['layer_sizes']))}, "
          f"{args.epochs} epochs, seed {cfg['seed']}\n")
    print(results_table(results))
    print(f"\nresults: {out / 'compare.json'}  plot: {out / 'compare.png'}")
    return 0


def cmd_sweep(args) -> int:
    import json

    from .plots import caption, plot_sweep
    from .torch.train import RunError, train

    base = _config(args, rule="ttlbptt", epochs=args.epochs)
    n_hidden = len(base.hidden)
    try:
        windows = [base.n_steps if w.strip() == "T" else int(w)
                   for w in args.sweep_windows.split(",")]
        blocks = [n_hidden if b.strip() == "all" else int(b)
                  for b in args.sweep_blocks.split(",")]
    except ValueError:
        raise RunError("--window takes integers or T, --block integers or all "
                       f"(got {args.sweep_windows!r}, {args.sweep_blocks!r})") from None
    if any(w < 1 for w in windows) or any(b < 1 for b in blocks):
        raise RunError("windows and block sizes must be >= 1")
    from dataclasses import replace

    cells = [(w, b) for w in windows for b in blocks]
    try:
        cfgs = {(w, b): replace(base, params=replace(base.params, trunc=w, block=b))
                for w, b in cells}
    except ValueError as e:
        raise RunError(str(e)) from None
    out = _new_folder(args.out, "sweep")
    rows = []
    for (w, b), c in cfgs.items():
        r = train(c, out / f"K{w}-b{b}", progress=not args.no_progress)
        rows.append({"K": w, "block": b, "test_acc": r["test_acc"], **r["cost"],
                     "train_time_s": r["train_time_s"]})
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot_sweep(rows, out / "sweep.png",
               f"TTL-BPTT: window K × block size b; {caption(r)}")
    print(format_table(["K", "block", "test acc", "mem/sample measured",
                        "mem/sample analytic", "MACs/sample measured", "train time"],
                       [[str(r["K"]), str(r["block"]), f"{100 * r['test_acc']:.2f}%",
                         human_bytes(r["memory_measured_bytes_per_sample"]),
                         human_bytes(r["memory_analytic_bytes_per_sample"]),
                         human_count(r["macs_measured_per_sample"]),
                         f"{r['train_time_s']:.1f} s"] for r in rows]))
    print(f"\nresults: {out / 'sweep.json'}  plot: {out / 'sweep.png'}")
    return 0


def cmd_recipes(args) -> int:
    import json

    from .recipes import RECIPES, get_recipe
    from .torch.train import RunError

    if args.action is None:
        if args.json:
            print(json.dumps([r.to_dict() for r in RECIPES.values()], indent=2))
            return 0
        rows = []
        for r in RECIPES.values():
            c = r.config
            rows.append([r.name, c.get("rule", ""), c.get("dataset", ""),
                         c.get("preset", "mlp"), str(c.get("n_steps", "")), r.reported,
                         r.code.split(" @")[0] or "none public"])
        print(format_table(["recipe", "rule", "data set", "net", "T", "paper reports",
                            "public code"], rows))
        print("\nevery setting and its source: uv run lava-local recipes show NAME\n"
              "run one: uv run lava-local train --recipe NAME --root DATA_DIR\n"
              "reproduce over seeds: uv run lava-local reproduce NAME --seeds 0,1,2 "
              "--root DATA_DIR")
        return 0
    if not args.name:
        raise RunError("give the recipe to show: `lava-local recipes show NAME`")
    try:
        r = get_recipe(args.name)
    except ValueError as e:
        raise RunError(str(e)) from None
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
        return 0
    print(f"{r.name}: {r.paper}\npaper reports: {r.reported}\n"
          f"statistic: {r.statistic.describe()}\n"
          f"public code: {r.code or 'none (a reconstruction from the paper)'}\n{r.note}\n")
    rows = [[k, "-" if s.value is None else str(s.value), s.source, s.other]
            for k, s in r.card.items()]
    print(format_table(["setting", "value", "source", "paper / other"], rows))
    if r.departures:
        print("\nwhere this recipe departs from the public code:")
        for d in r.departures:
            print(f"- {d.what}: the code: {d.code}\n  here: {d.here}")
    return 0


def cmd_reproduce(args) -> int:
    from .plots import plot_reproduce
    from .recipes import get_recipe
    from .reproduce import REPRODUCE, reproduce
    from .torch.train import RunError

    try:
        recipe = get_recipe(args.recipe)
    except ValueError as e:
        raise RunError(str(e)) from None
    given = _given(args)
    if "epochs" in vars(args):
        given["epochs"] = args.epochs
    out = args.out or Path("runs") / f"reproduce-{recipe.name}"

    def seed_done(s: dict) -> None:
        print(f"seed {s['seed']}: last epoch {100 * s['final_test_acc']:.2f} %, best "
              f"{100 * s['best_test_acc']:.2f} % (epoch {s['best_epoch']}/{s['epochs']})",
              flush=True)

    summary = reproduce(recipe, args.seeds, out, given, progress=not args.no_progress,
                        on_seed=seed_done)
    plot_reproduce(summary, out / "reproduce.png")
    rows = [[str(s["seed"]), f"{100 * s['final_test_acc']:.2f}",
             f"{100 * s['best_test_acc']:.2f}", str(s["epochs"])] for s in summary["seeds"]]
    print(format_table(["seed", "last epoch (%)", "best epoch (%)", "epochs"], rows))
    paper = ("not reported as a number" if summary["paper_mean"] is None else
             f"{summary['paper_mean']:.2f}" + (f" ± {summary['paper_std']:.2f}"
                                              if summary["paper_std"] is not None else ""))
    diff = ("" if summary["difference"] is None else
            f"   difference {summary['difference']:+.2f} points")
    print(f"\n{summary['statistic']} ({summary['n_aggregated']} of {summary['n_seeds']} "
          f"seeds): {summary['mean']:.2f} ± {summary['std']:.2f}   paper "
          f"({summary['paper']}): {paper}{diff}")
    print(f"\nresults: {out / REPRODUCE}  plot: {out / 'reproduce.png'}")
    return 0


def cmd_rules(args) -> int:
    import json

    from . import rules

    described = [r.describe() for r in rules.REGISTRY.values()]
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    rows = []
    for d in described:
        g = d["graph"]
        rows.append([d["rule"], d["title"], ",".join(d["layers"]),
                     "yes" if d["lava_inference"] == "yes" else "no",
                     f"--learn {g['mode']} ({', '.join(g['backends'])})" if g else "no"])
    print(format_table(["rule", "name", "trains layers", "Lava inference",
                        "learns on the graph"], rows))
    print("\nanalytic costs per sample (T_l: first learning step; N_l: neurons of layer l)\n")
    print(format_table(["rule", "learning-state memory", "learning MACs"],
                       [[d["rule"], d["memory"], d["macs"]] for d in described]))
    print("\non the graph")
    for d in described:
        g = d["graph"]
        if g:
            print(f"  {d['rule']} (--learn {g['mode']}): neuron {g['neuron']}; signal "
                  f"{g['signal']}; synapses {g['product_series']}")
        else:
            why = d["no_graph_reason"]
            if d["lava_inference"] != "yes":
                why = f"{why} (no Lava inference either: {d['lava_inference']})"
            print(f"  {d['rule']}: none: {why}")
    print("\noptions of each rule: `lava-local train --help`; JSON: `lava-local rules --json`")
    return 0


def cmd_data(args) -> int:
    from .data.events import SPECS, dataset_status, fetch
    from .torch.train import RunError

    if args.data_command == "list":
        if args.root is not None and not Path(args.root).is_dir():
            raise RunError(f"--root {args.root} is not a folder"
                           + (" (it does not exist; create it, or fetch a data set into "
                              "it with `lava-local data fetch NAME --root DIR`)"
                              if not Path(args.root).exists() else ""))
        rows = dataset_status(args.root)
        print(format_table(["data set", "download", "present splits", "expected layout"],
                           [[r["name"], r["size"], ",".join(r["present"]) or "-", r["layout"]]
                            for r in rows]))
        print("\nbuilt in (no download): digits, temporal")
        if args.root is None:
            print("pass --root DIR to see what is present there")
        return 0
    if args.name not in (*SPECS, "gsc"):
        raise RunError(f"unknown data set {args.name!r}; fetchable: {', '.join(SPECS)}, gsc")
    print(f"fetching {args.name} into {args.root} through tonic ...", flush=True)
    try:
        where = fetch(args.name, args.root)
    except OSError as e:
        raise RunError(f"download of {args.name} failed ({e}); check the network and retry "
                       "(partial files are kept, tonic resumes)") from None
    print(f"done: {where}")
    return 0


def _write_json_atomic(obj, path: Path) -> None:
    import json
    import os

    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _write_learned_run(run_dir: Path, out: Path, net, record: dict) -> None:
    """A run folder holding the net learned on the graph: the trained run's checkpoint
    with the learned layers put in (its config, history, optimiser and trainer state as
    they were) and ``learned-on-graph.json`` saying what was learned from; written aside,
    then renamed into place."""
    import torch

    from .torch.train import CHECKPOINT, TrainConfig, folder_swap, read_checkpoint

    ck = read_checkpoint(run_dir / CHECKPOINT)
    spec = TrainConfig.from_dict(ck["config"]).spec
    ck["model"] = spec.import_layers(ck["model"], net)
    ck["learned_on_graph"] = {"from_run": str(run_dir), **{k: v for k, v in record.items()
                                                           if k != "predictions"}}
    with folder_swap(out) as work:             # `out` was checked empty before any work
        torch.save(ck, work / CHECKPOINT)
        _write_json_atomic(ck["learned_on_graph"], work / "learned-on-graph.json")


def cmd_run(args) -> int:
    import os

    from . import rules
    from .data import load_dataset
    from .data.events import DatasetError
    from .networks import export_run, load_exported, save_exported
    from .networks.graph import BackendError, check_backend, run_network
    from .networks.online import learn_online
    from .torch.train import RunError

    try:
        check_backend(args.backend)
    except BackendError as e:
        raise RunError(str(e)) from None
    if args.eta is not None and not args.eta > 0:
        raise RunError(f"--eta must be > 0, got {args.eta}")
    options = {}
    for mode, g in rules.graph_modes().items():
        given = {k: v for k, v in vars(args).items()
                 if g.Options is not None and k in g.Options.keys()}
        if given and mode != args.learn:
            flags = ", ".join(s.flag for s in g.Options.flags() if s.key in given)
            raise RunError(f"{flags} apply to --learn {mode}")
        options.update(given)

    net = load_exported(export_run(args.run_dir))
    if args.learn != "none":
        from .torch.train import CHECKPOINT, TrainConfig, read_checkpoint

        if TrainConfig.from_dict(read_checkpoint(args.run_dir / CHECKPOINT)["config"]).weight_std:
            raise RunError("a net trained with --weight-std runs in Lava (its standardised "
                           "weights are exported) but cannot learn there: the graph learns "
                           "the weights as used, which a standardised layer cannot take back; "
                           "train without --weight-std to learn on the graph")
    name = args.dataset or net.dataset

    def split(which):
        try:
            return load_dataset(name, which, args.root or net.root, n_steps=net.n_steps,
                                encoding=net.encoding if name == net.dataset else "rate",
                                seed=net.seed)
        except (ValueError, DatasetError) as e:
            raise RunError(str(e)) from None

    test = split("test")
    n = len(test) if args.samples is None else min(args.samples, len(test))
    tag = f"lava-{args.backend}" + ("" if args.learn == "none" else f"-{args.learn}")
    path = args.run_dir / f"{tag}.json"
    progress = not args.no_progress
    if args.learn == "none":
        print(f"running {n} test samples through the Lava graph ({args.backend}) ...",
              flush=True)
        try:
            r = run_network(net, test, backend=args.backend, n_samples=n, progress=progress)
        except ValueError as e:
            raise RunError(str(e)) from None
        res = {"backend": args.backend, "learn": "none", "n_samples": n,
               "accuracy": r.accuracy, "steps": r.n_steps_run, "seconds": r.seconds,
               "steps_per_second": r.steps_per_second,
               "predictions": r.predictions.tolist()}
        _write_json_atomic(res, path)
        print(format_table(["backend", "samples", "accuracy", "steps/s"],
                           [[args.backend, str(n), f"{100 * r.accuracy:.2f}%",
                             f"{r.steps_per_second:.0f}"]]))
        print(f"\nresults: {path}")
        return 0

    learned_run = args.learned_out or args.run_dir.parent / f"{args.run_dir.name}-{tag}"
    if learned_run.exists() and (not learned_run.is_dir() or any(learned_run.iterdir())):
        raise RunError(f"{learned_run} exists; give another --learned-out for the learned "
                       "run (or remove it)")
    train = split("train")
    m = min(args.learn_samples, len(train))
    print(f"online learning on the Lava graph ({args.backend}, --learn {args.learn}): "
          f"test accuracy on {n} test samples, then learning from {m} training samples, "
          "then the test samples again with the learned weights ...", flush=True)
    try:
        r = learn_online(net, train, test, backend=args.backend, learn=args.learn,
                         n_learn=m, n_test=n, eta=args.eta, rng_seed=args.seed,
                         options=options, progress=progress)
    except ValueError as e:
        raise RunError(str(e)) from None
    learned = args.run_dir / f"{tag}.h5"
    tmp = learned.with_suffix(".h5.tmp")
    save_exported(r.learned, tmp)
    os.replace(tmp, learned)
    eta = args.eta if args.eta is not None else rules.graph_mode(args.learn).default_eta
    res = {"backend": args.backend, "learn": args.learn, "eta": eta, "seed": args.seed,
           **r.to_dict(), "learned_net": str(learned), "learned_run": str(learned_run)}
    _write_learned_run(args.run_dir, learned_run, r.learned, res)
    _write_json_atomic(res, path)
    print(format_table(
        ["backend", "learning", "stream (train)", "test samples", "test acc before",
         "test acc after", "learning steps/s"],
        [[args.backend, f"{args.learn} ({', '.join(f'{k}={v}' for k, v in options.items())})"
          if options else args.learn, str(m), str(n), f"{100 * r.before.accuracy:.2f}%",
          f"{100 * r.after.accuracy:.2f}%", f"{r.stream.steps_per_second:.0f}"]]))
    print(f"\nresults: {path}\nlearned weights: {learned} (load with "
          f"lava_local.networks.load_exported)\nlearned run: {learned_run} (`lava-local run`, "
          "`finetune` and `train --resume` take it)")
    return 0


def cmd_finetune(args) -> int:
    from .torch.finetune import FINETUNE, finetune_speaker

    if args.lr is not None and not args.lr > 0:
        from .torch.train import RunError

        raise RunError(f"--lr must be > 0, got {args.lr}")
    if args.eta is not None and not args.eta > 0:
        from .torch.train import RunError

        raise RunError(f"--eta must be > 0, got {args.eta}")
    res = finetune_speaker(args.run_dir, shots=args.shots, epochs=args.epochs, lr=args.lr,
                           seed=args.seed, root=args.root, device=args.device,
                           progress=not args.no_progress, on_graph=args.on_graph,
                           backends=tuple(args.backends), learn=args.learn, eta=args.eta)
    graph = (res.get("graph") or {}).get("backends", {})
    pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
    rows = [["before", "-", pct(res["before"]), *[pct(g["before"]) for g in graph.values()]]]
    rows += [[f"{r['shots']}-shot", str(r["n_train"]), pct(r["accuracy"]),
              *[pct(g["rows"][i]["accuracy"]) for g in graph.values()]]
             for i, r in enumerate(res["rows"])]
    print(f"speaker {res['speaker']}: {res['n_eval']} evaluation clips "
          f"({res['words_in_eval']} words)")
    print(format_table(["", "fine-tuning clips", "accuracy (batched)",
                        *[f"Lava {b}" for b in graph]], rows))
    if graph:
        frozen = res["graph"]["learning"].get("frozen")
        print(f"on the graph: --learn {res['graph']['mode']}, {res['epochs']} passes over the "
              f"shots, batch 1" + (f"; frozen: {', '.join(frozen)}" if frozen else ""))
    print(f"\nresults: {args.run_dir / FINETUNE} (plot: finetune.png)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .torch.train import RunError

    try:
        commands = {"train": cmd_train, "demo": cmd_demo, "bench": cmd_bench, "run": cmd_run,
                    "compare": cmd_compare, "sweep": cmd_sweep, "data": cmd_data,
                    "recipes": cmd_recipes, "finetune": cmd_finetune, "rules": cmd_rules,
                    "reproduce": cmd_reproduce}
        return commands[args.command](args)
    except RunError as e:
        print(f"lava-local: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("lava-local: error: out of memory; lower --steps, --batch-size, --hidden or "
              "--samples", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        from .networks.guard import Interrupted

        what = ("the Lava graph and its processes were stopped; nothing was written"
                if isinstance(e, Interrupted) else
                "a training run continues from its last epoch with --resume")
        print(f"\nlava-local: interrupted ({e or 'SIGINT'}): {what}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

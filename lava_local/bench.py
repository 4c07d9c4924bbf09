"""Speed benchmarks: the batched trainers against BPTT, and Lava's learning graphs against
its inference graphs (``lava-local bench speed`` / ``bench lava-speed``).

Both print tables and return plain rows (JSON-ready); none of this is a timed test.

Trainers (:func:`trainer_speed`): every rule variant trains on the same net, the same
random input spikes and labels, from the same seed, in one process; the variants take
turns batch by batch (``warmup`` untimed rounds, then ``repeats`` timed ones, CUDA
synchronised around each batch) and each reports its median time per batch. Every step
learns unless a learning window is given (``SpeedSetup.window``: the last K steps learn,
the papers' T − T_l; BPTT's loss then covers those steps, its backward pass all T).
Beside it:
the ratio to BPTT's, the achieved rate of the matrix products (2 × the measured MACs of
a batch / its time), the device's own fp32 matmul rate measured in the same run (a 2048³
product; the "arithmetic bound" is the batch's products at that rate), and the measured learning
state per sample against the rule's analytic formula.

Lava (:func:`lava_speed`): steps per second of the inference graph and of every
on-graph learning mode, float and fixed, on the same net and samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

#: Trainer variants by name: (label, rule, rule options); the first is the reference.
VARIANTS: dict[str, tuple[str, str, dict]] = {
    "bptt": ("BPTT", "bptt", {}),
    "stllr-bp": ("S-TLLR (bp)", "stllr", {"signal": "bp"}),
    "stllr-bp-merged": ("S-TLLR (bp, merged)", "stllr", {"signal": "bp", "merge_terms": True}),
    "stllr-dfa": ("S-TLLR (dfa)", "stllr", {"signal": "dfa"}),
    "stllr-dfa-merged": ("S-TLLR (dfa, merged)", "stllr",
                         {"signal": "dfa", "merge_terms": True}),
    "tess": ("TESS", "tess", {}),
    "tess-merged": ("TESS (merged)", "tess", {"merge_terms": True}),
    "tp": ("TP", "tp", {}),
}


@dataclass(frozen=True)
class SpeedSetup:
    """The net and batch every trainer variant is timed on."""

    n_in: int = 64
    hidden: tuple[int, ...] = (128, 128)
    n_out: int = 10
    n_steps: int = 20
    batch_size: int = 32
    recurrent: bool = False
    rate: float = 0.1            # input spike probability per step and channel
    seed: int = 0
    window: int | None = None    # the last `window` steps learn (T - T_l); None: every step

    def __post_init__(self) -> None:
        if self.n_in < 1 or self.n_out < 2 or not self.hidden or min(self.hidden) < 1:
            raise ValueError("the net needs n_in >= 1, n_out >= 2 and positive hidden widths")
        if self.n_steps < 1 or self.batch_size < 2:
            raise ValueError("--steps must be >= 1 and --batch-size >= 2 (TP contrasts the "
                             "samples of a batch)")
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"the input spike rate must lie in (0, 1], got {self.rate}")
        if self.window is not None and not 1 <= self.window <= self.n_steps:
            raise ValueError(f"--window must be between 1 and --steps ({self.n_steps}), got "
                             f"{self.window}")

    @property
    def sizes(self) -> str:
        return "-".join(map(str, (self.n_in, *self.hidden, self.n_out)))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device, n: int = 2048, repeats: int = 5) -> float:
    """The device's measured fp32 rate (FLOP/s) of an ``n``³ matrix product."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2.0 * n ** 3 * repeats / (time.perf_counter() - t0)


def trainer_speed(setup: SpeedSetup, device: str = "cpu", repeats: int = 5, warmup: int = 2,
                  variants=None, progress: bool = True) -> dict:
    """Time one training batch of every trainer variant on ``setup`` (see module doc);
    ratios are to the first variant (BPTT in :data:`VARIANTS`).

    Returns ``{"setup": ..., "device": ..., "threads": ..., "matmul_flops_per_s": ...,
    "rows": [...]}``; each row has ``seconds_per_batch``, ``ratio_to_bptt``,
    ``gflops_per_s``, ``bound_ratio`` (batch time / its products' time at the measured
    matmul rate), ``memory_*_bytes_per_sample`` and ``memory_ratio``.
    """
    import torch

    from .torch.train import TrainConfig, build, cost_report, resolve_device

    if progress:
        from tqdm.auto import tqdm
    else:               # no bar: nothing beyond torch needed (a GPU machine without tqdm)
        tqdm = _NoBar
    variants = tuple(VARIANTS.values()) if variants is None else variants
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(setup.seed)
    x = (torch.rand(setup.n_steps, setup.batch_size, setup.n_in, generator=gen)
         < setup.rate).float().to(dev)
    labels = torch.randint(0, setup.n_out, (setup.batch_size,), generator=gen).to(dev)
    rate = matmul_rate(dev)
    runs = []
    for label, rule, opts in variants:
        cfg = TrainConfig(rule=rule, hidden=tuple(setup.hidden), n_steps=setup.n_steps,
                          batch_size=setup.batch_size, seed=setup.seed,
                          recurrent=setup.recurrent, params=opts, device=str(dev),
                          window=setup.window)
        _, _, trainer = build(cfg, setup.n_in, setup.n_out, dev)
        trainer.start_epoch(0, 1)
        runs.append((label, rule, opts, trainer, cost_report(cfg, trainer, x, labels)))
    # round robin: a drift of the machine's speed hits every variant alike
    times = [[] for _ in runs]
    with tqdm(total=(warmup + repeats) * len(runs), desc="trainers",
              disable=not progress) as bar:
        for k in range(warmup + repeats):
            for i, run in enumerate(runs):
                _sync(dev)
                t0 = time.perf_counter()
                run[3].train_batch(x, labels)
                _sync(dev)
                if k >= warmup:
                    times[i].append(time.perf_counter() - t0)
                bar.update()
    rows = []
    for (label, rule, opts, _, cost), ts in zip(runs, times):
        sec = float(np.median(ts))
        flops = 2.0 * cost["macs_measured_per_sample"] * setup.batch_size
        rows.append({
            "variant": label, "rule": rule, "options": opts,
            "seconds_per_batch": sec,
            "seconds_per_batch_all": ts,
            "macs_per_sample": cost["macs_measured_per_sample"],
            "gflops_per_s": flops / sec / 1e9,
            "products_seconds_at_matmul_rate": flops / rate,
            "bound_ratio": sec / (flops / rate),
            "memory_measured_bytes_per_sample": cost["memory_measured_bytes_per_sample"],
            "memory_analytic_bytes_per_sample": cost["memory_analytic_bytes_per_sample"],
            "memory_ratio": (cost["memory_measured_bytes_per_sample"]
                             / cost["memory_analytic_bytes_per_sample"]),
        })
    base = rows[0]["seconds_per_batch"]         # the first variant is the reference
    for r in rows:
        r["ratio_to_bptt"] = r["seconds_per_batch"] / base
    return {"setup": {**setup.__dict__, "hidden": list(setup.hidden)},
            "device": str(dev), "device_name": _device_name(dev),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "matmul_flops_per_s": rate, "repeats": repeats, "rows": rows}


class _NoBar:
    """A progress bar that shows nothing (``progress=False``)."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        pass


def _device_name(dev) -> str:
    import platform

    import torch

    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)"


def speed_title(res: dict) -> str:
    """One line saying what a :func:`trainer_speed` result timed: net, T and learning
    window, batch, device, torch, the measured matmul rate."""
    s = res["setup"]
    window = "every step learns" if s.get("window") is None else \
        f"the last {s['window']} steps learn"
    sizes = "-".join(map(str, (s["n_in"], *s["hidden"], s["n_out"])))
    return (f"trainer speed, net {sizes}, T={s['n_steps']} ({window}), batch "
            f"{s['batch_size']}, {res['device_name']}, torch {res['torch']}; device matmul "
            f"rate {res['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s (measured)")


def speed_table(res: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a :func:`trainer_speed` result."""
    from .cli import human_bytes

    head = ["variant", "ms / batch", "ratio to BPTT", "GFLOP/s", "batch / products at "
            "matmul rate", "learning state / sample (measured)", "analytic", "ratio"]
    rows = [[r["variant"], f"{1e3 * r['seconds_per_batch']:.1f}",
             f"{r['ratio_to_bptt']:.2f}",
             f"{r['gflops_per_s']:.1f}", f"{r['bound_ratio']:.1f}",
             human_bytes(r["memory_measured_bytes_per_sample"]),
             human_bytes(r["memory_analytic_bytes_per_sample"]),
             f"{r['memory_ratio']:.2f}"] for r in res["rows"]]
    return head, rows


# -- Lava --------------------------------------------------------------------------------

def synthetic_net(n_in: int, hidden: tuple[int, ...], n_out: int, n_steps: int,
                  n_samples: int, rate: float = 0.05, seed: int = 0, gain: float = 2.0):
    """An untrained S-TLLR net of these sizes (weights drawn with ``init_gain`` =
    ``gain`` so that its layers spike) and ``n_samples`` random spike samples: the
    N-MNIST-size speed test, which needs no data set."""
    import torch

    from .data.digits import SpikeDataset
    from .networks.export import export_model
    from .torch.train import TrainConfig, build

    cfg = TrainConfig(rule="stllr", dataset="nmnist", hidden=tuple(hidden),
                      n_steps=n_steps, seed=seed, init_gain=gain,
                      params={"signal": "dfa"})
    model, _, trainer = build(cfg, n_in, n_out, torch.device("cpu"))
    net = export_model(cfg, model.state_dict(), trainer.state_dict())
    rng = np.random.default_rng(seed)
    spikes = (rng.random((n_samples, n_steps, n_in)) < rate).astype(np.uint8)
    data = SpikeDataset(spikes, rng.integers(0, n_out, n_samples), n_out, "random spikes")
    return net, data


#: The ProcessModels a learning graph can run with in :func:`lava_speed`: lava-local's
#: (one process per learning layer in simulation), lava-local's with every synapse and
#: neuron its own process (the graph's shape on Loihi 2), and Lava's stock LearningDense
#: models (separate processes too).
LAVA_MODELS = ("lava-local", "lava-local, separate processes", "Lava's stock")


def lava_speed(net, data, n_samples: int, modes: list[str] | None = None,
               backends=("sim-float", "sim-fixed"), stock: tuple[str, ...] = ("stllr-dfa",),
               repeats: int = 1, progress: bool = True) -> dict:
    """Steps per second of ``net``'s inference graph and of each on-graph learning mode
    (default: every mode of the registry; one that cannot run on this net is listed
    with its reason), float and fixed, on the first ``n_samples`` of ``data``; the
    modes in ``stock`` also with every synapse and neuron its own process, with
    lava-local's and with Lava's own LearningDense ProcessModels (:data:`LAVA_MODELS`:
    the speed-up of one process per layer, and of lava-local's bit-identical models).
    With ``repeats`` > 1 every graph runs that many times, round robin (so that a
    drift of the machine hits all alike), and the median counts."""
    from tqdm.auto import tqdm

    from .networks.graph import build_graph
    from .rules import graph_modes
    from .torch.train import RunError

    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    modes = list(graph_modes()) if modes is None else modes
    jobs = [(b, m, LAVA_MODELS[0]) for b in backends for m in ["none", *modes]]
    jobs += [(b, m, k) for b in backends for m in modes if m in stock
             for k in LAVA_MODELS[1:]]
    rows = [{"backend": b, "mode": m, "models": k, "runs": []} for b, m, k in jobs]
    with tqdm(total=len(jobs) * repeats, desc="lava graphs", disable=not progress) as bar:
        for _ in range(repeats):
            for row in rows:
                bar.update()
                if "skipped" in row:
                    continue
                try:
                    graph = build_graph(net, data, backend=row["backend"], learn=row["mode"],
                                        n_samples=n_samples,
                                        fuse_layers=row["models"] == LAVA_MODELS[0])
                except (ValueError, RunError) as e:   # a mode that cannot run on this net
                    row["skipped"] = str(e)
                    row.pop("runs")
                    continue
                graph.stock_models = row["models"] == LAVA_MODELS[2]
                row["runs"].append(graph.run().steps_per_second)
    inference = {}
    for row in rows:
        if "runs" in row:
            row["steps_per_second"] = float(np.median(row["runs"]))
            if row["mode"] == "none":
                inference[row["backend"]] = row["steps_per_second"]
    for row in rows:
        if "runs" in row:
            row["ratio_to_inference"] = row["steps_per_second"] / inference[row["backend"]]
    for r in rows:
        if r["models"] != LAVA_MODELS[0] and "steps_per_second" in r:
            fast = next((f for f in rows if f["backend"] == r["backend"]
                         and f["mode"] == r["mode"] and f["models"] == LAVA_MODELS[0]
                         and "steps_per_second" in f), None)
            if fast is not None:
                r["fast_over_this"] = fast["steps_per_second"] / r["steps_per_second"]
    return {"net": "-".join(map(str, net.layer_sizes)), "n_steps": net.n_steps,
            "samples": n_samples, "repeats": repeats, "rows": rows}


def lava_speed_table(res: dict) -> tuple[list[str], list[list[str]]]:
    head = ["backend", "graph", "ProcessModels", "steps/s", "ratio to inference",
            "lava-local / these"]
    rows = []
    for r in res["rows"]:
        graph = "inference" if r["mode"] == "none" else f"learning: {r['mode']}"
        if "skipped" in r:
            rows.append([r["backend"], graph, r["models"], "—", r["skipped"][:50], ""])
        else:
            rows.append([r["backend"], graph, r["models"], f"{r['steps_per_second']:.0f}",
                         f"{r['ratio_to_inference']:.2f}",
                         f"{r['fast_over_this']:.2f}" if "fast_over_this" in r else ""])
    return head, rows


# -- the recipes at full size -----------------------------------------------------------

#: Training-split sizes (samples) of the data sets, for the full-run estimate: the public
#: figures of each set's training split as lava-local reads it (approximate where a split
#: is ours: N-Caltech101 keeps 4 of every 5 recordings, CIFAR10-DVS 9 of 10).
TRAIN_SIZES = {"nmnist": 60_000, "shd": 8_156, "ssc": 75_466, "dvsgesture": 1_077,
               "ncaltech101": 6_942, "cifar10dvs": 9_000, "gsc": 84_843}


def recipe_dims(dataset: str) -> tuple[int, int, tuple | None]:
    """(inputs, classes, frame shape or None) of a recipe's data set, without the data."""
    from .data.events import SPECS

    if dataset == "gsc":
        return 120, 35, None
    spec = SPECS[dataset]
    frame = spec.frame_shape if len(spec.frame_shape) == 3 else None
    return spec.n_inputs, spec.n_classes, frame


def _rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc)."""
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def recipe_cost(name: str, device: str = "cpu", repeats: int = 1, warmup: int = 1,
                density: float = 0.1, seed: int = 0) -> dict:
    """Time and memory of one training batch of recipe ``name`` at its full size (its net,
    T and batch) on random input spikes of the data set's shape (``density``: fraction of
    active inputs per step). Memory: the peak over the batch above what the model and the
    input hold before it (CPU: peak resident set growth, so run one recipe per process;
    CUDA: ``max_memory_allocated``)."""
    import resource

    import torch

    from .recipes import get_recipe
    from .torch.train import TrainConfig, build, resolve_device

    rec = get_recipe(name)
    cfg = TrainConfig.from_flat(**{**rec.config, "device": device})
    dev = resolve_device(device)
    n_in, n_cls, frame = recipe_dims(cfg.dataset)
    torch.manual_seed(seed)
    model, _, trainer = build(cfg, n_in, n_cls, dev, frame)
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(cfg.n_steps, cfg.batch_size, n_in, generator=g) < density).float().to(dev)
    y = torch.randint(0, n_cls, (cfg.batch_size,), generator=g).to(dev)
    _sync(dev)
    base = _rss_bytes()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base_cuda = torch.cuda.memory_allocated(dev)
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        trainer.train_batch(x, y)
        _sync(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) - base_cuda
    per_batch = float(np.median(times))
    n_train = TRAIN_SIZES.get(cfg.dataset)
    batches = None if n_train is None else -(-n_train // cfg.batch_size)
    return {"recipe": name, "rule": cfg.rule, "dataset": cfg.dataset, "preset": cfg.preset,
            "layer_sizes": model.cfg.layer_sizes, "n_steps": cfg.n_steps,
            "batch_size": cfg.batch_size, "epochs": cfg.epochs,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "seconds_per_batch": per_batch, "memory_bytes_per_batch": int(max(peak, 0)),
            "memory_kind": "CUDA peak allocated" if dev.type == "cuda" else
            "peak resident set growth",
            "batches_per_epoch": batches,
            "full_run_hours": None if batches is None else
            per_batch * batches * cfg.epochs / 3600,
            "device": _device_name(dev), "threads": torch.get_num_threads()}


def recipe_costs(names: list[str], device: str = "cpu", repeats: int = 1, warmup: int = 1,
                 threads: int = 0, progress=None) -> list[dict]:
    """:func:`recipe_cost` of every recipe, each in its own Python process (so the peak
    memory of one does not hide the next); ``progress(name)`` is called before each."""
    import json
    import subprocess
    import sys

    rows = []
    for name in names:
        if progress is not None:
            progress(name)
        code = ("import json, sys, torch\n"
                f"if {threads}: torch.set_num_threads({threads})\n"
                "from lava_local.bench import recipe_cost\n"
                f"print('@@' + json.dumps(recipe_cost({name!r}, {device!r}, {repeats}, "
                f"{warmup})))\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
        if r.returncode != 0 or line is None:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            rows.append({"recipe": name, "error": tail[0]})
            continue
        rows.append(json.loads(line[2:]))
    return rows


def recipe_cost_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["recipe", "net", "T", "batch", "s / batch", "memory / batch", "batches / epoch",
            "epochs", "full run (h)"]
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["recipe"], "error: " + r["error"][:60], "", "", "", "", "", "", ""])
            continue
        sizes = r["layer_sizes"]
        net = (f"{r['preset']} {sizes[0]}-…-{sizes[-1]} ({len(sizes) - 2} layers)"
               if len(sizes) > 4 else "-".join(map(str, sizes)))
        out.append([r["recipe"], net, str(r["n_steps"]), str(r["batch_size"]),
                    f"{r['seconds_per_batch']:.2f}",
                    f"{r['memory_bytes_per_batch'] / 2**20:.0f} MiB",
                    str(r["batches_per_epoch"]), str(r["epochs"]),
                    "-" if r["full_run_hours"] is None else f"{r['full_run_hours']:.1f}"])
    return head, out

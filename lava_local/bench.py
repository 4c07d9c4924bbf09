"""Speed benchmarks: the batched trainers against BPTT, and Lava's learning graphs against
its inference graphs (``lava-local bench speed`` / ``bench lava-speed``).

Both print tables and return plain rows (JSON-ready); none of this is a timed test.

Trainers (:func:`trainer_speed`): every rule variant trains on the same net, the same
random input spikes and labels, from the same seed, in one process; the variants take
turns batch by batch (``warmup`` untimed rounds, then ``repeats`` timed ones, CUDA
synchronised around each batch) and each reports its median time per batch. Beside it:
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
    "stllr-dfa": ("S-TLLR (dfa)", "stllr", {"signal": "dfa"}),
    "tess": ("TESS", "tess", {}),
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

    def __post_init__(self) -> None:
        if self.n_in < 1 or self.n_out < 2 or not self.hidden or min(self.hidden) < 1:
            raise ValueError("the net needs n_in >= 1, n_out >= 2 and positive hidden widths")
        if self.n_steps < 1 or self.batch_size < 2:
            raise ValueError("--steps must be >= 1 and --batch-size >= 2 (TP contrasts the "
                             "samples of a batch)")
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"the input spike rate must lie in (0, 1], got {self.rate}")

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
    from tqdm.auto import tqdm

    from .torch.train import TrainConfig, build, cost_report, resolve_device

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
                          recurrent=setup.recurrent, params=opts, device=str(dev))
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


def _device_name(dev) -> str:
    import platform

    import torch

    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)"


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


def lava_speed(net, data, n_samples: int, modes: list[str] | None = None,
               backends=("sim-float", "sim-fixed"), stock: tuple[str, ...] = ("stllr-dfa",),
               progress: bool = True) -> dict:
    """Steps per second of ``net``'s inference graph and of each on-graph learning mode
    (default: every mode of the registry; one that cannot run on this net is listed
    with its reason), float and fixed, on the first ``n_samples`` of ``data``; the
    modes in ``stock`` also with Lava's own LearningDense ProcessModels (the speed-up of
    lava-local's bit-identical fast models)."""
    from tqdm.auto import tqdm

    from .networks.graph import build_graph
    from .rules import graph_modes
    from .torch.train import RunError

    modes = list(graph_modes()) if modes is None else modes
    jobs = [(b, m, False) for b in backends for m in ["none", *modes]]
    jobs += [(b, m, True) for b in backends for m in modes if m in stock]
    rows, inference = [], {}
    for backend, mode, stock_models in tqdm(jobs, desc="lava graphs", disable=not progress):
        row = {"backend": backend, "mode": mode,
               "models": "Lava's stock" if stock_models else "lava-local"}
        try:
            graph = build_graph(net, data, backend=backend, learn=mode, n_samples=n_samples)
        except (ValueError, RunError) as e:      # a mode that cannot run on this net
            rows.append({**row, "skipped": str(e)})
            continue
        graph.stock_models = stock_models
        sps = graph.run().steps_per_second
        if mode == "none":
            inference[backend] = sps
        rows.append({**row, "steps_per_second": sps,
                     "ratio_to_inference": sps / inference[backend]})
    for r in rows:
        if r["models"] != "lava-local" and "steps_per_second" in r:
            fast = next(f for f in rows if f["backend"] == r["backend"]
                        and f["mode"] == r["mode"] and f["models"] == "lava-local")
            r["fast_over_stock"] = fast["steps_per_second"] / r["steps_per_second"]
    return {"net": "-".join(map(str, net.layer_sizes)), "n_steps": net.n_steps,
            "samples": n_samples, "rows": rows}


def lava_speed_table(res: dict) -> tuple[list[str], list[list[str]]]:
    head = ["backend", "graph", "ProcessModels", "steps/s", "ratio to inference",
            "lava-local / stock"]
    rows = []
    for r in res["rows"]:
        graph = "inference" if r["mode"] == "none" else f"learning: {r['mode']}"
        if "skipped" in r:
            rows.append([r["backend"], graph, r["models"], "—", r["skipped"][:50], ""])
        else:
            rows.append([r["backend"], graph, r["models"], f"{r['steps_per_second']:.0f}",
                         f"{r['ratio_to_inference']:.2f}",
                         f"{r['fast_over_stock']:.2f}" if "fast_over_stock" in r else ""])
    return head, rows

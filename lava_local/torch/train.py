"""Training runs: configuration, epochs with progress bars, evaluation, checkpoints,
accounting, and the results JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import DATASETS, SpikeDataset, load_dataset
from ..data.events import DatasetError
from ..rules.stllr import STLLRParams
from .accounting import BYTES_PER_VALUE, analytic_macs, analytic_memory_values, measure_step
from .model import DenseSNN, NetConfig
from .trainers import (
    RULES,
    BPTTTrainer,
    STLLRTrainer,
    TESSTrainer,
    TPTrainer,
    TTLBPTTTrainer,
    first_learning_step,
)

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.json"


class RunError(Exception):
    """A problem with the user's request (bad option, missing checkpoint, ...)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints and results)."""

    rule: str = "stllr"
    dataset: str = "digits"
    encoding: str = "rate"
    n_steps: int = 20
    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    window: int | None = None
    gamma: float = 0.5
    v_th: float = 0.8
    kappa: float = 0.9
    surrogate: str = "triangle"
    init_gain: float = 1.0
    # S-TLLR (and TESS) hyper-parameters: STLLRParams' defaults, flat for the CLI
    lam_pre: float = STLLRParams.lam_pre
    lam_post: float = STLLRParams.lam_post
    alpha_pre: float = STLLRParams.alpha_pre
    alpha_post: float = STLLRParams.alpha_post
    signal: str = STLLRParams.signal
    post_form: str = STLLRParams.post_form
    online: bool = STLLRParams.online
    tess_f: str = "softmax"
    tess_pool: int = 0
    tp_beta: float = 0.9
    solsa_sigma: float = 0.5
    solsa_topk: int = 8
    solsa_rerank: int = 2
    solsa_early_stop: bool = True
    solsa_per_channel: bool = False
    ttl_trunc: int | None = 5
    ttl_block: int = 1
    ttl_update: str = "window"
    recurrent: bool = False
    preset: str = "mlp"
    width: float = 1.0
    root: str | None = None
    holdout_speaker: str | None = None
    workers: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise RunError(f"unknown rule {self.rule!r}; choose one of {', '.join(RULES)}")
        if self.dataset not in DATASETS:
            raise RunError(
                f"unknown dataset {self.dataset!r}; available: {', '.join(DATASETS)}"
            )
        for name in ("n_steps", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise RunError(f"{name} must be a positive integer, got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise RunError(f"the learning rate must be a positive number, got {self.lr}")
        if self.window is not None and not 1 <= self.window <= self.n_steps:
            raise RunError(
                f"the learning window must be between 1 and T={self.n_steps}, got {self.window}"
            )
        if not isinstance(self.workers, int) or self.workers < 0:
            raise RunError(f"workers must be a non-negative integer, got {self.workers!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise RunError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if not 0.0 <= self.tp_beta <= 1.0:
            raise RunError(f"tp_beta must lie in [0, 1], got {self.tp_beta}")
        if self.rule == "tp" and self.batch_size < 2:
            raise RunError("Traces Propagation needs a batch size >= 2 (it contrasts the "
                           "samples of a batch); use --batch-size 2 or more")
        if self.solsa_sigma <= 0 or self.solsa_topk < 0 or self.solsa_rerank < 1:
            raise RunError("SOLSA needs solsa_sigma > 0, solsa_topk >= 0, solsa_rerank >= 1")
        from .conv import PRESETS

        if self.preset not in PRESETS:
            raise RunError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if not self.width > 0:
            raise RunError(f"width must be > 0, got {self.width}")
        conv = self.preset in ("vgg9", "alexnet-snn")
        if conv and self.rule == "solsa":
            raise RunError("the conv presets are supported by stllr, tess, tp, ttlbptt and "
                           "bptt so far, not by solsa")
        if conv and self.recurrent:
            raise RunError("--recurrent applies to the dense presets (mlp, rec-mlp)")
        if (self.recurrent or self.preset == "rec-mlp") and self.rule == "ttlbptt":
            raise RunError("recurrent layers are supported by stllr, tess, tp, solsa and bptt "
                           "so far, not by ttlbptt")
        if self.tess_pool < 0:
            raise RunError(f"tess_pool must be >= 0, got {self.tess_pool}")
        if self.tess_f not in ("softmax", "identity"):
            raise RunError(f"tess_f must be softmax or identity, got {self.tess_f!r}")
        if self.ttl_trunc is not None and self.ttl_trunc < 1:
            raise RunError(f"the TTL-BPTT window K must be >= 1, got {self.ttl_trunc}")
        if self.ttl_block < 1:
            raise RunError(f"the TTL-BPTT block size must be >= 1, got {self.ttl_block}")
        if self.holdout_speaker is not None and self.dataset != "gsc":
            raise RunError("--holdout-speaker applies to --dataset gsc (speaker adaptation), "
                           f"not to {self.dataset}")
        if self.ttl_update not in ("window", "sample"):
            raise RunError(f"ttl_update must be window or sample, got {self.ttl_update!r}")
        try:
            self.net_config(64, 10)
            self.stllr_params()
        except ValueError as e:
            raise RunError(str(e)) from None

    def net_config(self, n_in: int, n_out: int) -> NetConfig:
        return NetConfig(n_in, n_out, tuple(self.hidden), self.gamma, self.v_th, self.kappa,
                         self.surrogate, self.init_gain,
                         self.recurrent or self.preset == "rec-mlp")

    def stllr_params(self) -> STLLRParams:
        return STLLRParams(self.lam_pre, self.lam_post, self.alpha_pre, self.alpha_post,
                           self.signal, self.post_form, self.online)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "hidden" in d:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def to_time_first(spikes: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, T, F) uint8 samples -> (T, B, F) float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(spikes.transpose(1, 0, 2))).to(
        device=device, dtype=torch.float32)


class _Frames(torch.utils.data.Dataset):
    """Map-style view of a lazy data set for a torch DataLoader (uint8 frames, labels)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        return torch.from_numpy(self.ds.frames(int(i))), int(self.ds.labels[int(i)])


def iterate_batches(ds, batch_size: int, order: np.ndarray | None, device: torch.device,
                    workers: int = 0):
    """Yield ``(x (T, B, F), labels (B,))`` over ``ds`` in ``order`` (None = as stored).

    In-memory data sets (with ``spikes``) are sliced; lazy ones (event data) go through a
    torch DataLoader (``workers`` processes, pinned memory when the device is a GPU) that
    reads each sample through the data set's cache."""
    idx = np.arange(len(ds)) if order is None else np.asarray(order)
    if hasattr(ds, "spikes"):
        for s in range(0, len(idx), batch_size):
            b = idx[s:s + batch_size]
            yield (to_time_first(ds.spikes[b], device),
                   torch.from_numpy(np.asarray(ds.labels)[b]).to(device))
        return
    batches = [idx[s:s + batch_size].tolist() for s in range(0, len(idx), batch_size)]
    loader = torch.utils.data.DataLoader(
        _Frames(ds), batch_sampler=batches, num_workers=workers,
        pin_memory=device.type == "cuda", persistent_workers=False)
    for x, y in loader:
        yield (x.to(device, non_blocking=True).permute(1, 0, 2).float(),
               y.to(device, non_blocking=True))


@torch.no_grad()
def evaluate(model, ds: SpikeDataset, t_l: int, device: torch.device,
             batch_size: int = 256) -> tuple[float, np.ndarray]:
    """Accuracy and predictions of ``model`` on ``ds`` (argmax of Σ_{t≥T_l} o[t])."""
    preds = []
    for x, _ in iterate_batches(ds, batch_size, None, device):
        preds.append(model.predict_logits(x, t_l).argmax(-1).cpu().numpy())
    p = np.concatenate(preds)
    return float((p == ds.labels).mean()), p


def load_weights(ck: dict, cfg: TrainConfig, model, trainer, device: torch.device) -> None:
    """Put a checkpoint's learned weights (and S-TLLR's fixed DFA matrices) into a model
    and trainer made by :func:`build`."""
    model.load_state_dict(ck["model"])
    if cfg.rule == "stllr" and ck.get("feedback") is not None:
        trainer.feedback = [b.to(device) for b in ck["feedback"]]


def build(cfg: TrainConfig, n_in: int, n_out: int, device: torch.device,
          frame_shape: tuple[int, ...] | None = None):
    """Model, optimiser and trainer of ``cfg``, initialised from ``cfg.seed``
    (``frame_shape`` (C, H, W) is needed by the conv presets)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.preset in ("vgg9", "alexnet-snn"):
        from .conv import ConvNetConfig, ConvSNN, conv_spec

        if frame_shape is None or len(frame_shape) != 3:
            raise RunError(f"the {cfg.preset} preset needs image-like frames (C, H, W); "
                           "this data set has none")
        try:
            ccfg = ConvNetConfig(tuple(frame_shape), n_out, conv_spec(cfg.preset, cfg.width),
                                 cfg.gamma, cfg.v_th, cfg.kappa, cfg.surrogate, cfg.init_gain)
        except ValueError as e:
            raise RunError(str(e)) from None
        model = ConvSNN(ccfg, generator=gen).to(device)
    elif cfg.rule == "solsa":  # its own current-based, all-spiking network
        from .solsa import SOLSANet, SOLSATrainer

        model = SOLSANet(cfg.net_config(n_in, n_out), cfg.solsa_per_channel, cfg.solsa_sigma,
                         generator=gen).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        return model, opt, SOLSATrainer(model, opt, cfg.window, cfg.solsa_topk,
                                        cfg.solsa_rerank, cfg.solsa_early_stop)
    else:
        model = DenseSNN(cfg.net_config(n_in, n_out), generator=gen).to(device)
    if cfg.rule == "ttlbptt":
        trainer = TTLBPTTTrainer(model, None, cfg.window, cfg.ttl_trunc, cfg.ttl_block,
                                 cfg.ttl_update, generator=gen)
        opt = torch.optim.Adam(trainer.parameters(), lr=cfg.lr)
        trainer.optimizer = opt
        return model, opt, trainer
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if cfg.rule == "stllr":
        trainer = STLLRTrainer(model, opt, cfg.stllr_params(), cfg.window, generator=gen)
    elif cfg.rule == "tess":
        trainer = TESSTrainer(model, opt, cfg.stllr_params(), cfg.window, f=cfg.tess_f,
                              pool=cfg.tess_pool)
    elif cfg.rule == "tp":
        trainer = TPTrainer(model, opt, cfg.window, cfg.tp_beta, generator=gen)
    else:
        trainer = BPTTTrainer(model, opt, cfg.window)
    return model, opt, trainer


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def cost_report(cfg: TrainConfig, trainer, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Analytic and measured learning-state memory and MACs of one training step."""
    sizes = trainer.model.cfg.layer_sizes
    t_l = first_learning_step(cfg.n_steps, cfg.window)
    cost = measure_step(trainer, x, labels)
    b = cost.batch
    synapses = getattr(trainer.model.cfg, "forward_macs", None)
    mem_values = analytic_memory_values(cfg.rule, sizes, cfg.n_steps, cfg.ttl_trunc,
                                        cfg.alpha_post, cfg.recurrent)
    return {
        "batch": b,
        "memory_analytic_bytes_per_sample": mem_values * BYTES_PER_VALUE,
        "memory_analytic_bytes_batch": mem_values * BYTES_PER_VALUE * b,
        "memory_measured_bytes_batch": cost.learning_state_bytes,
        "memory_measured_bytes_per_sample": cost.learning_state_bytes / b,
        "memory_measured_saved_for_backward_bytes_batch": cost.saved_for_backward_bytes,
        "cuda_peak_bytes_batch": cost.cuda_peak_bytes,
        "macs_analytic_learning_per_sample": analytic_macs(cfg.rule, sizes, cfg.n_steps, t_l,
                                                           synapses),
        "macs_measured_per_sample": cost.macs / b,
    }


def train(cfg: TrainConfig, out: Path | None = None, resume: bool = False,
          overwrite: bool = False, progress: bool = True) -> dict:
    """Train ``cfg``; write a checkpoint each epoch and ``results.json`` into ``out``.

    Returns the results dictionary (also written to ``out/results.json``).
    """
    from tqdm.auto import tqdm

    out = Path(out) if out is not None else None
    ckpt_path = out / CHECKPOINT if out is not None else None
    if out is not None:
        if resume and not ckpt_path.is_file():
            raise RunError(f"cannot resume: no checkpoint at {ckpt_path}; "
                           "start a new run without --resume")
        if not resume and not overwrite and (ckpt_path.exists() or (out / RESULTS).exists()):
            raise RunError(f"{out} already holds a run; pass --resume to continue it, "
                           "--overwrite to replace it, or choose another --out")
        out.mkdir(parents=True, exist_ok=True)
    elif resume:
        raise RunError("--resume needs --out, the folder of the run to continue")

    device = resolve_device(cfg.device)
    extra = {} if cfg.holdout_speaker is None else {"exclude_speaker": cfg.holdout_speaker}
    try:
        train_ds = load_dataset(cfg.dataset, "train", cfg.root, n_steps=cfg.n_steps,
                                encoding=cfg.encoding, seed=cfg.seed, **extra)
        test_ds = load_dataset(cfg.dataset, "test", cfg.root, n_steps=cfg.n_steps,
                               encoding=cfg.encoding, seed=cfg.seed, **extra)
    except (ValueError, DatasetError) as e:
        raise RunError(str(e)) from None
    for split, ds in (("train", train_ds), ("test", test_ds)):
        if len(ds) == 0:
            raise RunError(f"the {split} split of {cfg.dataset} is empty; check the data "
                           f"folder ({cfg.root}) with `lava-local data list --root DIR`")
    model, opt, trainer = build(cfg, train_ds.n_inputs, train_ds.n_classes, device,
                                train_ds.frame_shape)
    t_l = first_learning_step(cfg.n_steps, cfg.window)
    history: list[dict] = []
    start = 0
    if resume:
        ck = torch.load(ckpt_path, map_location=device)
        saved = TrainConfig.from_dict(ck["config"])
        if replace(saved, epochs=cfg.epochs, device=cfg.device) != cfg:
            diff = {k: (v, getattr(cfg, k)) for k, v in saved.to_dict().items()
                    if k not in ("epochs", "device") and cfg.to_dict()[k] != v}
            raise RunError(f"--resume with options that differ from the checkpoint's: {diff} "
                           "(saved vs given); resume with the same options")
        load_weights(ck, cfg, model, trainer, device)
        opt.load_state_dict(ck["optimizer"])
        if ck.get("trainer") is not None:
            trainer.load_state_dict(ck["trainer"])
        history, start = ck["history"], ck["epoch"]

    for epoch in range(start, cfg.epochs):
        if hasattr(trainer, "start_epoch"):
            trainer.start_epoch(epoch, cfg.epochs)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train_ds))
        if cfg.rule == "tp" and len(order) % cfg.batch_size == 1 and len(order) > 1:
            order = order[:-1]      # TP contrasts a batch: leave out a last batch of one
        n_batches = math.ceil(len(order) / cfg.batch_size)
        t0 = time.perf_counter()
        losses = []
        bar = tqdm(iterate_batches(train_ds, cfg.batch_size, order, device, cfg.workers),
                   total=n_batches,
                   desc=f"{cfg.rule} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=True, dynamic_ncols=True)
        for x, y in bar:
            losses.append(trainer.train_batch(x, y))
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        train_time = time.perf_counter() - t0
        acc, _ = evaluate(model, test_ds, t_l, device)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", test_acc=f"{acc:.3f}")
        bar.close()
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                        "test_acc": acc, "train_time_s": train_time})
        if ckpt_path is not None:
            _atomic_save({"config": cfg.to_dict(), "epoch": epoch + 1,
                          "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "feedback": getattr(trainer, "feedback", None) or None,
                          "trainer": trainer.state_dict()
                          if hasattr(trainer, "state_dict") else None,
                          "history": history}, ckpt_path)

    x, y = next(iterate_batches(train_ds, cfg.batch_size, None, device))
    results = {
        "config": cfg.to_dict(),
        "dataset": {"name": train_ds.name, "n_train": len(train_ds), "n_test": len(test_ds),
                    "n_steps": train_ds.n_steps, "n_inputs": train_ds.n_inputs,
                    "n_classes": train_ds.n_classes,
                    "holdout_speaker": getattr(train_ds, "excluded", None)},
        "layer_sizes": model.cfg.layer_sizes,
        "test_acc": history[-1]["test_acc"] if history else None,
        "history": history,
        "train_time_s": float(sum(h["train_time_s"] for h in history)),
        "cost": cost_report(cfg, trainer, x, y),
        "device": str(device),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
    }
    if out is not None:
        _write_json(results, out / RESULTS)
    return results


def memory_sweep(cfg: TrainConfig, steps: list[int], rules: tuple[str, ...] = RULES,
                 progress: bool = True) -> list[dict]:
    """Learning-state memory and MACs of one training step for each rule and each T.

    Every cell uses the same network (``cfg``, untrained, seeded) and the same batch of
    ``cfg.batch_size`` training samples encoded with T steps.
    """
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    rows = []
    cells = [(n, r) for n in steps for r in rules]
    for n_steps, rule in tqdm(cells, desc="memory vs T", disable=not progress):
        c = replace(cfg, rule=rule, n_steps=n_steps,
                    window=None if cfg.window is None else min(cfg.window, n_steps))
        ds = load_dataset(c.dataset, "train", c.root, n_steps=n_steps, encoding=c.encoding,
                          seed=c.seed)
        _, _, trainer = build(c, ds.n_inputs, ds.n_classes, device, ds.frame_shape)
        x, y = next(iterate_batches(ds, c.batch_size, None, device))
        rows.append({"rule": rule, "n_steps": n_steps, **cost_report(c, trainer, x, y)})
    return rows

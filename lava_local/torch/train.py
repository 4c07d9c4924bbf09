"""Training runs: configuration, epochs with progress bars, evaluation, checkpoints,
accounting, and the results JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from .. import rules as registry
from ..data import DATASETS, SpikeDataset, load_dataset
from ..data.events import DatasetError
from ..rules import Costs, Rule, RuleParams
from .accounting import BYTES_PER_VALUE, measure_step
from .conv import CONV_SPECS, PRESETS
from .loop import first_learning_step
from .model import LayerFeatureOptions, NetConfig

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.json"
#: Layout of ``checkpoint.pt``: 1 = before the rule registry (DFA matrices at the top
#: level, every rule's options in the config), 2 = the trainer's state under "trainer".
CHECKPOINT_FORMAT = 2


class RunError(Exception):
    """A problem with the user's request (bad option, missing checkpoint, ...)."""


#: Learning-rate schedules over the epochs: constant, or cosine annealing to 0 (stepped
#: once per epoch, torch's CosineAnnealingLR with T_max = epochs).
LR_SCHEDULES = ("none", "cosine")

#: Training-time augmentation of image-like event frames (what the public codes use):
#: none, a random crop after zero-padding 4 pixels (one crop per sample, the same for all
#: its frames), or that and a horizontal flip with probability 1/2.
AUGMENTS = ("none", "crop", "crop-flip")

#: The optional layer features of a run (:class:`~lava_local.torch.model.LayerFeatures`).
FEATURES = tuple(f.name for f in fields(LayerFeatureOptions))


@dataclass(frozen=True)
class TrainConfig(LayerFeatureOptions):
    """Everything that defines a training run (saved in checkpoints and results).

    ``params`` is the rule's own frozen hyper-parameter object (``rules.get(rule).Params``;
    None: its defaults; a mapping of its flat keys is converted). :meth:`from_flat`
    builds a config from one flat mapping of every option (the command line, recipes,
    saved runs).
    """

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
    recurrent: bool = False
    preset: str = "mlp"
    width: float = 1.0
    pooling: str = "avg"
    lr_schedule: str = "none"
    augment: str = "none"
    root: str | None = None
    holdout_speaker: str | None = None
    workers: int = 0
    device: str = "auto"
    params: RuleParams | Mapping | None = None

    def __post_init__(self) -> None:
        try:
            rule = registry.get(self.rule)
        except ValueError as e:
            raise RunError(str(e)) from None
        params = self.params
        try:
            if params is None:
                params = rule.Params()
            elif isinstance(params, Mapping):
                params = rule.Params.from_flat(params)
        except ValueError as e:
            raise RunError(str(e)) from None
        if not isinstance(params, rule.Params):
            raise RunError(f"params of rule {self.rule} must be a {rule.Params.__name__}, "
                           f"got {type(params).__name__}")
        object.__setattr__(self, "params", params)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise RunError(f"{f.name} must be a finite number, got {v}")
        if not self.init_gain > 0:
            raise RunError(f"init_gain must be > 0, got {self.init_gain}")
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
        if self.lr > 1e3:       # Adam moves each weight by about lr per step
            raise RunError(f"a learning rate of {self.lr:g} moves every weight by about that "
                           "much per Adam step (and overflows float32 beyond ~3e37); use "
                           "e.g. --lr 1e-3")
        if self.window is not None and not 1 <= self.window <= self.n_steps:
            raise RunError(
                f"the learning window must be between 1 and T={self.n_steps}, got {self.window}"
            )
        if not isinstance(self.workers, int) or self.workers < 0:
            raise RunError(f"workers must be a non-negative integer, got {self.workers!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise RunError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.preset not in PRESETS:
            raise RunError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if not self.width > 0:
            raise RunError(f"width must be > 0, got {self.width}")
        if self.pooling not in ("avg", "max"):
            raise RunError(f"pooling must be avg or max, got {self.pooling!r}")
        if self.augment not in AUGMENTS:
            raise RunError(f"augment must be one of {', '.join(AUGMENTS)}, got "
                           f"{self.augment!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise RunError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got "
                           f"{self.lr_schedule!r}")
        if self.preset in CONV_SPECS and self.recurrent:
            raise RunError("--recurrent applies to the dense presets (mlp, rec-mlp)")
        if self.holdout_speaker is not None and self.dataset != "gsc":
            raise RunError("--holdout-speaker applies to --dataset gsc (speaker adaptation), "
                           f"not to {self.dataset}")
        try:
            self.net_config(64, 10)
            rule.check(self)
        except ValueError as e:
            raise RunError(str(e)) from None

    @property
    def spec(self) -> Rule:
        """The rule object of this run (from the registry)."""
        return registry.get(self.rule)

    @property
    def layer_kinds(self) -> set[str]:
        """Kinds of layer the network has (see ``rules.LAYER_KINDS``)."""
        if self.preset in CONV_SPECS:
            return {"conv", "dense"}
        return {"dense", "recurrent"} if self.is_recurrent else {"dense"}

    @property
    def is_recurrent(self) -> bool:
        return self.recurrent or self.preset == "rec-mlp"

    @property
    def features(self) -> dict:
        """The optional layer features (:class:`~lava_local.torch.model.LayerFeatures`)."""
        return {k: getattr(self, k) for k in FEATURES}

    def net_config(self, n_in: int, n_out: int) -> NetConfig:
        return NetConfig(n_in, n_out, tuple(self.hidden), self.gamma, self.v_th, self.kappa,
                         self.surrogate, self.init_gain, self.is_recurrent, **self.features)

    def to_dict(self) -> dict:
        """Flat: the run's fields and the rule's options by their flat keys."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "params"}
        d["hidden"] = list(self.hidden)
        d.update(self.params.to_flat())
        return d

    @classmethod
    def from_flat(cls, strict: bool = True, **values) -> TrainConfig:
        """A config from one flat mapping (run fields and rule options by flat key).

        With ``strict`` an option of another rule is an error naming the rule's options;
        otherwise such options are ignored (options given to several rules at once, or
        a run saved by an earlier version that stored every rule's options)."""
        own = {f.name for f in fields(cls)} - {"params"}
        try:
            rule = registry.get(values.get("rule", cls.rule))
        except ValueError as e:
            raise RunError(str(e)) from None
        keys = rule.Params.keys()
        others = registry.option_keys() - set(keys)
        run = {k: v for k, v in values.items() if k in own}
        opts = {k: v for k, v in values.items() if k in keys}
        foreign = sorted(k for k in values if k in others)
        unknown = sorted(k for k in values if k not in own and k not in keys
                         and k not in others)
        if strict and (foreign or unknown):
            flags = {s.key: s.flag for s, _ in registry.flags()}
            bad = foreign + unknown
            takes = ", ".join(flags[k] for k in keys) or "no options of its own"
            raise RunError(f"{', '.join(flags.get(k, k) for k in bad)} "
                           f"{'does' if len(bad) == 1 else 'do'} not apply to rule "
                           f"{rule.name} (it takes {takes}); see `lava-local rules`")
        if "hidden" in run:
            run["hidden"] = tuple(run["hidden"])
        try:
            params = rule.Params.from_flat(opts)
        except ValueError as e:
            raise RunError(str(e)) from None
        return cls(**run, params=params)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Read a saved config (results.json, checkpoints of every format)."""
        return cls.from_flat(strict=False, **d)

    def with_rule(self, rule: str) -> TrainConfig:
        """The same run with another rule (options the two share are kept)."""
        return TrainConfig.from_flat(strict=False, **{**self.to_dict(), "rule": rule})


def augment_frames(x: torch.Tensor, frame_shape: tuple, kind: str,
                   generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """A batch ``x`` (T, B, C·H·W) of image-like frames, augmented per sample (see
    :data:`AUGMENTS`): zero-padded by ``pad`` pixels and cropped back to H×W at an offset
    drawn from ``generator`` (the same for all T frames of a sample), and with ``"crop-
    flip"`` mirrored left-right with probability 1/2."""
    if kind == "none":
        return x
    if not frame_shape or len(frame_shape) != 3:
        raise RunError(f"--augment {kind} needs image-like frames (C, H, W); this data set "
                       f"has {tuple(frame_shape or ())}")
    t, b = x.shape[:2]
    c, h, w = frame_shape
    padded = F.pad(x.reshape(t, b, c, h, w), (pad, pad, pad, pad))
    offs = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator).tolist()
    flips = (torch.rand(b, generator=generator) < 0.5).tolist()
    out = torch.stack([padded[:, i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in
                       enumerate(offs)], 1)
    if kind == "crop-flip":
        out = torch.stack([out[:, i].flip(-1) if f else out[:, i] for i, f in
                           enumerate(flips)], 1)
    return out.reshape(t, b, -1)


def cosine_lr(trainer, epoch: int, n_epochs: int) -> None:
    r"""Set the learning rates of epoch ``epoch`` (0-based):
    :math:`η_e = η_0 (1 + \cos(π e / E)) / 2` over E = ``n_epochs``."""
    f = 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, n_epochs)))
    for g, lr in zip(trainer.optimizer.param_groups, trainer.base_lrs):
        g["lr"] = lr * f


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


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """Load ``checkpoint.pt`` of any format this version reads, as the current format."""
    try:
        ck = torch.load(path, map_location=device)
    except FileNotFoundError:
        raise RunError(f"no checkpoint at {path}") from None
    except Exception as e:     # truncated, garbage, not a torch file
        raise RunError(f"{path} is not a readable lava-local checkpoint ({type(e).__name__}: "
                       f"{str(e)[:120]}); retrain, or restore the file") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise RunError(f"{path} is not a lava-local checkpoint (no model and config); "
                       "retrain, or restore the file")
    bad = non_finite(ck["model"])
    if bad:
        raise RunError(f"{path} holds NaN/inf weights ({', '.join(bad)}): it cannot be "
                       "resumed, exported or run; retrain (with a smaller --lr)")
    fmt = ck.get("format", 1)
    if fmt > CHECKPOINT_FORMAT:
        raise RunError(f"{path} has checkpoint format {fmt}, newer than this lava-local "
                       f"{__version__} reads (format {CHECKPOINT_FORMAT}); upgrade lava-local")
    if fmt == 1:   # S-TLLR's DFA matrices were stored beside the model
        trainer = dict(ck.get("trainer") or {})
        if ck.get("feedback"):
            trainer["feedback"] = ck["feedback"]
        ck["trainer"] = trainer
        ck["format"] = CHECKPOINT_FORMAT
    return ck


def non_finite(state: Mapping) -> list[str]:
    """Names of the floating tensors of a state dict that hold NaN or inf."""
    return [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()
            and not bool(torch.isfinite(v).all())]


def load_weights(ck: dict, cfg: TrainConfig, model, trainer, device: torch.device) -> None:
    """Put a checkpoint's learned weights and the trainer's state (fixed random matrices,
    schedules) into a model and trainer made by :func:`build`."""
    model.load_state_dict(ck["model"])
    trainer.load_state_dict(ck.get("trainer") or {})


def build(cfg: TrainConfig, n_in: int, n_out: int, device: torch.device,
          frame_shape: tuple[int, ...] | None = None):
    """Model, optimiser and trainer of ``cfg``, initialised from ``cfg.seed``
    (``frame_shape`` (C, H, W) is needed by the conv presets)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    try:
        model = cfg.spec.build_model(cfg, n_in, n_out, frame_shape, gen).to(device)
    except ValueError as e:
        raise RunError(str(e)) from None
    trainer = cfg.spec.make_trainer(model, cfg.params, cfg.window, cfg.lr, gen)
    return model, trainer.optimizer, trainer


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
    costs = Costs(trainer.model.cfg.layer_sizes, cfg.n_steps,
                  first_learning_step(cfg.n_steps, cfg.window), cfg.is_recurrent,
                  getattr(trainer.model.cfg, "forward_macs", None))
    cost = measure_step(trainer, x, labels)
    b = cost.batch
    mem_values = cfg.spec.memory_values(costs, cfg.params)
    return {
        "batch": b,
        "memory_analytic_bytes_per_sample": mem_values * BYTES_PER_VALUE,
        "memory_analytic_bytes_batch": mem_values * BYTES_PER_VALUE * b,
        "memory_measured_bytes_batch": cost.learning_state_bytes,
        "memory_measured_bytes_per_sample": cost.learning_state_bytes / b,
        "memory_measured_saved_for_backward_bytes_batch": cost.saved_for_backward_bytes,
        "cuda_peak_bytes_batch": cost.cuda_peak_bytes,
        "macs_analytic_learning_per_sample": cfg.spec.learning_macs(costs, cfg.params),
        "macs_measured_per_sample": cost.macs / b,
    }


def train(cfg: TrainConfig, out: Path | None = None, resume: bool = False,
          overwrite: bool = False, progress: bool = True, data: tuple | None = None) -> dict:
    """Train ``cfg``; write a checkpoint each epoch and ``results.json`` into ``out``.

    ``data``: (train, test) data sets to use instead of loading ``cfg.dataset`` (e.g.
    :func:`lava_local.data.from_arrays`; ``cfg.dataset`` then only names them).
    ``overwrite`` replaces a run in ``out`` atomically: the new run is trained in a
    folder beside it and swapped in when it is complete; until then, and if it fails,
    the old run stays as it was. Every problem with ``out`` is found before any work.
    Returns the results dictionary (also written to ``out/results.json``).
    """
    out = Path(out) if out is not None else None
    if out is None:
        if resume:
            raise RunError("--resume needs --out, the folder of the run to continue")
        return _train(cfg, None, False, progress, data)
    _check_out(out, resume, overwrite)
    if not (overwrite and not resume and out.is_dir() and any(out.iterdir())):
        return _train(cfg, out, resume, progress, data)
    with folder_swap(out) as work:
        return _train(cfg, work, False, progress, data, replacing=out)


@contextmanager
def folder_swap(out: Path):
    """Build a folder aside and put it in place of ``out`` only when complete: yields a
    new empty folder beside ``out``; on success ``out`` (if any) is moved aside and
    removed and the new folder renamed to ``out``; on any error the new folder is removed
    and ``out`` stays as it was."""
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        yield work
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(work, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """``out`` can take this run (see :func:`train`)."""
    ckpt_path = out / CHECKPOINT
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder for the run")
    if resume and not ckpt_path.is_file():
        raise RunError(f"cannot resume: no checkpoint at {ckpt_path}; "
                       "start a new run without --resume")
    if resume and overwrite:
        raise RunError("--resume continues a run and --overwrite replaces it; give one")
    if not resume and not overwrite and (ckpt_path.exists() or (out / RESULTS).exists()):
        raise RunError(f"{out} already holds a run; pass --resume to continue it, "
                       "--overwrite to replace it, or choose another --out")
    where = out
    while not where.exists():
        where = where.parent
    if not where.is_dir() or not os.access(where, os.W_OK | os.X_OK):
        raise RunError(f"cannot write the run into {out}: {where} is not a writable folder")
    if out.is_dir() and not os.access(out.parent, os.W_OK | os.X_OK) and overwrite:
        raise RunError(f"cannot replace {out}: its folder {out.parent} is not writable")


def _train(cfg: TrainConfig, out: Path | None, resume: bool, progress: bool, data,
           replacing: Path | None = None) -> dict:
    """:func:`train` into ``out`` (checked)."""
    from tqdm.auto import tqdm

    ckpt_path = out / CHECKPOINT if out is not None else None

    device = resolve_device(cfg.device)
    extra = {} if cfg.holdout_speaker is None else {"exclude_speaker": cfg.holdout_speaker}
    try:
        if data is not None:
            train_ds, test_ds = data
            _check_given_data(cfg, train_ds, test_ds)
        else:
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
    if cfg.augment != "none" and len(train_ds.frame_shape or ()) != 3:
        raise RunError(f"--augment {cfg.augment} needs image-like frames (C, H, W); "
                       f"{cfg.dataset} has {tuple(train_ds.frame_shape or ())}: use --augment "
                       "none")
    model, opt, trainer = build(cfg, train_ds.n_inputs, train_ds.n_classes, device,
                                train_ds.frame_shape)
    t_l = first_learning_step(cfg.n_steps, cfg.window)
    history: list[dict] = []
    start = 0
    if resume:
        ck = read_checkpoint(ckpt_path, device)
        saved = TrainConfig.from_dict(ck["config"])
        if replace(saved, epochs=cfg.epochs, device=cfg.device) != cfg:
            diff = {k: (v, getattr(cfg, k)) for k, v in saved.to_dict().items()
                    if k not in ("epochs", "device") and cfg.to_dict()[k] != v}
            raise RunError(f"--resume with options that differ from the checkpoint's: {diff} "
                           "(saved vs given); resume with the same options")
        load_weights(ck, cfg, model, trainer, device)
        opt.load_state_dict(ck["optimizer"])
        history, start = ck["history"], ck["epoch"]
        if cfg.epochs < start:
            raise RunError(f"the run in {out} has trained {start} epochs already; "
                           f"--epochs {cfg.epochs} would contradict it: give --epochs "
                           f"{start} or more")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    for epoch in range(start, cfg.epochs):
        trainer.start_epoch(epoch, cfg.epochs)
        if cfg.lr_schedule == "cosine":
            cosine_lr(trainer, epoch, cfg.epochs)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train_ds))
        rest = len(order) % cfg.batch_size
        if 0 < rest < cfg.spec.min_batch_of(cfg.params) and len(order) > rest:
            order = order[:-rest]   # e.g. TP contrasts a batch: leave out a last batch of one
        n_batches = math.ceil(len(order) / cfg.batch_size)
        t0 = time.perf_counter()
        losses = []
        bar = tqdm(iterate_batches(train_ds, cfg.batch_size, order, device, cfg.workers),
                   total=n_batches,
                   desc=f"{cfg.rule} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=True, dynamic_ncols=True)
        aug = torch.Generator().manual_seed(int(np.random.default_rng(
            [cfg.seed, epoch, 7]).integers(2**62)))
        trainer.noise = torch.Generator().manual_seed(int(np.random.default_rng(
            [cfg.seed, epoch, 11]).integers(2**62)))     # dropout masks of the epoch
        for x, y in bar:
            x = augment_frames(x, train_ds.frame_shape, cfg.augment, aug)
            losses.append(trainer.train_batch(x, y))
            if not math.isfinite(losses[-1]):
                bar.close()
                raise RunError(_diverged(epoch, len(losses), f"the loss is {losses[-1]}",
                                         ckpt_path, history, replacing))
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        bad = non_finite(model.state_dict())
        if bad:
            bar.close()
            raise RunError(_diverged(epoch, len(losses), f"{', '.join(bad)} hold NaN/inf",
                                     ckpt_path, history, replacing))
        train_time = time.perf_counter() - t0
        acc, _ = evaluate(model, test_ds, t_l, device)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", test_acc=f"{acc:.3f}")
        bar.close()
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                        "test_acc": acc, "train_time_s": train_time})
        if ckpt_path is not None:
            _atomic_save({"format": CHECKPOINT_FORMAT, "config": cfg.to_dict(),
                          "epoch": epoch + 1, "model": model.state_dict(),
                          "optimizer": opt.state_dict(), "trainer": trainer.state_dict(),
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


def _diverged(epoch: int, batch: int, what: str, ckpt_path, history,
              replacing: Path | None = None) -> str:
    """The message of a run that stopped on a non-finite loss or weight."""
    if replacing is not None:
        kept = f"the run in {replacing} was not replaced"
    elif ckpt_path is not None and history:
        kept = f"the checkpoint of epoch {len(history)} in {ckpt_path} is kept"
    else:
        kept = "no checkpoint was written"
    return (f"training diverged in epoch {epoch + 1}, batch {batch}: {what}; {kept}. "
            "Lower --lr, check the neuron options (--v-th, --gamma, --init-gain), or "
            "--resume from the kept checkpoint")


def _check_given_data(cfg: TrainConfig, train_ds, test_ds) -> None:
    """Data sets given in Python fit each other and the run's T."""
    for split, ds in (("train", train_ds), ("test", test_ds)):
        for attr in ("n_steps", "n_inputs", "n_classes", "labels"):
            if not hasattr(ds, attr):
                raise ValueError(f"the {split} data has no {attr}; make it with "
                                 "lava_local.data.from_arrays(x, y)")
        if ds.n_steps != cfg.n_steps:
            raise ValueError(f"the {split} data has T = {ds.n_steps} steps but the run "
                             f"n_steps = {cfg.n_steps}; give n_steps={ds.n_steps}")
    if (train_ds.n_inputs, train_ds.n_classes) != (test_ds.n_inputs, test_ds.n_classes):
        raise ValueError(f"train and test data differ: {train_ds.n_inputs} vs "
                         f"{test_ds.n_inputs} inputs, {train_ds.n_classes} vs "
                         f"{test_ds.n_classes} classes (give n_classes= to from_arrays)")


def memory_sweep(cfg: TrainConfig, steps: list[int], rules: tuple[str, ...] = registry.RULES,
                 progress: bool = True, options: Mapping | None = None) -> list[dict]:
    """Learning-state memory and MACs of one training step for each rule and each T.

    Every cell uses the same network (``cfg``, untrained, seeded) and the same batch of
    ``cfg.batch_size`` training samples encoded with T steps; ``options`` (flat keys)
    are rule options for the rules that take them (default: ``cfg``'s).
    """
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    rows = []
    cells = [(n, r) for n in steps for r in rules]
    for n_steps, rule in tqdm(cells, desc="memory vs T", disable=not progress):
        base = cfg.with_rule(rule) if options is None else TrainConfig.from_flat(
            strict=False, **{**cfg.to_dict(), **options, "rule": rule})
        c = replace(base, n_steps=n_steps,
                    window=None if cfg.window is None else min(cfg.window, n_steps))
        ds = load_dataset(c.dataset, "train", c.root, n_steps=n_steps, encoding=c.encoding,
                          seed=c.seed)
        _, _, trainer = build(c, ds.n_inputs, ds.n_classes, device, ds.frame_shape)
        x, y = next(iterate_batches(ds, c.batch_size, None, device))
        rows.append({"rule": rule, "n_steps": n_steps, **cost_report(c, trainer, x, y)})
    return rows

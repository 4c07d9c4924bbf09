"""Trained network <-> HDF5 file in lava-dl netx's layout, plus the learning parameters.

Layout (``net.h5``)::

    layer/0..L-1/    type='dense', shape=[N_l], inFeatures, outFeatures, weight (N_l, N_l-1),
                     recurrentWeight (N_l, N_l) for recurrent hidden layers
        neuron/      type='STLLR_LIF' (hidden) or 'LI' (readout), gamma | kappa, vTh,
                     surrogate, softReset=1; SOLSA nets: type='SOLSA_CUBA' for every
                     layer, lam, vTh, softReset=1
        filter/      SOLSA nets: alpha, beta of the synaptic filter of the layer's inputs
    learning/        formatVersion=2, rule (the rule that trained the net), numSteps,
                     windowStart, encoding, dataset, seed, root
        params/      the rule's options by flat key (e.g. lam_pre, signal, tess_f)
        convPlan     conv nets: their layer plan (JSON: input shape, per layer kind, pooling
                     before it, torch shapes; pooling before the readout)
        feedback/0..L-2   S-TLLR's DFA matrices B^l (N_l, C) when the run used them
        matrices/    other fixed matrices the rule's trainer drew, by name (e.g. TP's
                     label projection ``label_proj`` S, (C, N_1))

Files of format 1 (before the rule registry) said ``rule='stllr'`` for every run and
kept S-TLLR's options directly in ``learning/``; they still load.

netx's ``Network`` can read the weights of this file but cannot build the S-TLLR neuron
(its dense blocks are CUBA neurons with hard reset); ``load_exported`` rebuilds the net
for :mod:`lava_local.networks.graph`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NET_FILE = "net.h5"
NEURONS = ("lif", "cuba")
EXPORT_FORMAT = 2
_V1_STRINGS = ("signal", "post_form")


@dataclass
class ExportedNet:
    """Everything a Lava graph needs from a trained run (time-first conventions)."""

    weights: list[np.ndarray]                 # hidden layers then readout, (N_out, N_in)
    gamma: float
    v_th: float
    kappa: float
    surrogate: str
    n_steps: int
    window_start: int
    dataset: str = "digits"
    encoding: str = "rate"
    seed: int = 0
    root: str | None = None
    rule: str = "stllr"                         # the rule that trained the net
    params: dict = field(default_factory=dict)  # its options by flat key
    feedback: list[np.ndarray] | None = None    # S-TLLR's DFA matrices, if trained with them
    matrices: dict = field(default_factory=dict)  # other fixed matrices of the trainer
    #: "lif": soft-reset LIF layers and a leaky readout (every rule but SOLSA); "cuba":
    #: SOLSA's current-based LIF layers (spiking output) behind synaptic filters
    neuron: str = "lif"
    filters: list | None = None   # "cuba": per weight layer (α, β), arrays of 1 or N_in
    recurrent: list | None = None  # recurrent weights V^l (N_l, N_l) per hidden layer
    #: conv nets: {"input_shape": [C, H, W], "layers": [{"kind": "conv"|"fc", "pool": k,
    #: "in": [...], "out": [...]}, ...] (torch shapes, pooling before each layer),
    #: "readout_pool": k}, with "pool_op" / "readout_pool_op" "avg" (else "max" or
    #: "adaptive": nets the Lava graph does not build); conv kernels are (C_out, C_in, 3,
    #: 3) in ``weights``
    conv: dict | None = None

    def __post_init__(self) -> None:
        if self.neuron not in NEURONS:
            raise ValueError(f"unknown neuron kind {self.neuron!r}; one of {NEURONS}")
        if self.neuron == "cuba" and (self.filters is None
                                      or len(self.filters) != len(self.weights)):
            raise ValueError("a cuba net needs one (alpha, beta) filter per weight layer")

    @property
    def layer_sizes(self) -> list[int]:
        if self.conv:
            return ([int(np.prod(self.conv["input_shape"]))]
                    + [int(np.prod(p["out"])) for p in self.conv["layers"]]
                    + [self.weights[-1].shape[0]])
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def n_hidden(self) -> int:
        return len(self.weights) - 1

    @property
    def is_recurrent(self) -> bool:
        return bool(self.recurrent)


def save_exported(net: ExportedNet, path: Path) -> Path:
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as f:
        layers = f.create_group("layer")
        for i, w in enumerate(net.weights):
            g = layers.create_group(str(i))
            g["type"] = "dense"
            g["shape"] = np.array([w.shape[0]])
            g["inFeatures"] = w.shape[1]
            g["outFeatures"] = w.shape[0]
            g["weight"] = np.asarray(w, dtype=np.float32)
            n = g.create_group("neuron")
            if net.recurrent is not None and i < len(net.recurrent):
                g["recurrentWeight"] = np.asarray(net.recurrent[i], dtype=np.float32)
            if net.neuron == "cuba":   # SOLSA: every layer spiking, behind a filter
                n["type"] = "SOLSA_CUBA"
                n["lam"] = net.gamma
                n["vTh"] = net.v_th
                n["softReset"] = 1
                fg = g.create_group("filter")
                fg["alpha"] = np.asarray(net.filters[i][0], dtype=np.float64)
                fg["beta"] = np.asarray(net.filters[i][1], dtype=np.float64)
            elif i < len(net.weights) - 1:
                n["type"] = "STLLR_LIF"
                n["gamma"] = net.gamma
                n["vTh"] = net.v_th
                n["surrogate"] = net.surrogate
                n["softReset"] = 1
            else:
                n["type"] = "LI"
                n["kappa"] = net.kappa
        lg = f.create_group("learning")
        lg["formatVersion"] = EXPORT_FORMAT
        lg["rule"] = net.rule
        lg["numSteps"] = net.n_steps
        lg["windowStart"] = net.window_start
        lg["dataset"] = net.dataset
        lg["encoding"] = net.encoding
        lg["seed"] = net.seed
        if net.root:
            lg["root"] = str(net.root)
        pg = lg.create_group("params")
        for k, v in net.params.items():
            pg[k] = h5py.Empty("f") if v is None else v
        if net.feedback:
            fb = lg.create_group("feedback")
            for i, b in enumerate(net.feedback):
                fb[str(i)] = np.asarray(b, dtype=np.float32)
        if net.conv:
            lg["convPlan"] = json.dumps(net.conv)
        if net.matrices:
            mg = lg.create_group("matrices")
            for k, m in net.matrices.items():
                mg[k] = np.asarray(m, dtype=np.float32)
    return path


def _str(x) -> str:
    v = x[()]
    return v.decode() if isinstance(v, bytes) else str(v)


def _value(d):
    """An HDF5 scalar as the Python value it was written from."""
    import h5py

    v = d[()]
    if isinstance(v, h5py.Empty):
        return None
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def load_exported(path: Path) -> ExportedNet:
    """Read a file written by :func:`save_exported`."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported network at {path}")
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        weights = [np.asarray(layers[str(i)]["weight"], dtype=np.float64)
                   for i in range(len(layers))]
        hid = layers["0"]["neuron"]
        out = layers[str(len(layers) - 1)]["neuron"]
        cuba = _str(hid["type"]) == "SOLSA_CUBA"
        recurrent = None
        if "recurrentWeight" in layers["0"]:
            recurrent = [np.asarray(layers[str(i)]["recurrentWeight"], dtype=np.float64)
                         for i in range(len(layers) - 1)]
        filters = None
        if cuba:
            filters = [(np.asarray(layers[str(i)]["filter"]["alpha"], dtype=np.float64),
                        np.asarray(layers[str(i)]["filter"]["beta"], dtype=np.float64))
                       for i in range(len(layers))]
        lg = f["learning"]
        fmt = int(lg["formatVersion"][()]) if "formatVersion" in lg else 1
        if fmt > EXPORT_FORMAT:
            raise ValueError(f"{path} is an export of format {fmt}, newer than this "
                             f"lava-local reads ({EXPORT_FORMAT}); upgrade lava-local")
        if "params" in lg:
            params = {k: _value(lg["params"][k]) for k in lg["params"]}
        else:   # format 1: S-TLLR's options in learning/
            params = {k: (_str(lg[k]) if k in _V1_STRINGS else float(lg[k][()]))
                      for k in ("lam_pre", "lam_post", "alpha_pre", "alpha_post", "signal",
                                "post_form") if k in lg}
        feedback = None
        if "feedback" in lg:
            feedback = [np.asarray(lg["feedback"][str(i)], dtype=np.float64)
                        for i in range(len(lg["feedback"]))]
        matrices = {k: np.asarray(v, dtype=np.float64)
                    for k, v in lg["matrices"].items()} if "matrices" in lg else {}
        conv = json.loads(_str(lg["convPlan"])) if "convPlan" in lg else None
        return ExportedNet(weights=weights,
                           gamma=float(hid["lam" if cuba else "gamma"][()]),
                           v_th=float(hid["vTh"][()]),
                           kappa=0.0 if cuba else float(out["kappa"][()]),
                           surrogate="gaussian" if cuba else _str(hid["surrogate"]),
                           n_steps=int(lg["numSteps"][()]),
                           window_start=int(lg["windowStart"][()]), dataset=_str(lg["dataset"]),
                           encoding=_str(lg["encoding"]), seed=int(lg["seed"][()]),
                           root=_str(lg["root"]) if "root" in lg else None,
                           rule=_str(lg["rule"]), params=params, feedback=feedback,
                           matrices=matrices, neuron="cuba" if cuba else "lif",
                           filters=filters, recurrent=recurrent, conv=conv)


def export_run(run_dir: Path) -> Path:
    """Export the checkpoint of a training run folder to ``run_dir/net.h5``."""
    from ..torch.train import CHECKPOINT, RunError, TrainConfig, read_checkpoint

    run_dir = Path(run_dir)
    ckpt = run_dir / CHECKPOINT
    if not ckpt.is_file():
        raise RunError(f"no trained run in {run_dir} (missing {CHECKPOINT}); train one with "
                       f"`lava-local train --out {run_dir}`")
    ck = read_checkpoint(ckpt)
    cfg = TrainConfig.from_dict(ck["config"])
    if cfg.spec.lava_inference:
        raise RunError(f"{cfg.spec.title} runs cannot run in Lava yet: "
                       f"{cfg.spec.lava_inference} (see `lava-local rules`)")
    return save_exported(export_model(cfg, ck["model"], ck.get("trainer")),
                         run_dir / NET_FILE)


def export_model(cfg, state: dict, trainer: dict | None = None) -> ExportedNet:
    """The :class:`ExportedNet` of a model's ``state`` dict (and its trainer's state:
    fixed random matrices) trained with ``cfg`` (a ``TrainConfig``)."""
    import torch

    from ..torch.loop import first_learning_step
    from ..torch.train import RunError

    learned = [f for f in ("bias", "learn_leak", "learn_threshold") if getattr(cfg, f, False)]
    if learned:
        flags = ", ".join("--" + f.replace("_", "-") for f in learned)
        raise RunError(f"a net trained with {flags} does not run in Lava yet: the graph's LIF "
                       "neurons have no bias and one leak and threshold for the whole net; "
                       "train without "
                       f"{'it' if len(learned) == 1 else 'them'} to run the net in Lava")
    trainer = trainer or {}
    feedback = trainer.get("feedback")
    matrices = {k: v.double().cpu().numpy() for k, v in trainer.items() if torch.is_tensor(v)}
    matrices.update({k: np.asarray(v, dtype=np.float64) for k, v in trainer.items()
                     if isinstance(v, list) and v and all(isinstance(a, (int, float))
                                                          for a in v)})
    for k, v in trainer.items():        # module state dicts (TTL-BPTT's aux classifiers)
        if isinstance(v, dict):
            matrices.update({f"{k}.{kk}": vv.double().cpu().numpy() for kk, vv in v.items()
                             if torch.is_tensor(vv)})
    fields = dict(
        gamma=cfg.gamma, v_th=max(cfg.v_th, getattr(cfg, "v_th_min", 0.0)), kappa=cfg.kappa,
        surrogate=cfg.surrogate,
        n_steps=cfg.n_steps, window_start=first_learning_step(cfg.n_steps, cfg.window),
        dataset=cfg.dataset, encoding=cfg.encoding, seed=cfg.seed, root=cfg.root,
        rule=cfg.rule, params=cfg.params.to_flat(),
        feedback=[b.double().numpy() for b in feedback] if feedback else None,
        matrices=matrices)
    if "conv" in cfg.layer_kinds:
        fields["conv"] = _conv_plan(cfg, state)
    return ExportedNet(**{**fields, **cfg.spec.export_layers(state)})


def _conv_plan(cfg, state) -> dict:
    """The layer plan of a conv run (its frame shape from its data set)."""
    from ..data import load_dataset
    from ..data.events import DatasetError
    from ..torch.conv import ConvNetConfig, conv_spec
    from ..torch.train import RunError

    try:
        ds = load_dataset(cfg.dataset, "test", cfg.root, n_steps=cfg.n_steps,
                          encoding=cfg.encoding, seed=cfg.seed)
    except (ValueError, DatasetError) as e:
        raise RunError(f"exporting a conv net needs its data set's frame shape: {e}") from None
    ccfg = ConvNetConfig(tuple(ds.frame_shape), int(state["readout"].shape[0]),
                         conv_spec(cfg.preset, cfg.width), cfg.gamma, cfg.v_th, cfg.kappa,
                         cfg.surrogate, cfg.init_gain, pooling=cfg.pooling)
    layers, before = [], tuple(ds.frame_shape)
    for p in ccfg.plan():
        op, k = _as_average(p["pool_op"], int(p["pool"]), before)
        layers.append({"kind": p["kind"], "pool": k, "pool_op": op,
                       "in": [int(v) for v in p["in"]], "out": [int(v) for v in p["out"]]})
        before = tuple(p["out"])
    op, k = _as_average(*ccfg.readout_pooling(), before)
    return {"input_shape": [int(v) for v in ds.frame_shape], "layers": layers,
            "readout_pool": k, "readout_pool_op": op}


def _as_average(op: str, k: int, shape: tuple) -> tuple[str, int]:
    """An adaptive average pooling to k×k of a square map that k divides is a plain k'×k'
    average pooling (k' = H / k); other poolings stay as they are."""
    if op == "adaptive" and len(shape) == 3 and shape[1] == shape[2] and shape[1] % k == 0:
        return "avg", shape[1] // k
    return op, k

"""Named recipes: the papers' setups as training configurations, each with its card.

``lava-local recipes`` lists them with the number each paper reports; ``lava-local
recipes show NAME`` prints the card: every setting, its value, where it comes from (the
public code that produced the published number, file:line, or the paper), where the paper
says otherwise, and every place the recipe cannot follow that code (:class:`Departure`).
``lava-local train --recipe NAME --root DIR`` runs one (options on the command line
override it); ``lava-local reproduce NAME --seeds 0,1,2`` runs it per seed and compares.

A recipe's configuration *is* its card (``config`` is built from the card's values), and a
test checks that the card covers every setting that reaches the run: no default applies
without a line saying where it comes from.

Where paper and public code disagree the recipe follows the code that produced the number;
the paper's value is the option named in the card. Sources:

- [S]  github.com/mapolinario94/S-TLLR, code at commit 17d3fe8 (the S-TLLR paper's code)
- [T]  github.com/mapolinario94/TESS, code at commit b992aaa (the TESS paper's code)
- [TP] github.com/lollopes/traces_propagation, commit c5cfece (Traces Propagation's code;
  its ``experiments/*.sh`` hold the commands and the logged per-seed results)
- "paper": the paper as summarised in the project's rule notes (no public code for SOLSA
  and TTL-BPTT: their recipes are reconstructions and say so)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One line of a recipe's card: the value, its source, and where the paper (or the
    code) says otherwise."""

    value: Any
    source: str
    other: str = ""        # the paper's value where it differs (the option), or a note


@dataclass(frozen=True)
class Departure:
    """Something the public code does that the recipe does not, and why."""

    what: str
    code: str
    here: str


@dataclass(frozen=True)
class Statistic:
    """How the paper's number aggregates its seeds.

    Attributes
    ----------
    metric : {"final", "best"}
        Per seed: the last epoch's test accuracy or the best epoch's.
    top : int or None
        Mean over the best ``top`` seeds only (Traces Propagation: top 5 of 10).
    ddof : int
        Standard deviation with n − ddof (0: numpy's default, what the public codes use).
    """

    metric: str = "best"
    top: int | None = None
    ddof: int = 0

    def describe(self) -> str:
        who = f"the best {self.top} seeds'" if self.top else "every seed's"
        std = "population" if self.ddof == 0 else "sample"
        epoch = "best-epoch" if self.metric == "best" else "last-epoch"
        return f"mean ± {std} std of {who} {epoch} test accuracy"


@dataclass(frozen=True)
class Recipe:
    """A paper's setup.

    Attributes
    ----------
    name, paper, reported : str
        The recipe's name, the paper and table, and the number(s) it reports (text).
    card : dict of str to Setting
        Every setting of the run (flat ``TrainConfig`` keys), its value and source.
    note : str
        A one-line summary.
    paper_acc : (mean, std or None) or None
        The number ``reproduce`` compares with (percent); None where the paper gives none
        that this recipe's run measures.
    statistic : Statistic
        How the paper aggregates seeds (``reproduce`` computes the same).
    code : str
        The public code behind the number ("" if none).
    departures : tuple of Departure
        What the code does that the recipe does not.
    """

    name: str
    paper: str
    reported: str
    card: dict = field(default_factory=dict)
    note: str = ""
    paper_acc: tuple[float, float | None] | None = None
    statistic: Statistic = Statistic()
    code: str = ""
    departures: tuple = ()

    @property
    def config(self) -> dict:
        """The flat training configuration (``TrainConfig.from_flat``)."""
        return {k: s.value for k, s in self.card.items()}

    def to_dict(self) -> dict:
        return {"name": self.name, "paper": self.paper, "reported": self.reported,
                "paper_acc": self.paper_acc, "statistic": self.statistic.describe(),
                "code": self.code, "note": self.note,
                "card": {k: {"value": s.value, "source": s.source, "other": s.other}
                         for k, s in self.card.items()},
                "departures": [vars(d) for d in self.departures]}


#: Run settings no card lists: where the data is, how it is loaded, the seed (``reproduce``
#: gives it), the digits' encoding (unused by event data).
NOT_ON_CARDS = ("root", "workers", "device", "seed", "encoding")

S = "mapolinario94/S-TLLR @ 17d3fe8"
T = "mapolinario94/TESS @ b992aaa"
TP = "lollopes/traces_propagation @ c5cfece"
SIGMA5 = 1.0 / (1.0 + math.exp(-5.0))     # σ(5) = 0.99331: the S-TLLR SHD net's leak


def _s(value, source: str, other: str = "") -> Setting:
    return Setting(value, source, other)


def _learned_off(src: str) -> dict:
    return {"learn_leak": _s(False, f"{src}: the leak is a Parameter with requires_grad=False"),
            "learn_threshold": _s(False, f"{src}: the threshold is a Parameter with "
                                  "requires_grad=False")}


# -- S-TLLR ------------------------------------------------------------------------------

#: The card line of the trainer's merged terms (an execution choice, not the paper's).
_MERGE_SOURCE = "the papers' state, 2 Σ N_l: the two terms as two products a step"
_MERGE_OTHER = ("--merge-terms: the same update as one product a step, one more value per "
                "hidden neuron")


def _stllr_traces(factors: tuple, src: str) -> dict:
    lp, lq, ap, aq = factors
    f = f"{src} --factors-stdp {lp} {lq} {ap} {aq} ([λ_post, λ_pre, α_post, α_pre])"
    return {"lam_post": _s(lp, f), "lam_pre": _s(lq, f), "alpha_post": _s(ap, f),
            "alpha_pre": _s(aq, f),
            "post_form": _s("code", "[S] models/layers/STLLR_layers.py:452-459: h[t] = "
                            "λ_post h[t−1] + Ψ(u[t−1]) (recurrence)",
                            "paper: its closed form (one more λ_post on the non-causal "
                            "term): --post-form paper"),
            "online": _s(False, "[S] utils/train.py:168-177: one optimizer.step() per batch"),
            "merge_terms": _s(False, _MERGE_SOURCE, _MERGE_OTHER)}


def _stllr_vgg(dataset: str, n_steps: int, pooling: str, surrogate: Setting, factors: tuple,
               readme: str, **rows) -> dict:
    card = {
        "dropout": _s(0.0, "[S] models/VGG_STDP.py:188-205: dropout 0.0 (dvs_vgg_stllr)"),
        "rule": _s("stllr", "paper"),
        "dataset": _s(dataset, readme),
        "n_steps": _s(n_steps, "paper (T)"),
        "preset": _s("vgg9-gap", "[S] models/VGG_STDP.py:41-77: 8 conv 3×3 LIF layers, "
                     "pooling after conv 2, 4, 6, global average pooling, Linear readout",
                     "lava-local's vgg9 preset adds a 1024-neuron dense LIF layer"),
        "width": _s(1.0, "[S] models/VGG_STDP.py:41-77: 64, 128, 256, 256, 512 ×4 channels"),
        "pooling": _s(pooling, f"{readme} --pooling {pooling.upper()}"),
        "gamma": _s(0.5, "[S] VGG_STDP.py passes leak=0: γ = σ(0); STLLR_layers.py:447"),
        "v_th": _s(0.6, "[S] models/layers/STLLR_layers.py:239 (default; VGG keeps it)",
                   "paper: 0.8"),
        "v_th_min": _s(0.5, "[S] STLLR_layers.py:318, 448: clamp(θ, min=0.5) in firing, "
                       "reset and Ψ (no effect while θ = 0.6 is fixed)"),
        **_learned_off("[S] STLLR_layers.py:257-258"),
        "weight_std": _s(True, "[S] STLLR_layers.py:275-285, 307: per-channel "
                         "standardisation (unbiased var · fan-in + 1e-4) with a learned "
                         "gain, every step; the S-TLLR estimate is chained into w and gain"),
        "bias": _s(True, "[S] VGG_STDP.py:41-77 (conv and Linear bias=True); "
                   "STLLR_layers.py:482-483: bias gradient Ψ(u[t])δ[t] of the step"),
        "kappa": _s(0.0, "[S] VGG_STDP.py:162-163: stateless Linear readout, per-step "
                    "logits (κ = 0)"),
        "surrogate": surrogate,
        "init_gain": _s(1.0, "lava-local's U(±√(3/fan_in)); [S] VGG_STDP.py:80-92: "
                        "kaiming_normal(fan_out)", "conv scales are undone by the "
                        "standardisation; only the readout's starting scale differs"),
        "signal": _s("bp", f"{readme} --feedback-mode BP"),
        "dfa_bound": _s("classes", "unused by the bp signal"),
        **_stllr_traces(factors, readme),
        "lr_schedule": _s("cosine", "[S] utils/train.py:50-51, 95: CosineAnnealingLR("
                          "T_max=epochs) stepped per epoch"),
    }
    card.update(rows)
    return card


_STLLR_DEPARTURES = (
    Departure("loss over the window", "[S] utils/train.py:168-177: the per-step CE losses "
              "are summed (one backward per step)", "averaged over the window: the same "
              "update under Adam up to its ε (Adam is invariant to a constant factor)"),
    Departure("prediction", "[S] utils/train.py:141-146: argmax of the logits summed over "
              "all T steps", "summed over the learning window (lava-local's convention)"),
    Departure("seeds", "[S] utils/train.py:16-19: --trials 5 in sequence from one seed "
              "(1234), cuDNN not deterministic", "one run per seed (`reproduce --seeds`)"),
    Departure("reported statistic", "[S] utils/train.py:82-84: best test accuracy over "
              "epochs (the test set picks the epoch)", "the same (`reproduce` reports best "
              "and last epoch)"),
)


def _stllr_recipes() -> list[Recipe]:
    tri = _s("triangle", "[S] STLLR_layers.py:451: 0.3·max(0, 1 − |u − θ|) (default "
             "--activation LinearSpike)")
    gesture = Recipe(
        "stllr-dvsgesture", "S-TLLR (TMLR), Table 3", "97.72 ± 0.38 (BPTT 95.58 ± 1.08)",
        _stllr_vgg("dvsgesture", 20, "max", tri, (0.2, 0.75, -1.0, 1.0), "[S] README.md:84",
                   window=_s(5, "[S] README.md:84 --delay-ls 5: the last 5 of 20 steps"),
                   epochs=_s(300, "[S] README.md:84"), batch_size=_s(16, "[S] README.md:84"),
                   lr=_s(1e-3, "[S] main.py:27 (default; not given in README.md:84)"),
                   augment=_s("crop", "[S] utils/dataloader.py:170-177: RandomCrop(32, "
                              "padding=4), one crop for all frames of a sample")),
        "the code's VGG-9 with max pooling; learning window the last 5 of 20 steps",
        (97.72, 0.38), Statistic("best"), S,
        _STLLR_DEPARTURES + (
            Departure("training samples", "[S] utils/dataloader.py:144-160: 1.575 s slices "
                      "of each recording, 75 ms frames of event counts, Resize(32) with "
                      "antialias", "each recording in 20 equal bins at 32×32 (binary "
                      "frames)"),
            Departure("test samples", "[S] dataloader.py:151-156: whole test recordings "
                      "(about 80 frames of 75 ms)", "20 bins per recording, as training"),
        ))
    cifar = Recipe(
        "stllr-cifar10dvs", "S-TLLR (TMLR), Table 3",
        "75.6 ± 0.10 with all 10 steps learning, 73.93 with the last 5 (BPTT 75.44 ± 0.76)",
        _stllr_vgg("cifar10dvs", 10, "avg", _s(
            "sigmoid_prime4", "[S] README.md:94 --activation STLLRConv2dSigmoid; "
            "surrogate_gradients.py:302-303: 4σ(4x)(1 − σ(4x))", "paper: 4σ(x)(1 − σ(x)): "
            "--surrogate sigmoid_prime"), (0.2, 0.5, -1.0, 1.0), "[S] README.md:94",
            window=_s(None, "paper: T_l = 0 (every step learns) for 75.6", "[S] README.md:94"
                      " runs --delay-ls 5 (the 73.93 row): --window 5"),
            epochs=_s(300, "[S] README.md:94"), batch_size=_s(48, "[S] README.md:94"),
            lr=_s(1e-3, "[S] README.md:94"),
            augment=_s("crop", "[S] utils/dataloader.py:372-379: Padding(4) + RandomCrop(48) "
                       "for all frames of a sample, no flip"),
            dropout=_s(0.1, "[S] models/VGG_STDP.py:258 (dvscifar10_vgg_stllr); "
                       "spiking_local_layers.py:19-32: one mask per sample held over all "
                       "steps, kept units not rescaled")),
        "every step learns (the 75.6 row; `--window 5` for 73.93); average pooling",
        (75.6, 0.10), Statistic("best"), S,
        _STLLR_DEPARTURES + (
            Departure("published command", "[S] README.md:94 names a model "
                      "dvscifar10_vgg11_stllr that does not exist (KeyError) and learns the "
                      "last 5 steps; no command for the 75.6 row", "the VGG-9 builder "
                      "dvscifar10_vgg_stllr (VGG_STDP.py:234-262), every step learning"),
            Departure("frames", "[S] utils/cifar10_dvs.py, dataloader.py:372-394: 10 "
                      "equal-count frames, PIL Resize(48) of uint8-wrapped counts (near "
                      "binary; channel 0 masked by channel 1), Normalize",
                      "10 equal-time bins at 48×48, binary, no normalisation; split every "
                      "10th file (the code: files 900-999 of each class)"),
        ))
    caltech = Recipe(
        "stllr-ncaltech101", "S-TLLR (TMLR), Table 3", "66.06 ± 0.92 (BPTT 65.92 ± 0.82)",
        _stllr_vgg("ncaltech101", 10, "max", tri, (0.2, 0.5, -1.0, 1.0),
                   "paper (no command in [S] for N-Caltech101)",
                   window=_s(5, "paper: the last 5 steps (vision)", "[S] main.py default "
                             "--delay-ls 5"),
                   epochs=_s(300, "as the other vision rows ([S] has no command)"),
                   batch_size=_s(16, "[S] main.py default"),
                   lr=_s(1e-3, "[S] main.py:27 default"),
                   augment=_s("none", "[S] utils/dataloader.py:221-229: no augmentation"),
                   dropout=_s(0.1, "[S] models/VGG_STDP.py:265-283 (ncaltech101_vgg_stllr)")),
        "48×48 frames; [S] publishes no command for this row", (66.06, 0.92),
        Statistic("best"), S,
        _STLLR_DEPARTURES + (
            Departure("settings", "[S] has no command for N-Caltech101; its loader uses "
                      "45×60 inputs and a 90/10 random_split (seed 42)", "48×48 frames, every "
                      "5th file of a class for test"),
        ))
    shd_card = {
        "rule": _s("stllr", "paper"),
        "dataset": _s("shd", "[S] README.md:107"),
        "n_steps": _s(100, "[S] utils/dataloader.py:108-135: the first 1 s in 10 ms frames"),
        "preset": _s("rec-mlp", "[S] models/STDPAudioSNN.py:27-34: recurrent LIF layer + "
                     "leaky readout"),
        "hidden": _s((450,), "[S] STDPAudioSNN.py:27-30: LinearRecSTLLR(700 → 450)"),
        "recurrent": _s(False, "the rec-mlp preset makes the layer recurrent"),
        "gamma": _s(round(SIGMA5, 6), "[S] STDPAudioSNN.py:30: leak=5, γ = σ(5)",
                    "paper: 0.99"),
        "kappa": _s(round(SIGMA5, 6), "[S] STDPAudioSNN.py:33-34: readout leak σ(5)"),
        "v_th": _s(0.6, "[S] STLLR_layers.py:123", "paper: 0.8"),
        "v_th_min": _s(0.5, "[S] STLLR_layers.py:215, 402: clamp(θ, min=0.5)"),
        **_learned_off("[S] STLLR_layers.py:117-147"),
        "weight_std": _s(True, "[S] STLLR_layers.py:143-144, 161-175, 202: W and W_rec "
                         "standardised, each with its own learned gain; readout raw"),
        "bias": _s(True, "[S] STDPAudioSNN.py:27-34: hidden and readout bias; bias "
                   "gradients of the current step (STLLR_layers.py:420-435, 345-348)"),
        "surrogate": _s("fast_sigmoid_sq", "[S] STLLR_layers.py:408, 417: "
                        "(100|u − θ| + 1)^−2"),
        "init_gain": _s(1.0, "lava-local's U(±√(3/fan_in)); [S] STDPAudioSNN.py:38-50: "
                        "kaiming_normal", "the hidden scales are undone by the "
                        "standardisation"),
        **_stllr_traces((0.5, 1.0, 1.0, 1.0), "[S] README.md:107"),
        "signal": _s("bp", "[S] README.md:107 (--feedback-mode BP default)"),
        "dfa_bound": _s("classes", "unused by the bp signal"),
        "window": _s(90, "[S] README.md:107 --delay-ls 90: steps 10..99 learn",
                     "our notes read 'last 10 of 100' (T_l = 10)"),
        "epochs": _s(200, "[S] README.md:107"),
        "batch_size": _s(128, "[S] README.md:107"),
        "lr": _s(2e-4, "[S] README.md:107"),
        "lr_schedule": _s("none", "[S] README.md:107 gives no --scheduler (main.py:51: 0)"),
        "dropout": _s(0.0, "[S] models/STDPAudioSNN.py:27-34: no dropout"),
    }
    shd_dep = _STLLR_DEPARTURES[:3] + (
        Departure("readout trace", "[S] STDPAudioSNN.py:34: the readout's gradient uses a "
                  "0.99-trace while its leak is σ(5) = 0.99331", "the exact κ-trace"),
        Departure("frames", "[S] dataloader.py:108-135: per-channel spike counts",
                  "binary frames"),
    )
    shd = Recipe("stllr-shd", "S-TLLR (TMLR), Table 3", "78.24 ± 1.84 (bp; BPTT 70.57 ± "
                 "0.96)", shd_card, "450 recurrent LIF + leaky readout; steps 10..99 learn",
                 (78.24, 1.84), Statistic("best"), S, shd_dep)
    dfa_card = {**shd_card,
                "signal": _s("dfa", "[S] README.md:112 --feedback-mode DFA"),
                "dfa_bound": _s("layer", "[S] models/layers/feedback_alignment.py:108-113: "
                                "kaiming_uniform, B ~ U(±√(6/N_l))", "lava-local's default "
                                "√(6/C): --dfa-bound classes")}
    dfa = Recipe("stllr-shd-dfa", "S-TLLR (TMLR), Table 3", "74.60 ± 0.52 (dfa)", dfa_card,
                 "the SHD net with the DFA signal (the variant a chip computes)",
                 (74.60, 0.52), Statistic("best"), S, shd_dep + (
                     Departure("DFA error scale", "[S] feedback_alignment.py:32-33: the DFA "
                               "error is not divided by the batch size", "divided (Adam "
                               "is invariant to the factor up to its ε)"),))
    return [gesture, cifar, caltech, shd, dfa]


# -- TESS --------------------------------------------------------------------------------

def _tess_card(dataset: str, n_steps: int, batch: int, line: str) -> dict:
    src = f"[T] script.sh:{line}"
    return {
        "rule": _s("tess", "paper"),
        "dataset": _s(dataset, src),
        "n_steps": _s(n_steps, "paper (T)"),
        "preset": _s("vgg9-gap", "[T] models/VGG_TESS.py:80-150, 226-241: 8 conv 3×3 "
                     "(no bias), pooling after conv 2, 4, 6, global average pool, Linear"),
        "width": _s(1.0, "[T] VGG_TESS.py: 64, 128, 256, 256, 512 ×4 channels"),
        "pooling": _s("max", f"{src} --pooling MAX"),
        "gamma": _s(0.5, "[T] VGG_TESS.py:31; stdp_layers.py:463: γ = σ(0)"),
        "v_th": _s(0.6, "[T] models/layers/stdp_layers.py:244"),
        "v_th_min": _s(0.5, "[T] stdp_layers.py:464: clamp(θ, min=0.5)"),
        **_learned_off("[T] stdp_layers.py"),
        "weight_std": _s(True, f"{src} --wn: stdp_layers.py:290-305, per-channel "
                         "standardisation with a learned gain, every step"),
        "bias": _s(False, "[T] VGG_TESS.py:11-57: Conv2dSTDP bias=False",
                   "the readout Linear has a bias there"),
        "kappa": _s(0.0, "[T] VGG_TESS.py:226-241: stateless Linear readout, per-step logits"),
        "surrogate": _s("triangle", "[T] stdp_layers.py:467"),
        "init_gain": _s(1.0, "lava-local's U(±√(3/fan_in)); [T] VGG_TESS.py:36-48 "
                        "kaiming_normal", "undone by the standardisation"),
        "lam_post": _s(0.2, f"{src} --factors-stdp 0.2 0.5 0 1"),
        "lam_pre": _s(0.5, f"{src} --factors-stdp 0.2 0.5 0 1"),
        "alpha_post": _s(0.0, f"{src} --factors-stdp 0.2 0.5 0 1",
                         "the paper's notes allow −1, 0, +1"),
        "alpha_pre": _s(1.0, f"{src} --factors-stdp 0.2 0.5 0 1"),
        "post_form": _s("code", "[T] stdp_layers.py:468-490: recurrence (unused: α_post = 0)"),
        "online": _s(False, "[T] utils/train.py:208-221: one step per batch"),
        "merge_terms": _s(False, _MERGE_SOURCE, _MERGE_OTHER),
        "tess_f": _s("softmax", "[T] local_learning_signal_generation.py:41-67: CE"),
        "tess_pool": _s(2, "[T] VGG_TESS.py:84-146: 4, 2, 2, 2, 2, 2, 2, 1 per block",
                        "one size for every layer here (the code's most common)"),
        "tess_f_lo": _s(50.0, "[T] local_learning_signal_generation.py:30-38: "
                        "linspace(50, 512, C)"),
        "tess_f_hi": _s(512.0, "[T] local_learning_signal_generation.py:30-38"),
        "window": _s(None, f"{src} --delay-ls {n_steps} = T: every step learns"),
        "epochs": _s(200, src),
        "batch_size": _s(batch, src),
        "lr": _s(1e-3, f"{src} --lr 0.001 --lr-conv 0.001"),
        "lr_schedule": _s("none", "[T] train.py:82-88: ReduceLROnPlateau(0.5, patience 5) on "
                          "the test-set loss", "not reproduced (see departures)"),
        "augment": _s("crop", "[T] utils/dataloader.py:163-238, 296-322: random crop after "
                      "padding 4 (the same pipelines as [S])"),
        "dropout": _s(0.0, "[T] VGG_TESS.py:11-57: DropoutLIF(0.0)"),
    }


_TESS_DEPARTURES = (
    Departure("the local signal", "[T] utils/train.py:212-219 passes the label only outside "
              "the learning window, and --delay-ls = T puts every step inside it: the layers "
              "then run without the local signal and without detached inputs, so the output "
              "error is back-propagated through all of them (S-TLLR with the bp signal)",
              "TESS as the paper describes it (every layer's input detached, local signal "
              "in every layer); the code's effective run is the *-as-released recipe"),
    Departure("reset", "[T] stdp_layers.py:284, 338: the reset subtracts round(0.6) = 1.0",
              "subtracts θ = 0.6 (soft reset)"),
    Departure("learning-rate schedule", "[T] train.py:82-88, 142-148: ReduceLROnPlateau "
              "driven by the test-set loss, one optimiser per layer", "constant lr (a "
              "schedule that reads the test set is not offered)"),
    Departure("seeds", "[T] main.py:44: --seed 0 means unseeded, 1 trial per invocation; "
              "the number of runs behind ± is not in the repository", "one run per seed"),
    Departure("prediction and statistic", "[T] train.py:127-129: best test epoch; logits "
              "summed over all T", "the same statistic; logits summed over the window "
              "(= all T here)"),
)


def _tess_recipes() -> list[Recipe]:
    gest = Recipe(
        "tess-dvsgesture", "TESS (arXiv 2502.01837), Table III", "98.56 ± 0.31",
        _tess_card("dvsgesture", 20, 16, "20"), "TESS as described, the code's other "
        "settings", (98.56, 0.31), Statistic("best"), T, _TESS_DEPARTURES + (
            Departure("test samples", "[T] train.py:250-251: the first 20 frames of each "
                      "whole test recording", "20 equal bins of each recording"),))
    cif = Recipe(
        "tess-cifar10dvs", "TESS (arXiv 2502.01837), Table III",
        "75.00 ± 0.65 (S-TLLR 75.14 ± 1.37, BPTT 76.40 ± 0.66)",
        _tess_card("cifar10dvs", 10, 64, "14"), "TESS as described, the code's other "
        "settings; 48×48 frames", (75.00, 0.65), Statistic("best"), T, _TESS_DEPARTURES + (
            Departure("frames", "[T] = [S]'s CIFAR10-DVS pipeline (equal-count frames, "
                      "wrapped uint8 counts, Normalize)", "equal-time binary bins"),))
    out = [gest, cif]
    for r in (gest, cif):       # what the public code actually ran
        card = {k: v for k, v in r.card.items() if not k.startswith("tess_")}
        card["rule"] = _s("stllr", "[T] utils/train.py:212-219: the label is passed only "
                          "outside the window, so every layer learns from the back-"
                          "propagated output error")
        card["signal"] = _s("bp", "as above")
        card["dfa_bound"] = _s("classes", "unused by the bp signal")
        out.append(Recipe(
            f"{r.name}-as-released", r.paper, r.reported, card,
            "what the public TESS code runs: S-TLLR (bp) with α_post = 0, every step "
            "learning", r.paper_acc, r.statistic, T, _TESS_DEPARTURES[1:]))
    return out


# -- Traces Propagation ------------------------------------------------------------------

def _tp_card(dataset: str, script: str, gamma: float, beta: float, v_th: float, epochs: int,
             batch: int, n_steps: int, **rows) -> dict:
    src = f"[TP] experiments/{script}"
    return {
        "rule": _s("tp", "paper"),
        "dataset": _s(dataset, src),
        "n_steps": _s(n_steps, "paper", "the code pads each batch to its longest sample"),
        "gamma": _s(gamma, f"{src} --l_leak_m"),
        "tp_beta": _s(beta, f"{src} --l_leak_t (every path)"),
        "v_th": _s(v_th, f"{src} --l_vth"),
        "kappa": _s(1.0, f"{src} --l_out_leak_m 1: integrator readout"),
        "surrogate": _s("arctan_pi", "[TP] models/spike_activation.py:20-21: "
                        "1/(1 + (π(v − θ))²), scale 1"),
        "window": _s(1, "[TP] utils.py:589-602: prediction at the last step (the "
                     "integrator's potential); learning happens at every step regardless"),
        "lr": _s(1e-4, f"{src} --lr 1e-4"),
        "epochs": _s(epochs, src),
        "batch_size": _s(batch, src),
        "lr_schedule": _s("none", "[TP] utils.py:344-348: cosine to 0.25·lr per epoch, "
                          "which the tp rule applies itself"),
        "init_gain": _s(1.0, "lava-local's U(±√(3/fan_in)); [TP] PyTorch's default "
                        "U(±1/√fan_in) (MLP) or kaiming_normal + 1.8·WS (CNN)",
                        "the MLP start scale is √3 larger here"),
        "tp_contrast": _s("batch", "paper: the batch contrast"),
        "tp_label_bound": _s("linear", "[TP] neuron_layers.py:132-136: S = nn.Linear(C, H_1) "
                             "default init U(±1/√C), fixed", "lava-local's default √(6/C)"),
        "weight_std": _s(False, "[TP] MLPs: --norm_type none", "its CNNs use 1.8·WS "
                         "(see departures)"),
        "bias": _s(False, "[TP] neuron_layers.py:79, 132-135, 246, 366: bias=False"),
        "learn_leak": _s(False, "[TP] fixed leaks"),
        "learn_threshold": _s(False, "[TP] fixed threshold"),
        "v_th_min": _s(0.0, "[TP] no clamp"),
        "dropout": _s(0.0, "[TP] no dropout"),
        **rows,
    }


def _tp_mlp(hidden: int, recurrent: bool) -> dict:
    return {"preset": _s("rec-mlp" if recurrent else "mlp", "[TP] models/tp_mlp.py" +
                         (" with --l_rec" if recurrent else "")),
            "hidden": _s((hidden,), "[TP] --hidden_layers"),
            "recurrent": _s(False, "set by the preset")}


def _tp_vgg(augment: Setting) -> dict:
    return {"augment": augment,
            "preset": _s("vgg9-gap2", "[TP] models/tp_cnn.py:19-28, 95-134: 8 conv 3×3, "
                         "max pooling after conv 2, 4, 6, adaptive 2×2 average pool, "
                         "readout over 2048"),
            "width": _s(1.0, "[TP] VGG_CONFIGS[9]"),
            "pooling": _s("max", "[TP] tp_cnn.py:95-126: MaxPool2d"),
            "tp_label_bound": _s("kaiming", "[TP] tp_cnn.py:136-145: the CNNs' S is "
                                 "standardised to std 1.8/√C (0.54 for 11 classes); "
                                 "U(±√(6/C)) has std √(2/C) (0.43), the closer of the two "
                                 "bounds", "see departures")}


_TP_DEPARTURES = (
    Departure("label projection S in conv nets", "[TP] tp_cnn.py:136-145: a dense C → "
              "64·H·W LIF layer, 1.8·WS, threshold 1.0 whatever --l_vth", "conv recipes: "
              "U(±√(6/C)) onto layer 1's neurons, the layer's own threshold"),
    Departure("sequence length", "[TP] datasets/*/dataset_init.py: full recordings, padded "
              "per batch; prediction at the last padded step", "fixed T bins"),
    Departure("reported statistic", "[TP] utils.py:128-157: mean ± population std of the "
              "top 5 of 10 seeds' best-epoch test accuracies", "`reproduce` computes the "
              "same over the seeds it runs (top 5 when given 10)"),
    Departure("test subset", "[TP] dataset_init.py: drop_last=True also on the test loader "
              "(SHD 2176 of 2264, CIFAR10-DVS 960 of 1000 samples)", "every test sample"),
)
_TP_CONV_DEPARTURES = (
    Departure("weight standardisation", "[TP] neuron_layers.py:33-61: every conv, S and the "
              "readout use 1.8·(W − mean)/√(var·fan_in + 1e-5) (biased var, fixed gain); "
              "the readout's gradient ignores it", "raw weights (--weight-std is the S-TLLR "
              "form with a learned gain and is not an option of tp)"),
    Departure("conv loss", "[TP] tp_cnn.py:302-322: logits and target distances averaged "
              "over locations, one cross-entropy", "one cross-entropy per location, "
              "averaged; distances over the flattened trace"),
)


def _tp_recipes() -> list[Recipe]:
    stat = Statistic("best", top=5, ddof=0)
    nm = Recipe("tp-nmnist", "Traces Propagation (arXiv 2509.13053)",
                "97.33 ± 0.06 (BPTT 98.45)",
                _tp_card("nmnist", "nmnist.sh:5-27", 0.98, 0.98, 1.0, 100, 128, 100,
                         **_tp_mlp(200, False)),
                "integrator readout (κ = 1), prediction at the last step", (97.33, 0.06),
                stat, TP, _TP_DEPARTURES)
    shd = Recipe("tp-shd", "Traces Propagation (arXiv 2509.13053)", "67.06 ± 0.96 "
                 "(BPTT 75.86)", _tp_card("shd", "shd.sh:9-31", 0.96, 0.97, 1.0, 100, 128,
                                          100, **_tp_mlp(450, False)),
                 "700-450-20, 10 ms bins", (67.06, 0.96), stat, TP, _TP_DEPARTURES)
    rec = Recipe("tp-shd-rec", "Traces Propagation (arXiv 2509.13053)", "81.80 ± 0.51 "
                 "(BPTT 83.23)", _tp_card("shd", "shd.sh:66-89", 0.85, 0.85, 0.5, 100, 128,
                                          100, **_tp_mlp(450, True)),
                 "700-450r-20", (81.80, 0.51), stat, TP, _TP_DEPARTURES + (
                     Departure("label path recurrence", "[TP] tp_mlp.py:36-38: S has its "
                               "own fixed random recurrent matrix", "the learned V"),))
    gsc_card = _tp_card("gsc", "fine_tune_gsc.sh + gsc/fine_tune_gsc.py:121-132", 0.77,
                        0.977, 0.66, 10, 1024, 101, **_tp_mlp(450, True),
                        holdout_speaker=_s("c50f55b8", "[TP] gsc/create_loaders.py:452"))
    gsc_card["epochs"] = _s(10, "[TP] fine_tune_gsc.py (pre-training: 10 epochs)")
    gsc_card["batch_size"] = _s(1024, "[TP] fine_tune_gsc.py (pre-training batch)")
    gsc = Recipe("tp-gsc-kws", "Traces Propagation (arXiv 2509.13053), keyword spotting",
                 "81.62 before speaker fine-tuning; 91.62 (1-shot), 93.38 (5-shot) after",
                 gsc_card, "pre-training without speaker c50f55b8; then `lava-local "
                 "finetune RUN --shots 1,5`", None, Statistic("final", None, 0), TP,
                 _TP_DEPARTURES[:2] + (
                     Departure("what is compared", "[TP] fine_tune_gsc.py:223, 287-291: "
                               "the held-out speaker's 74 query clips, last epoch, all 10 "
                               "seeds", "a run's test split without the speaker; the "
                               "speaker's numbers come from `lava-local finetune`, so "
                               "`reproduce` has no paper number to compare with"),
                     Departure("neuron", "[TP] fine_tune_gsc.py:128-129: reset 'Soft' "
                               "(which the code runs as a hard reset), surrogate scale 10",
                               "soft reset, surrogate scale 1"),
                     Departure("features", "[TP] gsc/create_loaders.py: 40 log-mel bands "
                               "+ Δ + ΔΔ, per-utterance and per-batch std scaling, 36 "
                               "outputs", "lava-local's 120-feature front end, 35 words"),
                     Departure("script version", "[TP] fine_tune_gsc.sh: the logged seeds "
                               "and prints do not match fine_tune_gsc.py", "the code as "
                               "published"),
                 ))
    gest = Recipe("tp-dvsgesture", "Traces Propagation (arXiv 2509.13053)", "98.18 ± 0.15",
                  _tp_card("dvsgesture", "dvsgesture.sh:5-27", 0.53, 0.98, 1.0, 200, 64, 21,
                           **_tp_vgg(_s("crop", "[TP] datasets/DVSGESTURE/dataset_init.py:"
                                     "34-41: RandomCrop(32, padding=4), no flip"))),
                  "the code's VGG-9 (max pooling, 2×2 average pool into the readout)",
                  (98.18, 0.15), stat, TP, _TP_DEPARTURES + _TP_CONV_DEPARTURES + (
                      Departure("batch size", "[TP] dvsgesture.sh: 64, but the log's "
                                "accuracies are k/264, which batch 64 with drop_last cannot "
                                "give", "64 (the script's)"),))
    cif = Recipe("tp-cifar10dvs", "Traces Propagation (arXiv 2509.13053)", "71.62 ± 0.31",
                 _tp_card("cifar10dvs", "cifar10dvs.sh:5-27", 0.18, 0.19, 0.5, 300, 64, 10,
                          **_tp_vgg(_s("crop-flip", "[TP] datasets/CIFAR10DVS/dataset_init."
                                    "py:36-37: RandomCrop(48, padding=4), "
                                    "RandomHorizontalFlip"))),
                 "48×48 frames, 10 bins", (71.62, 0.31), stat, TP,
                 _TP_DEPARTURES + _TP_CONV_DEPARTURES)
    return [nm, shd, rec, gsc, gest, cif]


# -- SOLSA and TTL-BPTT (no public code) -------------------------------------------------

def _common(**rows) -> dict:
    base = {k: _s(v, "lava-local default (no public code)") for k, v in dict(
        weight_std=False, bias=False, learn_leak=False, learn_threshold=False, v_th_min=0.0,
        dropout=0.0, lr_schedule="none", init_gain=1.0).items()}
    base.update(rows)
    return base


def _other_recipes() -> list[Recipe]:
    recon = "reconstruction from the abstract (paper body not available)"
    solsa = Recipe(
        "solsa-shd", "SOLSA (arXiv 2307.11314)", "not reported per data set in the abstract",
        _common(rule=_s("solsa", "paper"), dataset=_s("shd", recon), preset=_s("mlp", recon),
                hidden=_s((256,), recon), recurrent=_s(False, recon),
                n_steps=_s(100, "SHD at 10 ms bins"), window=_s(None, "every step"),
                epochs=_s(100, "lava-local budget"), batch_size=_s(64, "lava-local budget"),
                lr=_s(1e-3, "lava-local default"), gamma=_s(0.9, recon),
                v_th=_s(1.0, "paper: s = Θ(v − 1)"), kappa=_s(0.9, "lava-local default"),
                surrogate=_s("triangle", "unused: SOLSA's ε is its Gaussian (solsa_sigma)"),
                solsa_sigma=_s(0.5, recon), solsa_topk=_s(8, "abstract: keep the top k (8)"),
                solsa_rerank=_s(2, recon), solsa_early_stop=_s(True, "abstract"),
                solsa_confidence=_s(0.9, "abstract"), solsa_per_channel=_s(False, recon),
                solsa_tag_quant=_s(False, "float tag")),
        "reconstruction: the paper body was not available", None, Statistic("final"))
    ttl = dict(rule=_s("ttlbptt", "paper"), preset=_s("alexnet-snn", "paper (AlexNet)"),
               augment=_s("none", "lava-local default (no public code)"),
               width=_s(1.0, "full width"), pooling=_s("avg", "lava-local's preset"),
               ttl_trunc=_s(5, "lava-local's pick: the abstract gives no (K, b)"),
               ttl_block=_s(2, "lava-local's pick"), ttl_update=_s("window", "paper: update "
                                                                   "after every window"),
               epochs=_s(100, "lava-local budget"), batch_size=_s(16, "lava-local budget"),
               lr=_s(1e-3, "lava-local default"), gamma=_s(0.5, "lava-local default"),
               v_th=_s(0.8, "lava-local default"), kappa=_s(0.9, "lava-local default"),
               surrogate=_s("triangle", "lava-local default"), window=_s(None, "all steps"))
    t1 = Recipe(
        "ttlbptt-cifar10dvs-alexnet", "TTL-BPTT (Front. Neurosci. 2023)",
        "+7.26 points over end-to-end BPTT, -89.94 % GPU memory, -99.64 % MACs",
        _common(**ttl, dataset=_s("cifar10dvs", "abstract"), n_steps=_s(10, "lava-local")),
        "`lava-local sweep ttlbptt` maps (K, b); compare with --rule bptt", None,
        Statistic("final"))
    t2 = Recipe(
        "ttlbptt-dvsgesture", "TTL-BPTT (Front. Neurosci. 2023)",
        "no DVS Gesture figure in the paper (CIFAR10-DVS: ttlbptt-cifar10dvs-alexnet)",
        _common(**ttl, dataset=_s("dvsgesture", "carried over"), n_steps=_s(20, "as S-TLLR")),
        "the CIFAR10-DVS design carried over to DVS Gesture", None, Statistic("final"))
    return [solsa, t1, t2]


RECIPES = {r.name: r for r in [*_stllr_recipes(), *_tess_recipes(), *_tp_recipes(),
                               *_other_recipes()]}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; see `lava-local recipes` "
                         f"({', '.join(RECIPES)})") from None


def card_fields(config) -> list[str]:
    """The settings of a run configuration (``TrainConfig``) that reach the run, i.e. what
    a card must cover: every field and rule option but :data:`NOT_ON_CARDS`, the dense
    settings of conv presets and the conv settings of dense ones, and the held-out speaker
    outside Speech Commands."""
    from .torch.conv import CONV_SPECS

    skip = set(NOT_ON_CARDS)
    skip |= {"hidden", "recurrent"} if config.preset in CONV_SPECS else \
        {"pooling", "width", "augment"}
    if config.dataset != "gsc":
        skip.add("holdout_speaker")
    return [k for k in config.to_dict() if k not in skip]

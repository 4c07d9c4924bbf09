"""What every batched trainer shares, and the one time loop of the forward-in-time rules.

:class:`Trainer` holds the model, the optimiser, the rule's parameters and the learning
window, and applies gradient estimates (an optimiser *subtracts* them).
:class:`LocalTrainer` is the time loop of every rule that learns forward in time
(S-TLLR, TESS, Traces Propagation, SOLSA): each step it

1. ``advance``\\ s the network and the rule's traces by one step with every state of
   step t-1 detached (explicit, typed state in, new state out; no graph across steps);
2. reports the explicit learning state to a meter (the measured memory);
3. in the learning window (t >= T_l), asks the rule for the step's loss and gradient
   estimates and applies them every step (online rules: ``learn``'s estimates as they
   are) or accumulates them and applies them once per batch (``learn_into``, which adds
   them to the accumulators in place);
4. ``finish``\\ es the step (traces that need this step's values, freeing its graph);

and before an update is applied, ``flush``\\ es what a rule left pending (S-TLLR's
merged terms complete a step's estimate at the next step).

BPTT and TTL-BPTT differentiate through time with autograd and have their own loops.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch
import torch.nn.functional as F

from ..functional.lif import LIFState


class StateMeter(Protocol):
    """What a trainer reports its explicit learning state to (see ``accounting``)."""

    def set_state(self, name: str, tensors: list[torch.Tensor]) -> None: ...


def first_learning_step(n_steps: int, window: int | None) -> int:
    """T_l = T - window (``window`` learning steps at the end; None = all T steps)."""
    if window is None:
        return 0
    if not 1 <= window <= n_steps:
        raise ValueError(f"the learning window must be in [1, T={n_steps}], got {window}")
    return n_steps - window


class Batch(NamedTuple):
    """A batch's constants: labels (B,), one-hot targets (B, C), B, T, T_l, T - T_l."""

    labels: torch.Tensor
    onehot: torch.Tensor
    size: int
    n_steps: int
    t_l: int
    n_win: int


def detach_lif(s: LIFState) -> LIFState:
    return LIFState(s.u.detach(), s.y.detach())


class Trainer:
    """Base of every batched trainer.

    Parameters
    ----------
    model : torch.nn.Module
        The network (``weights``, ``init_state``, ``step`` ...).
    optimizer : torch.optim.Optimizer or None
        None: attach one later with :meth:`attach_optimizer` (it may need
        :meth:`parameters`, e.g. TTL-BPTT's auxiliary classifiers).
    params : RuleParams
        The rule's hyper-parameters.
    window : int or None
        Learning window: the last ``window`` steps learn (None: all).
    generator : torch.Generator, optional
        Source of the fixed random matrices a rule draws.
    """

    rule = ""

    def __init__(self, model, optimizer, params, window: int | None = None,
                 generator: torch.Generator | None = None):
        self.model, self.params, self.window = model, params, window
        #: Source of the per-batch randomness of training (dropout masks); the training
        #: loop seeds one per epoch from the run's seed, so runs resume exactly.
        self.noise: torch.Generator | None = None
        self.optimizer = None
        self.base_lrs: list[float] = []
        if optimizer is not None:
            self.attach_optimizer(optimizer)

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Use ``optimizer``; its learning rates now are the base of any schedule."""
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]

    def parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser must update."""
        return list(self.model.parameters())

    def learned(self) -> list[torch.Tensor]:
        """The tensors :meth:`apply` sets gradients of, in the order a rule returns them."""
        return list(self.model.weights)

    def state_dict(self) -> dict:
        """Trainer state beyond the model and optimiser (fixed matrices, schedules)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"unexpected trainer state {sorted(state)} for {self.rule}")

    def start_epoch(self, epoch: int, n_epochs: int) -> None:
        """Called before every epoch (learning-rate schedules, re-ranking)."""

    def net_state(self, batch: int):
        """The net's initial state for a training batch (with its dropout masks)."""
        state = self.model.init_state(batch)
        draw = getattr(self.model, "draw_masks", None)
        return state if draw is None else draw(state, self.noise)

    def batch(self, x: torch.Tensor, labels: torch.Tensor) -> Batch:
        n_steps, size = x.shape[0], x.shape[1]
        t_l = first_learning_step(n_steps, self.window)
        onehot = F.one_hot(labels, self.model.cfg.n_out).to(x.dtype)
        return Batch(labels, onehot, size, n_steps, t_l, n_steps - t_l)

    def apply(self, grads: list[torch.Tensor], learned: list | None = None) -> None:
        """Set the gradient estimates of :meth:`learned` (or of ``learned``, its list
        taken once by a caller that applies many times) and take an optimiser step
        (estimates for standardised weights are chained into the raw weights and gains,
        ``model.param_grads``)."""
        learned = self.learned() if learned is None else learned
        pairs = (self.model.param_grads(learned, grads)
                 if hasattr(self.model, "param_grads") else zip(learned, grads))
        for w, g in pairs:
            w.grad = g.reshape(w.shape)
        self.optimizer.step()
        for group in self.optimizer.param_groups:   # zero_grad(set_to_none=True), without
            for p in group["params"]:                # its per-call overhead (every-step
                p.grad = None                        # rules apply T times a batch)
        self.after_apply()

    def after_apply(self) -> None:
        """Projections after an update (e.g. clamping decays to [0, 1])."""

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor,
                    meter: StateMeter | None = None) -> float:
        """One batch ``x`` (T, B, n_in); returns the mean loss over the window."""
        raise NotImplementedError


class LocalTrainer(Trainer):
    """The time loop of the forward-in-time rules (see module doc).

    Subclasses implement :meth:`init_state`, :meth:`advance`, :meth:`traces`,
    :meth:`learn` and optionally :meth:`finish`; ``update_every_step`` says whether the
    gradient estimates are applied every learning step or once per batch.
    """

    #: Name under which the explicit learning state is reported to a meter.
    state_name = "traces"

    @property
    def update_every_step(self) -> bool:
        return False

    def init_state(self, x: torch.Tensor, b: Batch) -> Any:
        raise NotImplementedError

    def advance(self, state: Any, x_t: torch.Tensor, learn: bool, b: Batch) -> Any:
        """Step t: the network and the traces; returns the new state."""
        raise NotImplementedError

    def traces(self, state: Any) -> list[torch.Tensor]:
        """The explicit learning state carried across steps (for the meter)."""
        raise NotImplementedError

    def learn(self, state: Any, t: int, b: Batch) -> tuple[Any, list | None]:
        """In the window: (this step's loss / (T - T_l), a float or a 0-d tensor, which
        is read once per batch; gradient estimates in the order of :meth:`learned`, or
        None for no update this step)."""
        raise NotImplementedError

    def learn_into(self, state: Any, t: int, b: Batch, acc: list[torch.Tensor]
                   ) -> tuple[Any, bool]:
        """:meth:`learn`, adding the step's gradient estimates to ``acc`` in place;
        returns (the step's loss, whether there were any). A rule may override it to
        accumulate without temporaries. (A rule that updates every step has its
        :meth:`learn`'s estimates applied as they are, without an accumulator.)"""
        loss, grads = self.learn(state, t, b)
        if grads is None:
            return loss, False
        for a, g in zip(acc, grads):
            if g is not None:
                a += g
        return loss, True

    def finish(self, state: Any) -> Any:
        """End of step t (default: nothing)."""
        return state

    def flush(self, state: Any, acc: list[torch.Tensor]) -> None:
        """Before an update is applied: add to ``acc`` what :meth:`learn_into` left
        pending (a rule that completes a step's estimate at a later step; default:
        nothing)."""

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor,
                    meter: StateMeter | None = None) -> float:
        b = self.batch(x, labels)
        state = self.init_state(x, b)
        learned = self.learned()    # the same tensors for the whole batch
        acc = [] if self.update_every_step else [torch.zeros_like(w) for w in learned]
        total = 0.0
        for t in range(b.n_steps):
            state = self.advance(state, x[t], t >= b.t_l, b)
            if meter is not None:
                meter.set_state(self.state_name, self.traces(state))
            if t >= b.t_l and self.update_every_step:
                # the step's estimates straight to the optimiser (no accumulator pass)
                loss, grads = self.learn(state, t, b)
                total += loss
                if grads is not None:
                    grads = [torch.zeros_like(w) if g is None else g
                             for g, w in zip(grads, learned)]
                    self.flush(state, grads)
                    self.apply(grads, learned)
            elif t >= b.t_l:
                loss, _ = self.learn_into(state, t, b, acc)
                total += loss
            state = self.finish(state)
        if not self.update_every_step:
            self.flush(state, acc)
            self.apply(acc, learned)
        return float(total)          # the batch's one host sync

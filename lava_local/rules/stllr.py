"""S-TLLR hyper-parameters (see ``lava_local.functional.stllr`` for the equations)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..functional.stllr import POST_FORMS

SIGNALS = ("bp", "dfa")

#: Paper presets (λ_post, λ_pre, α_post, α_pre) from S-TLLR Table/Section 5.
PRESETS = {
    "dvsgesture": dict(lam_post=0.2, lam_pre=0.75, alpha_post=-1.0, alpha_pre=1.0),
    "dvscifar10": dict(lam_post=0.2, lam_pre=0.5, alpha_post=-1.0, alpha_pre=1.0),
    "shd": dict(lam_post=0.5, lam_pre=1.0, alpha_post=1.0, alpha_pre=1.0),
}


@dataclass(frozen=True)
class STLLRParams:
    """Hyper-parameters of S-TLLR.

    Attributes
    ----------
    lam_pre, lam_post : float
        Trace decays λ_pre, λ_post in [0, 1].
    alpha_pre, alpha_post : float
        Weights of the causal (LTP-like) and non-causal terms; α_post < 0 makes the
        non-causal term LTD-like, α_post = 0 drops the post trace.
    signal : {"bp", "dfa"}
        Learning signal: same-step back-propagation (paper default) or direct feedback
        alignment through fixed random matrices (the variant a chip can compute).
    post_form : {"paper", "code"}
        Non-causal trace as in the paper's closed form (extra λ_post) or as in the public
        code's recurrence; see :mod:`lava_local.functional.stllr`.
    online : bool
        Apply the update every step instead of once per sample/batch.
    """

    lam_pre: float = 0.5
    lam_post: float = 0.2
    alpha_pre: float = 1.0
    alpha_post: float = -1.0
    signal: str = "bp"
    post_form: str = "paper"
    online: bool = False

    def __post_init__(self) -> None:
        for name in ("lam_pre", "lam_post"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.signal not in SIGNALS:
            raise ValueError(f"unknown learning signal {self.signal!r}; use one of {SIGNALS}")
        if self.post_form not in POST_FORMS:
            raise ValueError(f"unknown post_form {self.post_form!r}; use one of {POST_FORMS}")

    def to_dict(self) -> dict:
        return asdict(self)

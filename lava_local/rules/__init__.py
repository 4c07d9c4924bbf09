"""One module per learning rule: its hyper-parameters and how its pieces are wired."""

from .stllr import STLLRParams

__all__ = ["STLLRParams"]

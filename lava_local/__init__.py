"""lava-local: local learning rules for spiking neural networks on Lava."""

__version__ = "0.1.0"

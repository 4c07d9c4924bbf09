"""Export trained networks and run them as Lava process graphs (float, fixed, Loihi 2)."""

from .export import ExportedNet, export_run, load_exported, save_exported

__all__ = ["ExportedNet", "export_run", "load_exported", "save_exported"]

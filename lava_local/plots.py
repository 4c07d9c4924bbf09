"""Plots written next to results (matplotlib, Agg backend, no screen needed)."""

from __future__ import annotations

from pathlib import Path

#: One colour per rule in every plot.
RULE_COLORS = {"stllr": "C0", "bptt": "C1", "tess": "C2", "tp": "C3", "solsa": "C4",
               "ttlbptt": "C5"}


def _color(name: str) -> str | None:
    return RULE_COLORS.get(name.split()[0])


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _accuracy(ax, histories: dict[str, list[dict]], title: str | None = None) -> None:
    for name, hist in histories.items():
        ax.plot([h["epoch"] for h in hist], [100 * h["test_acc"] for h in hist], "o-",
                label=name, color=_color(name))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()


def _memory(ax, sweep: list[dict]) -> None:
    for rule in sorted({r["rule"] for r in sweep}):
        rows = sorted((r for r in sweep if r["rule"] == rule), key=lambda r: r["n_steps"])
        ts = [r["n_steps"] for r in rows]
        ax.plot(ts, [r["memory_measured_bytes_per_sample"] / 1024 for r in rows],
                "o-", label=f"{rule} measured", color=_color(rule))
        ax.plot(ts, [r["memory_analytic_bytes_per_sample"] / 1024 for r in rows], "--",
                color=_color(rule), label=f"{rule} analytic")
    ax.set_xlabel("time steps T")
    ax.set_ylabel("learning state per sample (KiB)")
    ax.set_yscale("log")
    ax.set_title("learning-state memory vs T")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training(histories: dict[str, list[dict]], path: Path) -> Path:
    """Test accuracy per epoch, one line per run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    _accuracy(ax, histories)
    return _save(fig, plt, path)


def plot_memory(sweep: list[dict], path: Path) -> Path:
    """Learning-state memory per sample vs T, measured (solid) and analytic (dashed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    _memory(ax, sweep)
    return _save(fig, plt, path)


def plot_demo(histories: dict[str, list[dict]], sweep: list[dict], path: Path) -> Path:
    """Left: test accuracy per epoch. Right: learning-state memory per sample vs T."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    _accuracy(a1, histories, "digits, same network and data")
    _memory(a2, sweep)
    return _save(fig, plt, path)

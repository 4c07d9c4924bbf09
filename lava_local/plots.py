"""Plots written next to results (matplotlib, Agg backend, no screen needed)."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(histories: dict[str, list[dict]], path: Path) -> Path:
    """Test accuracy per epoch, one line per run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, hist in histories.items():
        ax.plot([h["epoch"] for h in hist], [100 * h["test_acc"] for h in hist], "o-",
                label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_demo(histories: dict[str, list[dict]], sweep: list[dict], path: Path) -> Path:
    """Left: test accuracy per epoch. Right: learning-state memory per sample vs T."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, hist in histories.items():
        a1.plot([h["epoch"] for h in hist], [100 * h["test_acc"] for h in hist], "o-",
                label=name)
    a1.set_xlabel("epoch")
    a1.set_ylabel("test accuracy (%)")
    a1.set_title("digits, same network and data")
    a1.grid(alpha=0.3)
    a1.legend()
    for rule in sorted({r["rule"] for r in sweep}):
        rows = sorted((r for r in sweep if r["rule"] == rule), key=lambda r: r["n_steps"])
        ts = [r["n_steps"] for r in rows]
        line, = a2.plot(ts, [r["memory_measured_bytes_per_sample"] / 1024 for r in rows],
                        "o-", label=f"{rule} measured")
        a2.plot(ts, [r["memory_analytic_bytes_per_sample"] / 1024 for r in rows], "--",
                color=line.get_color(), label=f"{rule} analytic")
    a2.set_xlabel("time steps T")
    a2.set_ylabel("learning state per sample (KiB)")
    a2.set_yscale("log")
    a2.set_title("learning-state memory vs T")
    a2.grid(alpha=0.3, which="both")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

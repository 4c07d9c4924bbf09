"""Plots written next to results (matplotlib, Agg backend, no screen needed)."""

from __future__ import annotations

from pathlib import Path


def _color(name: str) -> str | None:
    """One colour per rule in every plot (its place in the registry)."""
    from .rules import RULES

    rule = name.split()[0]
    return f"C{RULES.index(rule)}" if rule in RULES else None


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


def plot_compare(results: dict[str, dict], path: Path) -> Path:
    """Bars: test accuracy, learning-state memory per sample (measured, log) and MACs."""
    plt = _plt()
    names = list(results)
    colors = [_color(n) for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    vals = [
        ([100 * results[n]["test_acc"] for n in names], "test accuracy (%)", False),
        ([results[n]["cost"]["memory_measured_bytes_per_sample"] / 1024 for n in names],
         "learning state / sample (KiB)", True),
        ([results[n]["cost"]["macs_measured_per_sample"] / 1e6 for n in names],
         "MACs / sample (M, measured)", False),
    ]
    for ax, (v, label, log) in zip(axes, vals):
        ax.bar(names, v, color=colors)
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, plt, path)


def plot_sweep(rows: list[dict], path: Path) -> Path:
    """TTL-BPTT design space: accuracy and measured memory against K, one line per b."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for b in sorted({r["block"] for r in rows}):
        rs = sorted((r for r in rows if r["block"] == b), key=lambda r: r["K"])
        ks = [r["K"] for r in rs]
        a1.plot(ks, [100 * r["test_acc"] for r in rs], "o-", label=f"b={b}")
        a2.plot(ks, [r["memory_measured_bytes_per_sample"] / 1024 for r in rs], "o-",
                label=f"b={b}")
    a1.set_xlabel("truncation window K")
    a1.set_ylabel("test accuracy (%)")
    a2.set_xlabel("truncation window K")
    a2.set_ylabel("learning state / sample (KiB)")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, plt, path)

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


def caption(results: dict) -> str:
    """What a run's plot shows: data set, net, T, batch, epochs, seed (from a results
    dictionary of :func:`lava_local.torch.train.train`)."""
    c = results["config"]
    sizes = "-".join(map(str, results.get("layer_sizes", [])))
    return (f"{results.get('dataset', {}).get('name') or c['dataset']}, net {sizes}, "
            f"T={c['n_steps']}, batch {c['batch_size']}, {len(results.get('history', []))} "
            f"epochs, lr {c['lr']:g}, seed {c['seed']}")


def _accuracy(ax, histories: dict[str, list[dict]], title: str | None = None) -> None:
    for name, hist in histories.items():
        ax.plot([h["epoch"] for h in hist], [100 * h["test_acc"] for h in hist], "o-",
                label=name, color=_color(name))
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "test accuracy (held-out split)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _loss(ax, histories: dict[str, list[dict]]) -> None:
    for name, hist in histories.items():
        ax.plot([h["epoch"] for h in hist], [h["train_loss"] for h in hist], "o-",
                label=name, color=_color(name))
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("training loss (mean per batch)")
    ax.set_title("training loss", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _bars(ax, names, values, colors, fmt: str) -> None:
    """Bars with their values on them, the axis zoomed to the values."""
    bars = ax.bar(names, values, color=colors)
    ax.bar_label(bars, fmt=fmt, fontsize=8, padding=2)
    lo, hi = min(values), max(values)
    if lo > 0 and ax.get_yscale() == "linear":
        span = max(hi - lo, 0.05 * hi)
        ax.set_ylim(max(0.0, lo - 0.6 * span), hi + 0.35 * span)


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
    ax.set_title("learning-state memory vs T", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training(histories: dict[str, list[dict]], path: Path, title: str = "") -> Path:
    """Test accuracy and training loss per epoch, one line per run; ``title`` says what
    was trained (see :func:`caption`)."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    _accuracy(a1, histories)
    _loss(a2, histories)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, plt, path)


def plot_memory(sweep: list[dict], path: Path, title: str = "") -> Path:
    """Learning-state memory per sample vs T, measured (solid) and analytic (dashed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    _memory(ax, sweep)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, plt, path)


def plot_demo(histories: dict[str, list[dict]], sweep: list[dict], path: Path,
              title: str = "") -> Path:
    """Test accuracy and training loss per epoch; learning-state memory per sample vs T."""
    plt = _plt()
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 3.9))
    _accuracy(a1, histories)
    _loss(a2, histories)
    _memory(a3, sweep)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, plt, path)


def plot_compare(results: dict[str, dict], path: Path, title: str = "") -> Path:
    """Bars with their values: test accuracy, learning-state memory per sample
    (measured, log) and MACs per sample; every rule on the same net, data and seed."""
    plt = _plt()
    names = list(results)
    colors = [_color(n) for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    vals = [
        ([100 * results[n]["test_acc"] for n in names], "test accuracy (%)", False, "%.1f"),
        ([results[n]["cost"]["memory_measured_bytes_per_sample"] / 1024 for n in names],
         "learning state / sample (KiB, measured)", True, "%.1f"),
        ([results[n]["cost"]["macs_measured_per_sample"] / 1e6 for n in names],
         "MACs / sample (M, measured)", False, "%.2f"),
    ]
    for ax, (v, label, log, fmt) in zip(axes, vals):
        if log:
            ax.set_yscale("log")
        _bars(ax, names, v, colors, fmt)
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=30)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, plt, path)


def plot_sweep(rows: list[dict], path: Path, title: str = "") -> Path:
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
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, plt, path)


def plot_speed(res: dict, path: Path) -> Path:
    """Trainer speed: time per batch relative to BPTT (1 = as fast; lower is faster),
    the achieved GFLOP/s of the matrix products, and measured vs analytic learning state
    per sample."""
    plt = _plt()
    rows = res["rows"]
    names = [r["variant"] for r in rows]
    colors = [_color(r["rule"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].bar(names, [r["ratio_to_bptt"] for r in rows], color=colors)
    axes[0].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[0].set_ylabel("time per batch / BPTT's")
    axes[1].bar(names, [r["gflops_per_s"] for r in rows], color=colors)
    axes[1].axhline(res["matmul_flops_per_s"] / 1e9, color="k", lw=0.8, ls="--",
                    label="device matmul rate (measured)")
    axes[1].set_ylabel("matrix products, GFLOP/s achieved")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    x = range(len(rows))
    axes[2].bar([i - 0.2 for i in x], [r["memory_measured_bytes_per_sample"] / 1024
                                       for r in rows], 0.4, color=colors, label="measured")
    axes[2].bar([i + 0.2 for i in x], [r["memory_analytic_bytes_per_sample"] / 1024
                                       for r in rows], 0.4, color=colors, alpha=0.4,
                hatch="//", label="analytic")
    axes[2].set_xticks(list(x), names)
    axes[2].set_ylabel("learning state / sample (KiB)")
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
        for label in ax.get_xticklabels():      # long variant names: end under their bar
            label.set_horizontalalignment("right")
        ax.grid(alpha=0.3, axis="y")
    from .bench import speed_title

    fig.suptitle(speed_title(res), fontsize=9)
    return _save(fig, plt, path)


def plot_lava_speed(results: list[dict], path: Path) -> Path:
    """Lava steps/s of the inference graph (grey) and of each learning graph with
    lava-local's ProcessModels (blue), lava-local's with every synapse and neuron its own
    process (orange) and Lava's stock LearningDense models (red), float and fixed, one
    panel per net; the dash across each learning bar is half the speed of its backend's
    inference graph (the target)."""
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 3.8), squeeze=False)
    for ax, res in zip(axes[0], results):
        rows = [r for r in res["rows"] if "skipped" not in r]
        names = [f"{r['backend'][4:]}\n{'inference' if r['mode'] == 'none' else r['mode']}"
                 + ("" if r["models"] == "lava-local" else
                    "\n(Lava's models)" if r["models"] == "Lava's stock" else
                    "\n(separate processes)")
                 for r in rows]
        ax.bar(names, [r["steps_per_second"] for r in rows],
               color=["C7" if r["mode"] == "none" else
                      "C0" if r["models"] == "lava-local" else
                      "C3" if r["models"] == "Lava's stock" else "C1" for r in rows])
        half = {r["backend"]: r["steps_per_second"] / 2 for r in rows if r["mode"] == "none"}
        for i, r in enumerate(rows):        # each learning bar's target: its backend's
            if r["mode"] != "none" and r["backend"] in half:
                ax.hlines(half[r["backend"]], i - 0.45, i + 0.45, colors="k", lw=1.0,
                          linestyles="--")
        ax.legend(handles=[Patch(color=c, label=t) for c, t in (
            ("C7", "inference"), ("C0", "learning, lava-local"),
            ("C1", "learning, separate processes"), ("C3", "learning, Lava's models"))]
                  + [Line2D([], [], color="k", lw=1.0, ls="--",
                            label="½ inference, same backend (target)")],
                  fontsize=7, loc="upper right")
        ax.set_ylabel("Lava steps / s")
        ax.set_title(f"net {res['net']}, T={res['n_steps']}, {res['samples']} samples",
                     fontsize=10)
        ax.tick_params(axis="x", rotation=90, labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, plt, path)


def plot_reproduce(summary: dict, path: Path) -> Path:
    """A reproduction: each seed's test accuracy by epoch (left) and the metric per seed
    with its mean ± std beside the paper's mean ± std (right)."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for s in summary["seeds"]:
        a1.plot(s["history_epochs"], [100 * a for a in s["history_acc"]], "o-", ms=3,
                label=f"seed {s['seed']}")
    a1.set_xlabel("epoch")
    a1.set_ylabel("test accuracy (%)")
    a1.xaxis.get_major_locator().set_params(integer=True)
    a1.legend(fontsize=8)
    key = "best_test_acc" if summary["metric"].startswith("best") else "final_test_acc"
    vals = [100 * s[key] for s in summary["seeds"]]
    a2.plot([0] * len(vals), vals, "o", color="C0", alpha=0.6, label="seeds")
    a2.errorbar([0], [summary["mean"]], [summary["std"]], fmt="s", color="C0", capsize=6,
                label=f"here: {summary['mean']:.2f} ± {summary['std']:.2f}")
    if summary.get("paper_mean") is not None:
        a2.errorbar([1], [summary["paper_mean"]], [summary.get("paper_std") or 0.0], fmt="s",
                    color="C3", capsize=6, label=f"paper: {summary['paper_mean']:.2f}"
                    + (f" ± {summary['paper_std']:.2f}" if summary.get("paper_std") else ""))
    a2.set_xticks([0, 1], ["this reproduction", "paper"])
    a2.set_xlim(-0.6, 1.6)
    a2.set_ylabel(summary["metric"])
    a2.legend(fontsize=8)
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
    fig.suptitle(f"{summary['recipe']} ({summary['paper']}): {summary['n_seeds']} seeds; "
                 f"right: {summary['statistic']}", fontsize=9)
    return _save(fig, plt, path)

"""Event loading throughput: binning (first epoch) vs cache hits (later epochs), and the
loader's share of a training step.

Writes synthetic samples in the real on-disk formats (N-MNIST-sized, DVS Gesture-sized and
CIFAR10-DVS-sized AEDAT 4), reads them through tonic + lava-local's binning and cache, and times one
training step of the matching recipe network on the same batch size.

    uv run python benchmarks/loader_throughput.py --samples 64 [--only cifar10dvs]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lava_local.cli import format_table
from lava_local.data.events import SPECS, EventFrames
from lava_local.data.fixtures import (
    synthetic_samples,
    write_cifar10dvs,
    write_dvsgesture,
    write_nmnist,
)
from lava_local.torch.train import TrainConfig, build, to_time_first

CASES = {
    # name: (writer, events per sample, training config, batch)
    "nmnist": (write_nmnist, 4000,
               dict(rule="stllr", hidden=(200,), n_steps=100), 32),
    "dvsgesture": (write_dvsgesture, 100_000,
                   dict(rule="stllr", preset="vgg9", width=0.25, n_steps=20), 16),
    "cifar10dvs": (lambda root, split, samples: write_cifar10dvs(root, samples), 150_000,
                   dict(rule="stllr", preset="vgg9", width=0.25, n_steps=10), 16),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--only", choices=sorted(CASES), default=None)
    args = ap.parse_args()
    rows = []
    for name, (writer, n_events, conf, batch) in CASES.items():
        if args.only not in (None, name):
            continue
        with tempfile.TemporaryDirectory() as d:
            writer(Path(d), "train", synthetic_samples(name, args.samples, events=n_events))
            ds = EventFrames(name, "train", d)
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds.frames(i)
            t_bin = (time.perf_counter() - t0) / len(ds)
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds.frames(i)
            t_hit = (time.perf_counter() - t0) / len(ds)
            spec = SPECS[name]
            cfg = TrainConfig(dataset=name, **conf)
            _, _, trainer = build(cfg, spec.n_inputs, spec.n_classes, torch.device("cpu"),
                                  spec.frame_shape if len(spec.frame_shape) == 3 else None)
            idx = np.arange(batch) % len(ds)
            x = to_time_first(np.stack([ds.frames(i) for i in idx]), torch.device("cpu"))
            y = torch.as_tensor(ds.labels[idx])
            trainer.train_batch(x, y)                      # warm-up
            t0 = time.perf_counter()
            trainer.train_batch(x, y)
            t_step = time.perf_counter() - t0
        rows.append([name, f"{n_events}", f"{1 / t_bin:.0f}", f"{1 / t_hit:.0f}",
                     f"{batch} ({conf.get('preset', 'mlp')})", f"{t_step * 1e3:.0f} ms",
                     f"{batch * t_bin / t_step:.2f}", f"{batch * t_hit / t_step:.3f}"])
    print(format_table(["data set", "events/sample", "binning samples/s", "cached samples/s",
                        "batch (net)", "train step (CPU)", "loader/step, 1st epoch",
                        "loader/step, cached"], rows))


if __name__ == "__main__":
    main()

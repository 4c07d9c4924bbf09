"""A view of some samples of a lazy data set."""

from __future__ import annotations

import numpy as np


class Subset:
    """The samples ``indices`` of a lazy data set, with its attributes (frames, labels)."""

    def __init__(self, ds, indices):
        self.ds = ds
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(ds.labels)[self.indices]
        for name in ("n_inputs", "frame_shape", "n_classes", "n_steps", "name", "classes",
                     "graded"):
            setattr(self, name, getattr(ds, name, None))

    def __len__(self) -> int:
        return len(self.indices)

    def frames(self, i: int) -> np.ndarray:
        return self.ds.frames(int(self.indices[i]))

    def __getitem__(self, i: int):
        return self.ds[int(self.indices[i])]

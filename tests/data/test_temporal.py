import numpy as np
import pytest

from lava_local.data import load_dataset
from lava_local.data.temporal import load_temporal_spikes, temporal_patterns


def test_shapes_labels_and_seeding():
    tr = load_temporal_spikes("train")
    te = load_temporal_spikes("test")
    assert tr.spikes.shape == (1000, 40, 40) and te.spikes.shape == (300, 40, 40)
    assert sorted(np.unique(tr.labels)) == [0, 1, 2, 3]
    again = load_temporal_spikes("train")
    np.testing.assert_array_equal(tr.spikes, again.spikes)
    assert (load_temporal_spikes("train", seed=1).spikes != tr.spikes).any()
    assert (te.spikes[:, :, :] != tr.spikes[:300]).any()


def test_class_is_the_order_of_two_patterns_not_the_rates():
    """Without noise and jitter every sample is pattern a in burst 1 and pattern b in
    burst 2 with label (b - a) mod K; swapping a and b keeps every channel's count."""
    k, t, c = 4, 40, 40
    ds = load_temporal_spikes("test", noise=0.0, jitter=0, n_samples=200)
    pat = temporal_patterns(k, c, t // 5)

    def raster(a, b):
        r = np.zeros((t, c), dtype=np.uint8)
        for p, start in ((a, t // 10), (b, t // 10 + t // 2)):
            ch = np.nonzero(pat[p] >= 0)[0]
            r[start + pat[p][ch], ch] = 1
        return r

    table = {(a, b): raster(a, b) for a in range(k) for b in range(k)}
    for x, y in zip(ds.spikes, ds.labels):
        matches = [(a, b) for (a, b), r in table.items() if np.array_equal(r, x)]
        assert matches and all((b - a) % k == y for a, b in matches)
    for a in range(k):
        for b in range(k):
            np.testing.assert_array_equal(table[a, b].sum(0), table[b, a].sum(0))
            if (b - a) % k != (a - b) % k:
                assert not np.array_equal(table[a, b], table[b, a])


@pytest.mark.parametrize("kw, match", [(dict(n_steps=10), "T >= 20"),
                                       (dict(noise=1.0), "noise"),
                                       (dict(n_classes=1), "classes")])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        load_temporal_spikes(**kw)


def test_registered_and_rejects_an_encoding():
    assert load_dataset("temporal", "test", n_steps=40).n_classes == 4
    with pytest.raises(ValueError, match="encoding"):
        load_dataset("temporal", "test", encoding="latency")

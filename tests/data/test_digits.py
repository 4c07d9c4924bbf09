import numpy as np
import pytest
from sklearn.datasets import load_digits

from lava_local.data import load_dataset, load_digits_spikes
from lava_local.data.digits import encode_latency, encode_rate


def test_split_sizes_shapes_and_dtypes():
    tr = load_digits_spikes("train", n_steps=7)
    te = load_digits_spikes("test", n_steps=7)
    assert (len(tr), len(te)) == (1437, 360)
    assert tr.spikes.shape == (1437, 7, 64) and tr.spikes.dtype == np.uint8
    x, y = te[3]
    assert x.shape == (7, 64) and x.dtype == np.float32 and isinstance(y, int)
    assert set(np.unique(tr.spikes)) <= {0, 1}
    assert sorted(np.unique(te.labels)) == list(range(10))


def test_split_is_fixed_and_disjoint():
    digits = load_digits()
    a = load_digits_spikes("test", n_steps=3, seed=0)
    b = load_digits_spikes("test", n_steps=3, seed=99, encoding="latency")
    np.testing.assert_array_equal(a.labels, b.labels)
    tr = load_digits_spikes("train", n_steps=3)
    # every image is in exactly one split: the label histograms add up to the whole set
    np.testing.assert_array_equal(np.bincount(tr.labels) + np.bincount(a.labels),
                                  np.bincount(digits.target))


def test_rate_code_is_seeded_and_follows_intensity():
    a = load_digits_spikes("train", n_steps=50, seed=1)
    b = load_digits_spikes("train", n_steps=50, seed=1)
    c = load_digits_spikes("train", n_steps=50, seed=2)
    np.testing.assert_array_equal(a.spikes, b.spikes)
    assert (a.spikes != c.spikes).any()
    p = np.full((2000, 3), [0.0, 0.25, 1.0])
    s = encode_rate(p, 40, np.random.default_rng(0))
    np.testing.assert_allclose(s.mean(axis=(0, 1)), [0.0, 0.25, 1.0], atol=0.01)


def test_latency_code_by_hand():
    # T = 5: intensity 1 -> t = 0; 0.5 -> round(0.5*4) = 2; 0.25 -> 3; 0 -> no spike
    s = encode_latency(np.array([[1.0, 0.5, 0.25, 0.0]]), 5)
    assert s.shape == (1, 5, 4)
    assert [list(np.nonzero(s[0, :, j])[0]) for j in range(4)] == [[0], [2], [3], []]


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_steps=0), "positive integer"),
    (dict(n_steps=-3), "positive integer"),
    (dict(encoding="delta"), "rate"),
    (dict(split="val"), "train"),
    (dict(rate_gain=0.0), "rate_gain"),
])
def test_bad_options_name_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_spikes(**kwargs)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="digits"):
        load_dataset("mnist", "train")

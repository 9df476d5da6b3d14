import numpy as np
import pytest

from keras_training_kit.data import train_val_test_split


def _ids(part):
    return set(np.asarray(part).ravel().tolist())


def test_sizes_disjoint_and_complete():
    x = np.arange(200).reshape(100, 2)
    y = np.arange(100)
    (xt, yt), (xv, yv), (xs, ys) = train_val_test_split(
        x, y, val_size=0.2, test_size=0.1, seed=0
    )
    assert (len(xt), len(xv), len(xs)) == (70, 20, 10)
    # x and y stay aligned row by row.
    for xp, yp in ((xt, yt), (xv, yv), (xs, ys)):
        np.testing.assert_array_equal(xp[:, 0] // 2, yp)
    parts = [_ids(yt), _ids(yv), _ids(ys)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2]
    assert not parts[1] & parts[2]
    assert parts[0] | parts[1] | parts[2] == set(range(100))


def test_seed_reproducible_and_different():
    x, y = np.arange(50), np.arange(50)
    a = train_val_test_split(x, y, seed=1)
    b = train_val_test_split(x, y, seed=1)
    c = train_val_test_split(x, y, seed=2)
    np.testing.assert_array_equal(a[2][1], b[2][1])
    assert not np.array_equal(a[2][1], c[2][1])


def test_stratify_keeps_proportions():
    rng = np.random.RandomState(0)
    y = np.array([0] * 160 + [1] * 40)  # 80 % / 20 %
    x = rng.randn(200, 3)
    (_, yt), (_, yv), (_, ys) = train_val_test_split(
        x, y, val_size=0.25, test_size=0.25, stratify=True, seed=0
    )
    for part in (yt, yv, ys):
        assert part.mean() == pytest.approx(0.2, abs=1e-9)
    # Without stratification a seed exists that breaks the proportion.
    fractions = [
        train_val_test_split(x, y, 0.25, 0.25, seed=s)[2][1].mean()
        for s in range(5)
    ]
    assert any(abs(f - 0.2) > 1e-9 for f in fractions)


def test_stratify_one_hot():
    y = np.eye(2)[np.array([0] * 30 + [1] * 10)]
    x = np.zeros((40, 1))
    (_, yt), (_, yv), (_, ys) = train_val_test_split(
        x, y, val_size=0.25, test_size=0.25, stratify=True, seed=3
    )
    assert ys.shape == (10, 2)
    for part in (yv, ys):  # 2.5 expected: stratified gives 2 or 3
        assert part[:, 1].sum() in (2, 3)


def test_lists_dicts_and_types():
    x = {"a": np.arange(20), "b": np.arange(20) * 10}
    y = list(range(20))
    (xt, yt), (xv, yv), (xs, ys) = train_val_test_split(
        x, y, 0.2, 0.2, seed=0
    )
    assert isinstance(xt, dict) and isinstance(yt, list)
    np.testing.assert_array_equal(xt["a"], np.asarray(yt))
    np.testing.assert_array_equal(xt["b"], np.asarray(yt) * 10)
    assert len(yv) == len(ys) == 4


def test_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"f": np.arange(30.0)}, index=np.arange(30) + 100)
    s = pd.Series(np.arange(30), index=df.index)
    (xt, yt), (xv, yv), (xs, ys) = train_val_test_split(df, s, seed=0)
    assert isinstance(xt, pd.DataFrame) and isinstance(ys, pd.Series)
    assert list(xt.index) == list(yt.index)
    assert len(xt) + len(xv) + len(xs) == 30


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(val_size=0.5, test_size=0.5), "val_size \\+ test_size"),
        (dict(val_size=-0.1), "val_size"),
        (dict(test_size=1.0), "test_size"),
    ],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_val_test_split(np.zeros(10), np.zeros(10), **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="same number of samples"):
        train_val_test_split(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match="empty"):
        train_val_test_split(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="same number of samples"):
        train_val_test_split({"a": np.zeros(3), "b": np.zeros(4)}, np.zeros(3))

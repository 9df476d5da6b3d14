"""predict_with_dropout, and the course's "dropout is an ensemble" claim."""

import keras
import numpy as np
import pytest

from keras_training_kit.layers import Dropout, predict_with_dropout

RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 6)).astype("float32")


def _net(dropout, bn=False):
    """Dense → [BN] → dropout → linear Dense: E[MC output] = predict."""
    layers = [keras.Input((6,)), keras.layers.Dense(16, activation="relu")]
    if bn:
        layers.append(keras.layers.BatchNormalization())
    layers += [dropout, keras.layers.Dense(3)]
    model = keras.Sequential(layers)
    if bn:
        # Moving statistics far from any batch's: batch stats would show.
        bn_layer = model.layers[1]
        bn_layer.moving_mean.assign(np.full(16, 2.0, "float32"))
        bn_layer.moving_variance.assign(np.full(16, 9.0, "float32"))
        bn_layer.beta.assign(np.full(16, 1.0, "float32"))
    return model


def _assert_unbiased(model, samples):
    """MC mean within 5 standard errors of the weight-scaled prediction.

    With a linear layer after the only dropout layer the expectation of
    the MC output is exactly the scaled network's output; the sample mean
    has standard error std/√samples (5 s.e. per element: a false alarm on
    30 elements has probability < 1e-4).
    """
    mean, std = predict_with_dropout(model, X, samples=samples)
    scaled = model.predict(X, verbose=0)
    assert mean.shape == std.shape == scaled.shape
    assert np.all(std > 0)
    assert np.all(np.abs(mean - scaled) <= 5 * std / np.sqrt(samples) + 1e-6)
    return mean, std


@pytest.mark.parametrize(
    "make",
    [
        lambda: Dropout(0.4, scale_at="train", seed=1),
        lambda: Dropout(0.4, scale_at="test", seed=1),
        lambda: keras.layers.Dropout(0.4, seed=1),
    ],
    ids=["ours-train", "ours-test", "keras"],
)
def test_mc_mean_is_the_scaled_network_in_expectation(make):
    _assert_unbiased(_net(make()), samples=400)


def test_batch_norm_keeps_its_moving_statistics():
    model = _net(Dropout(0.3, seed=2), bn=True)
    _assert_unbiased(model, samples=400)
    # Without dropout noise the ensemble collapses onto predict(): BN ran
    # on its moving statistics although dropout ran in training mode.
    plain = _net(Dropout(0.0), bn=True)
    mean, std = predict_with_dropout(plain, X, samples=5)
    np.testing.assert_allclose(mean, plain.predict(X, verbose=0), rtol=1e-5,
                               atol=1e-6)
    # Zero up to float32 rounding (the samples run in differently batched
    # calls); batch statistics instead of the moving ones would give a
    # spread of the order of the outputs themselves.
    np.testing.assert_allclose(std, 0.0, atol=1e-6)


def test_layers_are_restored_even_after_an_error():
    model = _net(Dropout(0.5, seed=3))
    drop = model.layers[1]
    predict_with_dropout(model, X, samples=3)
    assert "call" not in drop.__dict__
    with pytest.raises(Exception):
        predict_with_dropout(model, np.ones((2, 7), "float32"), samples=3)
    assert "call" not in drop.__dict__
    # Inference is deterministic again.
    np.testing.assert_array_equal(model(X, training=False),
                                  model(X, training=False))


def _shadowed(monkeypatch):
    """The dropout layers whose `call` the fallback path overrides."""
    from keras_training_kit.layers import mc_dropout

    seen = []
    original = mc_dropout._dropout_always_on

    def record(layers):
        seen.extend(layers)
        return original(layers)

    monkeypatch.setattr(mc_dropout, "_dropout_always_on", record)
    return seen


def test_sequential_and_functional_models_use_clone_model(monkeypatch):
    """Public API (`keras.models.clone_model`), nested models included: no
    layer's `call` is overridden, the weights are shared, not copied."""
    shadowed = _shadowed(monkeypatch)
    inner = keras.Sequential([keras.Input((16,)), Dropout(0.5, seed=7),
                              keras.layers.Dense(3)], name="inner")
    inputs = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, inner(keras.layers.Dropout(0.2)(h)))
    before = [id(layer) for layer in model.layers]
    _, std = predict_with_dropout(model, X, samples=20)
    assert np.all(std > 0)
    assert shadowed == []
    assert [id(layer) for layer in model.layers] == before
    # Shared weights: a change to the model shows in the next prediction.
    last = inner.layers[-1]
    last.kernel.assign(np.zeros(last.kernel.shape, "float32"))
    last.bias.assign(np.full(3, 2.5, "float32"))
    mean, std = predict_with_dropout(model, X, samples=5)
    np.testing.assert_allclose(mean, 2.5, rtol=1e-6)
    np.testing.assert_array_equal(std, 0.0)


def test_subclassed_models_fall_back_to_their_dropout_layers(monkeypatch):
    shadowed = _shadowed(monkeypatch)

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8)
            self.drop = keras.layers.Dropout(0.5, seed=8)
            self.out = keras.layers.Dense(2)

        def call(self, x, training=False):
            return self.out(self.drop(self.hidden(x), training=training))

    model = Net()
    model(X)
    _, std = predict_with_dropout(model, X, samples=20)
    assert np.all(std > 0)
    assert shadowed == [model.drop]
    assert "call" not in model.drop.__dict__


def test_batched_each_replica_draws_its_own_mask():
    seen = []

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8)
            self.drop = Dropout(0.5, seed=4)
            self.out = keras.layers.Dense(2)

        def call(self, x, training=False):
            seen.append(x.shape[0])  # at trace time: the chunk's rows
            return self.out(self.drop(self.hidden(x), training=training))

    model = Net()
    model(X)
    seen.clear()
    mean, std = predict_with_dropout(model, X, samples=7, batch_size=4)
    assert mean.shape == std.shape == (10, 2)
    assert max(s for s in seen if s is not None) == 4 * 7
    assert len(seen) <= 2  # traced for the full and the last chunk only
    # One input row repeated: each replica got its own mask.
    _, std1 = predict_with_dropout(model, X[:1], samples=50)
    assert np.all(std1 > 0)


def test_chunking_does_not_change_the_estimate():
    model = _net(Dropout(0.3, seed=5))
    a, _ = predict_with_dropout(model, X, samples=400)
    b, _ = predict_with_dropout(model, X, samples=400, batch_size=3)
    _, std = predict_with_dropout(model, X, samples=400)
    # Two independent estimates: difference has s.e. √2·std/√400.
    assert np.all(np.abs(a - b) <= 5 * np.sqrt(2) * std / 20 + 1e-6)


def test_multi_output_structure():
    inputs = keras.Input((6,))
    h = Dropout(0.5, seed=6)(keras.layers.Dense(8)(inputs))
    model = keras.Model(
        inputs, [keras.layers.Dense(1)(h), keras.layers.Dense(2)(h)]
    )
    mean, std = predict_with_dropout(model, X, samples=4)
    assert isinstance(mean, list) and len(mean) == 2
    assert mean[0].shape == (10, 1) and std[1].shape == (10, 2)


def test_bad_arguments_raise():
    model = _net(Dropout(0.5))
    for kwargs, name in [
        ({"samples": 0}, "samples"),
        ({"samples": 2.5}, "samples"),
        ({"batch_size": 0}, "batch_size"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            predict_with_dropout(model, X, **kwargs)


def test_weight_scaled_network_approximates_the_ensemble(digits):
    """The course: the (1−p)-scaled network ≈ average of sub-networks.

    A two-hidden-layer ReLU net with the slide's convention (scale at
    test time, p = 0.5), trained on digits. The scaled network and the MC
    average of 200 sub-networks agree on the class of nearly every
    example; their probabilities differ by well under the spread of the
    sub-networks (measured: gap 0.025 vs mean std 0.062) and by less than
    one sampled sub-network differs from the ensemble (0.038). The
    approximation is not exact: ReLU and softmax are not linear.
    """
    (xt, yt), (xv, _) = digits
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            Dropout(0.5, scale_at="test", seed=7),
            keras.layers.Dense(64, activation="relu"),
            Dropout(0.5, scale_at="test", seed=8),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01),
                  "sparse_categorical_crossentropy")
    model.fit(xt, yt, epochs=5, batch_size=64, verbose=0)
    scaled = model.predict(xv, verbose=0)
    ensemble, spread = predict_with_dropout(model, xv, samples=200)
    single, _ = predict_with_dropout(model, xv, samples=1)
    gap = np.abs(scaled - ensemble).mean()
    assert gap < 0.6 * spread.mean(), (gap, spread.mean())
    assert gap < np.abs(single - ensemble).mean()
    assert np.mean(scaled.argmax(1) == ensemble.argmax(1)) >= 0.95

"""One test per remedy, each on a small run that needs it.

Each test trains the faulty run and the remedied copy (built by the same
code `repair` uses) and checks, by a measurement of its own, that the
remedy was applied as the course says and that it helps.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_training_kit as ktk
from keras_training_kit.diagnosis.finding import REMEDIES, Remedy
from keras_training_kit.diagnosis.repair import _remedies
from keras_training_kit.diagnosis.repair._context import Context
from keras_training_kit.diagnosis.repair._surgery import Unapplicable

L = keras.layers
SCE = "sparse_categorical_crossentropy"


def mlp(hidden, activation="relu", optimizer="adam", classes=10, inputs=64,
        loss=SCE, output="softmax", **dense_kwargs):
    def build():
        model = keras.Sequential(
            [keras.Input((inputs,))]
            + [L.Dense(h, activation=activation, **dense_kwargs)
               for h in hidden]
            + [L.Dense(classes, activation=output)]
        )
        opt = optimizer() if callable(optimizer) else optimizer
        model.compile(opt, loss)
        return model

    return build


def context(build, x, y, val, epochs=4, **fit_kwargs):
    keras.utils.set_random_seed(0)
    return Context(build, build(), x, y, (val[0], val[1], None), None,
                   epochs, "val_loss", 0, fit_kwargs)


def remedy(name, **params):
    for remedies in REMEDIES.values():
        for r in remedies:
            if r.name == name:
                return Remedy(name, {**r.params, **params}, r.description)
    return Remedy(name, params)


def fix(ctx, name, recipe=None, **params):
    """(before run, remedied run, chosen params) for one remedy."""
    before = ctx.train(recipe or _remedies.Recipe())
    new, chosen = _remedies.apply(remedy(name, **params),
                                  recipe or _remedies.Recipe(), ctx)
    return before, ctx.train(new), chosen


@pytest.fixture(scope="module")
def small(digits):
    (x, y), (xv, yv) = digits
    return (x[:400], y[:400]), (xv[:200], yv[:200])


def kernel_grad_rms(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, model(x))
        )
    kernels = [w for w in model.trainable_weights if "kernel" in w.path]
    grads = tape.gradient(loss, kernels)
    return [float(tf.sqrt(tf.reduce_mean(g**2))) for g in grads]


# ---------------------------------------------------------------- optimizer


def test_lower_learning_rate(small):
    (x, y), val = small
    build = mlp([64], optimizer=lambda: keras.optimizers.Adam(0.3))
    before, after, chosen = fix(context(build, x, y, val),
                                "lower_learning_rate")
    assert chosen["learning_rate"] < 0.3 * 0.9
    assert float(after.model.optimizer.learning_rate) == pytest.approx(
        chosen["learning_rate"], rel=1e-6
    )
    assert after.score < before.score


def test_raise_learning_rate(small):
    (x, y), val = small
    build = mlp([64], optimizer=lambda: keras.optimizers.SGD(0.001))
    before, after, chosen = fix(context(build, x, y, val),
                                "raise_learning_rate")
    assert chosen["learning_rate"] > 0.001 * 1.1
    assert after.score < before.score


def schedule_of(model):
    config = keras.optimizers.serialize(model.optimizer)["config"]
    return keras.optimizers.schedules.deserialize(config["learning_rate"])


def test_a_learning_rate_schedule_is_scaled_as_a_whole(small, tmp_path):
    # SGD at 3.0, decaying: too high. The remedy keeps the user's schedule
    # (class, decay, warmup) and scales its rate values; the rates the
    # trained optimizer uses are the old schedule's times the factor at
    # every step, and the model reloads with safe_mode=True.
    (x, y), val = small
    schedules = keras.optimizers.schedules
    for make in (lambda: schedules.ExponentialDecay(3.0, 100, 0.9),
                 lambda: schedules.CosineDecay(0.0, 300, warmup_target=3.0,
                                               warmup_steps=20),
                 lambda: ktk.schedules.OneCycle(3.0, total_steps=200)):
        build = mlp([64], optimizer=lambda: keras.optimizers.SGD(make()))
        before, after, chosen = fix(context(build, x, y, val),
                                    "lower_learning_rate")
        assert "the whole schedule" in chosen["how"]
        old, new = make(), schedule_of(after.model)
        assert type(new) is type(old)
        steps = np.array([0, 7, 20, 50, 100, 150, 250])
        ratio = [float(new(s)) / float(old(s)) for s in steps
                 if float(old(s)) > 0]
        np.testing.assert_allclose(ratio, 0.1, rtol=1e-5)
        assert after.score < before.score
        path = str(tmp_path / "m.keras")
        after.model.save(path)
        back = keras.models.load_model(path, safe_mode=True)
        assert float(schedule_of(back)(50)) == pytest.approx(float(new(50)))


def test_a_schedule_that_does_not_scale_is_reported(small):
    (x, y), val = small

    class Squared(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, initial_learning_rate):
            self.initial_learning_rate = initial_learning_rate

        def __call__(self, step):
            return keras.ops.cast(step, "float32") * 0 + (
                self.initial_learning_rate ** 2)

        def get_config(self):
            return {"initial_learning_rate": self.initial_learning_rate}

    keras.saving.register_keras_serializable("test_ktk")(Squared)
    build = mlp([64], optimizer=lambda: keras.optimizers.SGD(Squared(1.7)))
    ctx = context(build, x, y, val)
    with pytest.raises(Unapplicable, match="scale the schedule by hand"):
        _remedies.apply(remedy("lower_learning_rate"), _remedies.Recipe(),
                        ctx)


def test_clip_gradients_stops_a_divergence(small):
    (x, y), val = small
    init = keras.initializers.RandomNormal(stddev=1.0, seed=0)
    build = mlp([64] * 4, activation=None, kernel_initializer=init,
                optimizer=lambda: keras.optimizers.SGD(0.01))
    before, after, chosen = fix(context(build, x, y, val, epochs=2),
                                "clip_gradients")
    assert chosen == {"global_clipnorm": 1.0}
    assert after.model.optimizer.global_clipnorm == 1.0
    # Independent: the unclipped run's loss blew up; the clipped one's is
    # finite and lower.
    assert not np.isfinite(before.history["loss"]).all() or (
        before.score > after.score
    )
    assert np.isfinite(after.history["loss"]).all()


# ------------------------------------------------------------ fit and data


def test_larger_batch(small):
    (x, y), val = small
    build = mlp([32], optimizer=lambda: keras.optimizers.SGD(0.02))
    ctx = context(build, x[:200], y[:200], val, epochs=2, batch_size=2)
    before, after, chosen = fix(ctx, "larger_batch")
    assert chosen["batch_size"] == 8
    # Independent: the optimizer took a quarter of the steps.
    assert int(before.model.optimizer.iterations) == 2 * 100
    assert int(after.model.optimizer.iterations) == 2 * 25


def test_more_epochs(small):
    (x, y), val = small
    build = mlp([32], optimizer=lambda: keras.optimizers.SGD(0.01))
    before, after, chosen = fix(context(build, x, y, val, epochs=2),
                                "more_epochs")
    assert chosen["epochs"] == 4
    assert len(after.history["loss"]) == 2 * len(before.history["loss"])
    assert after.score < before.score


def test_early_stopping_restores_the_best_epoch(small):
    (x, y), val = small
    build = mlp([256], optimizer=lambda: keras.optimizers.Adam(0.01))
    ctx = context(build, x[:100], y[:100], val, epochs=12)
    before, after, chosen = fix(ctx, "early_stopping", patience=3)
    assert chosen["patience"] == 3
    # Independent: the model holds the best epoch's weights, so its
    # validation loss is the minimum of the curve, below the last epoch's.
    val_curve = after.history["val_loss"]
    assert after.score == pytest.approx(min(val_curve), rel=1e-3)
    assert after.score < before.score


def test_clean_inputs_drops_non_finite_rows(small):
    (x, y), val = small
    x = x.copy()
    x[::50, 3] = np.nan
    build = mlp([32])
    before, after, chosen = fix(context(build, x, y, val, epochs=2),
                                "clean_inputs")
    assert chosen["dropped_rows"] == 8
    # Independent: the NaN rows stopped the first run in its first epoch;
    # the cleaned run trains all epochs to a lower validation loss.
    assert len(before.history["loss"]) == 1
    assert len(after.history["loss"]) == 2
    assert np.isfinite(after.history["loss"]).all()
    assert after.score < before.score


def test_standardize_inputs_prepends_an_adapted_normalization(tmp_path):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x, y = x.astype("float32"), y.astype("int32")
    build = mlp([16], classes=2, inputs=30)
    ctx = context(build, x[:400], y[:400], (x[400:], y[400:]), epochs=5)
    before, after, _ = fix(ctx, "standardize_inputs")
    norm = after.model.layers[0]
    assert isinstance(norm, L.Normalization)
    # Independent: it standardizes the training inputs (NumPy reference).
    z = np.asarray(norm(x[:400]))
    ref = (x[:400] - x[:400].mean(0)) / x[:400].std(0)
    np.testing.assert_allclose(z, ref, atol=1e-2)
    assert after.score < 0.5 * before.score
    # The saved model carries the layer and loads with safe_mode=True.
    path = str(tmp_path / "m.keras")
    after.model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(x[400:], verbose=0),
        after.model.predict(x[400:], verbose=0), atol=1e-6,
    )


def test_standardize_targets_predicts_in_original_units():
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(600, 10, noise=0.5, random_state=0)
    x, y = x.astype("float32"), (1000 * y + 20000).astype("float32")

    def build():
        model = keras.Sequential([keras.Input((10,)),
                                  L.Dense(32, activation="relu"),
                                  L.Dense(1)])
        model.compile(keras.optimizers.Adam(3e-3), "mse")
        return model

    ctx = context(build, x[:450], y[:450], (x[450:], y[450:]), epochs=5)
    before, after, chosen = fix(ctx, "standardize_targets")
    assert chosen["mean"] == pytest.approx(y[:450].mean(), rel=1e-5)
    # Independent: NumPy MSE of the predictions, in original units.
    pred = after.model.predict(x[450:], verbose=0)[:, 0]
    mse = float(np.mean((pred - y[450:]) ** 2))
    assert mse == pytest.approx(after.score, rel=1e-3)
    assert mse < 0.5 * float(np.var(y[450:]))
    assert after.score < before.score


# ------------------------------------------------------------- architecture


def test_batch_normalization_before_the_nonlinearity(small):
    (x, y), val = small
    build = mlp([32] * 6, activation="sigmoid",
                optimizer=lambda: keras.optimizers.SGD(0.05))
    before, after, _ = fix(context(build, x, y, val, epochs=4),
                           "batch_normalization")
    kinds = [type(layer).__name__ for layer in after.model.layers]
    assert kinds[:3] == ["Dense", "BatchNormalization", "Activation"]
    assert kinds.count("BatchNormalization") == 6
    assert after.model.layers[0].get_config()["activation"] == "linear"
    assert after.model.layers[2].get_config()["activation"] == "sigmoid"
    # Independent: first-to-last layer gradient ratio, by GradientTape.
    g0 = kernel_grad_rms(before.model, *val)
    g1 = kernel_grad_rms(after.model, *val)
    assert g1[0] / g1[-1] > g0[0] / g0[-1]


def test_batch_normalization_unsaturates_tanh(small):
    (x, y), val = small
    init = keras.initializers.RandomNormal(stddev=3.0, seed=0)
    build = mlp([64], activation="tanh", kernel_initializer=init,
                optimizer=lambda: keras.optimizers.SGD(0.01))
    before, after, _ = fix(context(build, x, y, val, epochs=3),
                           "batch_normalization")

    def pinned(model, layer):
        sub = keras.Model(model.inputs, model.layers[layer].output)
        return float((np.abs(sub.predict(val[0], verbose=0)) > 0.99).mean())

    # Independent: the tanh outputs, measured on the validation inputs.
    assert pinned(after.model, 2) < 0.5 * pinned(before.model, 0)


def test_relu_activations(small):
    (x, y), val = small
    build = mlp([32] * 6, activation="sigmoid",
                optimizer=lambda: keras.optimizers.SGD(0.05))
    ctx = context(build, x, y, val, epochs=2)
    before, after, _ = fix(ctx, "relu_activations")
    acts = [layer.get_config()["activation"] for layer in after.model.layers]
    assert acts == ["relu"] * 6 + ["softmax"]
    # He et al. (2015): Var(w) = 2 / fan_in for a ReLU layer (he_normal's
    # truncated normal is rescaled to that variance); the output layer
    # keeps the template's initial weights.
    start = ctx.model(after.recipe, 0)
    kernels = [np.asarray(layer.kernel) for layer in start.layers]
    assert np.var(kernels[1]) == pytest.approx(2 / 32, rel=0.1)
    template = ctx.model(_remedies.Recipe(), 0)
    np.testing.assert_array_equal(kernels[-1],
                                  np.asarray(template.layers[-1].kernel))
    g0 = kernel_grad_rms(before.model, *val)
    g1 = kernel_grad_rms(after.model, *val)
    assert g1[0] / g1[-1] > 10 * g0[0] / g0[-1]
    assert after.score < before.score


def dead_fraction(model, x):
    sub = keras.Model(model.inputs, model.layers[0].output)
    return float((sub.predict(x, verbose=0).max(axis=0) <= 0).mean())


def test_leaky_relu(small):
    (x, y), val = small
    build = mlp([64], bias_initializer=keras.initializers.Constant(-10.0))
    before, after, chosen = fix(context(build, x, y, val, epochs=3),
                                "leaky_relu")
    assert chosen["negative_slope"] == 0.1
    leaky = after.model.layers[1]
    assert isinstance(leaky, L.LeakyReLU)
    # The course's max(0.1 x, x), checked against NumPy.
    z = np.linspace(-3, 3, 13).astype("float32")
    np.testing.assert_allclose(np.asarray(leaky(z)), np.maximum(0.1 * z, z))
    assert dead_fraction(before.model, x) > 0.9
    assert after.score < before.score


def test_reinitialize_zero_biases(small):
    (x, y), val = small
    build = mlp([64], bias_initializer=keras.initializers.Constant(-10.0))
    ctx = context(build, x, y, val, epochs=3)
    before, after, _ = fix(ctx, "reinitialize")
    config = after.model.layers[0].get_config()
    assert config["bias_initializer"]["class_name"] == "Zeros"
    assert config["kernel_initializer"]["class_name"] == "HeNormal"
    assert dead_fraction(before.model, x) > 0.9
    assert dead_fraction(after.model, x) < 0.5
    assert after.score < before.score


def test_scaled_initialization(small):
    (x, y), val = small
    init = keras.initializers.RandomNormal(stddev=3.0, seed=0)
    build = mlp([64], activation="tanh", kernel_initializer=init,
                optimizer=lambda: keras.optimizers.SGD(0.01))
    before, after, _ = fix(context(build, x, y, val, epochs=3),
                           "scaled_initialization")
    config = after.model.layers[0].get_config()
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"

    def pinned(model):
        sub = keras.Model(model.inputs, model.layers[0].output)
        return float((np.abs(sub.predict(val[0], verbose=0)) > 0.99).mean())

    assert pinned(after.model) < 0.5 * pinned(before.model)
    assert after.score < before.score


def test_bigger_model(small):
    (x, y), val = small
    build = mlp([2], activation=None,
                optimizer=lambda: keras.optimizers.Adam(0.05))
    before, after, chosen = fix(context(build, x, y, val, epochs=4),
                                "bigger_model")
    assert chosen["width"] == 2
    assert after.model.layers[0].units == 4
    assert after.history["loss"][-1] < before.history["loss"][-1]


def test_bigger_model_makes_a_linear_model_deeper():
    # Concentric circles: no linear model separates them; one hidden ReLU
    # layer does. Measured by the validation accuracy, not the loss.
    from sklearn.datasets import make_circles

    x, y = make_circles(600, noise=0.05, factor=0.5, random_state=0)
    x, y = x.astype("float32"), y.astype("int32")
    val = (x[400:], y[400:])
    build = mlp([], classes=2, inputs=2,
                optimizer=lambda: keras.optimizers.Adam(0.02))
    ctx = context(build, x[:400], y[:400], val, epochs=30)
    before, after, chosen = fix(ctx, "bigger_model")
    assert chosen == {"hidden_units": 64,
                      "before": ctx.template.layers[-1].name}
    dense = [la for la in after.model.layers if isinstance(la, L.Dense)]
    assert [d.units for d in dense] == [64, 2]
    assert dense[0].get_config()["activation"] == "relu"

    def accuracy(model):
        p = model.predict(val[0], verbose=0).argmax(axis=1)
        return float((p == val[1]).mean())

    assert accuracy(before.model) < 0.75 < 0.9 < accuracy(after.model)
    # Applied again, the new hidden layer is widened.
    twice, _ = _remedies.apply(remedy("bigger_model"),
                               _remedies.apply(remedy("bigger_model"),
                                               _remedies.Recipe(), ctx)[0],
                               ctx)
    model = ctx.model(twice, 0)
    assert [la.units for la in model.layers if isinstance(la, L.Dense)] == [
        128, 2]


def test_bigger_model_deepens_a_functional_model():
    def build():
        inp = keras.Input((4,))
        out = L.Dense(3, activation="softmax", name="head")(inp)
        model = keras.Model(inp, out)
        model.compile("adam", SCE)
        return model

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    ctx = context(build, x, y, (x, y), epochs=1)
    recipe, _ = _remedies.apply(remedy("bigger_model"), _remedies.Recipe(),
                                ctx)
    model = ctx.model(recipe, 0)
    dense = [la for la in model.layers if isinstance(la, L.Dense)]
    assert [(d.name, d.units) for d in dense] == [("head_hidden", 64),
                                                   ("head", 3)]
    assert model.predict(x, verbose=0).shape == (64, 3)


def test_less_regularization(small):
    (x, y), val = small
    build = mlp([64], kernel_regularizer=keras.regularizers.L2(1.0),
                optimizer=lambda: keras.optimizers.Adam(0.01))
    ctx = context(build, x, y, val, epochs=4)
    assert ctx.regularized
    before, after, chosen = fix(ctx, "less_regularization")
    reg = after.model.layers[0].kernel_regularizer
    assert float(reg.get_config()["l2"]) == pytest.approx(0.1)
    assert after.score < before.score
    plain = context(mlp([64]), x, y, val, epochs=4)
    with pytest.raises(Unapplicable, match="no L1/L2 penalty"):
        _remedies.apply(remedy("less_regularization"), _remedies.Recipe(),
                        plain)


def test_l2_on_every_kernel(small):
    (x, y), val = small
    build = mlp([128], optimizer=lambda: keras.optimizers.Adam(0.01))
    ctx = context(build, x[:100], y[:100], val, epochs=6)
    before, after, chosen = fix(ctx, "l2", l2=1e-2)
    kernels = [w for w in after.model.trainable_weights if "kernel" in w.path]
    assert len(after.model.losses) == len(kernels) == 2
    # Independent: the penalty (λ/2)Σw² from NumPy equals model.losses,
    # and the weights end up smaller than without it.
    ref = sum(0.5 * 1e-2 * float(np.sum(np.square(k))) for k in kernels)
    assert float(sum(after.model.losses)) == pytest.approx(ref, rel=1e-4)
    norm = [np.linalg.norm(k) for k in (before.model.layers[0].kernel,
                                          after.model.layers[0].kernel)]
    assert norm[1] < norm[0]


def test_dropout_after_every_hidden_layer(small):
    (x, y), val = small
    build = mlp([128, 128], optimizer=lambda: keras.optimizers.Adam(0.01))
    ctx = context(build, x[:100], y[:100], val, epochs=6)
    before, after, chosen = fix(ctx, "dropout")
    kinds = [type(layer).__name__ for layer in after.model.layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert isinstance(after.model.layers[1], ktk.layers.Dropout)
    assert after.model.layers[1].rate == 0.3
    assert after.score < before.score


def test_fix_output_layer_softmax_over_one_unit():
    from sklearn.datasets import make_moons

    x, y = make_moons(400, noise=0.2, random_state=0)
    x, y = x.astype("float32"), y.astype("float32")
    build = mlp([16], classes=1, inputs=2, loss="binary_crossentropy",
                output="softmax")
    ctx = context(build, x[:300], y[:300], (x[300:], y[300:]), epochs=5)
    before, after, chosen = fix(ctx, "fix_output_layer")
    assert chosen == {"activation": "sigmoid"}
    # Independent: a softmax over one unit predicts the constant 1 (Keras
    # trains it on the logits, so the loss alone cannot show it); the
    # fixed sigmoid output classifies.
    assert np.allclose(before.model.predict(x[300:], verbose=0), 1.0)
    p = after.model.predict(x[300:], verbose=0)[:, 0]
    accuracy = float(((p > 0.5) == (y[300:] > 0.5)).mean())
    assert accuracy > max(y[300:].mean(), 1 - y[300:].mean())
    # The runs' error rates, the yardstick the loss cannot give here.
    assert before.error == pytest.approx(1 - float(y[300:].mean()))
    assert after.error == pytest.approx(1 - accuracy)


def test_fix_output_layer_mse_on_class_ids_becomes_a_cross_entropy(digits):
    (x, y), (xv, yv) = digits
    y, yv = np.asarray(y).astype("int64"), np.asarray(yv).astype("int64")

    def build():
        model = keras.Sequential([keras.Input((64,)), L.Dense(32, "relu"),
                                  L.Dense(1)])
        model.compile(keras.optimizers.Adam(1e-3), "mse", metrics=["mae"])
        return model

    ctx = context(build, x[:600], y[:600], (xv[:300], yv[:300]), epochs=6)
    before, after, chosen = fix(ctx, "fix_output_layer")
    assert chosen == {"loss": SCE, "activation": "softmax", "units": 10}
    assert after.model.output_shape == (None, 10)
    assert after.recipe.loss == SCE and "mae" not in str(
        after.model.get_compile_config())
    # Independent: the error rates recomputed here from the predictions
    # (the nearest class id of the regression output, the softmax arg-max)
    # are the runs' `error`, and the cross-entropy head classifies better.
    p0 = before.model.predict(xv[:300], verbose=0)[:, 0]
    p1 = after.model.predict(xv[:300], verbose=0)
    e0 = float((np.clip(np.rint(p0), 0, 9) != yv[:300]).mean())
    e1 = float((p1.argmax(1) != yv[:300]).mean())
    assert (before.error, after.error) == pytest.approx((e0, e1))
    assert e1 < e0
    # An objective that a loss change would redefine: apply by hand.
    ctx = Context(build, build(), x[:600], y[:600], (xv, yv, None), None, 2,
                  "val_mae", 0, {})
    with pytest.raises(Unapplicable, match="val_mae"):
        _remedies.apply(remedy("fix_output_layer"), _remedies.Recipe(), ctx)


def test_every_remedy_name_has_a_function():
    from keras_training_kit.diagnosis.finding import REMEDY_NAMES

    assert set(_remedies.REMEDY_FUNCTIONS) == set(REMEDY_NAMES)

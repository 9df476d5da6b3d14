"""Models, data and hand-written references shared by the probe tests.

Imported by `tests/diagnosis/test_probe*.py` and by the per-backend script
`tests/diagnosis/_probe_backend.py` (which runs with another
`KERAS_BACKEND`), so every backend builds exactly the same architectures
with the same layer names and can load the same saved weights.
"""

from __future__ import annotations

import keras
import numpy as np

BATCH = 64
L2 = 1e-3
ACTIVITY = 1e-2  # L2 activity regularization of the tanh layer
DEAD = 5  # units of the first MLP layer killed by a very negative bias


def digits(n: int = BATCH):
    """The first `n` digits, standardized: (x float32 (n, 64), y int32)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-6)).astype("float32")
    return x[:n], y[:n].astype("int32")


def mlp(activity: bool = True) -> keras.Model:
    """relu -> tanh -> sigmoid -> logits; L2 on the first kernel and, with
    `activity`, on the tanh activations (a loss added in the forward pass;
    Keras' own `fit` fails on it under mixed precision)."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(
                24,
                activation="relu",
                kernel_regularizer=keras.regularizers.L2(L2),
                name="relu",
            ),
            keras.layers.Dense(
                16,
                activation="tanh",
                activity_regularizer=(
                    keras.regularizers.L2(ACTIVITY) if activity else None
                ),
                name="tanh",
            ),
            keras.layers.Dense(12, activation="sigmoid", name="sigmoid"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mlp",
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def kill_units(model: keras.Model) -> None:
    """Makes `DEAD` relu units dead and saturates some tanh/sigmoid units."""
    relu, tanh, sig = (model.get_layer(n) for n in ("relu", "tanh", "sigmoid"))
    b = np.array(keras.ops.convert_to_numpy(relu.bias))
    b[:DEAD] = -100.0
    relu.bias.assign(b)
    k = np.array(keras.ops.convert_to_numpy(tanh.kernel))
    tanh.kernel.assign(k * 4.0)
    k = np.array(keras.ops.convert_to_numpy(sig.kernel))
    sig.kernel.assign(k * 6.0)


def mlp_reference(weights, x, y, sw, ones, xp):
    """The compiled loss of `mlp()` written by hand with `xp` (np/jnp/torch).

    `weights` are the arrays of `model.get_weights()`, `y` one-hot, `sw`
    the sample weights, `ones` a (10, 1) array of ones, all as `xp` arrays.
    Keras' "sum_over_batch_size": sum(sw * l) / batch, plus the L2 penalty
    of the kernel and the activity penalty (divided by the batch size).
    Returns (loss, [relu, tanh, sigmoid activations], logits).
    """
    w1, b1, w2, b2, w3, b3, w4, b4 = weights
    z1 = x @ w1 + b1
    h1 = z1 * (z1 > 0)
    h2 = xp.tanh(h1 @ w2 + b2)
    h3 = 1.0 / (1.0 + xp.exp(-(h2 @ w3 + b3)))
    logits = h3 @ w4 + b4
    logp = logits - xp.log(xp.exp(logits) @ ones)
    nll = -(logp * y).sum(1)
    n = nll.shape[0]
    loss = (nll * sw).sum() / n + L2 * (w1 * w1).sum()
    loss = loss + ACTIVITY * (h2 * h2).sum() / n
    return loss, [h1, h2, h3], logits


def multi_output() -> keras.Model:
    """Two inputs, dict outputs, per-output losses, weights and metrics."""
    a = keras.Input((64,), name="pixels")
    b = keras.Input((3,), name="extra")
    h = keras.layers.Concatenate()([a, b])
    h = keras.layers.Dense(16, activation="relu", name="shared")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Dropout(0.3, name="drop")(h)
    h = keras.layers.Activation("tanh", name="act")(h)
    cls = keras.layers.Dense(10, activation="softmax", name="cls")(h)
    reg = keras.layers.Dense(1, name="reg")(h)
    model = keras.Model({"pixels": a, "extra": b}, {"cls": cls, "reg": reg})
    model.compile(
        keras.optimizers.Adam(1e-3),
        loss={"cls": "categorical_crossentropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"], "reg": ["mae"]},
    )
    return model


def multi_data(n: int = BATCH):
    x, y = digits(n)
    extra = np.stack([x[:, 10], x[:, 20], x[:, 30]], axis=1)
    inputs = {"pixels": x, "extra": extra.astype("float32")}
    targets = {
        "cls": np.eye(10, dtype="float32")[y],
        "reg": x[:, :4].sum(axis=1, keepdims=True),
    }
    weights = np.linspace(0.5, 1.5, n).astype("float32")
    return inputs, targets, weights


def conv() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(6, 3, padding="same", name="conv"),
            keras.layers.ReLU(name="conv_relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(4, 3, activation="elu", name="conv_elu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ],
        name="convnet",
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def rnn() -> keras.Model:
    """Integer inputs: Embedding -> LSTM -> GRU -> relu -> softmax."""
    model = keras.Sequential(
        [
            keras.Input((16,), dtype="int32"),
            keras.layers.Embedding(17, 8, name="embed"),
            keras.layers.LSTM(8, return_sequences=True, name="lstm"),
            keras.layers.GRU(6, name="gru"),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ],
        name="rnn",
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def rnn_data(n: int = BATCH):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:n, ::4].astype("int32"), y[:n].astype("int32")


def conv_data(n: int = BATCH):
    x, y = digits(n)
    return x.reshape(n, 8, 8, 1), y


BUILDERS = {"mlp": mlp, "multi": multi_output, "conv": conv, "rnn": rnn}


def data(name: str):
    """(x, y, sample_weight) for the model `name`."""
    if name == "multi":
        return multi_data()
    if name == "conv":
        return (*conv_data(), None)
    if name == "rnn":
        return (*rnn_data(), None)
    x, y = digits()
    return x, y, np.linspace(0.2, 2.0, len(x)).astype("float32")


def numpy_activation_stats(model: keras.Model, x) -> dict:
    """Dead/active/saturated fractions from layer outputs run by hand.

    Runs each layer of a Sequential model in turn (no sub-model, no
    probe code) and applies the definitions with NumPy.
    """
    dead, active, saturated = {}, {}, {}
    h = x
    for layer in model.layers[:-1]:
        h = layer(h, training=False)
        a = np.asarray(keras.ops.convert_to_numpy(h), dtype="float64")
        flat = a.reshape(-1, a.shape[-1])
        name = layer.name
        act = getattr(getattr(layer, "activation", None), "__name__", None)
        if isinstance(layer, keras.layers.ReLU) or act == "relu":
            dead[name] = float(np.mean(np.all(flat <= 0, axis=0)))
            active[name] = float(np.mean(flat > 0))
        elif act == "sigmoid":
            saturated[name] = float(np.mean((a < 0.01) | (a > 0.99)))
        elif act == "tanh":
            saturated[name] = float(np.mean(np.abs(a) > 0.99))
    return {"dead": dead, "active_fraction": active, "saturated": saturated}

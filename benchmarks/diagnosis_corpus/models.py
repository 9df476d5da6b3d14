"""Model builders for the diagnosis corpus: MLP, conv net and RNN.

Each builder returns a fresh compiled model; `opt` is a zero-argument
callable that makes the optimizer, so no optimizer state is ever shared
between runs. Faults that live in the model (initializers, activations, the
head, the loss) are arguments, so a faulty setting and its twin differ in
one thing only.
"""

from __future__ import annotations

import keras
import numpy as np

import keras_training_kit as ktk


def adam(lr=1e-3):
    return lambda: keras.optimizers.Adam(lr)


def kadam(lr=1e-3):
    return lambda: ktk.optimizers.Adam(lr)


def sgd(lr=0.01):
    return lambda: keras.optimizers.SGD(lr)


def ksgd(lr=0.01):
    return lambda: ktk.optimizers.SGD(lr)


def momentum(lr=0.01, m=0.9):
    return lambda: ktk.optimizers.Momentum(lr, momentum=m)


def rmsprop(lr=1e-3):
    return lambda: keras.optimizers.RMSprop(lr)


def krmsprop(lr=1e-3):
    return lambda: ktk.optimizers.RMSProp(lr)


def _init(spec):
    """None (Keras default), a float (normal stddev) or a Keras name."""
    if spec is None or isinstance(spec, str):
        return spec or "glorot_uniform"
    return keras.initializers.RandomNormal(stddev=float(spec))


def _bias(spec):
    if spec is None:
        return "zeros"
    return keras.initializers.Constant(float(spec))


def _hidden(act):
    """A Dense activation name, or a layer for LeakyReLU."""
    if act == "leaky":
        return None, keras.layers.LeakyReLU(negative_slope=0.1)
    return act, None


def _compile(model, opt, loss, metrics):
    model.compile(optimizer=opt(), loss=loss, metrics=list(metrics))
    return model


def mlp(
    input_shape, hidden=(64, 64), act="relu", out=10, out_act="softmax",
    loss="sparse_categorical_crossentropy", opt=adam(), init=None,
    bias=None, out_init=None, out_bias=None, bn=False, dropout=0.0,
    l2=0.0, metrics=("accuracy",), dead_half=False,
):
    """Dense layers `hidden` with activation `act` (relu, leaky, tanh, ...).

    dead_half: the second half of the first layer's units gets bias -10,
    so those units never fire (their gradient is exactly zero).
    """
    reg = keras.regularizers.L2(l2) if l2 else None
    layers = [keras.Input(input_shape)]
    if len(input_shape) > 1:
        layers.append(keras.layers.Flatten())
    for units in hidden:
        name, extra = _hidden(act)
        layers.append(keras.layers.Dense(
            units, activation=None if bn else name,
            kernel_initializer=_init(init), bias_initializer=_bias(bias),
            kernel_regularizer=reg,
        ))
        if bn:
            layers.append(keras.layers.BatchNormalization())
            if name is not None:
                layers.append(keras.layers.Activation(name))
        if extra is not None:
            layers.append(extra)
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(
        out, activation=out_act, kernel_initializer=_init(out_init),
        bias_initializer=_bias(out_bias),
    ))
    model = keras.Sequential(layers)
    if dead_half:
        first = next(
            layer for layer in model.layers
            if isinstance(layer, keras.layers.Dense)
        )
        b = np.zeros(first.units, "float32")
        b[first.units // 2:] = -10.0
        first.bias.assign(b)
    return _compile(model, opt, loss, metrics)


def conv(
    out=10, opt=adam(), act="relu", filters=(16, 32), bn=False,
    dropout=0.0, init=None, loss="sparse_categorical_crossentropy",
    metrics=("accuracy",),
):
    """A small conv net for the 8x8 digit images."""
    layers = [keras.Input((8, 8, 1))]
    for f in filters:
        layers.append(keras.layers.Conv2D(
            f, 3, padding="same", activation=None if bn else act,
            kernel_initializer=_init(init),
        ))
        if bn:
            layers.append(keras.layers.BatchNormalization())
            layers.append(keras.layers.Activation(act))
        layers.append(keras.layers.MaxPooling2D(2))
    layers.append(keras.layers.Flatten())
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(out, activation="softmax"))
    return _compile(keras.Sequential(layers), opt, loss, metrics)


def rnn(
    kind="lstm", units=16, out=1, out_act="sigmoid",
    loss="binary_crossentropy", opt=adam(3e-3), steps=12,
    recurrent_init=None, metrics=("accuracy",), out_init=None,
):
    """LSTM / GRU / SimpleRNN over (steps, 2) sequences, one Dense head."""
    cls = {
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
        "simple": keras.layers.SimpleRNN,
    }[kind]
    kwargs = {}
    if recurrent_init is not None:
        kwargs["recurrent_initializer"] = _init(recurrent_init)
        kwargs["kernel_initializer"] = _init(recurrent_init)
    model = keras.Sequential([
        keras.Input((steps, 2)),
        cls(units, **kwargs),
        keras.layers.Dense(
            out, activation=out_act, kernel_initializer=_init(out_init)
        ),
    ])
    return _compile(model, opt, loss, metrics)


def binary_mlp(input_shape, **kw):
    """`mlp` with a sigmoid unit and binary cross-entropy."""
    kw.setdefault("out", 1)
    kw.setdefault("out_act", "sigmoid")
    kw.setdefault("loss", "binary_crossentropy")
    return mlp(input_shape, **kw)


def regression_mlp(input_shape, **kw):
    """`mlp` with one linear unit and mean squared error."""
    kw.setdefault("out", 1)
    kw.setdefault("out_act", None)
    kw.setdefault("loss", "mse")
    kw.setdefault("metrics", ())
    return mlp(input_shape, **kw)

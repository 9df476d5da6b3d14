"""Every kit optimizer trains a small MLP on digits, with and without XLA."""

import keras
import pytest

import keras_training_kit as ktk

# Learning rates a user would pick for each rule on standardized inputs.
SETTINGS = {
    "SGD": lambda: ktk.optimizers.SGD(0.1),
    "Momentum": lambda: ktk.optimizers.Momentum(0.02, 0.9),
    "Momentum(ema)": lambda: ktk.optimizers.Momentum(0.2, 0.9, ema=True),
    "Momentum(nesterov)": lambda: ktk.optimizers.Momentum(
        0.02, 0.9, nesterov=True
    ),
    "Adagrad": lambda: ktk.optimizers.Adagrad(0.05),
    "RMSProp": lambda: ktk.optimizers.RMSProp(0.002),
    "Adam": lambda: ktk.optimizers.Adam(0.002),
    "Adam(amsgrad)": lambda: ktk.optimizers.Adam(0.002, amsgrad=True),
}


def _mlp():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_trains_mlp_on_digits(digits, name, jit_compile):
    (x, y), (xv, yv) = digits
    model = _mlp()
    model.compile(
        optimizer=SETTINGS[name](),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    _, accuracy = model.evaluate(xv, yv, verbose=0)
    assert accuracy > 0.9, f"{name}: validation accuracy {accuracy:.3f}"


# The same trajectory tests on JAX and PyTorch: tests/backends/.

"""The course's claims about batch normalization, and the example script."""

import importlib.util
import math
import pathlib

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _deep_sigmoid_mlp(batch_norm: bool, depth: int = 10, width: int = 32):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((64,))]
    for _ in range(depth):
        layers.append(keras.layers.Dense(width, use_bias=not batch_norm))
        if batch_norm:  # after the affine map, before the nonlinearity
            layers.append(ktk.layers.BatchNormalization())
        layers.append(keras.layers.Activation("sigmoid"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy"
    )
    return model


def test_batch_norm_makes_a_deep_sigmoid_mlp_trainable(digits):
    """Topic 11: BN fights vanishing gradients in a deep sigmoid network."""
    (xt, yt), _ = digits
    final = {}
    for batch_norm in (False, True):
        model = _deep_sigmoid_mlp(batch_norm)
        history = model.fit(xt, yt, batch_size=32, epochs=4, verbose=0)
        final[batch_norm] = history.history["loss"][-1]
    chance = math.log(10)  # the loss of a uniform prediction
    # Without BN the gradients vanish and the loss sits at chance level.
    assert final[False] > 0.95 * chance
    # With BN the same network, optimizer and epochs really learn.
    assert final[True] < 0.5 * chance
    assert final[False] - final[True] > 1.0


@pytest.mark.slow  # five models traced and fitted: ~20-30 s
def test_regularization_example_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "regularization_example", ROOT / "examples" / "regularization.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "curves.png"
    results = example.main(
        ["--out", str(out), "--epochs", "2", "--train-size", "120"]
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(results) == {"none", "l2", "l1", "dropout", "bn"}
    printed = capsys.readouterr().out
    for variant, r in results.items():
        assert len(r["history"]["val_ce"]) == 2
        assert np.isfinite(r["table"]["val_ce"])
        assert any(line.startswith(variant) for line in printed.splitlines())
    # Each variant really carries its regularizer.
    assert any(
        isinstance(layer, ktk.layers.Dropout)
        for layer in example.build_model("dropout").layers
    )
    assert any(
        isinstance(layer, ktk.layers.BatchNormalization)
        for layer in example.build_model("bn").layers
    )
    assert len(example.build_model("l2").losses) == 3

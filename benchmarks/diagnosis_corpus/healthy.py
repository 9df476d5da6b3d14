"""Healthy settings: runs with nothing to fix, including the hard ones.

Many are also the fixed twins of faulty settings (same task, the remedy
applied). The hard ones: brisk SGD + momentum, batch size 8, noisy
regression targets, 10% label noise, cyclical and one-cycle learning
rates, BN + dropout, 3- and 100-epoch runs, class imbalance, early
stopping, binary and multi-label heads, `from_logits=True`, and the user
report of a ReLU net at ~97% accuracy where half of the units never fire.
"""

from __future__ import annotations

from functools import partial as p

import keras

import keras_training_kit as ktk

from . import data as d
from . import models as m

D64, D8 = (64,), (8, 8, 1)


def _es(patience=4):
    return lambda: [
        ktk.callbacks.EarlyStopping(patience=patience, verbose=0)
    ]


def _clr():
    # digits: 19 steps per epoch; a half cycle of 2 epochs.
    sched = ktk.schedules.CyclicalLearningRate(0.005, 0.1, step_size=38)
    return lambda: keras.optimizers.SGD(sched)


def _one_cycle():
    # moons: 13 steps per epoch x 20 epochs.
    return lambda: ktk.optimizers.Momentum(
        ktk.schedules.OneCycle(0.3, total_steps=260), momentum=0.9
    )


def _logits():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _h(name, tags, data, model, **fit):
    fit.setdefault("batch_size", 32)
    return ("healthy/" + name, "healthy", tags, data, model, fit)


def specs():
    bce = m.binary_mlp
    reg = m.regression_mlp
    return [
        # --- digits MLPs and their variants
        _h("digits_mlp_adam", ("digits", "mlp", "adam", "multiclass"),
           d.digits, p(m.mlp, D64, opt=m.adam(1e-3)), epochs=15),
        _h("digits_mlp_sgd", ("digits", "mlp", "sgd", "multiclass"),
           d.digits, p(m.mlp, D64, opt=m.sgd(0.05)), epochs=20),
        _h("digits_mlp_sgd_2ep", ("digits", "mlp", "sgd", "multiclass"),
           d.digits, p(m.mlp, D64, opt=m.sgd(0.2)), epochs=2),
        _h("digits_momentum_brisk",
           ("digits", "mlp", "momentum", "multiclass"),
           d.digits, p(m.mlp, D64, opt=m.momentum(0.05, 0.9)), epochs=12),
        _h("digits_batch8", ("digits", "mlp", "adam", "multiclass"),
           d.digits, p(m.mlp, D64, opt=m.adam(1e-3)), epochs=6,
           batch_size=8),
        _h("digits_label_noise", ("digits", "mlp", "adam", "multiclass"),
           p(d.digits, label_noise=0.1),
           p(m.mlp, D64, opt=m.adam(1e-3), dropout=0.2), epochs=10),
        _h("digits_clr", ("digits", "mlp", "sgd", "clr", "multiclass"),
           d.digits, p(m.mlp, D64, opt=_clr()), epochs=12),
        _h("digits_bn_dropout", ("digits", "mlp", "bn", "dropout", "adam",
                                 "multiclass"),
           d.digits, p(m.mlp, D64, opt=m.adam(1e-3), bn=True, dropout=0.3),
           epochs=15),
        _h("digits_logits", ("digits", "mlp", "adam", "logits",
                             "multiclass"),
           d.digits, p(m.mlp, D64, opt=m.adam(1e-3), out_act=None,
                       loss=_logits()), epochs=15),
        _h("digits_conv", ("digits", "conv", "adam", "multiclass"),
           p(d.digits, image=True), p(m.conv, opt=m.adam(3e-3)), epochs=10),
        _h("digits_half_dead", ("digits", "mlp", "adam", "multiclass",
                                "user_report"),
           d.digits, p(m.mlp, D64, hidden=(128,), opt=m.adam(1e-3),
                       dead_half=True), epochs=15),
        _h("digits_unit_adam", ("digits", "mlp", "adam", "multiclass",
                                "user_report"),
           p(d.digits, scale="unit"), p(m.mlp, D64, opt=m.adam(1e-3)),
           epochs=15),
        _h("digits_small_es", ("digits", "mlp", "adam", "early_stopping",
                               "multiclass"),
           p(d.digits, n_train=100, label_noise=0.3),
           p(m.mlp, D64, hidden=(512, 512), opt=m.adam(1e-3)),
           epochs=60, batch_size=16, callbacks=_es()),
        _h("digits_deep_relu", ("digits", "mlp", "deep", "sgd",
                                "multiclass"),
           d.digits, p(m.mlp, D64, hidden=(32,) * 8, init="he_normal",
                       opt=m.sgd(0.05)), epochs=15),
        _h("digits_deep_he", ("digits", "mlp", "deep", "adam",
                              "multiclass"),
           d.digits, p(m.mlp, D64, hidden=(64,) * 6, init="he_normal",
                       opt=m.adam(1e-3)), epochs=10),
        _h("digits_leaky", ("digits", "mlp", "adam", "multiclass"),
           d.digits, p(m.mlp, D64, act="leaky", bias=-3.0,
                       opt=m.adam(1e-3)), epochs=15),
        _h("digits_tanh", ("digits", "mlp", "sgd", "multiclass"),
           d.digits, p(m.mlp, D64, act="tanh", opt=m.sgd(0.05)),
           epochs=15),
        # --- breast cancer (binary)
        _h("cancer_mlp", ("cancer", "mlp", "adam", "binary"),
           d.cancer, p(bce, (30,), opt=m.adam(3e-3)), epochs=10),
        _h("cancer_rmsprop", ("cancer", "mlp", "rmsprop", "binary"),
           d.cancer, p(bce, (30,), opt=m.krmsprop(1e-3)), epochs=10),
        _h("cancer_small_es", ("cancer", "mlp", "adam", "early_stopping",
                               "binary"),
           p(d.cancer, n_train=60), p(bce, (30,), hidden=(256, 256),
                                      opt=m.adam(1e-3)),
           epochs=100, batch_size=16, callbacks=_es()),
        _h("cancer_deep_tanh", ("cancer", "mlp", "deep", "sgd", "binary"),
           d.cancer, p(bce, (30,), hidden=(32,) * 8, act="tanh",
                       opt=m.sgd(0.05)), epochs=10),
        _h("cancer_deep_he", ("cancer", "mlp", "deep", "adam", "binary"),
           d.cancer, p(bce, (30,), hidden=(64,) * 6, init="he_normal",
                       opt=m.adam(1e-3)), epochs=8),
        _h("cancer_leaky", ("cancer", "mlp", "adam", "binary"),
           d.cancer, p(bce, (30,), act="leaky", bias=-3.0,
                       opt=m.adam(3e-3)), epochs=20),
        _h("cancer_sigmoid", ("cancer", "mlp", "sgd", "binary"),
           d.cancer, p(bce, (30,), act="sigmoid", opt=m.sgd(0.5)),
           epochs=20),
        # --- moons / circles (binary)
        _h("moons_mlp", ("moons", "mlp", "adam", "binary"),
           d.moons, p(bce, (2,), hidden=(32, 32), opt=m.adam(0.01)),
           epochs=15),
        _h("circles_mlp", ("circles", "mlp", "adam", "binary"),
           p(d.moons, kind="circles"), p(bce, (2,), hidden=(32, 32),
                                         opt=m.adam(0.01)), epochs=30),
        _h("moons_onecycle", ("moons", "mlp", "momentum", "one_cycle",
                              "binary"),
           d.moons, p(bce, (2,), hidden=(32, 32), opt=_one_cycle()),
           epochs=20),
        _h("moons_3ep", ("moons", "mlp", "adam", "short", "binary"),
           d.moons, p(bce, (2,), hidden=(32, 32), opt=m.adam(0.02)),
           epochs=3, batch_size=16),
        _h("moons_100ep", ("moons", "mlp", "adam", "long", "binary"),
           p(d.moons, n_train=200), p(bce, (2,), hidden=(16, 16),
                                      opt=m.adam(3e-3)),
           epochs=100, batch_size=64),
        _h("moons_small_es", ("moons", "mlp", "adam", "early_stopping",
                              "binary"),
           p(d.moons, n_train=40, noise=0.35),
           p(bce, (2,), hidden=(256, 256), opt=m.adam(3e-3)),
           epochs=200, batch_size=20, callbacks=_es(10)),
        _h("moons_deep_relu", ("moons", "mlp", "deep", "sgd", "binary"),
           d.moons, p(bce, (2,), hidden=(16,) * 10, init="he_normal",
                      opt=m.sgd(0.1)), epochs=30),
        _h("moons_deep_he", ("moons", "mlp", "deep", "rmsprop", "binary"),
           d.moons, p(bce, (2,), hidden=(64,) * 6, init="he_normal",
                      opt=m.rmsprop(1e-3)), epochs=20),
        _h("moons_leaky", ("moons", "mlp", "adam", "binary"),
           d.moons, p(bce, (2,), hidden=(32, 32), act="leaky", bias=-3.0,
                      opt=m.adam(0.01)), epochs=30),
        _h("moons_tanh", ("moons", "mlp", "sgd", "binary"),
           d.moons, p(bce, (2,), hidden=(32, 32), act="tanh",
                      opt=m.sgd(0.3)), epochs=30),
        _h("blobs_imbalanced", ("blobs", "mlp", "adam", "imbalance",
                                "binary"),
           p(d.blobs, imbalance=0.1), p(bce, (10,), opt=m.adam(3e-3)),
           epochs=15),
        _h("multilabel", ("multilabel", "mlp", "adam", "multilabel"),
           d.multilabel, p(bce, (20,), out=5, opt=m.adam(3e-3),
                           metrics=("binary_accuracy",)), epochs=15),
        _h("wine_mlp", ("wine", "mlp", "sgd", "multiclass"),
           d.wine, p(m.mlp, (13,), out=3, opt=m.sgd(0.05)), epochs=30,
           batch_size=16),
        # --- sequences (LSTM / GRU)
        _h("seq_lstm", ("sequence", "lstm", "adam", "binary"),
           d.sequence, p(m.rnn, "lstm", opt=m.adam(1e-2)), epochs=15),
        _h("seq_gru_regression", ("sequence", "gru", "adam", "regression"),
           p(d.sequence, task="regression"),
           p(m.rnn, "gru", out_act=None, loss="mse", metrics=(),
             opt=m.adam(1e-2)), epochs=15),
        # --- regression
        _h("friedman_mlp", ("friedman", "mlp", "adam", "regression"),
           d.friedman, p(reg, (10,), opt=m.adam(3e-3)), epochs=15),
        _h("friedman_sgd", ("friedman", "mlp", "sgd", "regression"),
           d.friedman, p(reg, (10,), opt=m.ksgd(0.01)), epochs=30),
        _h("friedman_noisy", ("friedman", "mlp", "adam", "noisy_targets",
                              "regression"),
           p(d.friedman, noise=3.0), p(reg, (10,), opt=m.adam(3e-3)),
           epochs=30),
        _h("friedman_raw", ("friedman", "mlp", "adam", "regression"),
           p(d.friedman, target="raw"), p(reg, (10,), opt=m.adam(3e-3)),
           epochs=30),
        _h("friedman_small_es", ("friedman", "mlp", "adam",
                                 "early_stopping", "regression"),
           p(d.friedman, n_train=60, noise=1.0),
           p(reg, (10,), hidden=(256, 256), opt=m.adam(3e-3)),
           epochs=150, batch_size=20, callbacks=_es(10)),
        _h("friedman_deep_relu", ("friedman", "mlp", "deep", "sgd",
                                  "regression"),
           d.friedman, p(reg, (10,), hidden=(32,) * 8, init="he_normal",
                         opt=m.sgd(0.01)), epochs=30),
        _h("friedman_deep_he", ("friedman", "mlp", "deep", "adam",
                                "regression"),
           d.friedman, p(reg, (10,), hidden=(64,) * 5, init="he_normal",
                         opt=m.adam(1e-3)), epochs=20),
        _h("friedman_leaky", ("friedman", "mlp", "adam", "regression"),
           d.friedman, p(reg, (10,), act="leaky", bias=-3.0,
                         opt=m.adam(3e-3)), epochs=30),
        _h("friedman_tanh", ("friedman", "mlp", "sgd", "regression"),
           d.friedman, p(reg, (10,), act="tanh", opt=m.sgd(0.02)),
           epochs=30),
        _h("diabetes_mlp", ("diabetes", "mlp", "adam", "regression"),
           d.diabetes, p(reg, (10,), hidden=(32,), opt=m.adam(3e-3)),
           epochs=30),
        _h("diabetes_rmsprop", ("diabetes", "mlp", "rmsprop",
                                "regression"),
           d.diabetes, p(reg, (10,), hidden=(32,), opt=m.rmsprop(3e-3)),
           epochs=30),
    ]

"""Faulty settings: one known root cause each, with its fixed twin.

Each entry differs from its twin (a healthy setting, see `healthy.py`) in
the fault only: the remedy applied to the same task. The user reports of
issue 8 are ported here: slow steady SGD decline and a 2-epoch run with a
far-too-low learning rate (`lr_too_low`), [0, 1] pixels with Adam at 0.1
(`lr_too_high`), regression targets up to 1e8 (`unscaled_targets`) and a
NaN in one input row (`diverged`).
"""

from __future__ import annotations

from functools import partial as p

from . import data as d
from . import models as m

D64 = (64,)


def _f(code, name, twin, tags, data, model, **fit):
    fit.setdefault("batch_size", 32)
    return (f"{code}/{name}", code, tags, data, model, fit, "healthy/" + twin)


def specs():
    bce = m.binary_mlp
    reg = m.regression_mlp
    out = []
    # underfitting: a model too small (linear) or regularized too hard.
    f = p(_f, "underfitting")
    out += [
        f("moons_linear", "moons_mlp", ("moons", "linear", "adam", "binary"),
          d.moons, p(bce, (2,), hidden=(), opt=m.adam(0.01)), epochs=30),
        f("digits_heavy_l2", "digits_mlp_adam",
          ("digits", "mlp", "adam", "multiclass"),
          d.digits, p(m.mlp, D64, opt=m.adam(1e-3), l2=0.3), epochs=15),
        f("circles_linear", "circles_mlp",
          ("circles", "linear", "adam", "binary"),
          p(d.moons, kind="circles"),
          p(bce, (2,), hidden=(), opt=m.adam(0.01)), epochs=30),
        f("friedman_linear", "friedman_mlp",
          ("friedman", "linear", "adam", "regression"),
          d.friedman, p(reg, (10,), hidden=(), opt=m.adam(3e-3)),
          epochs=30),
    ]
    # overfitting: few examples, a big net, many epochs (twin: early stop).
    f = p(_f, "overfitting")
    out += [
        f("digits_small_big", "digits_small_es",
          ("digits", "mlp", "adam", "multiclass"),
          p(d.digits, n_train=100, label_noise=0.3),
          p(m.mlp, D64, hidden=(512, 512), opt=m.adam(1e-3)),
          epochs=60, batch_size=16),
        f("cancer_small_big", "cancer_small_es",
          ("cancer", "mlp", "adam", "binary"),
          p(d.cancer, n_train=60),
          p(bce, (30,), hidden=(256, 256), opt=m.adam(1e-3)),
          epochs=100, batch_size=16),
        f("moons_small_big", "moons_small_es",
          ("moons", "mlp", "adam", "binary"),
          p(d.moons, n_train=40, noise=0.35),
          p(bce, (2,), hidden=(256, 256), opt=m.adam(3e-3)),
          epochs=200, batch_size=20),
        f("friedman_small_big", "friedman_small_es",
          ("friedman", "mlp", "adam", "regression"),
          p(d.friedman, n_train=60, noise=1.0),
          p(reg, (10,), hidden=(256, 256), opt=m.adam(3e-3)),
          epochs=150, batch_size=20),
    ]
    # lr_too_high: finite but bouncing / rising losses.
    f = p(_f, "lr_too_high")
    out += [
        f("digits_unit_adam", "digits_unit_adam",
          ("digits", "mlp", "adam", "multiclass", "user_report"),
          p(d.digits, scale="unit"), p(m.mlp, D64, opt=m.adam(0.1)),
          epochs=15),
        f("cancer_rmsprop", "cancer_rmsprop",
          ("cancer", "mlp", "rmsprop", "binary"),
          d.cancer, p(bce, (30,), opt=m.krmsprop(0.3)), epochs=20),
        f("friedman_adam", "friedman_mlp",
          ("friedman", "mlp", "adam", "regression"),
          d.friedman, p(reg, (10,), opt=m.adam(0.3)), epochs=30),
        f("moons_adam", "moons_mlp", ("moons", "mlp", "adam", "binary"),
          d.moons, p(bce, (2,), hidden=(32, 32), opt=m.adam(0.5)),
          epochs=30),
        f("seq_lstm_adam", "seq_lstm", ("sequence", "lstm", "adam",
                                        "binary"),
          d.sequence, p(m.rnn, "lstm", opt=m.adam(0.5)), epochs=15),
    ]
    # lr_too_low: the loss falls, slowly and steadily.
    f = p(_f, "lr_too_low")
    out += [
        f("digits_sgd_20ep", "digits_mlp_sgd",
          ("digits", "mlp", "sgd", "multiclass", "user_report"),
          d.digits, p(m.mlp, D64, opt=m.sgd(5e-4)), epochs=20),
        f("digits_sgd_2ep", "digits_mlp_sgd_2ep",
          ("digits", "mlp", "sgd", "multiclass", "user_report"),
          d.digits, p(m.mlp, D64, opt=m.sgd(2e-3)), epochs=2),
        f("cancer_adam", "cancer_mlp", ("cancer", "mlp", "adam", "binary"),
          d.cancer, p(bce, (30,), opt=m.adam(3e-5)), epochs=20),
        f("friedman_sgd", "friedman_sgd",
          ("friedman", "mlp", "sgd", "regression"),
          d.friedman, p(reg, (10,), opt=m.ksgd(2e-4)), epochs=30),
        f("seq_lstm_adam", "seq_lstm", ("sequence", "lstm", "adam",
                                        "binary"),
          d.sequence, p(m.rnn, "lstm", opt=m.adam(1e-4)), epochs=15),
    ]
    # noisy_loss: batch size 1 (twin: the usual batch of 32).
    f = p(_f, "noisy_loss")
    out += [
        f("moons_b1", "moons_mlp", ("moons", "mlp", "adam", "binary"),
          p(d.moons, n_train=200),
          p(bce, (2,), hidden=(32, 32), opt=m.adam(0.01)),
          epochs=4, batch_size=1),
        f("cancer_b1", "cancer_mlp", ("cancer", "mlp", "adam", "binary"),
          p(d.cancer, n_train=200), p(bce, (30,), opt=m.adam(3e-3)),
          epochs=4, batch_size=1),
        f("friedman_b1", "friedman_mlp",
          ("friedman", "mlp", "adam", "regression"),
          p(d.friedman, n_train=200), p(reg, (10,), opt=m.adam(3e-3)),
          epochs=4, batch_size=1),
        f("digits_b1", "digits_momentum_brisk",
          ("digits", "mlp", "momentum", "multiclass"),
          p(d.digits, n_train=300), p(m.mlp, D64, opt=m.momentum(0.05)),
          epochs=3, batch_size=1),
    ]
    # diverged: the loss (or the weights) become NaN / Inf.
    f = p(_f, "diverged")
    out += [
        f("friedman_sgd_high", "friedman_sgd",
          ("friedman", "mlp", "sgd", "regression"),
          d.friedman, p(reg, (10,), opt=m.ksgd(0.5)), epochs=30),
        f("digits_nan_row", "digits_mlp_adam",
          ("digits", "mlp", "adam", "multiclass", "user_report"),
          p(d.digits, nan_row=True), p(m.mlp, D64, opt=m.adam(1e-3)),
          epochs=15),
        f("moons_inf_row", "moons_mlp", ("moons", "mlp", "adam", "binary"),
          p(d.moons, bad_row="inf"),
          p(bce, (2,), hidden=(32, 32), opt=m.adam(0.01)), epochs=30),
        f("diabetes_rmsprop_high", "diabetes_rmsprop",
          ("diabetes", "mlp", "rmsprop", "regression"),
          d.diabetes, p(reg, (10,), hidden=(32,), opt=m.rmsprop(50.0)),
          epochs=30),
        f("friedman_deep_sgd_high", "friedman_deep_relu",
          ("friedman", "mlp", "deep", "sgd", "regression"),
          d.friedman, p(reg, (10,), hidden=(32,) * 8, init="he_normal",
                        opt=m.sgd(0.2)), epochs=30),
    ]
    # vanishing_gradients: deep sigmoid / small-init tanh nets under SGD.
    f = p(_f, "vanishing_gradients")
    out += [
        f("digits_deep_sigmoid", "digits_deep_relu",
          ("digits", "mlp", "deep", "sgd", "multiclass"),
          d.digits, p(m.mlp, D64, hidden=(32,) * 8, act="sigmoid",
                      opt=m.sgd(0.05)), epochs=15),
        f("moons_deep_sigmoid", "moons_deep_relu",
          ("moons", "mlp", "deep", "sgd", "binary"),
          d.moons, p(bce, (2,), hidden=(16,) * 10, act="sigmoid",
                     opt=m.sgd(0.1)), epochs=30),
        f("cancer_deep_tanh_small", "cancer_deep_tanh",
          ("cancer", "mlp", "deep", "sgd", "binary"),
          d.cancer, p(bce, (30,), hidden=(32,) * 8, act="tanh", init=0.03,
                      opt=m.sgd(0.05)), epochs=20),
        f("friedman_deep_sigmoid", "friedman_deep_relu",
          ("friedman", "mlp", "deep", "sgd", "regression"),
          d.friedman, p(reg, (10,), hidden=(32,) * 8, act="sigmoid",
                        opt=m.sgd(0.01)), epochs=30),
    ]
    # exploding_gradients: deep ReLU nets with a far too large init.
    f = p(_f, "exploding_gradients")
    out += [
        f("digits_big_init", "digits_deep_he",
          ("digits", "mlp", "deep", "adam", "multiclass"),
          d.digits, p(m.mlp, D64, hidden=(64,) * 6, init=1.0,
                      opt=m.adam(1e-3)), epochs=10),
        f("moons_big_init", "moons_deep_he",
          ("moons", "mlp", "deep", "rmsprop", "binary"),
          d.moons, p(bce, (2,), hidden=(64,) * 6, init=1.5,
                     opt=m.rmsprop(1e-3)), epochs=20),
        f("cancer_big_init", "cancer_deep_he",
          ("cancer", "mlp", "deep", "adam", "binary"),
          d.cancer, p(bce, (30,), hidden=(64,) * 6, init=1.0,
                      opt=m.adam(1e-3)), epochs=15),
        f("friedman_big_init", "friedman_deep_he",
          ("friedman", "mlp", "deep", "adam", "regression"),
          d.friedman, p(reg, (10,), hidden=(64,) * 5, init=1.0,
                        opt=m.adam(1e-3)), epochs=20),
    ]
    # dead_units: ReLU units pushed off by a negative bias (twin: leaky).
    f = p(_f, "dead_units")
    out += [
        f("digits_neg_bias", "digits_leaky",
          ("digits", "mlp", "adam", "multiclass"),
          d.digits, p(m.mlp, D64, bias=-3.0, opt=m.adam(1e-3)), epochs=15),
        f("moons_neg_bias", "moons_leaky",
          ("moons", "mlp", "adam", "binary"),
          d.moons, p(bce, (2,), hidden=(32, 32), bias=-3.0,
                     opt=m.adam(0.01)), epochs=30),
        f("cancer_neg_bias", "cancer_leaky",
          ("cancer", "mlp", "adam", "binary"),
          d.cancer, p(bce, (30,), bias=-3.0, opt=m.adam(3e-3)), epochs=20),
        f("friedman_neg_bias", "friedman_leaky",
          ("friedman", "mlp", "adam", "regression"),
          d.friedman, p(reg, (10,), bias=-3.0, opt=m.adam(3e-3)),
          epochs=30),
    ]
    # saturated_units: tanh / sigmoid units pinned by a large init.
    f = p(_f, "saturated_units")
    out += [
        f("digits_tanh_big_init", "digits_tanh",
          ("digits", "mlp", "sgd", "multiclass"),
          d.digits, p(m.mlp, D64, act="tanh", init=1.0, opt=m.sgd(0.05)),
          epochs=15),
        f("moons_tanh_big_init", "moons_tanh",
          ("moons", "mlp", "sgd", "binary"),
          d.moons, p(bce, (2,), hidden=(32, 32), act="tanh", init=4.0,
                     opt=m.sgd(0.3)), epochs=30),
        f("cancer_sigmoid_big_init", "cancer_sigmoid",
          ("cancer", "mlp", "sgd", "binary"),
          d.cancer, p(bce, (30,), act="sigmoid", init=2.0,
                      opt=m.sgd(0.5)), epochs=20),
        f("friedman_tanh_big_init", "friedman_tanh",
          ("friedman", "mlp", "sgd", "regression"),
          d.friedman, p(reg, (10,), act="tanh", init=1.5, opt=m.sgd(0.02)),
          epochs=30),
    ]
    # unscaled_inputs: features on very different scales (twin: standard).
    f = p(_f, "unscaled_inputs")
    out += [
        f("cancer_raw", "cancer_mlp", ("cancer", "mlp", "adam", "binary"),
          p(d.cancer, scale="raw"), p(bce, (30,), opt=m.adam(3e-3)),
          epochs=20),
        f("digits_spread", "digits_mlp_adam",
          ("digits", "mlp", "adam", "multiclass"),
          p(d.digits, scale="spread"), p(m.mlp, D64, opt=m.adam(1e-3)),
          epochs=15),
        f("moons_spread", "moons_mlp", ("moons", "mlp", "adam", "binary"),
          p(d.moons, scale="spread"),
          p(bce, (2,), hidden=(32, 32), opt=m.adam(0.01)), epochs=30),
        f("friedman_spread", "friedman_mlp",
          ("friedman", "mlp", "adam", "regression"),
          p(d.friedman, scale="spread"), p(reg, (10,), opt=m.adam(3e-3)),
          epochs=30),
        f("wine_raw", "wine_mlp", ("wine", "mlp", "sgd", "multiclass"),
          p(d.wine, scale="raw"), p(m.mlp, (13,), out=3, opt=m.sgd(0.05)),
          epochs=30, batch_size=16),
    ]
    # high_initial_loss: an output layer initialised far too large.
    f = p(_f, "high_initial_loss")
    out += [
        f("digits_out_init", "digits_mlp_adam",
          ("digits", "mlp", "adam", "multiclass"),
          d.digits, p(m.mlp, D64, out_init=3.0, opt=m.adam(1e-3)),
          epochs=15),
        f("moons_out_init", "moons_mlp", ("moons", "mlp", "adam", "binary"),
          d.moons, p(bce, (2,), hidden=(32, 32), out_init=10.0,
                     opt=m.adam(0.01)), epochs=30),
        f("cancer_out_bias", "cancer_mlp",
          ("cancer", "mlp", "adam", "binary"),
          d.cancer, p(bce, (30,), out_bias=8.0, opt=m.adam(3e-3)),
          epochs=20),
        f("friedman_out_bias", "friedman_mlp",
          ("friedman", "mlp", "adam", "regression"),
          d.friedman, p(reg, (10,), out_bias=30.0, opt=m.adam(3e-3)),
          epochs=30),
    ]
    # loss_output_mismatch: the head does not fit the loss / the targets.
    f = p(_f, "loss_output_mismatch")
    out += [
        f("cancer_softmax1", "cancer_mlp",
          ("cancer", "mlp", "adam", "binary"),
          d.cancer, p(bce, (30,), out_act="softmax", opt=m.adam(3e-3)),
          epochs=20),
        f("moons_relu_bce", "moons_mlp", ("moons", "mlp", "adam", "binary"),
          d.moons, p(bce, (2,), hidden=(32, 32), out_act="relu",
                     opt=m.adam(0.01)), epochs=30),
        f("friedman_sigmoid_raw", "friedman_raw",
          ("friedman", "mlp", "adam", "regression"),
          p(d.friedman, target="raw"),
          p(reg, (10,), out_act="sigmoid", opt=m.adam(3e-3)), epochs=30),
        f("digits_mse_labels", "digits_mlp_adam",
          ("digits", "mlp", "adam", "multiclass"),
          d.digits, p(m.mlp, D64, out=1, out_act=None, loss="mse",
                      metrics=(), opt=m.adam(1e-3)), epochs=15),
        f("digits_linear_ce", "digits_mlp_adam",
          ("digits", "mlp", "adam", "multiclass"),
          d.digits, p(m.mlp, D64, out_act=None, opt=m.adam(1e-3)),
          epochs=15),
    ]
    # unscaled_targets: regression targets on a huge scale (up to ~1e8).
    f = p(_f, "unscaled_targets")
    out += [
        f("friedman_1e7", "friedman_mlp",
          ("friedman", "mlp", "adam", "regression", "user_report"),
          p(d.friedman, target="raw", target_scale=1e7),
          p(reg, (10,), opt=m.adam(3e-3)), epochs=30),
        f("diabetes_1e6", "diabetes_mlp",
          ("diabetes", "mlp", "adam", "regression"),
          p(d.diabetes, target="raw", target_scale=1e6),
          p(reg, (10,), hidden=(32,), opt=m.adam(3e-3)), epochs=30),
        f("seq_gru_1e7", "seq_gru_regression",
          ("sequence", "gru", "adam", "regression"),
          p(d.sequence, task="regression", target_scale=1e7),
          p(m.rnn, "gru", out_act=None, loss="mse", metrics=(),
            opt=m.adam(1e-2)), epochs=15),
        f("diabetes_rmsprop_1e6", "diabetes_rmsprop",
          ("diabetes", "mlp", "rmsprop", "regression"),
          p(d.diabetes, target="raw", target_scale=1e6),
          p(reg, (10,), hidden=(32,), opt=m.rmsprop(3e-3)), epochs=30),
    ]
    return out

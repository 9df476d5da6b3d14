"""Dropout as an ensemble: weight scaling vs the Monte-Carlo average.

The course (topic 14): each update drops each unit with probability p, so
training samples one of exponentially many sub-networks that share
weights; at test time there is no dropout and the weights are multiplied
by (1 - p), which approximates the average of the ensemble. Here
`ktk.layers.Dropout(0.5, scale_at="test")` (the slide's form: identity in
training, x(1 - p) at test) in an MLP on digits; its test-time prediction
(weight scaling) is compared with the Monte-Carlo average of n sampled
sub-networks (`ktk.layers.predict_with_dropout`) and with single
sub-networks.

    python examples/dropout_ensemble.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

P = 0.5


def main():
    args = _common.arguments(__doc__)
    epochs = 8 if args.quick else 30
    (x, y), (xv, yv) = _common.digits(
        train_size=600 if args.quick else None, seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
        ktk.layers.Dropout(P, scale_at="test", seed=args.seed),
        keras.layers.Dense(256, activation="relu"),
        ktk.layers.Dropout(P, scale_at="test", seed=args.seed + 1),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(ktk.optimizers.Adam(1e-3),
                  "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    scaled = keras.ops.convert_to_numpy(model.predict(xv, verbose=0))
    acc_scaled = float(np.mean(scaled.argmax(1) == yv))
    counts = [1, 2, 5, 10, 30] + ([] if args.quick else [100])
    acc_mc, agree = {}, {}
    for n in counts:
        mean, _ = ktk.layers.predict_with_dropout(model, xv, samples=n)
        mean = keras.ops.convert_to_numpy(mean)
        acc_mc[n] = float(np.mean(mean.argmax(1) == yv))
        agree[n] = float(np.mean(mean.argmax(1) == scaled.argmax(1)))
        print(f"  MC average of {n:>3} sub-networks: accuracy "
              f"{acc_mc[n]:.4f}, agrees with weight scaling on "
              f"{agree[n]:.4f}", flush=True)
    singles = [acc_mc[1]]
    for _ in range(4):  # more single sub-networks, for their spread
        mean, _ = ktk.layers.predict_with_dropout(model, xv, samples=1)
        singles.append(float(np.mean(
            keras.ops.convert_to_numpy(mean).argmax(1) == yv)))
    print(f"  weight scaling (x(1 - p) at test): accuracy {acc_scaled:.4f}")
    fig, axes = _common.new_figure(size=(6.4, 4))
    ax = axes[0][0]
    ax.semilogx(counts, [acc_mc[n] for n in counts], "-o",
                label="MC average of n sub-networks")
    ax.axhline(acc_scaled, c="tab:green", ls="--",
               label="weight scaling x(1-p)")
    ax.plot([1] * len(singles), singles, "x", c="tab:red",
            label="single sub-networks")
    ax.set_xlabel("sub-networks averaged (log)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"dropout p={P} as an ensemble")
    ax.legend(fontsize=8)
    figure = _common.save(fig, args.out, "dropout_ensemble.png")
    big = counts[-1]
    _common.claim(
        args.out, "dropout_ensemble",
        "the weight-scaled network approximates the ensemble average: it "
        "agrees with the MC average of many sub-networks on more "
        "predictions than a single sub-network does, and both are more "
        "accurate than the mean single sub-network",
        agree[big] > agree[1] and acc_scaled > np.mean(singles)
        and acc_mc[big] > np.mean(singles),
        [figure], accuracy_weight_scaling=acc_scaled,
        accuracy_mc_average=acc_mc, agreement_with_weight_scaling=agree,
        accuracy_single_subnetworks=singles, epochs=epochs,
    )


if __name__ == "__main__":
    main()

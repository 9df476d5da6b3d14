"""Diagnosis and repair of a broken run: vanishing gradients, then BN or ReLU.

The course (topics 1, 5, 11): babysit the run; when it does not work on the
training data, find out why and apply the remedy. A deep net of 8 sigmoid
layers on standardized digits barely learns: its gradients vanish in the
early layers. `ktk.diagnosis.repair` trains it with
`ktk.callbacks.TrainingDiagnosis`, finds `vanishing_gradients`, applies the
finding's remedies in order to rebuilt copies (batch normalization before
each nonlinearity, ReLU instead of the sigmoids, He/Glorot initialization),
retrains each from the same seed, and keeps the one with the best
validation loss among those that remove the finding and beat the
run-to-run noise (ReLU in the quick mode, batch normalization in the
demo's 15 epochs). It writes the before/after curves and `repair.html`
(`RepairReport.to_html`).

    python examples/repair.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402


def build_model() -> keras.Model:
    """The broken run: 8 sigmoid layers of 64 units, SGD(0.1)."""
    layers = [keras.Input((64,))]
    for _ in range(8):
        layers.append(keras.layers.Dense(64, activation="sigmoid"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(ktk.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    args = _common.arguments(__doc__)
    # BN's moving averages (momentum 0.99) need a few hundred steps before
    # the validation loss shows the repair, so even the quick mode trains
    # on all of the training set
    epochs = 10 if args.quick else 15
    (x, y), (xv, yv) = _common.digits(seed=args.seed)
    report = ktk.diagnosis.repair(
        build_model, x, y, validation_data=(xv, yv), epochs=epochs,
        max_attempts=3, seed=args.seed, verbose=1, batch_size=32,
    )
    print(report.report())
    page = report.to_html(os.path.join(args.out, "repair.html"))
    print(f"page: {page}")
    fig, axes = _common.new_figure(size=(6.4, 4))
    ax = axes[0][0]
    for name, run in (("before", report.before), ("after", report.after)):
        h = run.history
        ep = np.arange(1, len(h["loss"]) + 1)
        ax.plot(ep, h["loss"], "-o", ms=3, label=f"{name}: train")
        ax.plot(ep, h["val_loss"], "--s", ms=3, label=f"{name}: validation")
    ax.axhline(np.log(10), c="grey", lw=0.8, label="chance (ln 10)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("8 sigmoid layers: before and after repair")
    ax.legend(fontsize=8)
    figure = _common.save(fig, args.out, "repair.png")
    val = float(report.model.evaluate(xv, yv, verbose=0)[0])
    before = [f.code for f in report.before.findings]
    after = [f.code for f in report.after.findings]
    kept = [a["remedy"] if isinstance(a["remedy"], str) else
            getattr(a["remedy"], "name", str(a["remedy"]))
            for a in report.attempts if a.get("kept")]
    _common.claim(
        args.out, "repair",
        "the diagnosis finds vanishing gradients in the deep sigmoid net and "
        "repair fixes them: the repaired run is healthy and its validation "
        "loss is far lower",
        "vanishing_gradients" in before and report.repaired
        and report.after.score < 0.5 * report.before.score,
        [figure], findings_before=before, findings_after=after,
        kept=kept, val_loss_before=float(report.before.score),
        val_loss_after=float(report.after.score),
        val_loss_of_returned_model=val, epochs=epochs,
    )


if __name__ == "__main__":
    main()

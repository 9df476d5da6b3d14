"""The learning-rate range test, then one-cycle training at its rate.

The course (topic 6) says to watch the loss for a too small or too large
learning rate; Smith's range test (`ktk.callbacks.LRFinder`) measures both
in one short run: the rate grows exponentially batch by batch, the loss
falls, then explodes. `suggestion` is a decade below the minimum of the
smoothed loss. One-cycle (`ktk.schedules.OneCycle`, Smith 2018) then warms
up to a peak rate and anneals down; here the peak is 5x the suggestion
(still below the rate where the sweep's loss was lowest), and it is
compared with a constant rate at the suggestion, for the same epochs.

    python examples/lr_range_test.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402


def mlp():
    return keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])


def main():
    args = _common.arguments(__doc__)
    epochs = 4 if args.quick else 12
    (x, y), (xv, yv) = _common.digits(
        train_size=600 if args.quick else None, seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    model = mlp()
    model.compile(ktk.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    steps = 80 if args.quick else 120
    finder = ktk.callbacks.LRFinder(min_lr=1e-4, max_lr=10.0, steps=steps,
                                    verbose=0)
    model.fit(x, y, batch_size=32, epochs=steps, verbose=0,
              callbacks=[finder])
    suggestion = float(finder.suggestion)
    lrs = np.array(finder.history["lr"])
    smooth = np.array(finder.history["smoothed_loss"])
    lr_at_min = float(lrs[3:][np.argmin(smooth[3:])])
    at_suggestion = float(np.interp(np.log(suggestion), np.log(lrs), smooth))
    print(f"  range test: {len(lrs)} batches, suggestion {suggestion:.3g}, "
          f"lowest smoothed loss at {lr_at_min:.3g}, "
          f"diverged={finder.diverged}", flush=True)
    total = epochs * int(np.ceil(len(x) / 32))
    runs = {}
    for name, lr in (
        (f"constant {suggestion:.2g}", suggestion),
        (f"one-cycle to {5 * suggestion:.2g}",
         ktk.schedules.OneCycle(5 * suggestion, total_steps=total)),
    ):
        keras.utils.set_random_seed(args.seed)
        model = mlp()
        model.compile(ktk.optimizers.SGD(lr),
                      "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        runs[name] = model.fit(x, y, validation_data=(xv, yv),
                               batch_size=32, epochs=epochs,
                               verbose=0).history
        keras.backend.clear_session()
    fig, axes = _common.new_figure(1, 2, size=(10, 4))
    axes[0][0].semilogx(lrs, finder.history["loss"], ".", ms=2, alpha=0.4,
                        label="batch loss")
    axes[0][0].semilogx(lrs, smooth, label="smoothed")
    axes[0][0].axvline(suggestion, c="tab:green", ls="--",
                       label=f"suggestion {suggestion:.2g}")
    axes[0][0].set_ylim(0, 2 * float(smooth[0]) + 0.5)
    axes[0][0].set_xlabel("learning rate (log)")
    axes[0][0].set_ylabel("loss")
    axes[0][0].set_title("LR range test")
    axes[0][0].legend(fontsize=8)
    for name, h in runs.items():
        ep = np.arange(1, epochs + 1)
        axes[0][1].plot(ep, h["loss"], "-o", ms=3, label=f"{name} train")
        axes[0][1].plot(ep, h["val_loss"], "--s", ms=3, label=f"{name} val")
    axes[0][1].set_yscale("log")
    axes[0][1].set_xlabel("epoch")
    axes[0][1].set_title("constant rate vs one-cycle")
    axes[0][1].legend(fontsize=7)
    figure = _common.save(fig, args.out, "lr_range_test.png")
    final = {n: float(h["loss"][-1]) for n, h in runs.items()}
    val = {n: float(h["val_loss"][-1]) for n, h in runs.items()}
    const, cycle = list(runs)
    _common.claim(
        args.out, "lr_range_test",
        "the range test's loss falls then explodes, and at the suggested "
        "rate it has already fallen below its start; one-cycle up to 5x the "
        "suggestion ends with a lower training loss than the constant "
        "suggested rate in the same epochs",
        finder.diverged and at_suggestion < float(smooth[0])
        and final[cycle] < final[const],
        [figure], suggestion=suggestion, lr_at_lowest_loss=lr_at_min,
        first_smoothed_loss=float(smooth[0]),
        smoothed_loss_at_suggestion=at_suggestion,
        diverged=bool(finder.diverged), final_loss=final, final_val_loss=val,
        epochs=epochs,
    )


if __name__ == "__main__":
    main()

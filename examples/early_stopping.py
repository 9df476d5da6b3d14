"""Early stopping: stop when the validation loss stops improving.

The course (topic 12). An over-sized net (2 x 256 ReLU) on a small slice
of digits overfits: its validation loss reaches a minimum and climbs while
the training loss keeps falling. The same run with
`ktk.callbacks.EarlyStopping(patience=...)` stops a few epochs after the
minimum and restores the best weights (`restore_best_weights=True` is the
kit's default).

    python examples/early_stopping.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402
from regularization import load_slice  # noqa: E402


def build_model() -> keras.Model:
    model = keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(ktk.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    return model


def main():
    args = _common.arguments(__doc__)
    epochs = 20 if args.quick else 60
    patience = 3 if args.quick else 5
    (x, y), (xv, yv) = load_slice(150 if args.quick else 300, args.seed)
    runs = {}
    keras.utils.set_random_seed(args.seed)
    model = build_model()
    runs["no stopping"] = model.fit(
        x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
        verbose=0).history
    full_val = float(model.evaluate(xv, yv, verbose=0))
    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    model = build_model()
    stop = ktk.callbacks.EarlyStopping(patience=patience, verbose=0)
    runs["EarlyStopping"] = model.fit(
        x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
        verbose=0, callbacks=[stop]).history
    restored_val = float(model.evaluate(xv, yv, verbose=0))
    print(f"  {stop.stop_reason}")
    stopped = len(runs["EarlyStopping"]["val_loss"])
    best_epoch = int(np.argmin(runs["EarlyStopping"]["val_loss"])) + 1
    best_val = float(np.min(runs["EarlyStopping"]["val_loss"]))
    fig, axes = _common.new_figure(size=(6.4, 4))
    ax = axes[0][0]
    h = runs["no stopping"]
    ep = np.arange(1, epochs + 1)
    ax.plot(ep, h["loss"], c="tab:blue", label="train")
    ax.plot(ep, h["val_loss"], c="tab:orange", label="validation")
    ax.axvline(best_epoch, c="tab:green", ls="--",
               label=f"best epoch {best_epoch}")
    ax.axvline(stopped, c="tab:red", ls=":", label=f"stopped at {stopped}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log)")
    ax.set_title(f"2x256 net on {len(x)} digits: early stopping")
    ax.legend(fontsize=8)
    figure = _common.save(fig, args.out, "early_stopping.png")
    _common.claim(
        args.out, "early_stopping",
        "early stopping ends the run before the last epoch and keeps the "
        "weights of its best epoch, whose validation loss is below that of "
        "the run trained to the end",
        stopped < epochs and abs(restored_val - best_val) < 1e-4
        and restored_val < full_val,
        [figure], epochs=epochs, stopped_at_epoch=stopped,
        best_epoch=best_epoch, best_val_loss=best_val,
        restored_val_loss=restored_val, final_val_loss_without=full_val,
    )


if __name__ == "__main__":
    main()

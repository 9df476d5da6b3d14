"""Gradient descent vs stochastic GD vs mini-batch SGD: updates and seconds.

The course (topic 3): gradient descent `theta <- theta - eta grad L(theta)`
uses the whole training set per update; stochastic GD one example;
mini-batch SGD `b` examples, `grad L^ = (1/b) sum grad l(w, x_i, y_i)`.
"Batch size affects both speed and result." The same softmax regression on
standardized digits, the same `ktk.optimizers.SGD(0.05)`, the same number
of epochs, with batch size 1 (SGD), 32 (mini-batch) and the whole set (GD).
The full training loss is recorded along the way against the number of
updates and against seconds.

    python examples/gradient_descent.py [--quick] [--out DIR]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402


def full_loss(model, x, y):
    """Cross-entropy of the whole training set, in NumPy (cheap, no graph)."""
    w, b = model.get_weights()
    z = x @ w + b
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


class Recorder(keras.callbacks.Callback):
    def __init__(self, x, y, every):
        super().__init__()
        self.x, self.y, self.every = x, y, every
        self.updates, self.seconds, self.loss = [], [], []
        self.count = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self._log()

    def _log(self):
        self.updates.append(self.count)
        self.seconds.append(time.perf_counter() - self.start)
        self.loss.append(full_loss(self.model, self.x, self.y))
        # the time spent measuring is not training time
        self.start += time.perf_counter() - self.start - self.seconds[-1]

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1
        if self.count % self.every == 0:
            self._log()


def main():
    args = _common.arguments(__doc__)
    size = 300 if args.quick else 1000
    epochs = 2 if args.quick else 5
    (x, y), _ = _common.digits(train_size=size, seed=args.seed)
    runs = {}
    for name, batch in (("SGD (batch 1)", 1), ("mini-batch 32", 32),
                        (f"GD (batch {len(x)})", len(x))):
        keras.utils.set_random_seed(args.seed)
        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(10, activation="softmax")]
        )
        model.compile(ktk.optimizers.SGD(0.05),
                      "sparse_categorical_crossentropy")
        every = max(1, len(x) // batch // 20)
        rec = Recorder(x, y, every)
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0,
                  shuffle=True, callbacks=[rec])
        runs[name] = rec
        print(f"  {name:<18} {rec.count:>5} updates, final loss "
              f"{rec.loss[-1]:.4f}, {rec.seconds[-1]:.2f} s", flush=True)
        keras.backend.clear_session()
    fig, axes = _common.new_figure(1, 2, size=(10, 4))
    for name, rec in runs.items():
        axes[0][0].plot(np.maximum(rec.updates, 1), rec.loss, label=name)
        axes[0][1].plot(rec.seconds, rec.loss, label=name)
    axes[0][0].set_xscale("log")
    axes[0][0].set_xlabel("updates (log)")
    axes[0][1].set_xlabel("seconds (training only)")
    for ax in axes[0]:
        ax.set_ylabel("training loss (whole set)")
        ax.legend(fontsize=8)
    fig.suptitle(f"softmax regression on {len(x)} digits, SGD(0.05), "
                 f"{epochs} epochs")
    figure = _common.save(fig, args.out, "gradient_descent.png")
    names = list(runs)
    final = {n: runs[n].loss[-1] for n in names}
    updates = {n: runs[n].count for n in names}
    # how often the full loss went up between two records: GD's steps are
    # exact gradient steps with a small rate, so its loss never rises
    rises = {n: float(np.mean(np.diff(runs[n].loss) > 0)) for n in names}
    gd = names[2]
    _common.claim(
        args.out, "gradient_descent",
        "after the same number of epochs SGD and mini-batch SGD, which make "
        "many more updates, reach a lower training loss than full-batch GD; "
        "GD's loss falls smoothly (never rises) while SGD's is noisy",
        final[names[0]] < final[gd] and final[names[1]] < final[gd]
        and rises[gd] == 0.0 and rises[names[0]] > 0.0,
        [figure], final_loss=final, updates=updates,
        fraction_of_rises=rises, epochs=epochs,
    )


if __name__ == "__main__":
    main()

"""Momentum rolls past a shallow local minimum that stops plain SGD.

The course (topic 4): movement form `v <- lambda v - eta grad L(theta)`,
`theta <- theta + v` (`ktk.optimizers.Momentum`); "not a guarantee of the
global minimum, but it can roll past plateaus and shallow minima". On the
2-D surface

    f(x, y) = -2 exp(-(x - 2)^2) - 0.25 exp(-(x + 1.5)^2 / 0.3)
              + 0.05 x^2 + y^2

(a shallow well near x = -1.41, the deep one near x = 1.95) both start at
(-4, 1.5) with the same learning rate: SGD stops in the shallow well,
momentum 0.95 carries the point over the ridge into the deep one.

    python examples/momentum.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

A, W = 0.25, 0.3


def f(x, y):
    return (-2.0 * np.exp(-((x - 2) ** 2)) - A * np.exp(-((x + 1.5) ** 2) / W)
            + 0.05 * x**2 + y**2)


def grad(p):
    x, y = p
    dx = (4.0 * (x - 2) * np.exp(-((x - 2) ** 2))
          + A * 2 * (x + 1.5) / W * np.exp(-((x + 1.5) ** 2) / W) + 0.1 * x)
    return np.array([dx, 2 * y])


def main():
    args = _common.arguments(__doc__)
    steps = 300 if args.quick else 600
    lr = 0.02
    runs = {
        "SGD(0.02)": ktk.optimizers.SGD(lr),
        "Momentum(0.02, 0.95)": ktk.optimizers.Momentum(lr, momentum=0.95),
    }
    paths = {n: _common.trajectory(o, grad, (-4.0, 1.5), steps)
             for n, o in runs.items()}
    fig, axes = _common.new_figure(1, 2, size=(10, 4))
    _common.contour(axes[0][0], f, (-4.5, 3.5), (-2, 2))
    for (name, path), c in zip(paths.items(), ("tab:red", "tab:blue")):
        axes[0][0].plot(path[:, 0], path[:, 1], ".-", ms=2, c=c, label=name)
        axes[0][1].plot(f(path[:, 0], path[:, 1]), c=c, label=name)
    axes[0][0].set_title("trajectories from (-4, 1.5)")
    axes[0][0].legend(fontsize=8)
    axes[0][1].set_xlabel("update")
    axes[0][1].set_ylabel("f")
    axes[0][1].set_title("loss along the way")
    axes[0][1].legend(fontsize=8)
    figure = _common.save(fig, args.out, "momentum.png")
    end = {n: float(p[-1, 0]) for n, p in paths.items()}
    loss = {n: float(f(*p[-1])) for n, p in paths.items()}
    sgd, mom = end["SGD(0.02)"], end["Momentum(0.02, 0.95)"]
    _common.claim(
        args.out, "momentum",
        "with the same learning rate, SGD stops in the shallow minimum "
        "(x < 0) and momentum rolls past it into the deep one (x > 0)",
        sgd < 0 < mom and loss["Momentum(0.02, 0.95)"] < loss["SGD(0.02)"],
        [figure], final_x=end, final_loss=loss, steps=steps,
    )


if __name__ == "__main__":
    main()

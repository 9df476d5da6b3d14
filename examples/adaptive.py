"""Adagrad, RMSProp and Adam on an ill-conditioned surface, against SGD.

The course (topics 6-9): "different parameters need different rates".
On `f(x, y) = (1000 x^2 + y^2) / 2` the steep direction `x` caps plain
SGD's learning rate below `2 / 1000` (above it, `x` diverges), so SGD
crawls along the flat direction `y`. Adagrad (`s <- s + g^2`), RMSProp
(`s <- rho s + (1 - rho) g^2`, the slide's `sigma^0 = g^0`) and Adam
(Kingma & Ba Algorithm 1) divide each coordinate's step by its own gradient
scale, so both directions move at the same pace. All start at (1, 8) and
run the same number of steps.

    python examples/adaptive.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

CURVATURE = np.array([1000.0, 1.0])


def f(x, y):
    return 0.5 * (CURVATURE[0] * x**2 + CURVATURE[1] * y**2)


def grad(p):
    return CURVATURE * p


def main():
    args = _common.arguments(__doc__)
    steps = 100 if args.quick else 200
    runs = {
        "SGD(0.0018)": ktk.optimizers.SGD(0.0018),
        "Adagrad(1.0)": ktk.optimizers.Adagrad(1.0),
        "RMSProp(0.1)": ktk.optimizers.RMSProp(0.1),
        "Adam(0.3)": ktk.optimizers.Adam(0.3),
    }
    paths = {n: _common.trajectory(o, grad, (1.0, 8.0), steps)
             for n, o in runs.items()}
    fig, axes = _common.new_figure(1, 2, size=(10, 4))
    _common.contour(axes[0][0], f, (-1.5, 1.5), (-3, 9),
                    levels=np.geomspace(0.01, 1500, 25))
    for name, path in paths.items():
        axes[0][0].plot(path[:, 0], path[:, 1], ".-", ms=2, lw=0.8,
                        label=name)
        axes[0][1].semilogy(f(path[:, 0], path[:, 1]) + 1e-12, label=name)
    axes[0][0].set_title("f = (1000 x^2 + y^2) / 2 from (1, 8)")
    axes[0][0].legend(fontsize=8)
    axes[0][1].set_xlabel("update")
    axes[0][1].set_ylabel("f")
    axes[0][1].legend(fontsize=8)
    figure = _common.save(fig, args.out, "adaptive.png")
    final = {n: float(f(*p[-1])) for n, p in paths.items()}
    # with a constant rate the adaptive methods end oscillating across the
    # steep valley (amplitude ~ the rate), so compare distances to the
    # minimum: the progress along the flat direction is the point
    dist = {n: float(np.linalg.norm(p[-1])) for n, p in paths.items()}
    adaptive = [n for n in runs if not n.startswith("SGD")]
    _common.claim(
        args.out, "adaptive",
        "on an ill-conditioned surface each adaptive method ends closer to "
        "the minimum than SGD at a stable learning rate, after the same "
        "number of steps",
        all(dist[n] < dist["SGD(0.0018)"] for n in adaptive),
        [figure], distance_to_minimum=dist, final_loss=final, steps=steps,
    )


if __name__ == "__main__":
    main()

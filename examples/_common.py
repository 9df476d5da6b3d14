"""Shared plumbing of the examples: quiet start, arguments, data, output.

Every example is runnable alone (`python examples/NAME.py [--quick]
[--out DIR]`), writes its figure(s) as PNG through matplotlib's Agg canvas
(no pyplot window) and prints the course claim it reproduces with the
numbers. It also writes `DIR/NAME.json` with those numbers, which
`tests/test_examples.py` checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings


def quiet() -> None:
    """Silences TensorFlow's C++ log lines; call before importing Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # the oneDNN banner is printed by C++ before TF_CPP_MIN_LOG_LEVEL is
    # read by absl; turning the custom ops off is the only way to drop it
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def quiet_absl() -> None:
    """Python-side absl logging to errors only (after importing Keras)."""
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; not with JAX alone
        pass


def arguments(doc: str, out: str = "examples_output") -> argparse.Namespace:
    """`--quick` (a fast mode), `--out DIR` and `--seed`."""
    parser = argparse.ArgumentParser(
        description=doc.strip().splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast mode (tests, CI)"
    )
    parser.add_argument(
        "--out", default=out, help=f"output folder. Defaults to {out}/"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    return args


def digits(standardize: bool = True, seed: int = 0, train_size=None):
    """Digits split train/validation (80/20, stratified), float32.

    With `standardize`, each pixel is `(x - m_i) / sigma_i` with the
    training statistics (the course's feature scaling; constant pixels
    keep sigma 1).
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    xt, xv, yt, yv = train_test_split(
        x.astype("float32"), y.astype("int32"), test_size=0.2,
        random_state=seed, stratify=y,
    )
    if train_size is not None:
        xt, yt = xt[:train_size], yt[:train_size]
    if standardize:
        mean, std = xt.mean(axis=0), xt.std(axis=0)
        std[std < 1e-3] = 1.0
        xt, xv = (xt - mean) / std, (xv - mean) / std
    return (np.asarray(xt), yt), (np.asarray(xv), yv)


def new_figure(rows: int = 1, cols: int = 1, size=(6.4, 4.0)):
    """A matplotlib `Figure` on an Agg canvas and its axes (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def save(fig, out: str, name: str, dpi: int = 80) -> str:
    """Writes `fig` as `out/name` (PNG) and returns the path."""
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=dpi)
    try:  # a 256-colour palette: a third of the bytes, small enough for docs
        from PIL import Image

        with Image.open(path) as img:
            small = img.convert("RGB").quantize(colors=256)
        small.save(path, optimize=True)
    except ImportError:  # Pillow comes with matplotlib; keep the RGBA PNG
        pass
    print(f"figure: {path}")
    return path


def claim(
    out: str, name: str, text: str, holds: bool, figures, **numbers
) -> bool:
    """Prints the course claim with its numbers; writes `out/name.json`."""
    print(f"\nCourse claim: {text}")
    for key, value in numbers.items():
        print(f"  {key}: {_short(value)}")
    print(f"Claim holds: {'yes' if holds else 'NO'}")
    record = {
        "claim": text,
        "holds": bool(holds),
        "figures": [os.path.basename(f) for f in figures],
        "numbers": numbers,
    }
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=1, default=float)
    sys.stdout.flush()
    return holds


def _short(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def trajectory(optimizer, grad_fn, start, steps: int):
    """Runs `optimizer` on a 2-D surface given by its gradient `grad_fn`.

    The point is a `keras.Variable`; each step applies the kit optimizer's
    own update (`optimizer.apply`) to the analytic gradient. Returns the
    `(steps + 1, 2)` array of visited points.
    """
    import keras
    import numpy as np

    var = keras.Variable(np.asarray(start, "float32"), name="point")
    path = [np.asarray(start, "float64")]
    for _ in range(steps):
        point = keras.ops.convert_to_numpy(var).astype("float64")
        grad = np.asarray(grad_fn(point), "float32")
        optimizer.apply([keras.ops.convert_to_tensor(grad)], [var])
        path.append(keras.ops.convert_to_numpy(var).astype("float64"))
    return np.array(path)


def contour(ax, f, xlim, ylim, levels=30):
    """Filled contour of `f(x, y)` (NumPy, vectorized) on `ax`."""
    import numpy as np

    xs = np.linspace(*xlim, 200)
    ys = np.linspace(*ylim, 200)
    gx, gy = np.meshgrid(xs, ys)
    ax.contour(gx, gy, f(gx, gy), levels=levels, cmap="viridis",
               linewidths=0.6)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)

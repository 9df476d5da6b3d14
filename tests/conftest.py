"""Shared test setup: quiet TensorFlow, seeded runs, small bundled data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import gc  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

import keras_training_kit  # noqa: E402, F401

# clear_session() runs a full garbage collection; moving the objects of all
# these imports to the permanent generation makes that ~1000x cheaper.
gc.collect()
gc.freeze()


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Every test starts from a clean Keras session and a fixed seed."""
    start = time.perf_counter()
    keras.backend.clear_session()
    if time.perf_counter() - start > 0.05:
        # Modules imported lazily since (torch.compile's dynamo, JAX's
        # jit caches) made the full collection slow again: freeze what
        # survived it, as above.
        gc.freeze()
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled digits, standardized, split 80/20.

    Returns ((x_train, y_train), (x_val, y_val)) with float32 features and
    int32 labels (10 classes).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    xt, xv, yt, yv = train_test_split(
        x, y.astype("int32"), test_size=0.2, random_state=0, stratify=y
    )
    return (xt, yt), (xv, yv)

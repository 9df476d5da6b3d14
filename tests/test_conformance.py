"""Conformance of every registered kit object, driven by the registry.

Each test is parametrized over `keras_training_kit._registry.REGISTRY`, so an
object registered with `@register(kind, example=...)` is covered without
touching this file. An entry opts out of a test by naming it in
`info["skip"]` (with the reason in the object's source).

- all kinds: `get_config` -> `from_config` and a JSON round trip;
- optimizers: `fit` with and without XLA, `.keras` round trip with slot
  variables and exact resumption, mixed precision, a schedule as learning
  rate under XLA, and the base-class options (and a callable learning
  rate) checked step by step against their definition;
- schedules: the learning rate of a `fit` under XLA and the `.keras` file;
- regularizers: on a kernel in `fit`, in `model.losses`, in the `.keras` file;
- layers: `fit` with and without XLA, identical predictions after the
  `.keras` round trip, `compute_output_shape`, mixed precision;
- callbacks: a `fit` with the callback;
- `tf.distribute.MirroredStrategy` on two logical CPUs, in one subprocess
  (`tests/_distribute_probe.py`) started at the beginning of this module
  and read at its end: TensorFlow only (that test exists only when the
  backend is TensorFlow).

Backend-agnostic otherwise: `tests/backends/test_backend_matrix.py` runs
this module under `KERAS_BACKEND=jax` and `KERAS_BACKEND=torch` as well.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_training_kit  # noqa: F401  (fills the registry)
from keras_training_kit._registry import entries
from keras_training_kit.schedules import InverseSqrtDecay

PROBE = Path(__file__).with_name("_distribute_probe.py")

# One small, easy regression problem for every fit: 2 batches per epoch.
_rng = np.random.default_rng(0)
X = _rng.normal(size=(64, 8)).astype("float32")
Y = (X @ _rng.normal(size=(8, 1)) + 0.1).astype("float32")
BATCH = 32


def cases(kinds, test):
    """One pytest param per registered entry of `kinds`, minus its skips."""
    params = []
    for kind in (kinds,) if isinstance(kinds, str) else kinds:
        for entry in entries(kind):
            marks = ()
            if test in entry.info.get("skip", ()):
                marks = pytest.mark.skip(reason=f"{entry.name} skips {test}")
            params.append(
                pytest.param(entry, id=f"{kind}-{entry.name}", marks=marks)
            )
    return params


def dense_model(**dense_kwargs):
    return keras.Sequential(
        [keras.Input((X.shape[1],)), keras.layers.Dense(1, **dense_kwargs)]
    )


def fit(model, epochs=1, x=X, y=Y, **kwargs):
    return model.fit(
        x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0,
        **kwargs,
    )


def losses_of(history):
    loss = np.asarray(history.history["loss"], dtype="float64")
    assert np.all(np.isfinite(loss)), loss
    return loss


def normalized(config):
    """A config as it comes back from JSON (tuples become lists)."""
    return json.loads(json.dumps(config))


def instance(entry, tmp_path):
    """An example instance; file arguments go to `tmp_path`."""
    overrides = {}
    if "path" in entry.example:
        overrides["path"] = str(tmp_path / Path(entry.example["path"]).name)
    return entry.make(**overrides)


# Gaps found by this suite and reported to the owners; remove once fixed.
# (class name, argument) pairs a class may not yet put in its config; each
# entry is a bug to fix, reported as a warning. Empty: every config is full.
KNOWN_CONFIG_GAPS: set[tuple[str, str]] = set()


def constructor_arguments(cls):
    """The named arguments of `cls.__init__` (not *args or **kwargs)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [
        p.name for p in parameters
        if p.name != "self"
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


# -------------------------------------------------------- every kind


@pytest.mark.parametrize(
    "entry", cases(("optimizer", "schedule", "regularizer", "layer",
                    "callback"), "test_config_round_trip")
)
def test_config_round_trip(entry, tmp_path):
    obj = instance(entry, tmp_path)
    if not hasattr(obj, "get_config"):
        pytest.skip("a callback without get_config (Keras callbacks have none)")
    config = obj.get_config()
    # get_config holds every constructor argument (STYLE.md).
    missing = [name for name in constructor_arguments(entry.cls)
               if name not in config]
    known = [name for name in missing
             if (entry.name, name) in KNOWN_CONFIG_GAPS]
    for name in known:
        warnings.warn(f"{entry.name}.get_config lacks {name!r} (known gap)")
    missing = [name for name in missing if name not in known]
    assert not missing, f"get_config lacks {missing}"
    assert normalized(type(obj).from_config(config).get_config()) == (
        normalized(config)
    )
    blob = json.dumps(keras.saving.serialize_keras_object(obj))
    restored = keras.saving.deserialize_keras_object(json.loads(blob))
    assert type(restored) is entry.cls
    assert normalized(restored.get_config()) == normalized(config)
    if entry.kind == "schedule":  # and it computes the same rates
        steps = np.arange(0, 50)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored(steps)),
            keras.ops.convert_to_numpy(obj(steps)),
        )


# -------------------------------------------------------- optimizers


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("entry", cases("optimizer", "test_optimizer_fit"))
def test_optimizer_fit(entry, jit):
    model = dense_model()
    model.compile(optimizer=entry.make(), loss="mse", jit_compile=jit)
    loss = losses_of(fit(model, epochs=3))
    assert loss[-1] < loss[0], loss


def _train_step(model):
    return model.train_on_batch(X[:BATCH], Y[:BATCH])


@pytest.mark.parametrize(
    "entry", cases("optimizer", "test_optimizer_keras_round_trip")
)
def test_optimizer_keras_round_trip(entry, tmp_path):
    model = dense_model()
    model.compile(optimizer=entry.make(), loss="mse", jit_compile=False)
    fit(model)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)

    assert type(loaded.optimizer) is entry.cls
    assert normalized(loaded.optimizer.get_config()) == normalized(
        model.optimizer.get_config()
    )
    before = [np.asarray(v) for v in model.optimizer.variables]
    after = [np.asarray(v) for v in loaded.optimizer.variables]
    assert len(after) == len(before)
    assert int(loaded.optimizer.iterations) == 2
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)

    # Resuming gives exactly what continuing would have given.
    _train_step(model)
    _train_step(loaded)
    for b, a in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "entry", cases("optimizer", "test_optimizer_mixed_precision")
)
def test_optimizer_mixed_precision(entry):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = dense_model()
        model.compile(optimizer=entry.make(), loss="mse", jit_compile=False)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, entry.cls)
        losses_of(fit(model, epochs=1))
        assert all(
            np.all(np.isfinite(w)) for w in model.get_weights()
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "entry", cases("optimizer", "test_optimizer_schedule_xla")
)
def test_optimizer_schedule_xla(entry):
    model = dense_model()
    schedule = InverseSqrtDecay(0.05, decay_steps=2)
    model.compile(optimizer=entry.make(learning_rate=schedule), loss="mse",
                  jit_compile=True)
    loss = losses_of(fit(model, epochs=2))
    assert loss[-1] < loss[0], loss
    assert float(model.optimizer.learning_rate) == pytest.approx(
        0.05 / np.sqrt(4 / 2 + 1), rel=1e-6
    )


@pytest.mark.parametrize(
    "entry", cases("optimizer", "test_optimizer_base_options_in_fit")
)
def test_optimizer_base_options_in_fit(entry):
    # Every base-class option at once (the clipping ones are exclusive).
    optimizer = entry.make(
        weight_decay=1e-3, clipnorm=10.0, use_ema=True, ema_momentum=0.9,
        gradient_accumulation_steps=2, loss_scale_factor=4.0,
    )
    model = dense_model()
    model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    losses_of(fit(model, epochs=2))
    assert int(optimizer.iterations) == 2  # 4 batches, 2 updates


# The base-class options, each checked against its definition: the option
# must act exactly like the same optimizer, without it, given what the
# option stands for. Plain `apply_gradients` calls, no tracing; few
# optimizer instances (a kit optimizer compiles its update once per
# instance).

G1 = np.array([[3.0, -4.0], [0.5, 12.0]], "float32")
G2 = np.array([[-1.0, 2.0], [0.25, -6.0]], "float32")
G3 = np.array([[0.5, 0.5], [-2.0, 1.0]], "float32")
W0 = np.array([[0.3, -0.2], [1.0, 0.5]], "float32")
B_G = np.array([2.0, -1.0], "float32")  # a second variable's gradient
B_0 = np.array([0.1, 0.2], "float32")
STEPS = [(G1, B_G), (G2, B_G), (G3, B_G)]


def _run(optimizer, steps, w0=W0, b0=B_0):
    """Apply [(g_w, g_b), ...]; the (w, b) arrays after each step."""
    w = keras.Variable(w0, name="w")
    b = keras.Variable(b0, name="b")
    snapshots = []
    for gw, gb in steps:
        optimizer.apply_gradients(
            [(keras.ops.convert_to_tensor(gw), w),
             (keras.ops.convert_to_tensor(gb), b)]
        )
        snapshots.append((np.asarray(w), np.asarray(b)))
    return snapshots


def _assert_same(actual, expected):
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), rtol=1e-6, atol=1e-7
        )


def _clip_norm(g, c):
    return g * c / max(np.linalg.norm(g), c)


OPTIONS = ["clipnorm", "clipvalue", "global_clipnorm", "weight_decay",
           "loss_scale_factor", "gradient_accumulation_steps", "use_ema",
           "callable_learning_rate"]


@pytest.mark.parametrize(
    "entry", cases("optimizer", "test_optimizer_base_option_semantics")
)
def test_optimizer_base_option_semantics(entry):
    # One test per optimizer, all options in it (each test costs a Keras
    # session reset); the failures name their options.
    plain = _run(entry.make(), STEPS)  # the trajectory without options
    failures = []
    for option in OPTIONS:
        try:
            _check_option(entry, option, plain)
        except AssertionError as error:
            failures.append(f"{option}: {error}")
    assert not failures, "\n".join(failures)


def _check_option(entry, option, plain):
    steps = STEPS[:2]
    if option == "clipnorm":
        got = _run(entry.make(clipnorm=1.0), steps)[-1]
        want = _run(entry.make(), [(_clip_norm(gw, 1.0), _clip_norm(gb, 1.0))
                                   for gw, gb in steps])[-1]
        # Two steps of different norms: clipping changes even the
        # scale-invariant rules (Adagrad, Adam), so this can fail.
        assert not np.allclose(plain[1][0], want[0], rtol=1e-3)
    elif option == "clipvalue":
        got = _run(entry.make(clipvalue=0.6), steps)[-1]
        want = _run(entry.make(), [(np.clip(gw, -0.6, 0.6),
                                    np.clip(gb, -0.6, 0.6))
                                   for gw, gb in steps])[-1]
    elif option == "global_clipnorm":
        norm = np.sqrt(np.sum(G1**2) + np.sum(B_G**2))
        got = _run(entry.make(global_clipnorm=2.0), steps[:1])[-1]
        want = _run(entry.make(), [(G1 * 2.0 / norm, B_G * 2.0 / norm)])[-1]
    elif option == "weight_decay":
        optimizer = entry.make(weight_decay=0.1)
        lr = float(optimizer.learning_rate)
        got = _run(optimizer, steps[:1])[-1]
        # Decoupled decay: w <- w - lr * wd * w, then the update.
        want = _run(entry.make(), steps[:1], W0 * (1 - lr * 0.1),
                    B_0 * (1 - lr * 0.1))[-1]
    elif option == "loss_scale_factor":
        got = _run(entry.make(loss_scale_factor=8.0),
                   [(gw * 8, gb * 8) for gw, gb in steps])[-1]
        want = plain[1]
    elif option == "gradient_accumulation_steps":
        accumulating = _run(entry.make(gradient_accumulation_steps=2),
                            [(G1, B_G), (G2, B_G * 3)])
        _assert_same(accumulating[0], (W0, B_0))  # no update yet
        got = accumulating[1]
        want = _run(entry.make(), [((G1 + G2) / 2, (B_G + B_G * 3) / 2)])[-1]
    elif option == "callable_learning_rate":
        lr = float(entry.make().learning_rate)
        got = _run(entry.make(learning_rate=lambda: lr), steps)[-1]
        want = plain[1]
    else:  # use_ema
        m = 0.5
        optimizer = entry.make(use_ema=True, ema_momentum=m)
        w = keras.Variable(W0, name="w")
        b = keras.Variable(B_0, name="b")
        for gw, gb in STEPS:
            optimizer.apply_gradients(
                [(keras.ops.convert_to_tensor(gw), w),
                 (keras.ops.convert_to_tensor(gb), b)]
            )
        _assert_same((w, b), plain[-1])  # EMA leaves training alone
        average = list(plain[0])  # the first step copies the weights
        for point in plain[1:]:
            average = [m * a + (1 - m) * p for a, p in zip(average, point)]
        optimizer.finalize_variable_values([w, b])
        got, want = (w, b), average
    _assert_same(got, want)


# -------------------------------------------------------- schedules


@pytest.mark.parametrize("entry", cases("schedule", "test_schedule_in_fit"))
def test_schedule_in_fit(entry, tmp_path):
    schedule = entry.make()
    model = dense_model()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule),
        loss="mse",
        jit_compile=True,
    )
    losses_of(fit(model, epochs=2))
    # The optimizer's current rate is the schedule's at `iterations`.
    assert float(model.optimizer.learning_rate) == pytest.approx(
        float(schedule(4)), rel=1e-6
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    restored = keras.saving.deserialize_keras_object(
        loaded.optimizer.get_config()["learning_rate"]
    )
    assert type(restored) is entry.cls
    assert normalized(restored.get_config()) == normalized(
        schedule.get_config()
    )


# -------------------------------------------------------- regularizers


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize(
    "entry", cases("regularizer", "test_regularizer_fit")
)
def test_regularizer_fit(entry, jit):
    model = dense_model(kernel_regularizer=entry.make())
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
    model(X[:2])
    assert model.losses, "the penalty must be in model.losses"
    assert float(keras.ops.sum(model.losses)) > 0
    losses_of(fit(model))


@pytest.mark.parametrize(
    "entry", cases("regularizer", "test_regularizer_keras_round_trip")
)
def test_regularizer_keras_round_trip(entry, tmp_path):
    regularizer = entry.make()
    model = dense_model(kernel_regularizer=regularizer)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    restored = loaded.layers[-1].kernel_regularizer
    assert type(restored) is entry.cls
    assert normalized(restored.get_config()) == normalized(
        regularizer.get_config()
    )
    np.testing.assert_allclose(
        float(keras.ops.sum(loaded.losses)),
        float(keras.ops.sum(model.losses)),
        rtol=1e-6,
    )


# -------------------------------------------------------- layers


def layer_model(entry):
    shape = tuple(entry.info["input_shape"])
    inputs = keras.Input(shape)
    h = entry.make()(inputs)
    if len(h.shape) > 2:
        h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def layer_data(entry, n=64):
    shape = tuple(entry.info["input_shape"])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, *shape)).astype("float32")
    y = x.reshape(n, -1).sum(axis=1, keepdims=True).astype("float32")
    return x, y


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("entry", cases("layer", "test_layer_fit"))
def test_layer_fit(entry, jit):
    x, y = layer_data(entry)
    model = layer_model(entry)
    model.compile(optimizer="adam", loss="mse", jit_compile=jit)
    losses_of(fit(model, epochs=1, x=x, y=y))
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(model(x))))


@pytest.mark.parametrize(
    "entry", cases("layer", "test_layer_keras_round_trip")
)
def test_layer_keras_round_trip(entry, tmp_path):
    x, y = layer_data(entry)
    model = layer_model(entry)
    model.compile(optimizer="adam", loss="mse", jit_compile=False)
    fit(model, x=x, y=y)  # moves weights and statistics off their init
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.layers[1]) is entry.cls
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
    )


@pytest.mark.parametrize(
    "entry", cases("layer", "test_layer_compute_output_shape")
)
def test_layer_compute_output_shape(entry):
    x, _ = layer_data(entry, n=5)
    layer = entry.make()
    out = layer(x)
    assert tuple(layer.compute_output_shape(x.shape)) == tuple(out.shape)
    symbolic = layer.compute_output_shape((None, *x.shape[1:]))
    assert tuple(symbolic) == (None, *out.shape[1:])


@pytest.mark.parametrize(
    "policy", ["mixed_float16", "mixed_bfloat16"], ids=["f16", "bf16"]
)
@pytest.mark.parametrize(
    "entry", cases("layer", "test_layer_mixed_precision")
)
def test_layer_mixed_precision(entry, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        x, y = layer_data(entry)
        model = layer_model(entry)
        assert model.layers[1].compute_dtype == policy.split("_")[1]
        model.compile(optimizer="adam", loss="mse", jit_compile=False)
        losses_of(fit(model, x=x, y=y))
        out = keras.ops.convert_to_numpy(
            keras.ops.cast(model(x, training=False), "float32")
        )
        assert np.all(np.isfinite(out))
    finally:
        keras.mixed_precision.set_global_policy("float32")


# -------------------------------------------------------- callbacks


@pytest.mark.parametrize("entry", cases("callback", "test_callback_fit"))
def test_callback_fit(entry, tmp_path):
    callback = instance(entry, tmp_path)
    model = dense_model()
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    history = model.fit(
        X, Y, batch_size=16, epochs=2, verbose=0, shuffle=False,
        validation_data=(X[:16], Y[:16]), callbacks=[callback],
    )
    assert history.history["loss"]


# -------------------------------------------------------- tf.distribute

DISTRIBUTED_KINDS = ("optimizer", "schedule", "regularizer", "layer")


@pytest.fixture(scope="module", autouse=True)
def distribute_probe(request, tmp_path_factory):
    """Start the MirroredStrategy probe at once, in the background.

    TensorFlow fixes its logical devices at start-up, hence a separate
    process. It runs while the tests above do and writes its results to a
    file that the tests below read. Under pytest-xdist, the first worker
    to take the lock runs it and the others read the same file.
    """
    wanted = sorted(
        f"{entry.kind}/{entry.name}"
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_distribute"
        and (entry := item.callspec.params["entry"])
    )
    if not wanted:  # no distribute test selected: no probe
        yield None
        return
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # common to all workers of this session
    state = {"file": shared / "distribute_probe.json",
             "log": shared / "distribute_probe.log", "proc": None}
    try:
        os.close(os.open(shared / "distribute_probe.lock",
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        pass  # another worker runs it
    else:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "KERAS_BACKEND": "tensorflow"}
        with open(state["log"], "w") as log:
            state["proc"] = subprocess.Popen(
                [sys.executable, str(PROBE), str(state["file"]), *wanted],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
    yield state
    proc = state["proc"]
    if proc is not None:
        try:  # others may still need its file: let it finish
            proc.wait(timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


PROBE_TIMEOUT = 400


def probe_results(state):
    deadline = time.monotonic() + PROBE_TIMEOUT
    while not state["file"].exists():
        proc = state["proc"]
        if proc is not None and proc.poll() is not None:
            break  # ended without writing: report its log
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not state["file"].exists():
        log = state["log"].read_text() if state["log"].exists() else ""
        pytest.fail(f"the distribute probe wrote no results:\n{log[-3000:]}")
    return json.loads(state["file"].read_text())


if keras.backend.backend() == "tensorflow":  # tf.distribute is TF's own

    @pytest.mark.parametrize(
        "entry", cases(DISTRIBUTED_KINDS, "test_distribute")
    )
    def test_distribute(entry, distribute_probe):
        results = probe_results(distribute_probe)
        assert "__probe__" not in results, results.get("__probe__")
        record = results.get(f"{entry.kind}/{entry.name}")
        assert record is not None, f"no result for {entry.name}"
        assert record["ok"], record["error"]
        assert record["replicas"] == 2
        assert len(record["loss"]) > 0 and all(np.isfinite(record["loss"]))

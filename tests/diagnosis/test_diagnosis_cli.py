"""`ktk diagnose FILE.csv` on a real CSVLogger file, and bad inputs."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_training_kit.diagnosis import cli, diagnose, read_csv_log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def overfit_csv(digits, tmp_path_factory):
    """A real CSVLogger file of an overfitting run (60 training digits)."""
    keras.utils.set_random_seed(0)
    tmp_path = tmp_path_factory.mktemp("csv")
    (x, y), val = digits
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy"
    )
    path = str(tmp_path / "training.csv")
    model.fit(x[:60], y[:60], validation_data=val, epochs=40, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(path)])
    return path


def test_cli_subprocess_on_csvlogger_file(overfit_csv, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(  # noqa: PLW1510 (the return code is asserted)
        [sys.executable, "-m", "keras_training_kit", "diagnose", overfit_csv,
         "--baseline-loss", "2.3"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "[warning] overfitting from epoch" in out.stdout
    assert "Remedy:" in out.stdout and "early stopping" in out.stdout
    png = os.path.splitext(overfit_csv)[0] + ".png"  # next to the CSV
    assert os.path.getsize(png) > 1000
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # In-process the same as the CSV read by `diagnose`.
    assert [f.code for f in diagnose(overfit_csv, 2.3)] == ["overfitting"]


def test_cli_plot_path_and_json(overfit_csv, tmp_path, capsys):
    png = str(tmp_path / "out.png")
    assert cli.main([overfit_csv, "--plot", png, "--json"]) == 0
    import json

    printed = capsys.readouterr().out
    data = json.loads(printed[: printed.rindex("}") + 1])
    assert data["findings"][0]["code"] == "overfitting"
    assert os.path.exists(png)


def test_csv_reader_against_numpy(overfit_csv):
    history = read_csv_log(overfit_csv)
    table = np.genfromtxt(overfit_csv, delimiter=",", names=True)
    np.testing.assert_allclose(history["loss"], table["loss"])
    np.testing.assert_allclose(history["val_loss"], table["val_loss"])
    assert "epoch" not in history


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("epoch,accuracy\n0,0.5\n", "no `loss` column"),
        ("epoch,loss\n", "has no epochs"),
        ("epoch,loss\n0,abc\n1,0.5\n", "non-numeric value 'abc'"),
        ("epoch,loss,val_loss\n0,1.0\n1,0.5,0.6\n", "malformed at line 2"),
    ],
)
def test_bad_csv_clear_error(tmp_path, capsys, text, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message):
        diagnose(path)
    # The CLI prints one line, no traceback, and exits with 2.
    assert cli.main([path, "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert message.split("'")[0] in err and "Traceback" not in err


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert cli.main([str(tmp_path / "none.csv")]) == 2
    assert "Cannot read the CSV log" in capsys.readouterr().err


def test_truncated_last_row_is_skipped(tmp_path):
    text = "epoch,loss,val_loss\n0,1.0,1.1\n1,0.5,0.6\n2,0.3,0.4\n3,0.2"
    history = read_csv_log(write(tmp_path / "t.csv", text))
    assert history["loss"] == [1.0, 0.5, 0.3]


def test_nan_rows_are_a_diverged_finding(tmp_path, capsys):
    text = "epoch,loss,val_loss\n0,2.0,2.1\n1,1.0,1.1\n2,nan,nan\n3,nan,nan\n"
    path = write(tmp_path / "nan.csv", text)
    found = diagnose(path)
    assert [f.code for f in found] == ["diverged"]
    assert found[0].epoch == 2 and found[0].severity == "error"
    # An error gates CI: exit 1 (Keras' 1-based epoch in the text).
    assert cli.main([path]) == 1
    assert "[error] diverged at epoch 3" in capsys.readouterr().out
    assert os.path.exists(str(tmp_path / "nan.png"))
    assert cli.main([path, "--no-plot", "--fail-on", "never"]) == 0
    capsys.readouterr()
    assert cli.main([path, "--no-plot", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["findings"][0]["code"] == "diverged"


def test_fail_on_warning_and_missing_values(tmp_path, capsys):
    # validation_freq=2 as CSVLogger writes it: NA is "not logged", not NaN.
    rows = ["epoch,loss,val_loss"] + [
        f"{e},{1.0 / (e + 1):.4f},{'NA' if e % 2 == 0 else 1.2 / (e + 1)}"
        for e in range(8)
    ]
    path = write(tmp_path / "vf.csv", "\n".join(rows) + "\n")
    assert cli.main([path, "--no-plot", "--fail-on", "warning"]) == 0
    assert "healthy" in capsys.readouterr().out
    over = "epoch,loss,val_loss\n" + "".join(
        f"{e},{1.0 * 0.7**e},{[1.0, .8, .7, .65, .75, .85, .95, 1.05][e]}\n"
        for e in range(8)
    )
    path = write(tmp_path / "of.csv", over)
    assert cli.main([path, "--no-plot"]) == 0  # a warning only
    assert cli.main([path, "--no-plot", "--fail-on", "warning"]) == 1


def test_reading_a_csv_does_not_import_tensorflow(tmp_path):
    path = write(tmp_path / "h.csv", "epoch,loss\n0,1.0\n1,0.5\n2,0.3\n")
    code = (
        "import sys; sys.argv = ['ktk', 'diagnose', "
        f"{path!r}, '--no-plot']; import ktk_cli; rc = ktk_cli.main(); "
        "print('TF' if 'tensorflow' in sys.modules else 'noTF'); "
        "sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "noTF"
    assert "oneDNN" not in out.stderr and "absl" not in out.stderr


def test_bad_history_objects():
    with pytest.raises(ValueError, match="no `loss` entry"):
        diagnose({"val_loss": [1.0]})
    with pytest.raises(ValueError, match="no epochs"):
        diagnose({"loss": []})
    with pytest.raises(ValueError, match="must be a keras.callbacks.History"):
        diagnose(42)
    with pytest.raises(ValueError, match="list of numbers"):
        diagnose({"loss": ["a", "b"]})
    with pytest.raises(ValueError, match="`baseline_loss`"):
        diagnose({"loss": [1.0]}, baseline_loss=-1.0)


def test_history_without_validation_says_what_it_could_not(digits):
    (x, y), _ = digits
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, verbose=0)
    found = diagnose(history)
    assert all(f.severity == "info" for f in found)
    assert "no val_loss logged" in found.report()

"""`make demo`'s report: built in its fast mode, then parsed.

The demo runs in a subprocess (as `make demo` runs it, with its own quiet
start), writes `report.html`, and the page must be self-contained: every
`<img>` a decodable PNG data URI, no external reference, every step's
section present, the final test score in it, the second test evaluation
refused, and no TensorFlow C++ log line in the output.
"""

from __future__ import annotations

import base64
import html.parser
import io
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"
sys.path.insert(0, str(ROOT / "examples"))

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TF_LOG_LINES = re.compile(
    r"^(I|W|E)\d{4} |absl::InitializeLog|oneDNN custom operations|"
    r"cpu_feature_guard|rebuild TensorFlow with the appropriate",
    re.M,
)


class _Page(html.parser.HTMLParser):
    """Collects images, references and section anchors of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.references: list[tuple[str, str, str]] = []
        self.sections: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        if tag == "section" and attrs.get("id"):
            self.sections.append(attrs["id"])
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if name in attrs:
                self.references.append((tag, name, attrs[name] or ""))

    def handle_data(self, data):
        self.text.append(data)


def _build(out):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env["KERAS_BACKEND"] = "tensorflow"
    proc = subprocess.run(
        [sys.executable, str(DEMO), "--quick", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    path = out / "report.html"
    assert path.is_file()
    document = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(document)
    return {"proc": proc, "html": document, "page": page, "path": path}


# one quick demo: ~35 s of CPU; the main job, so in `make test`
def test_demo_report(tmp_path):
    """One build (a fixture would run once per xdist worker), five checks."""
    demo = _build(tmp_path)
    check_every_step_is_a_section(demo)
    check_kit_renderers_are_used_when_present(demo)
    check_every_image_is_an_embedded_png(demo)
    check_no_external_reference(demo)
    check_output_is_quiet_and_says_where_the_report_is(demo)


def check_every_step_is_a_section(demo):
    import demo as demo_module

    anchors = [anchor for anchor, _ in demo_module.STEPS]
    assert len(anchors) == 6
    # the six steps, in order (the kit's renderers may add their own ids)
    assert [a for a in demo["page"].sections if a in anchors] == anchors
    text = " ".join(demo["page"].text)
    for _, title in demo_module.STEPS:
        assert title in text
    assert re.search(r"Final test accuracy: 0\.\d{4}", text)
    assert "second evaluation refused" in text
    assert "only run on the test set once" in text  # the HoldoutSet's words


def check_kit_renderers_are_used_when_present(demo):
    import keras_training_kit as ktk

    text = demo["html"]
    present = {
        "TrainingDiagnosis.to_html": hasattr(
            ktk.callbacks.TrainingDiagnosis, "to_html"),
        "RepairReport.to_html": hasattr(ktk.diagnosis, "RepairReport")
        and hasattr(ktk.diagnosis.RepairReport, "to_html"),
        "SearchResult.to_html": hasattr(ktk.tuning.SearchResult, "to_html"),
    }
    for name, available in present.items():
        said = f"{name}: not available in this version" in text
        assert said != available, name


def check_every_image_is_an_embedded_png(demo):
    from PIL import Image

    images = demo["page"].images
    # scaling (curves + 2 diagnoses), repair, optimizers, search at least
    assert len(images) >= 5
    for attrs in images:
        src = attrs.get("src", "")
        assert src.startswith("data:image/png;base64,"), src[:40]
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(png)) as img:
            img.load()
            assert img.width > 50 and img.height > 50
            pixels = np.asarray(img.convert("L"))
        assert pixels.std() > 0  # not a blank canvas
        assert attrs.get("alt")


def check_no_external_reference(demo):
    for tag, name, value in demo["page"].references:
        assert value.startswith("data:") or value.startswith("#"), (
            tag, name, value[:60])
    # outside the data URIs, no URL of any kind (http, https, protocol-
    # relative //, CSS url(), @import)
    stripped = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", demo[
        "html"])
    for pattern in (r"https?:", r"//", r"url\(", r"@import", r"<script",
                    r"<link", r"<iframe"):
        assert not re.search(pattern, stripped, re.I), pattern


def check_output_is_quiet_and_says_where_the_report_is(demo):
    proc = demo["proc"]
    output = proc.stdout + proc.stderr
    assert not TF_LOG_LINES.search(output), TF_LOG_LINES.search(
        output).group(0)
    assert str(demo["path"].resolve()) in proc.stdout
    for step in ("1.", "2.", "3.", "4.", "5.", "6."):
        assert f"== {step}" in proc.stdout
    assert "Traceback" not in output

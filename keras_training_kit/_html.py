"""Self-contained HTML pages: the one renderer behind every `to_html`.

`TrainingDiagnosis.to_html`, `RepairReport.to_html`, `SearchResult.to_html`
and the demo's report all build their page from these pieces: inline CSS,
figures embedded as PNG data URIs, no external URL, so a page opens
offline and can be mailed as one file.

matplotlib is imported only inside `figure`, so importing this module is
cheap.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Sequence
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;
max-width:62em;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #444;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #bbb}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}
th{background:#f0f0f0}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.88em}
.error{color:#b00020;font-weight:600}.warning{color:#b26a00;font-weight:600}
.info{color:#1b7f3b;font-weight:600}.muted{color:#777}
.kept{color:#1b7f3b;font-weight:600}.rolled{color:#777}
"""


def escape(text: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(text), quote=True)


def png_data_uri(png: bytes) -> str:
    """A `data:image/png;base64,...` URI for PNG bytes."""
    if not png.startswith(b"\x89PNG"):
        raise ValueError("`png` must be the bytes of a PNG image.")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """The PNG bytes of a matplotlib `Figure` (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure(fig: Any, alt: str = "figure", dpi: int = 90) -> str:
    """An `<img>` element embedding a matplotlib `Figure` as a data URI."""
    return image(figure_png(fig, dpi=dpi), alt)


def image(png: bytes, alt: str = "figure") -> str:
    """An `<img>` element embedding PNG bytes as a data URI."""
    return f'<img alt="{escape(alt)}" src="{png_data_uri(png)}">'


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; cells are escaped unless wrapped in `Raw`."""

    def cell(value: Any, tag: str) -> str:
        text = value.html if isinstance(value, Raw) else escape(_fmt(value))
        return f"<{tag}>{text}</{tag}>"

    head = "".join(cell(h, "th") for h in headers)
    body = "".join(
        "<tr>" + "".join(cell(c, "td") for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


class Raw:
    """Already-safe HTML to put into a table cell or a section unescaped."""

    def __init__(self, html_text: str) -> None:
        self.html = str(html_text)

    def __str__(self) -> str:
        return self.html


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def paragraph(text: Any, cls: str | None = None) -> str:
    """A `<p>` of escaped text, with an optional CSS class."""
    attr = f' class="{escape(cls)}"' if cls else ""
    return f"<p{attr}>{escape(text)}</p>"


def preformatted(text: Any) -> str:
    """A `<pre>` block of escaped text (e.g. a text report)."""
    return f"<pre>{escape(text)}</pre>"


def section(title: str, *parts: str, level: int = 2, anchor: str = "") -> str:
    """A titled block of already-built HTML parts."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return (
        f"<section{ident}><h{level}>{escape(title)}</h{level}>"
        + "".join(parts)
        + "</section>"
    )


def page(title: str, *parts: str) -> str:
    """A complete, self-contained HTML document."""
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>" + "".join(parts) + "</body></html>"
    )


def write(path: str | os.PathLike, document: str) -> str:
    """Writes an HTML document (UTF-8) and returns its path."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(document)
    return path

"""HTML building blocks of the run report: escaped text, tables, embedded images and the page's style.

Everything is inline: images are ``data:`` URIs, the style sheet sits in the page, fonts are the reader's own, and
no script runs, so the page reads the same offline, attached to a mail or archived with the run.

Example:
    >>> table(["a<b", "n"], [["x & y", cell("1.5", num=True)]])
    '<table><thead><tr><th>a&lt;b</th><th>n</th></tr></thead><tbody><tr><td>x &amp; y</td><td class="num">1.5</td></tr></tbody></table>'
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["esc", "Cell", "cell", "table", "image_uri", "figure", "figures", "page", "MIME"]

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def esc(text: object) -> str:
    """``text`` as HTML text or attribute value (``& < > " '`` escaped)."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Cell:
    """One table cell: its text (escaped when written), right-aligned when ``num``, a header cell when ``head``."""

    text: str
    num: bool = False
    head: bool = False
    key: str | None = None  # data-key attribute: the JSON key the column or row stands for


def cell(text: object, *, num: bool = False, head: bool = False, key: str | None = None) -> Cell:
    return Cell(str(text), num=num, head=head, key=key)


def _cell_html(c: Cell | object, default_head: bool = False) -> str:
    c = c if isinstance(c, Cell) else Cell(str(c))
    tag = "th" if (c.head or default_head) else "td"
    attrs = ' class="num"' if c.num else ""
    attrs += f' data-key="{esc(c.key)}"' if c.key is not None else ""
    return f"<{tag}{attrs}>{esc(c.text)}</{tag}>"


def table(
    header: Sequence[Cell | object] | None,
    rows: Iterable[Sequence[Cell | object]],
    *,
    foot: Iterable[tuple[str, Sequence[Cell | object]]] = (),
    id: str | None = None,  # noqa: A002  (the HTML attribute's name)
    cls: str | None = None,
) -> str:
    """A table: ``header`` cells, body ``rows``, and ``foot`` rows as (row class, cells)."""
    attrs = (f' id="{esc(id)}"' if id else "") + (f' class="{esc(cls)}"' if cls else "")
    parts = [f"<table{attrs}>"]
    if header is not None:
        parts.append("<thead><tr>" + "".join(_cell_html(c, default_head=True) for c in header) + "</tr></thead>")
    parts.append("<tbody>" + "".join("<tr>" + "".join(_cell_html(c) for c in row) + "</tr>" for row in rows) + "</tbody>")
    foot = list(foot)
    if foot:
        parts.append("<tfoot>" + "".join(f'<tr class="{esc(k)}">' + "".join(_cell_html(c) for c in row) + "</tr>"
                                         for k, row in foot) + "</tfoot>")  # fmt: skip
    parts.append("</table>")
    return "".join(parts)


def image_uri(data: bytes, suffix: str = ".png") -> str:
    """A ``data:`` URI holding the image bytes."""
    return f"data:{MIME.get(suffix.lower(), 'image/png')};base64,{base64.b64encode(data).decode('ascii')}"


def figure(image: Path | bytes, caption: str, *, alt: str | None = None, suffix: str = ".png") -> str:
    """``<figure>`` with the image (a file, or PNG bytes) embedded; an empty string when the file cannot be read."""
    if isinstance(image, Path):
        suffix = image.suffix
        try:
            image = image.read_bytes()
        except OSError:
            return ""
    return (f'<figure><img src="{image_uri(image, suffix)}" alt="{esc(alt or caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")  # fmt: skip


_STYLE = """
:root { --fg: #1d2430; --muted: #5d6778; --line: #dde2ea; --band: #f3f5f8; --accent: #2458a6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #1f2a3a; color: #fff; padding: 18px 32px 16px; }
header h1 { margin: 0; font-size: 24px; font-weight: 600; word-break: break-all; }
header .sub { color: #c7d1e0; margin-top: 4px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 7px 32px; z-index: 1; }
nav a { margin-right: 20px; color: var(--accent); text-decoration: none; }
main { max-width: 1240px; margin: 0 auto; padding: 4px 32px 48px; }
h2 { font-size: 19px; border-bottom: 2px solid var(--line); padding-bottom: 4px; margin: 30px 0 12px; }
h3 { font-size: 15px; margin: 22px 0 8px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0 8px; }
th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--band); font-weight: 600; border-bottom: 2px solid var(--line); }
tbody th { font-weight: normal; }
.num { text-align: right; white-space: nowrap; }
.scroll { overflow-x: auto; }
table.eval th { white-space: nowrap; }
.side { display: flex; flex-wrap: wrap; gap: 8px 40px; align-items: flex-start; }
tfoot tr:first-child > * { border-top: 2px solid #b9c1cd; }
tfoot tr.mean > * { font-weight: 600; }
tfoot tr.baseline > * { color: var(--muted); }
.note { color: var(--muted); margin: 4px 0; }
.warn { background: #fff6e0; border-left: 4px solid #e0a800; padding: 8px 12px; margin: 8px 0; }
.empty { background: var(--band); border-left: 4px solid #9aa5b5; padding: 10px 14px; margin: 8px 0; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 8px; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px; min-width: 170px; background: var(--band); }
.stat .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; }
.stat .k { color: var(--muted); font-size: 12px; }
table.glance th { color: var(--muted); font-weight: normal; white-space: nowrap; }
table.glance td { word-break: break-all; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 16px; align-items: start; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 8px; background: #fff; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.config { columns: 3 340px; column-gap: 28px; }
.config > div { break-inside: avoid; padding-top: 10px; }
.config h3 { margin: 0 0 4px; }
.config table { width: 100%; }
.config td { word-break: break-all; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.config th { width: 45%; }
.subjects { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding: 10px 32px; }
@media print { nav { display: none; } .figures { grid-template-columns: 1fr; } }
"""


def figures(items: list[tuple[Path | bytes, str]]) -> str:
    """A ``<div class="figures">`` of :func:`figure` s (image, caption); an empty string when none can be read."""
    blocks = [figure(image, caption) for image, caption in items]
    return '<div class="figures">' + "".join(b for b in blocks if b) + "</div>" if any(blocks) else ""


def page(title: str, heading: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str, footer: str) -> str:
    """The whole document: ``body`` is HTML already; the other strings are text (escaped here)."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head>\n"
        f'<body><header><h1>{esc(heading)}</h1><div class="sub">{esc(subtitle)}</div></header>\n'
        f"<nav>{links}</nav>\n<main>\n{body}\n</main>\n<footer>{esc(footer)}</footer></body></html>\n"
    )

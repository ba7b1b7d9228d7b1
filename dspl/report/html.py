"""A few HTML building blocks for the model report: escaped text, tables, images, one page with inline CSS.

The page needs nothing beyond itself and the PNGs beside it: no scripts, no fonts or styles from the web, so
it reads the same offline, in a mail attachment's folder or from a file share.
"""

from __future__ import annotations

from html import escape
from typing import Iterable, Sequence

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 64em; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; } p.note { color: #666; font-size: 0.9em; }
details { margin: 0.5em 0; }
div.row { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
"""


def cell(value: object) -> str:
    """A table cell: numbers right-aligned (floats with 4 significant digits), "–" for a value not measured
    (None), everything escaped."""
    if value is None:
        return "<td>–</td>"
    if isinstance(value, bool):
        return f"<td>{escape(str(value))}</td>"
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{escape(str(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], caption: str | None = None) -> str:
    """An HTML table with a header row."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(src: str, caption: str, width: int | None = None) -> str:
    """An image (a path relative to the page) with a caption."""
    size = f' width="{width}"' if width else ""
    return (f'<figure><img src="{escape(src)}" alt="{escape(caption)}"{size}>'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def row(*parts: str) -> str:
    """Parts side by side, wrapping onto the next line when the page is narrow."""
    return f'<div class="row">{"".join(parts)}</div>'


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def page(title: str, subtitle: str, sections: Iterable[str]) -> str:
    """The whole document."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1><p>{escape(subtitle)}</p>{''.join(sections)}</body></html>\n")

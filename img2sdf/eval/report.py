"""Evaluation reports as Markdown + HTML with tables and pictures, worst cases first.

A report is a list of :class:`Section` s, each with optional text, a :class:`Table` (sorted so the worst
rows come first) and :class:`Figure` s (RGB arrays, PIL images or image files). Pictures are written next
to the report under ``report_files/`` and referenced relatively, so the folder can be moved or zipped.
"""

from __future__ import annotations

import html
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..io import write_image, write_text


@dataclass
class Table:
    columns: list[str]
    rows: list[dict]
    sort_by: str | None = None  # column ranking the rows, worst first
    higher_is_worse: bool = True  # e.g. True for Chamfer distance, False for F-score / IoU


@dataclass
class Figure:
    image: object  # np.ndarray HxWx3 uint8, PIL.Image, or a path to an image file
    caption: str = ""


@dataclass
class Section:
    title: str
    text: str = ""
    table: Table | None = None
    figures: list[Figure] = field(default_factory=list)


def sorted_rows(table: Table) -> list[dict]:
    """Rows worst first by ``sort_by``; rows without a number there (failures) come before all others."""
    if not table.sort_by:
        return list(table.rows)

    def key(row: dict) -> tuple[int, float]:
        v = row.get(table.sort_by)
        if not isinstance(v, int | float) or math.isnan(v):
            return (0, 0.0)
        return (1, -v if table.higher_is_worse else v)

    return sorted(table.rows, key=key)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4g}"
    return "—" if v is None else str(v)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "figure"


def _save_figures(out_dir: Path, sections: list[Section]) -> list[list[tuple[str, str]]]:
    files = out_dir / "report_files"
    if files.exists():
        shutil.rmtree(files)
    saved = []
    for s_i, section in enumerate(sections):
        refs = []
        for f_i, fig in enumerate(section.figures):
            rel = f"report_files/{s_i:02d}_{f_i:03d}_{_slug(fig.caption)}.png"
            if isinstance(fig.image, str | Path):
                files.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fig.image, out_dir / rel)
            else:
                write_image(out_dir / rel, fig.image)
            refs.append((rel, fig.caption))
        saved.append(refs)
    return saved


def _markdown(title: str, intro: str, sections: list[Section], figs: list[list[tuple[str, str]]]) -> str:
    lines = [f"# {title}", ""] + ([intro, ""] if intro else [])
    for section, refs in zip(sections, figs, strict=True):
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        if section.table:
            cols = section.table.columns
            lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |"
                      for r in sorted_rows(section.table)]
            lines.append("")
        for rel, caption in refs:
            lines += [f"![{caption}]({rel})", f"*{caption}*", ""]
    return "\n".join(lines) + "\n"


def _html(title: str, intro: str, sections: list[Section], figs: list[list[tuple[str, str]]]) -> str:
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
           "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
           "font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
           "figure{display:inline-block;margin:6px;text-align:center;font-size:12px}"
           "pre{white-space:pre-wrap}</style></head><body>", f"<h1>{e(title)}</h1>"]
    if intro:
        out.append(f"<pre>{e(intro)}</pre>")
    for section, refs in zip(sections, figs, strict=True):
        out.append(f"<h2>{e(section.title)}</h2>")
        if section.text:
            out.append(f"<pre>{e(section.text)}</pre>")
        if section.table:
            cols = section.table.columns
            out.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
                    for r in sorted_rows(section.table)]
            out.append("</table>")
        out += [f"<figure><img src='{e(rel)}'><figcaption>{e(caption)}</figcaption></figure>"
                for rel, caption in refs]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(out_dir: str | Path, title: str, sections: Sequence[Section],
                 intro: str = "") -> tuple[Path, Path]:
    """Write ``out_dir/report.md`` and ``out_dir/report.html`` (pictures under ``report_files/``)."""
    out_dir = Path(out_dir)
    sections = list(sections)
    figs = _save_figures(out_dir, sections)
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text(md, _markdown(title, intro, sections, figs))
    write_text(page, _html(title, intro, sections, figs))
    return md, page

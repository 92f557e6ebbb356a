"""The report's lines about a many-to-one run's inputs: its sources in channel order, input dropout (and so which
sources may be missing at inference), and the generator's channel layout, read from ``config.json`` alone.

Example:
    >>> data = {"src": "t1,zte", "dst": "ct", "context": 1, "input_dropout": 0.5,
    ...         "src_intensities": ["percentile", "percentile"]}
    >>> sources_text(data), sources_text({"src": "t1"})
    ('t1 + zte', 't1')
    >>> for key, value in source_rows(data, {"in_channels": 1}):
    ...     print(f"{key}: {value}")
    sources: t1, zte (in channel order; each normalised by its own map: t1 percentile, zte percentile)
    input dropout: 0.5: in training each source was zero-filled with this probability (never all of them), so it translates from any non-empty subset of t1, zte; a missing source's channels are zero and its availability channel 0
    channel layout: 8 channels: t1[k-1..k+1] 0–2, zte[k-1..k+1] 3–5, available:t1 6, available:zte 7
    >>> source_rows({"src": "t1"}, {})
    []
"""

from __future__ import annotations

from typing import Any

from pix2gan.data.sources import SourceLayout

__all__ = ["sources_text", "source_rows"]


def _names(data: dict[str, Any]) -> list[str]:
    return [n.strip() for n in str(data.get("src", "")).split(",") if n.strip()]


def sources_text(data: dict[str, Any]) -> str:
    """A run's sources as the report's headings write them: ``t1`` or ``t1 + zte``."""
    return " + ".join(_names(data)) or str(data.get("src"))


def source_rows(data: dict[str, Any], model: dict[str, Any]) -> list[tuple[str, str]]:
    """The overview's rows of a run with several sources (none for one source): the sources in channel order with
    their maps, input dropout and which may be missing, the channel layout. ``data`` / ``model``: the sections of
    ``config.json``; a value it lacks or holds damaged gives no row rather than an error (a report never fails on
    a config)."""
    names = _names(data)
    if len(names) < 2:
        return []
    kinds = data.get("src_intensities")
    maps = f"; each normalised by its own map: {', '.join(f'{n} {k}' for n, k in zip(names, kinds, strict=True))}" \
        if isinstance(kinds, list) and len(kinds) == len(names) else ""  # fmt: skip
    rows = [("sources", f"{', '.join(names)} (in channel order{maps})")]
    try:
        p = float(data.get("input_dropout") or 0.0)
        layout = SourceLayout(tuple(names), int(data.get("context") or 0), int(model.get("in_channels") or 1), p > 0)
    except (TypeError, ValueError):
        return rows
    if layout.optional:
        rows.append(("input dropout", f"{p:g}: in training each source was zero-filled with this probability (never "
                                      f"all of them), so it translates from any non-empty subset of "
                                      f"{', '.join(names)}; a missing source's channels are zero and its availability "
                                      f"channel 0"))  # fmt: skip
    else:
        rows.append(("input dropout", f"none: every source ({', '.join(names)}) is needed to translate"))
    parts = [f"{layout.stack_label(n)} {_span(layout.block(n).start, layout.block(n).stop)}" for n in names]
    parts += [f"{a} {layout.stacks + i}" for i, a in enumerate(layout.availability_names)]
    rows.append(("channel layout", f"{layout.channels} channels: {', '.join(parts)}"))
    return rows


def _span(start: int, stop: int) -> str:
    return f"{start}" if stop - start == 1 else f"{start}–{stop - 1}"

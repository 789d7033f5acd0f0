"""The table's look: its columns and its CSS (no widgets, no data).

The grid fits a notebook's output area (about 760 px in JupyterLab at 1280x800 with
the file browser open): one header cell per column, long texts cut with an ellipsis and
whole in an HTML ``title`` (the widgets' own ``tooltip`` does not render on HTML).
Colours come from JupyterLab's theme variables, mixed with the theme's own text colour
(black in light themes, white in dark ones) so that each reads at 4.5:1 or more on
both; the fallbacks are for front ends without the variables. A table whose kernel is
gone (restarted, shut down) says so instead of showing stale rows under ipywidgets'
broken-link icons.
"""

from __future__ import annotations

from ..states import HookState

__all__ = ["COLUMNS", "CSS", "GRID_COLUMNS", "STATE_CLASSES", "STATS"]

#: The grid's columns: (header, what the header's hover text says, width). Widths in
#: px are fixed; "fr" columns share what is left. At their narrowest the columns need
#: about 700 px. Every long text is cut with an ellipsis and shown in full on hover.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "the hook's id (%hook pause ID, replay ID…)", "60px"),
    ("node", "node @ service", "minmax(60px, 1fr)"),
    ("type", "python (a module), python_file or python_code", "48px"),
    ("argument", "the module, file or code", "minmax(72px, 1.2fr)"),
    ("stored", "persistent: stored, installed again at every connect", "54px"),
    ("state", "active, catching up, paused, retrying, waiting, standby, broken, node deleted, unsubscribed or pending",
     "98px"),
    ("triggers", "runs, with skipped and dropped items", "66px"),
    ("errors", "runs that failed", "52px"),
    ("last", "the last run (hover: its time and duration, and the mean)", "64px"),
    ("failed", "items that still failed after their retries: click to run them again", "54px"),
    ("", "", "96px"),
)
#: The live cells (state … last) are one HTML spanning their columns: one message per
#: row and refresh, whatever changed in it.
STATS = slice(5, 9)
_STATS_WIDTHS = [int(c[2][:-2]) for c in COLUMNS[STATS]]
GRID_COLUMNS = " ".join(c[2] for c in COLUMNS)
#: The colour class of each state's text.
STATE_CLASSES: dict[str, str] = {
    HookState.ACTIVE: "phm-ok",
    HookState.CATCHING_UP: "phm-info",
    HookState.PAUSED: "phm-warn",
    HookState.RETRYING: "phm-warn",
    HookState.WAITING: "phm-warn",
    HookState.STANDBY: "phm-muted",
    HookState.BROKEN: "phm-err",
    HookState.NODE_DELETED: "phm-err",
    HookState.UNSUBSCRIBED: "phm-err",
    HookState.PENDING: "phm-warn",
}

_MIX = "color-mix(in srgb, var(--jp-{0}-color1, {1}) 70%, var(--jp-content-font-color0, #000))"
_COLOURS = (
    ("ok", "success", "#2d7230"),
    ("info", "brand", "#145ea8"),
    ("warn", "warn", "#ac5700"),
    ("err", "error", "#a92626"),
)
CSS = (
    ".phm-table{"
    + "".join(f"--phm-{name}:{fallback};--phm-{name}:{_MIX.format(var, fallback)};" for name, var, fallback in _COLOURS)
    + "--phm-muted:var(--jp-content-font-color2, #666);"
    "font-size:var(--jp-widgets-font-size, 13px);max-width:100%;}"
    ".phm-table .phm-ok{color:var(--phm-ok)}.phm-table .phm-info{color:var(--phm-info)}"
    ".phm-table .phm-warn{color:var(--phm-warn)}.phm-table .phm-err{color:var(--phm-err)}"
    ".phm-table .phm-muted{color:var(--phm-muted)}"
    ".phm-table .phm-cell{margin:0;min-width:0;width:auto;overflow:hidden}"
    ".phm-table .phm-cell .widget-html-content{min-width:0;width:100%;overflow:hidden}"
    ".phm-table .phm-c{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
    "padding-right:6px;box-sizing:border-box}"
    ".phm-table .phm-head-cell .phm-c{font-weight:bold}"
    f".phm-table .phm-stats{{grid-column:span {STATS.stop - STATS.start}}}"
    ".phm-table .phm-stats-row{display:flex}"
    ".phm-table .phm-stats-row>.phm-c{flex:none}"
    + "".join(
        f".phm-table .phm-stats-row>.phm-c:nth-child({i + 1}){{width:{w}px}}" for i, w in enumerate(_STATS_WIDTHS)
    )
    + ".phm-table .phm-num{font-variant-numeric:tabular-nums}"
    ".phm-table .phm-id .phm-c{font-family:var(--jp-code-font-family, monospace)}"
    ".phm-table .phm-actions{margin:0;overflow:hidden}"
    ".phm-table .phm-actions .jupyter-button,.phm-table .phm-failed{width:28px;padding:0;margin:0 2px 0 0}"
    ".phm-table .phm-failed{width:50px}"
    ".phm-table .phm-header .phm-c{padding-right:0}"
    ".phm-table .phm-group{grid-column:1 / -1;margin-top:4px;"
    "border-bottom:1px solid var(--jp-border-color2, #e0e0e0)}"
    ".phm-table .phm-triggers{table-layout:fixed;width:100%;border-collapse:collapse;font-size:95%}"
    ".phm-table .phm-triggers th{text-align:left}"
    ".phm-table .phm-triggers td,.phm-table .phm-triggers th{padding:1px 0;overflow:hidden}"
    ".phm-table .phm-trigger-detail pre{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".phm-table .phm-triggers-panel,.phm-table .phm-trigger-detail{min-width:0;width:auto;margin:0}"
    ".phm-table.jupyter-widgets-disconnected>*{display:none!important}"
    ".phm-table .jupyter-widgets-disconnected::before,.phm-table.jupyter-widgets-disconnected::before"
    "{content:none!important;display:none!important}"
    ".phm-table.jupyter-widgets-disconnected::after{content:'The kernel of this table is gone "
    "(restarted or shut down): it no longer updates. Run %hook list for a live one.';"
    "display:block;padding:4px 0;color:var(--jp-content-font-color2, #666);font-style:italic}"
)

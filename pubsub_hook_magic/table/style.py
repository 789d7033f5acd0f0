"""The table's look: its columns and its CSS (no widgets, no data).

The table fits any output area from 480 px up, in one of two layouts chosen by the
table's own width (a CSS container query, so a narrower notebook panel switches too):

* **one line per hook** from :data:`WIDE_MIN` px: every column under its header, the
  buttons at the right;
* **two lines per hook** below: what the hook is (id, node, type, argument, stored) on
  the first line, how it runs (state, triggers, errors, last, failed, the buttons) on
  the second. Its narrowest, :data:`NARROW_MIN` px, is under 480. Below that (a
  phone), the grid scrolls sideways rather than hiding a button.

When the table is narrower than its columns want, the columns give up width in this
order:

1. **argument** first: it takes what is left, down to its minimum;
2. **service** next: the node cell shows ``node @ service``, and the service's part is
   cut before the node's name (then the node's name, down to the cell's minimum);
3. nothing else: the id, type, stored and the live columns have fixed widths, wide
   enough for their header and their texts ("59 min ago" included), so a header never
   wraps or is cut.

Every cut text ends with an ellipsis and is whole in an HTML ``title`` (the widgets'
own ``tooltip`` does not render on HTML). Colours come from JupyterLab's theme
variables, mixed with the theme's own text colour (black in light themes, white in dark
ones) so that each reads at 4.5:1 or more on both; the fallbacks are for front ends
without the variables. A table whose kernel is gone (restarted, shut down) says so
instead of showing stale rows under ipywidgets' broken-link icons.
"""

from __future__ import annotations

from ..states import HookState

__all__ = ["COLUMNS", "CSS", "NARROW_MIN", "STATE_CLASSES", "STATS", "WIDE_MIN"]

#: The grid's columns: (key, header, what the header's hover text says, width in the
#: one-line layout, its minimum in px). A cell of column ``key`` has the class
#: ``phm-KEY`` (its header ``phm-h-KEY``).
COLUMNS: tuple[tuple[str, str, str, str, int], ...] = (
    ("id", "id", "the hook's id (%hook pause ID, replay ID…)", "60px", 60),
    ("node", "node", "node @ service (the service is cut first)", "minmax(72px, max-content)", 72),
    ("type", "type", "module (python), file (python_file), code (python_code) or function", "62px", 62),
    ("arg", "argument", "the module, file, code or function; tags: the events it runs on (when not "
     "only publications), --where and how many items it filtered out, --retry", "minmax(84px, 1fr)", 84),
    ("lifetime", "stored", "persistent: stored, installed again at every connect", "54px", 54),
    ("state", "state", "active, catching up, paused, retrying, waiting, standby, broken, node deleted, "
     "unsubscribed or pending", "98px", 98),
    ("triggers", "triggers", "runs, with skipped and dropped items (standby: the owner's, in italics)",
     "66px", 66),
    ("errors", "errors", "runs that failed", "52px", 52),
    ("last", "last", "the last run (hover: its time and duration, and the mean)", "84px", 84),
    ("failed", "failed", "items that still failed after their retries: click to run them again", "54px", 54),
    ("actions", "", "", "96px", 96),
)
#: The live cells (state … last) are one HTML spanning their columns: one message per
#: row and refresh, whatever changed in it.
STATS = slice(5, 9)
_STATS_WIDTHS = [c[4] for c in COLUMNS[STATS]]
#: The one-line layout's narrowest (px); below, two lines per hook.
WIDE_MIN = sum(c[4] for c in COLUMNS) + 4
#: The two-line layout: seven tracks, the first five the live cells' widths (state,
#: triggers, errors, last, failed), then a flexible one and one as wide as "stored".
#: Line 1: id [1], node [2-3], type [4], argument [5-6], stored [7]; line 2: the live
#: cells [1-4], failed [5], the buttons [6-7].
_NARROW_TRACKS = (*(f"{w}px" for w in _STATS_WIDTHS), "54px", "minmax(44px, 1fr)", "54px")
NARROW_MIN = sum(_STATS_WIDTHS) + 54 + 44 + 54
_NARROW_PLACES = {
    "id": "1 / 2", "node": "2 / 4", "type": "4 / 5", "arg": "5 / 7", "lifetime": "7 / 8",
    "state": "1 / 2", "triggers": "2 / 3", "errors": "3 / 4", "last": "4 / 5",
    "stats": "1 / 5", "failed": "5 / 6", "actions": "6 / 8",
}
_FIRST_LINE = ("id", "node", "type", "arg", "lifetime")
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
_G = ".phm-table .phm-grid>"
_NARROW = (
    f"@container phm-table (max-width: {WIDE_MIN - 1}px){{"
    f".phm-table .phm-grid{{grid-template-columns:{' '.join(_NARROW_TRACKS)}}}"
    + "".join(f"{_G}.phm-{k},{_G}.phm-h-{k}{{grid-column:{p}}}" for k, p in _NARROW_PLACES.items())
    + ",".join(f"{_G}.phm-{k}" for k in _FIRST_LINE)
    + "{border-top:1px solid var(--jp-border-color2, #e0e0e0);padding-top:2px}"
    "}"
)
CSS = (
    ".phm-table{"
    + "".join(f"--phm-{name}:{fallback};--phm-{name}:{_MIX.format(var, fallback)};" for name, var, fallback in _COLOURS)
    + "--phm-muted:var(--jp-content-font-color2, #666);"
    "container:phm-table / inline-size;"
    "font-size:var(--jp-widgets-font-size, 13px);max-width:100%;}"
    ".phm-table .phm-ok{color:var(--phm-ok)}.phm-table .phm-info{color:var(--phm-info)}"
    ".phm-table .phm-warn{color:var(--phm-warn)}.phm-table .phm-err{color:var(--phm-err)}"
    ".phm-table .phm-muted{color:var(--phm-muted)}"
    f".phm-table .phm-grid{{display:grid;grid-template-columns:{' '.join(c[3] for c in COLUMNS)};"
    "overflow-x:auto;overflow-y:hidden}"
    ".phm-table .phm-cell{margin:0;min-width:0;width:auto;overflow:hidden}"
    ".phm-table .widget-html-content{min-width:0;width:100%;overflow:hidden}"
    ".phm-table .phm-c{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
    "padding-right:6px;box-sizing:border-box;min-width:0}"
    # A cell of two parts (node @ service; tags and the argument): the second part is
    # cut first, each with its own ellipsis.
    ".phm-table .phm-c.phm-split{display:flex;align-items:baseline}"
    ".phm-table .phm-split>.phm-c{padding-right:0;flex:0 1 auto}"
    ".phm-table .phm-split>.phm-c+.phm-c{flex-shrink:1000}"
    ".phm-table .phm-split>.phm-tags{flex:0 1 auto;display:flex;gap:3px;margin-right:4px}"
    ".phm-table .phm-node{max-width:220px}"
    ".phm-table .phm-tag{font-size:85%;padding:0 3px;border-radius:3px;line-height:1.35;"
    "border:1px solid var(--jp-border-color1, #bdbdbd);white-space:nowrap}"
    ".phm-table .phm-head-cell .phm-c{font-weight:bold}"
    ".phm-table .phm-stats{grid-column:span 4}"
    ".phm-table .phm-stats-row{display:flex}"
    ".phm-table .phm-stats-row>.phm-c{flex:none}"
    + "".join(
        f".phm-table .phm-stats-row>.phm-c:nth-child({i + 1}){{width:{w}px}}" for i, w in enumerate(_STATS_WIDTHS)
    )
    + ".phm-table .phm-owners{font-style:italic}"
    ".phm-table .phm-num{font-variant-numeric:tabular-nums}"
    ".phm-table .phm-id .phm-c{font-family:var(--jp-code-font-family, monospace)}"
    ".phm-table .phm-actions{margin:0;overflow:hidden}"
    ".phm-table .phm-actions .jupyter-button,.phm-table .phm-failed{width:28px;padding:0;margin:0 2px 0 0}"
    ".phm-table .phm-failed{width:50px}"
    ".phm-table .phm-header,.phm-table .phm-message{min-width:0;max-width:100%;overflow:hidden}"
    ".phm-table .phm-header .phm-c,.phm-table .phm-message .phm-c{padding-right:0}"
    ".phm-table .phm-notice{min-width:0;max-width:100%;align-items:center}"
    ".phm-table .phm-notice>.phm-message{flex:1 1 auto}"
    ".phm-table .phm-dismiss{width:24px;min-width:24px;height:20px;padding:0;margin:0 0 0 4px;flex:none}"
    # The pager: the filter box, the count, prev, "page 3 of 100", next; on a narrow
    # table they wrap to a second line rather than scroll.
    ".phm-table .phm-pager{flex-wrap:wrap;align-items:center;gap:2px 6px;min-width:0;max-width:100%;"
    "margin:2px 0 4px}"
    ".phm-table .phm-pager>.phm-filter{flex:1 1 220px;min-width:150px;max-width:340px;width:auto;margin:0}"
    ".phm-table .phm-pager>.phm-filter input{min-width:0}"
    ".phm-table .phm-pager>.phm-count{flex:0 1 auto;min-width:0;width:auto;margin:0}"
    ".phm-table .phm-pager>.phm-page{flex:none;width:auto;margin:0}"
    ".phm-table .phm-pager>.phm-page .phm-c{padding-right:0}"
    ".phm-table .phm-pager>.jupyter-button{flex:none;width:28px;padding:0;margin:0}"
    ".phm-table .phm-group{grid-column:1 / -1;margin-top:4px;"
    "border-bottom:1px solid var(--jp-border-color2, #e0e0e0)}"
    # The triggers panel: a head and one row per trigger, each a button laid over its
    # cells (a click anywhere in the row picks it), the picked one highlighted.
    ".phm-table .phm-trigger-rows{min-width:0;margin:0;overflow:hidden}"
    ".phm-table .phm-trigger-row{position:relative;margin:0;min-width:0;overflow:hidden;"
    "border-radius:2px}"
    ".phm-table .phm-trigger-row:hover{background:var(--jp-layout-color2, #eee)}"
    ".phm-table .phm-trigger-row.phm-picked{background:var(--jp-brand-color3, #c3e4fb);"
    "box-shadow:inset 3px 0 0 var(--jp-brand-color1, #1976d2)}"
    ".phm-table .phm-trigger-row>.phm-trigger-cells{flex:1 1 auto;min-width:0;margin:0}"
    ".phm-table .phm-trigger-row>.phm-row-pick{position:absolute;inset:0;width:100%;height:100%;margin:0;"
    "padding:0;opacity:0;cursor:pointer}"
    ".phm-table .phm-tr{display:grid;grid-template-columns:72px minmax(40px,1fr) minmax(40px,1fr) 76px "
    "minmax(60px,1.4fr) minmax(40px,1.6fr);padding:1px 0}"
    ".phm-table .phm-tr-head .phm-c{font-weight:bold}"
    ".phm-table .phm-trigger-detail pre{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".phm-table .phm-triggers-panel,.phm-table .phm-trigger-detail{min-width:0;width:auto;margin:0}"
    + _NARROW
    + ".phm-table.jupyter-widgets-disconnected>*{display:none!important}"
    ".phm-table .jupyter-widgets-disconnected::before,.phm-table.jupyter-widgets-disconnected::before"
    "{content:none!important;display:none!important}"
    ".phm-table.jupyter-widgets-disconnected::after{content:'The kernel of this table is gone "
    "(restarted or shut down): it no longer updates. Run %hook list for a live one.';"
    "display:block;padding:4px 0;color:var(--jp-content-font-color2, #666);font-style:italic}"
)

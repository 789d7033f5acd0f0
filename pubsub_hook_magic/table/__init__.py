"""The live hooks table: ipywidgets showing every hook and its recent triggers.

Four modules, one job each:

* :mod:`.style`: the columns and the CSS (colours from JupyterLab's theme variables);
* :mod:`.render`: the HTML of every cell, pure functions of plain data (summaries,
  triggers, the session's figures), where everything from the network is escaped;
* :mod:`.widgets`: :class:`HookTable` and its :class:`~.widgets.HookRow` rows, each the
  owner (and closer) of the widgets it makes;
* :mod:`.hub`: :class:`TableHub`, one per manager: every displayed table, the one lock
  under which widgets change, and the coalescing flush on the session's loop.

``%hook list`` asks the hub for a new table and displays its ``box``.
"""

from __future__ import annotations

from .hub import TableHub
from .render import payload_text, trigger_detail_html, triggers_html
from .widgets import HookRow, HookTable

__all__ = ["HookRow", "HookTable", "TableHub", "payload_text", "trigger_detail_html", "triggers_html"]

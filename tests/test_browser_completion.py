"""Completion hints of ``%hook`` lines, as JupyterLab shows them (headless Chromium):
short, on one line each, and distinct per hook, in light and dark."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .test_browser_table import CHROMIUM, CHROMIUM_ARGS, KERNEL_READY, REPO, TIMEOUT_MS, Lab, _notebook, lab

pytestmark = pytest.mark.browser

__all__ = ["lab"]  # the fixture, shared with the table's browser test

#: Each visible completion item: its text, its hint, and how many lines each takes.
ITEMS = """() => [...document.querySelectorAll('.jp-Completer-item')].map(li => {
    const hint = li.querySelector('.jp-Completer-typeExtended') || li.querySelector('.jp-Completer-type');
    const match = li.querySelector('.jp-Completer-match');
    const lines = (el) => {
        if (!el) return 0;
        const style = getComputedStyle(el);
        const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.3;
        return Math.round(el.getBoundingClientRect().height / line);
    };
    const cut = (el) => !!el && el.scrollWidth > el.clientWidth + 1;
    return {text: match ? match.innerText : '', hint: hint ? hint.innerText : '',
            hintLines: lines(hint), itemHeight: li.getBoundingClientRect().height, hintCut: cut(hint)};
})"""


def complete(page: Any, source: str, shot: Any = None) -> list[dict[str, Any]]:
    """Type ``source`` in a new cell, ask for completion at its end, return the items
    (and take a screenshot of them, to ``shot``)."""
    index = page.evaluate(
        """(source) => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            const n = nb.model.sharedModel.cells.length;
            nb.model.sharedModel.insertCell(n, {cell_type: 'code', source});
            nb.activeCellIndex = n;
            nb.scrollToItem(n);
            return n;
        }""",
        source,
    )
    page.wait_for_function(  # (the notebook makes a cell's editor when it is shown)
        "(n) => { const c = window.jupyterapp.shell.currentWidget.content.widgets[n]; return !!(c && c.editor); }",
        arg=index,
    )
    page.evaluate(
        """([n, length]) => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            nb.mode = 'edit';
            const editor = nb.widgets[n].editor;
            editor.focus();
            editor.setCursorPosition(editor.getPositionAt(length));
        }""",
        [index, len(source)],
    )
    page.evaluate("() => window.jupyterapp.commands.execute('completer:invoke-notebook')")
    page.wait_for_selector(".jp-Completer-item", state="visible")
    items = page.evaluate(ITEMS)
    if shot is not None:
        page.screenshot(path=str(shot))
    page.keyboard.press("Escape")
    page.wait_for_selector(".jp-Completer", state="hidden")
    return items


def test_completion_hints_are_short_one_line_and_tell_hooks_apart(lab: Lab, publisher: Any, node: str) -> None:
    from playwright.sync_api import sync_playwright

    other = f"{node}-other"
    publisher.create_node(other)
    (lab.root / "complete.ipynb").write_text(
        json.dumps(
            _notebook(
                [
                    "%load_ext pubsub_hook_magic",
                    "%hook connect --no-tls",
                    f"%hook create -s pubsub.localhost -n {node} -t python_code pass",
                    f"%hook create -s pubsub.localhost -n {other} -t python_code pass",
                ]
            )
        )
    )
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport={"width": 1000, "height": 800}, color_scheme=scheme)
                page.set_default_timeout(TIMEOUT_MS)
                theme = "JupyterLab Dark" if scheme == "dark" else "JupyterLab Light"
                page.goto(f"{lab.url}/lab/tree/complete.ipynb?token={lab.token}")
                page.wait_for_function(KERNEL_READY, timeout=TIMEOUT_MS, polling=100)
                page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
                if scheme == "light":
                    page.evaluate("() => window.jupyterapp.commands.execute('runmenu:run-all')")
                page.wait_for_function(
                    """() => {
                        const nb = window.jupyterapp.shell.currentWidget.content;
                        const cells = nb.widgets;
                        const out = cells[cells.length - 1] && cells[cells.length - 1].node.innerText;
                        return out && out.includes('other') && out.includes('Created hook');
                    }""",
                    timeout=TIMEOUT_MS,
                ) if scheme == "light" else None
                commands = complete(page, "%hook ")
                hooks = complete(page, "%hook pause ", artifacts / f"completion-{scheme}.png")
                for items in (commands, hooks):
                    assert items, scheme
                    heights = {round(i["itemHeight"]) for i in items}
                    assert len(heights) == 1, items  # no item grew a second line
                    for item in items:
                        assert item["hintLines"] <= 1 and not item["hintCut"], item
                        assert len(item["hint"]) <= 20, item
                assert {i["text"] for i in commands} >= {"create", "list", "delete"}
                ours = {i["text"]: i["hint"] for i in commands if i["text"] in ("create", "list", "delete", "connect")}
                assert ours == dict.fromkeys(("create", "list", "delete", "connect"), "command"), commands
                # (JupyterLab adds words of the notebook without a hint: "%", "hook")
                assert {i["hint"] for i in commands} <= {"command", ""}, commands
                hook_hints = [i["hint"] for i in hooks if i["hint"]]
                assert len(hook_hints) == 2 and len(set(hook_hints)) == 2, hooks  # one per hook, told apart
                page.close()
        finally:
            browser.close()

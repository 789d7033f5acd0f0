"""Loading and checking hook code at creation (pure logic, no server)."""

import asyncio
import os
import textwrap

import pytest

from pubsub_hook_magic.hooks import Hook, HookLoadError, HookType, load_hook, normalize_arg


def make(kind, arg):
    return Hook(service="pubsub.localhost", node="n", type=HookType(kind), arg=normalize_arg(HookType(kind), arg), id="h1")


def write(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_python_file_hook_is_loaded_once_and_called(tmp_path):
    path = write(tmp_path, "h.py", """
        calls = []
        def hook(host, client, item):
            calls.append(item)
            return len(calls)
    """)
    func = load_hook(make("python_file", path), {})
    assert func("host", "client", "a") == 1
    assert func("host", "client", "b") == 2


@pytest.mark.parametrize(
    "source, message",
    [
        ("x = 1\n", "defines no `hook`"),
        ("hook = 3\n", "not a function"),
        ("def hook(:\n", "SyntaxError"),
        ("raise ValueError('nope')\n", "ValueError: nope"),
        ("def hook(item):\n    pass\n", "signature"),
    ],
)
def test_bad_python_file_says_what_is_wrong(tmp_path, source, message):
    path = write(tmp_path, "bad.py", source)
    with pytest.raises(HookLoadError, match=message):
        load_hook(make("python_file", path), {})


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(HookLoadError, match="does not exist"):
        load_hook(make("python_file", str(tmp_path / "nope.py")), {})
    with pytest.raises(HookLoadError, match="not a file"):
        load_hook(make("python_file", str(tmp_path)), {})


def test_python_file_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalize_arg(HookType.PYTHON_FILE, "h.py") == os.path.join(str(tmp_path), "h.py")
    assert normalize_arg(HookType.PYTHON_FILE, "~/h.py") == os.path.expanduser("~/h.py")


def test_python_module_hook(tmp_path, monkeypatch):
    (tmp_path / "goodmod.py").write_text("def hook(host, client, item):\n    return 'ok'\ndef other(h, c, i):\n    return 'other'\n")
    (tmp_path / "brokenmod.py").write_text("import does_not_exist_xyz\n")
    (tmp_path / "nohook.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_hook(make("python", "goodmod"), {})(1, 2, 3) == "ok"
    assert load_hook(make("python", "goodmod:other"), {})(1, 2, 3) == "other"
    with pytest.raises(HookLoadError, match="cannot import 'no_such_module_xyz'"):
        load_hook(make("python", "no_such_module_xyz"), {})
    with pytest.raises(HookLoadError, match="importing 'brokenmod' raised ModuleNotFoundError"):
        load_hook(make("python", "brokenmod"), {})
    with pytest.raises(HookLoadError, match="has no 'hook'"):
        load_hook(make("python", "nohook"), {})


def test_python_code_shares_the_namespace_but_not_item():
    ns = {"seen": [], "item": "the notebook's item", "total": 0}
    func = load_hook(make("python_code", "seen.append(item)\ntotal += 1\nfresh = [item for _ in range(2)]"), ns)
    assert func("host", "client", "i1") is None
    func("host", "client", "i2")
    assert ns["seen"] == ["i1", "i2"]
    assert ns["total"] == 2
    assert ns["fresh"] == ["i2", "i2"]  # comprehensions see the hook's item
    assert ns["item"] == "the notebook's item"


def test_python_code_with_await_returns_a_coroutine():
    ns = {"asyncio": asyncio, "out": []}
    func = load_hook(make("python_code", "await asyncio.sleep(0)\nout.append(item)"), ns)
    result = func(None, None, "x")
    assert asyncio.iscoroutine(result)
    asyncio.run(result)
    assert ns["out"] == ["x"]


def test_python_code_syntax_error():
    with pytest.raises(HookLoadError, match="line 2: SyntaxError"):
        load_hook(make("python_code", "x = 1\nx = = 2"), {})


def test_python_code_traceback_shows_the_code_line():
    import traceback

    func = load_hook(make("python_code", "a = 1\nraise KeyError(item)"), {})
    with pytest.raises(KeyError) as info:
        func(None, None, "k")
    text = "".join(traceback.format_exception(info.value))
    assert "raise KeyError(item)" in text


def test_unknown_type():
    from pubsub_hook_magic.hooks import HookError

    with pytest.raises(HookError, match="use one of python, python_file, python_code"):
        HookType.parse("ruby")

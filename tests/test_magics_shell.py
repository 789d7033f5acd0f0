"""The IPython layer in a fresh InteractiveShell (no kernel): help, completion, config."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from pubsub_hook_magic.commands import complete, complete_typed


@pytest.fixture
def shell():
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(history_length=0, hist_file=":memory:")
    ip.extension_manager.load_extension("pubsub_hook_magic")
    yield ip
    ip.extension_manager.unload_extension("pubsub_hook_magic")
    InteractiveShell.clear_instance()


def test_help_lists_every_sub_command(shell, capsys):
    doc = shell.find_line_magic("hook").__doc__
    for sub in ("connect", "create", "delete", "list", "pause", "resume", "replay", "test", "publish", "nodes", "status", "disconnect"):
        assert f"%hook {sub}" in doc
    shell.run_line_magic("hook", "create -h")
    assert "python_code" in capsys.readouterr().out


def test_bad_input_is_a_usage_error_and_nothing_is_printed_as_traceback(shell):
    with pytest.raises(UsageError, match="not connected"):
        shell.run_line_magic("hook", "create -n x -t python_code pass")
    with pytest.raises(UsageError, match="unknown sub-command 'bogus'"):
        shell.run_line_magic("hook", "bogus")
    with pytest.raises(UsageError, match=r"did you mean list\? \(see %hook -h\)"):
        shell.run_line_magic("hook", "lst")


def test_terminal_list_prints_text(shell, capsys):
    shell.run_line_magic("hook", "list")
    assert capsys.readouterr().out.strip() == "No hook found."


def test_completion_of_sub_commands_options_types_and_hooks():
    hooks = [("ab12cd", "pubsub.example.org", "news", "python_code", "print(item)")]
    assert complete("%hook cr", hooks) == ["create"]
    assert complete("%hook create -t ", hooks) == ["python", "python_file", "python_code", "python_function"]
    assert complete("%hook create -t python_fi", hooks) == ["python_file"]
    assert complete("%hook delete -s ", hooks, "me@example.org") == ["me@example.org", "pubsub.example.org"]
    assert complete("%hook delete -s pubsub.example.org -n n", hooks) == ["news"]
    assert complete("%hook pause ", hooks) == ["ab12cd"]
    assert "--persistent" in complete("%hook create --p", hooks)

def test_completion_of_python_files(tmp_path, monkeypatch):
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "blog.py").write_text("")
    (tmp_path / "hooks" / "notes.txt").write_text("")
    monkeypatch.chdir(tmp_path)
    assert complete("%hook create -n news -t python_file ho", []) == ["hooks/"]
    assert complete("%hook create -n news -t python_file hooks/", []) == ["hooks/blog.py"]
    fragment, [candidate] = complete_typed("%hook create -n news -t python_file hooks/b", [])
    assert fragment == "hooks/b" and candidate.type == "file"


def test_completion_is_registered_and_removed(shell):
    from IPython.core.completer import provisionalcompleter

    magics = shell._pubsub_hook_magics
    assert magics.matcher in shell.Completer.custom_matchers
    with provisionalcompleter():
        completions = list(shell.Completer.completions("%hook cre", 9))
    assert [(c.text, c.type) for c in completions] == [("create", "command")]
    shell.extension_manager.unload_extension("pubsub_hook_magic")
    assert not [m for m in shell.Completer.custom_matchers if getattr(m, "__self__", None) is magics]
    shell.extension_manager.load_extension("pubsub_hook_magic")


def test_config_traits_are_validated(shell):
    magics = shell._pubsub_hook_magics
    shell.run_line_magic("config", "HookMagics.time_limit = 5")
    assert magics.time_limit == 5
    with pytest.raises(UsageError, match="time_limit must be positive"):
        shell.run_line_magic("config", "HookMagics.time_limit = -1")
    with pytest.raises(UsageError, match="list_format"):
        shell.run_line_magic("config", "HookMagics.list_format = 'yaml'")
    with pytest.raises(UsageError, match="expected an int"):
        shell.run_line_magic("config", "HookMagics.history = 'many'")
    assert magics.time_limit == 5 and magics.history == 50 and magics.list_format == "table"
    shell.run_line_magic("config", "HookMagics.history = 10")
    assert magics.history == 10

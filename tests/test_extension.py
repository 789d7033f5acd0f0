"""Load, unload and reload of the extension in a fresh InteractiveShell (no kernel)."""

from __future__ import annotations

import threading

import pytest
from IPython.core.extensions import ExtensionManager
from IPython.core.interactiveshell import InteractiveShell

from pubsub_hook_magic.extension import ConfigMagic, ReloadWatch
from pubsub_hook_magic.accounts import Accounts
from pubsub_hook_magic.loopthread import LoopThread


def session_threads() -> int:
    return sum(t.name == "pubsub-hook-session" and t.is_alive() for t in threading.enumerate())


class Engine:
    """Stands for the HookManager: what the magics' close() calls of it."""

    def __init__(self) -> None:
        self.disconnected = False

    async def disconnect(self) -> None:
        self.disconnected = True


def start_session(magics):
    """What the first %hook does (without the engine: not what these tests are about)."""
    manager = Engine()
    magics.client.adopt(LoopThread(), manager, Accounts())
    return manager


@pytest.fixture
def shell():
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(history_length=0, hist_file=":memory:")
    ip.run_line_magic("load_ext", "pubsub_hook_magic")
    yield ip
    ip.extension_manager.unload_extension("pubsub_hook_magic")
    InteractiveShell.clear_instance()


def test_reload_hands_the_running_session_to_the_new_magics(shell):
    old = shell._pubsub_hook_magics
    manager = start_session(old)
    before = session_threads()
    shell.run_line_magic("reload_ext", "pubsub_hook_magic")
    new = shell._pubsub_hook_magics
    assert new is not old and new.manager is manager and new.loop_thread.alive
    assert session_threads() == before
    assert shell.find_line_magic("hook").__self__ is new
    assert isinstance(shell.extension_manager.reload_extension, ReloadWatch)
    assert not ReloadWatch.reloading(shell)
    shell.run_line_magic("unload_ext", "pubsub_hook_magic")
    assert manager.disconnected and not new.loop_thread.alive and session_threads() == before - 1
    assert shell.find_line_magic("hook") is None
    # what load added is gone: IPython's own methods and magics are back
    assert "reload_extension" not in vars(shell.extension_manager)
    assert shell.extension_manager.reload_extension.__func__ is ExtensionManager.reload_extension
    assert not isinstance(shell.find_line_magic("config"), ConfigMagic)
    shell.run_line_magic("load_ext", "pubsub_hook_magic")


def test_reload_before_any_session_starts_none(shell):
    shell.run_line_magic("reload_ext", "pubsub_hook_magic")
    assert shell._pubsub_hook_magics is not None
    assert getattr(shell, "_pubsub_hook_handover", None) is None


def test_plain_unload_stops_the_session(shell):
    magics = shell._pubsub_hook_magics
    manager = start_session(magics)
    shell.run_line_magic("unload_ext", "pubsub_hook_magic")
    assert manager.disconnected and not magics.loop_thread.alive
    shell.run_line_magic("load_ext", "pubsub_hook_magic")
    assert shell._pubsub_hook_magics is not magics


def test_other_extensions_reload_untouched(shell):
    watch = shell.extension_manager.reload_extension
    seen = []
    watch.original = lambda name: seen.append((name, watch.active))
    shell.run_line_magic("reload_ext", "storemagic")
    assert seen == [("storemagic", False)]

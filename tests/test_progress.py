"""The catch-up progress of a connect (:mod:`pubsub_hook_magic.progress`), pure logic."""

from __future__ import annotations

from pubsub_hook_magic.progress import CatchUpProgress, Progress, progress_of
from pubsub_hook_magic.snapshot import HookView, Snapshot
from pubsub_hook_magic.states import HookState, SessionState


def snapshot(*states: HookState, temporary: int = 0) -> Snapshot:
    views = [HookView(f"h{i}", "s", f"n{i}", "python_code", "pass", True, state) for i, state in enumerate(states)]
    views += [HookView(f"t{i}", "s", "n", "python_code", "pass", False, HookState.CATCHING_UP) for i in range(temporary)]
    return Snapshot(SessionState.CONNECTED, "a@b", tuple(views))


def test_progress_counts_the_persistent_hooks_past_their_catch_up():
    got = progress_of(snapshot(HookState.ACTIVE, HookState.CATCHING_UP, HookState.STANDBY, temporary=2))
    assert got == Progress(2, 3) and not got.finished
    assert got.line(1.25) == "catching up: 2 of 3 persistent hooks (1.2 s)"
    done = progress_of(snapshot(HookState.ACTIVE, HookState.PAUSED))
    assert done.finished and done.line(3.0) == "caught up: 2 persistent hook(s) in 3.0 s"


def test_the_follower_reports_at_most_every_interval_then_once_at_the_end():
    current = [snapshot(HookState.CATCHING_UP, HookState.CATCHING_UP)]
    reports = []
    follower = CatchUpProgress(lambda: current[0], lambda p, s: reports.append(p), interval=3600)
    follower.changed()  # the first report (the last one was "never")
    follower.changed()  # within the interval: nothing
    current[0] = snapshot(HookState.ACTIVE, HookState.ACTIVE)
    follower.changed()  # finished: reported at once, whatever the interval
    follower.changed()  # and then nothing more
    assert reports == [Progress(0, 2), Progress(2, 2)] and follower.done

"""What ``%hook create`` says, in a real kernel: the retry it was given, and the notebook
names a persistent hook will wait for (one or several)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.kernel


def test_create_mentions_its_retries(connected, node):
    out = connected.run(f"%hook create -s pubsub.localhost -n {node} --retry 3 -t python_code pass").stdout
    assert "a failed run is tried again up to 3 time(s)" in out, out
    plain = connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code x = 1").stdout
    assert "tried again" not in plain, plain


def test_the_names_a_persistent_hook_waits_for_agree_in_number(connected, node):
    one = connected.run(f"%hook create -s pubsub.localhost -n {node} -P -t python_code journal.append(1)").stdout
    assert "waits for journal until a cell defines it;" in one, one
    two = connected.run(f"%hook create -s pubsub.localhost -n {node} -P -t python_code a.append(b)").stdout
    assert "waits for a, b until a cell defines them;" in two, two

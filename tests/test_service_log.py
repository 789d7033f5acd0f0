"""What ``pubsub-hook run`` logs beside a notebook (issue 24, item 5): no ERROR line for
an item it does not run (a hook the kernel runs, a paused hook), and a start-up line
that says which hooks wait for the kernel to let go. Real processes, the private
Prosody."""

from __future__ import annotations

import pytest

from .conftest import connect_line
from .test_ownership import hook_list, logging_hook, runs, service_ready, start_service, stop, wait_until

pytestmark = pytest.mark.kernel


def _started(lines: list[str]) -> str:
    return next(line for line in lines if "connected as" in line)


@pytest.mark.timeout(120)
def test_the_service_says_what_waits_for_the_kernel_and_logs_no_error_for_its_items(
    kernel, server, publisher, node, data_dir, tmp_path
):
    hook, out = logging_hook(tmp_path)
    kernel.run(connect_line(server))
    kernel_pid = int(kernel.run("import os; print(os.getpid())").stdout)
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}")
    # A python_code hook on the notebook's names: it cannot load in the service.
    kernel.run("seen = []")
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P seen.append(item['id'])")
    file_id, code_id = (h["id"] for h in hook_list(kernel))
    service = start_service(server, data_dir)
    lines: list[str] = []
    try:
        service_ready(service, lines)
        started = _started(lines)
        assert "running 0 persistent hook(s)" in started, started
        assert f"1 waits for the kernel (pid {kernel_pid}) to let go ({file_id})" in started, started
        assert f"runs in the kernel (pid {kernel_pid}) and does not load here ({code_id})" in started, started
        for n in range(3):
            publisher.publish(node, item_id=f"svc-{n}")
        wait_until(lambda: len(runs(out)) == 3)
        kernel.wait_for("seen", lambda v: len(v) == 3)
        assert {p for p, _i in runs(out)} == {kernel_pid}  # the kernel ran them, the service none
    finally:
        output = "".join(lines) + stop(service)
    assert " ERROR " not in output and "skipped: None" not in output, output
    assert "svc-" not in output, output  # nothing about items it did not run


@pytest.mark.timeout(120)
def test_a_paused_hook_of_the_service_logs_no_error_for_what_it_skips(
    kernel, server, publisher, node, data_dir, tmp_path
):
    hook, out = logging_hook(tmp_path)
    kernel.run(connect_line(server))
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}")
    (listed,) = hook_list(kernel)
    kernel.run(f"%hook pause {listed['id']}")
    kernel.run("%hook disconnect")  # lets go: the service takes it, paused
    service = start_service(server, data_dir)
    lines: list[str] = []
    try:
        service_ready(service, lines)
        assert f"running 1 persistent hook(s) ({listed['id']})" in _started(lines)
        for n in range(3):
            publisher.publish(node, item_id=f"svc-{n}")
        kernel.run(connect_line(server))
        wait_until(lambda: hook_list(kernel)[0]["state"] == "standby")
        kernel.run(f"%hook resume {listed['id']}")

        after = iter(range(1000))

        def ran_one() -> bool:  # (the service follows the store within a second)
            publisher.publish(node, item_id=f"after{next(after)}")
            return bool(runs(out))

        wait_until(ran_one, step=0.2)
    finally:
        output = "".join(lines) + stop(service)
    assert not [i for _p, i in runs(out) if i.startswith("svc-")]  # the skipped items did not run
    assert " ERROR " not in output and "skipped" not in output, output
    assert f"hook {listed['id']} ({node}) item after" in output and ": ok in " in output, output

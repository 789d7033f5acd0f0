"""Scratch repro."""
from __future__ import annotations
import time
import pytest
from .conftest import connect_line
from .test_ownership import start_service, service_ready, stop, hook_list, wait_until

pytestmark = pytest.mark.kernel


@pytest.mark.timeout(120)
def test_repro(kernel, server, publisher, node, data_dir):
    kernel.run(connect_line(server))
    kernel.run("seen = []")
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P seen.append(item['id'])")
    service = start_service(server, data_dir)
    lines: list[str] = []
    try:
        service_ready(service, lines)
        for n in range(3):
            publisher.publish(node, item_id=f"svc-{n}")
        kernel.wait_for("seen", lambda v: len(v) == 3)
        time.sleep(1)
    finally:
        out = stop(service)
    print("".join(lines) + out)
    assert 0

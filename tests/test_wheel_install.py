"""The package as a user installs it: the README's "Install into your Jupyter", step by
step. The wheel is built from the checkout, installed with its runtime dependencies only
(from the package index, no test extras) into a fresh virtualenv, registered as a kernel,
and used from a kernel whose working directory is outside the checkout: ``%load_ext``,
``%hook connect`` answering the password prompt, ``%hook create``, one trigger; the
profile line that loads it at every start; ``pubsub-hook --help`` and ``--version``.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from .conftest import PASSWORDS
from .support import ANSI, Kernel, kernel_env

# Building, a fresh venv and its dependencies from the index (pip's cache helps) take
# about a minute; the module's first test pays for them.
pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
KERNEL_NAME = "pubsub-hook-wheel"
PROFILE_LINE = 'c.InteractiveShellApp.extensions = ["pubsub_hook_magic"]'


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without what would put the checkout or the test venv
    in the way (PYTHONPATH, VIRTUAL_ENV, XMPP_*), plus ``extra``."""
    env = kernel_env(extra)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "XMPP_PASSWORD", "XMPP_JID", "XMPP_HOST", "XMPP_PORT"):
        env.pop(name, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


class EnvKernel(Kernel):
    """A kernel started from a kernel spec in ``kernel_dir`` (not the test venv's)."""

    def __init__(self, kernel_dir: Path, env: dict[str, str], cwd: Path):
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
        self.km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.iopub: list[dict[str, Any]] = []

    def run_answering(self, code: str, answer: str, timeout: float = 60) -> tuple[list[dict], str]:
        """Run a cell that asks for input; answer every prompt through the kernel's stdin
        channel, as a front end does. Returns the prompts and the cell's output."""
        msg_id = self.kc.execute(code, allow_stdin=True)
        prompts: list[dict] = []
        text = ""
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"cell did not finish in {timeout} s: {code}\n{text}"
            try:
                msg = self.kc.get_stdin_msg(timeout=0.05)
            except queue.Empty:
                pass
            else:
                if msg["msg_type"] == "input_request":
                    prompts.append(msg["content"])
                    self.kc.input(answer)
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text += content["text"]
            elif kind == "error":
                text += f"{content['ename']}: {content['evalue']}\n"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        assert reply["content"]["status"] == "ok", ANSI.sub("", text)
        return prompts, text


@pytest.fixture(scope="module")
def user_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The README's steps: build the wheel, make an environment, install the wheel into
    it with its dependencies, register the environment as a kernel."""
    base = tmp_path_factory.mktemp("wheel-install")
    env = clean_env({})
    took = {}
    start = time.monotonic()
    # python -m pip wheel --no-deps -w dist /path/to/checkout
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(ROOT)], base, env, 120)
    (wheel,) = (base / "dist").glob("pubsub_hook_magic-*.whl")
    took["wheel"] = time.monotonic() - start
    # a fresh environment, standing for the one a kernel already runs in
    run([sys.executable, "-m", "venv", str(base / "env")], base, env, 60)
    python = base / "env" / "bin" / "python"
    took["venv"] = time.monotonic() - start - sum(took.values())
    # python -m pip install dist/pubsub_hook_magic-VERSION-py3-none-any.whl
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], base, env, 180)
    took["install"] = time.monotonic() - start - sum(took.values())
    # python -m ipykernel install --user --name NAME (here into a temp prefix)
    run([str(python), "-m", "ipykernel", "install", "--prefix", str(base / "prefix"), "--name", KERNEL_NAME], base, env, 60)
    print("wheel install steps (s):", {k: round(v, 1) for k, v in took.items()})
    work = base / "notebooks"  # the kernel's working directory: outside the checkout
    work.mkdir()
    return {
        "base": base,
        "wheel": wheel,
        "python": python,
        "bin": base / "env" / "bin",
        "kernels": base / "prefix" / "share" / "jupyter" / "kernels",
        "work": work,
    }


def test_the_wheel_in_a_fresh_environment_runs_a_hook(user_env, server, publisher, node, data_dir):
    env = user_env
    assert env["wheel"].name == f"pubsub_hook_magic-{VERSION}-py3-none-any.whl"
    kernel_env_vars = clean_env(
        {"PUBSUB_HOOK_DATA_DIR": str(data_dir), "IPYTHONDIR": str(env["base"] / "ipython-plain")}
    )
    kernel = EnvKernel(env["kernels"], kernel_env_vars, env["work"])
    try:
        where = kernel.eval(
            "(__import__('sys').executable, __import__('os').getcwd(), [p for p in __import__('sys').path])"
        )
        executable, cwd, path = where
        assert executable == str(env["python"]), executable
        assert Path(cwd) == env["work"]
        assert not [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)], path

        kernel.run("%load_ext pubsub_hook_magic")
        module_file, version = kernel.eval(
            "(__import__('pubsub_hook_magic').__file__, __import__('pubsub_hook_magic').__version__)"
        )
        assert Path(module_file).is_relative_to(env["base"] / "env" / "lib"), module_file
        assert not Path(module_file).resolve().is_relative_to(ROOT)
        assert version == VERSION
        # runtime dependencies only: no test extras came along
        assert kernel.eval("[m for m in ('pytest', 'nbclient', 'playwright') if __import__('importlib.util').util.find_spec(m)]") == []

        prompts, out = kernel.run_answering(
            f"%hook connect alice@localhost --host 127.0.0.1 --port {server.port} --no-tls",
            PASSWORDS["alice"],
        )
        assert [(p["prompt"], p["password"]) for p in prompts] == [("Password for alice@localhost: ", True)]
        assert "Connected as alice@localhost" in out, out
        assert PASSWORDS["alice"] not in out

        kernel.run("seen = []")
        out = kernel.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])').stdout
        assert out.startswith("Created") and node in out, out
        publisher.publish(node, item_id="from-the-wheel")
        assert kernel.wait_for("seen", lambda v: v == ["from-the-wheel"]) == ["from-the-wheel"]
        kernel.run("%hook disconnect")
    finally:
        kernel.close()


def test_the_profile_line_loads_it_at_every_start(user_env):
    """``c.InteractiveShellApp.extensions`` in the profile's ipython_config.py."""
    ipython_dir = user_env["base"] / "ipython-profile"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(PROFILE_LINE + "\n")
    kernel = EnvKernel(user_env["kernels"], clean_env({"IPYTHONDIR": str(ipython_dir)}), user_env["work"])
    try:
        assert kernel.eval("'hook' in get_ipython().magics_manager.magics['line']") is True
        assert "Not connected" in kernel.run("%hook status").stdout
    finally:
        kernel.close()


def test_the_command_runs_from_that_environment(user_env, data_dir):
    env = clean_env({"PUBSUB_HOOK_DATA_DIR": str(data_dir)})
    command = str(user_env["bin"] / "pubsub-hook")
    usage = run([command, "--help"], user_env["work"], env, 60)
    assert usage.startswith("usage: pubsub-hook") and "run" in usage
    assert run([command, "--version"], user_env["work"], env, 60).strip() == f"pubsub-hook {VERSION}"
    listed = run([command, "list", "--jid", "alice@localhost"], user_env["work"], env, 60)
    assert "No hook found." in listed


def test_the_readme_says_what_these_tests_do():
    """The README's section names the commands run above (and the current version)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Install into your Jupyter") :]
    section = section[: section.index("\n## ", 1)]
    for line in (
        "python -m pip wheel --no-deps -w dist /path/to/pubsub_hook_magic",
        f"python -m pip install dist/pubsub_hook_magic-{VERSION}-py3-none-any.whl",
        "python -m ipykernel install --user --name my-env",
        "%load_ext pubsub_hook_magic",
        "%hook connect alice@example.org\n",  # no --password-env: the prompt
        PROFILE_LINE,
        "jupyterlab_widgets",
    ):
        assert line in section, line

"""resolve_account: the account, server and password, from arguments, environment, prompt."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from pubsub_hook_magic.account import Account, account_from_args, resolve_account, resolve_jid
from pubsub_hook_magic.commands import add_connect_arguments
from pubsub_hook_magic.hooks import HookError

SECRET = "s3cret-Pa55"
FULL_ENV = {
    "XMPP_JID": "env@example.org",
    "XMPP_HOST": "env.example.org",
    "XMPP_PORT": "5300",
    "XMPP_PASSWORD": "env-password",
    "MY_PW": SECRET,
}


class Prompt:
    """A prompt that records each call and answers ``answer`` (or raises it)."""

    def __init__(self, answer: str | BaseException = SECRET):
        self.answer = answer
        self.calls: list[str] = []

    def __call__(self, text: str) -> str:
        self.calls.append(text)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def resolve(environ=None, **kwargs) -> Account:
    return resolve_account(environ={} if environ is None else environ, **kwargs)


def one_line_error(match: str, environ=None, **kwargs) -> str:
    with pytest.raises(HookError, match=match) as info:
        resolve(environ, **kwargs)
    text = str(info.value)
    assert "\n" not in text and len(text) <= 200, text
    return text


# ---------------------------------------------------------------------- precedence


def test_arguments_win_over_the_environment():
    prompt = Prompt()
    account = resolve(
        FULL_ENV, jid="arg@example.org", host="arg.example.org", port=5400, password_env="MY_PW", prompt=prompt
    )
    assert account == Account("arg@example.org", "arg.example.org", 5400, SECRET)
    assert prompt.calls == []


def test_the_environment_fills_what_the_arguments_leave_out():
    prompt = Prompt()
    account = resolve(FULL_ENV, prompt=prompt)
    assert account == Account("env@example.org", "env.example.org", 5300, "env-password")
    assert prompt.calls == []


def test_arguments_and_environment_mix_field_by_field():
    env = {"XMPP_HOST": "env.example.org", "XMPP_PORT": "5300", "XMPP_PASSWORD": "pw"}
    assert resolve(env, jid="a@example.org", host="arg.example.org").port == 5300
    assert resolve(env, jid="a@example.org", port=5400).host == "env.example.org"


def test_the_real_environment_is_the_default(monkeypatch):
    for name, value in FULL_ENV.items():
        monkeypatch.setenv(name, value)
    assert resolve_account() == Account("env@example.org", "env.example.org", 5300, "env-password")


@pytest.mark.parametrize(("direct_tls", "port"), [(False, 5222), (True, 5223)])
def test_a_host_without_a_port_gets_the_default_port(direct_tls, port):
    env = {"XMPP_PASSWORD": "pw"}
    assert resolve(env, jid="a@example.org", host="h.example.org", direct_tls=direct_tls).port == port
    env["XMPP_HOST"] = "h.example.org"
    assert resolve(env, jid="a@example.org", direct_tls=direct_tls).port == port


def test_no_host_means_dns_srv_and_a_port_is_passed_on_as_given():
    env = {"XMPP_PASSWORD": "pw"}
    assert resolve(env, jid="a@example.org") == Account("a@example.org", None, None, "pw")
    assert resolve(env, jid="a@example.org", port=5400).port == 5400
    assert resolve(env, jid="a@example.org", host="").host is None


def test_an_explicit_port_means_xmpp_port_is_not_read():
    env = {"XMPP_PORT": "not-a-port", "XMPP_PASSWORD": "pw"}
    assert resolve(env, jid="a@example.org", port=5400).port == 5400


def test_an_empty_xmpp_password_falls_through_to_the_prompt():
    prompt = Prompt()
    assert resolve({"XMPP_PASSWORD": ""}, jid="a@example.org", prompt=prompt).password == SECRET
    assert prompt.calls == ["Password for a@example.org: "]


def test_password_env_wins_over_xmpp_password():
    env = {"XMPP_PASSWORD": "env-password", "MY_PW": SECRET}
    assert resolve(env, jid="a@example.org", password_env="MY_PW").password == SECRET


# ---------------------------------------------------------------------- the prompt


def test_the_prompt_is_asked_once_only_when_nothing_else_gives_a_password():
    prompt = Prompt()
    assert resolve(jid="a@example.org", prompt=prompt).password == SECRET
    assert prompt.calls == ["Password for a@example.org: "]


def test_the_prompt_is_not_asked_when_an_earlier_step_fails():
    prompt = Prompt()
    one_line_error("XMPP_PORT", {"XMPP_PORT": "abc"}, jid="a@example.org", prompt=prompt)
    one_line_error("XMPP_JID", prompt=prompt)
    one_line_error("MY_PW", password_env="MY_PW", jid="a@example.org", prompt=prompt)
    assert prompt.calls == []


@pytest.mark.parametrize("failure", [NotImplementedError("no stdin"), EOFError(), OSError("no tty")])
def test_a_prompt_that_cannot_ask_is_the_same_as_none(failure):
    text = one_line_error("no password", jid="a@example.org", prompt=Prompt(failure))
    assert "--password-env VAR" in text and "cannot prompt" in text
    assert one_line_error("no password", jid="a@example.org", prompt=None) == text


def test_a_keyboard_interrupt_at_the_prompt_goes_through():
    with pytest.raises(KeyboardInterrupt):
        resolve(jid="a@example.org", prompt=Prompt(KeyboardInterrupt()))


def test_an_empty_answer_to_the_prompt_is_an_error():
    text = one_line_error("no password", jid="a@example.org", prompt=Prompt(""))
    assert "type it at the prompt" in text and "--password-env VAR" in text


# ---------------------------------------------------------------------- errors


def test_no_account():
    text = one_line_error(r"give the account: %hook connect user@domain \(or set \$XMPP_JID\)", usage="%hook connect user@domain")
    assert text == "give the account: %hook connect user@domain (or set $XMPP_JID)"
    one_line_error("XMPP_JID", {"XMPP_JID": ""}, jid="")


@pytest.mark.parametrize("value", ["abc", "0", "65536", "-1", "5_222", "52 22", "1e3", "9" * 40])
def test_xmpp_port_that_is_not_a_port_number(value):
    text = one_line_error(r"\$XMPP_PORT is not a port number", {"XMPP_PORT": value}, jid="a@example.org")
    assert "1 to 65535" in text and "unset it" in text


@pytest.mark.parametrize("value", ["1", "65535", " 5222 "])
def test_xmpp_port_at_the_limits(value):
    env = {"XMPP_PORT": value, "XMPP_PASSWORD": "pw"}
    assert resolve(env, jid="a@example.org").port == int(value)


@pytest.mark.parametrize("port", [0, -5, 65536])
def test_port_argument_out_of_range(port):
    text = one_line_error(f"--port {port} is not a port number", jid="a@example.org", port=port)
    assert "1 to 65535" in text


@pytest.mark.parametrize(("env", "state"), [({}, "is not set"), ({"MY_PW": ""}, "is empty")])
def test_password_env_naming_an_unset_or_empty_variable(env, state):
    text = one_line_error(f"the environment variable MY_PW {state}", env, jid="a@example.org", password_env="MY_PW")
    assert "leave out --password-env" in text


def test_resolve_jid_alone():
    assert resolve_jid("a@example.org", environ={"XMPP_JID": "env@example.org"}) == "a@example.org"
    assert resolve_jid(environ={"XMPP_JID": "env@example.org"}) == "env@example.org"
    with pytest.raises(HookError, match="pubsub-hook list --jid user@domain"):
        resolve_jid(usage="pubsub-hook list --jid user@domain", environ={})


def test_account_from_the_parsed_connect_flags(monkeypatch):
    parser = argparse.ArgumentParser()
    parser.add_argument("jid", nargs="?")
    add_connect_arguments(parser)
    monkeypatch.setenv("MY_PW", SECRET)
    args = parser.parse_args(["a@example.org", "--host", "h.example.org", "--direct-tls", "--password-env", "MY_PW"])
    assert account_from_args(args, None, "x") == Account("a@example.org", "h.example.org", 5223, SECRET)
    monkeypatch.delenv("XMPP_JID", raising=False)
    with pytest.raises(HookError, match="give the account: %hook connect user@domain"):
        account_from_args(parser.parse_args([]), None, "%hook connect user@domain")


# ---------------------------------------------------------------------- the password stays hidden


def test_the_password_is_absent_from_repr_and_str():
    account = resolve(jid="a@example.org", host="h.example.org", prompt=Prompt())
    for text in (repr(account), str(account), f"{account}", f"{account!r}"):
        assert SECRET not in text, text
        assert "a@example.org" in text and "h.example.org" in text and "5222" in text
    assert account.password == SECRET


def test_the_account_is_frozen():
    account = resolve(jid="a@example.org", prompt=Prompt())
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.password = "other"  # type: ignore[misc]


def test_the_password_is_never_in_an_error_message():
    env = {"MY_PW": SECRET, "XMPP_PASSWORD": SECRET}
    for kwargs in ({"port": 0}, {"port": None}):
        with pytest.raises(HookError) as info:
            resolve({**env, "XMPP_PORT": "abc"}, jid="a@example.org", password_env="MY_PW", **kwargs)
        assert SECRET not in str(info.value)

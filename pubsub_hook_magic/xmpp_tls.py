"""Why the server's TLS certificate was refused, and what fixes it, in one line.

Python's :class:`ssl.SSLCertVerificationError` carries OpenSSL's reason
(``verify_code``, ``verify_message``: "Hostname mismatch, certificate is not valid for
'example.org'.", "self-signed certificate", "certificate has expired"); its ``reason``
is only ``CERTIFICATE_VERIFY_FAILED``. :func:`certificate_problem` turns it into the
sentence a user acts on: a wrong CA wants ``--ca-file``, a certificate for another name
does not (the CA was right: another ``--ca-file`` changes nothing).

XMPP checks the certificate against the JID's domain (slixmpp passes it as the TLS
server name), not against ``--host``: a certificate for another name is fixed on the
server (or by logging in with an account of the domain the certificate names).

For a hostname mismatch :func:`certificate_names` asks the server again, once, for the
names its certificate holds (same CA, the name not checked), so that the message says
what the certificate is for. Pure, apart from that probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from pathlib import Path
from typing import Any

__all__ = ["certificate_names", "certificate_problem"]

# OpenSSL's X509_V_ERR_* codes (x509_vfy.h), as Python reports them in verify_code.
_NOT_YET_VALID = 9
_EXPIRED = 10
_SELF_SIGNED = 18  # DEPTH_ZERO_SELF_SIGNED_CERT: the server's own certificate
# unable to get (local) issuer / verify the leaf; 19 (SELF_SIGNED_CERT_IN_CHAIN): the
# server sent its chain up to a root we do not trust (ejabberd sends its CA along, Prosody
# only its own certificate: the same untrusted CA is code 19 on one, 20 on the other)
_UNKNOWN_ISSUER = (2, 19, 20, 21)
_HOSTNAME_MISMATCH = 62

_STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


def certificate_problem(
    error: Any, domain: str, *, ca_file: str | None = None, names: list[str] | None = None
) -> str:
    """What is wrong with the server's certificate and what to do, for ``error`` (an
    :class:`ssl.SSLCertVerificationError`, or anything else slixmpp reports) when
    logging in to ``domain``; ``names``: the names the certificate holds, if known."""
    code = getattr(error, "verify_code", None)
    why = getattr(error, "verify_message", None) or str(getattr(error, "reason", None) or error)
    trusted = f"the CA of --ca-file {ca_file}" if ca_file else "the CAs this machine trusts"
    if code == _HOSTNAME_MISMATCH:
        held = ", ".join(names) if names else None
        what = f"is for {held}, not {domain}" if held else f"is not valid for {domain} ({why})"
        return (
            f"the server's TLS certificate {what}: XMPP checks the JID's domain, so fix the "
            f"server's certificate to name {domain} (or log in with an account of the "
            "domain it names); --ca-file does not help, the CA was right"
        )
    if code == _EXPIRED:
        return (
            "the server's TLS certificate has expired: renew it on the server (or, if it "
            "is new, check this machine's clock)"
        )
    if code == _NOT_YET_VALID:
        return "the server's TLS certificate is not valid yet: check this machine's clock, or the certificate's dates"
    if code == _SELF_SIGNED:
        return (
            f"the server's TLS certificate is self-signed ({why}), and {trusted} did not sign "
            "it: for a private server, pass that certificate (or its CA) with --ca-file PEM"
        )
    if code in _UNKNOWN_ISSUER:
        return (
            f"the server's TLS certificate is signed by a CA that {trusted} does not include "
            f"({why}): pass the CA that signed it with --ca-file PEM"
        )
    return (
        f"the server's TLS certificate is not trusted ({why}): for a private server, pass "
        "its CA with --ca-file PEM"
    )


def _names(cert: dict[str, Any]) -> list[str]:
    """The DNS names of a certificate (``getpeercert()``): its subjectAltName, else its CN."""
    names = [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    if not names:
        for rdn in cert.get("subject", ()):
            names.extend(value for key, value in rdn if key == "commonName")
    return names


async def certificate_names(
    host: str, port: int, domain: str, *, direct_tls: bool = False, ca_file: str | None = None,
    timeout: float = 3.0,
) -> list[str] | None:
    """The names the server's certificate holds, read by a second handshake with the same
    trust but without the name check (STARTTLS unless ``direct_tls``); None when that
    fails too (another problem) or takes longer than ``timeout``."""
    context = ssl.create_default_context(cafile=str(Path(ca_file)) if ca_file else None)
    context.check_hostname = False  # (the chain is still verified: we read names of a trusted cert)
    writer = None
    try:
        async with asyncio.timeout(timeout):
            if direct_tls:
                _reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=domain)
            else:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(
                    f"<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
                    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>".encode()
                )
                await _read_until(reader, rb"</stream:features>")
                writer.write(_STARTTLS)
                await _read_until(reader, rb"<proceed\b")
                await writer.start_tls(context, server_hostname=domain)
            ssl_object = writer.get_extra_info("ssl_object")
            cert = ssl_object.getpeercert() if ssl_object is not None else None
            return _names(cert) if cert else None
    except (OSError, TimeoutError, ValueError, ssl.SSLError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_until(reader: asyncio.StreamReader, pattern: bytes) -> None:
    data = b""
    while not re.search(pattern, data):
        chunk = await reader.read(4096)
        if not chunk:
            raise ValueError("the server closed the stream")
        data += chunk

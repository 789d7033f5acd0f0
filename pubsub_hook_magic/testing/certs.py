"""A private certificate authority for the test servers: a CA and the certificates it signs.

Standard library and the ``openssl`` command only (OpenSSL 3.0 on Debian 12).

    ca = make_ca(tmp / "ca")                                  # ca.cert_path: trust this
    srv = issue(ca, tmp / "certs", ["localhost", "pubsub.localhost"])
    other = issue(ca, tmp / "other", ["example.org"])         # valid, wrong host name
    old = issue(ca, tmp / "old", ["localhost"], expired=True)  # "certificate has expired"

A client that passes ``ca.cert_path`` as its CA file (``XmppSession(ca_file=...)``,
slixmpp's ``ca_certs``) verifies a server presenting ``srv``; the same client refuses
``other`` (hostname mismatch) and ``old`` (expired) with the reason in the error.

Keys are EC P-256 (fast to make, accepted by Prosody's LuaSec and by Erlang's ssl).
Expired certificates are signed with ``openssl ca -startdate/-enddate`` (OpenSSL 3.0's
``x509 -req`` has no ``-not_before``/``-not_after``), so their validity period is a
real one in the past: ``not_before`` two days ago, ``not_after`` one day ago, unless
given.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CA", "Certificate", "issue", "make_ca"]

OPENSSL = os.environ.get("OPENSSL_BIN", "openssl")


@dataclass(frozen=True)
class CA:
    """A certificate authority: its key and self-signed certificate (PEM files)."""

    dir: Path
    key_path: Path
    cert_path: Path
    name: str


@dataclass(frozen=True)
class Certificate:
    """A certificate signed by a :class:`CA`, for ``names`` (the first is the CN).

    ``pem_path`` holds key, certificate and CA certificate in one file (ejabberd's
    ``certfiles`` format); ``chain_path`` the certificate followed by the CA's.
    """

    names: tuple[str, ...]
    key_path: Path
    cert_path: Path
    chain_path: Path
    pem_path: Path


def _openssl(*args: str, cwd: Path | None = None) -> str:
    res = subprocess.run([OPENSSL, *args], stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=60, cwd=str(cwd) if cwd else None)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({res.returncode}): "
                           f"{(res.stderr or res.stdout).strip()}")
    return res.stdout


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "cert"


def make_ca(dir: str | os.PathLike, *, name: str = "pubsub_hook_magic test CA",
            days: int = 3650) -> CA:
    """A new CA (key ``ca.key``, certificate ``ca.crt``) in ``dir``; reused if present."""
    d = Path(dir).resolve()
    d.mkdir(parents=True, exist_ok=True)
    key, cert = d / "ca.key", d / "ca.crt"
    if not (key.exists() and cert.exists()):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-sha256", "-days", str(days), "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-addext", "subjectKeyIdentifier=hash",
                 "-keyout", str(key), "-out", str(cert))
        os.chmod(key, 0o600)
    return CA(dir=d, key_path=key, cert_path=cert, name=name)


def _asn1_time(when: _dt.datetime) -> str:
    return when.astimezone(_dt.UTC).strftime("%Y%m%d%H%M%SZ")


def issue(ca: CA, dir: str | os.PathLike, names, *, days: int = 825,
          name: str | None = None, expired: bool = False,
          not_before: _dt.datetime | None = None,
          not_after: _dt.datetime | None = None) -> Certificate:
    """A server certificate for the DNS ``names`` (CN = the first), signed by ``ca``.

    Files ``NAME.key``, ``NAME.crt``, ``NAME.chain.crt``, ``NAME.pem`` in ``dir``
    (``NAME`` defaults to the first name); existing files are overwritten.
    ``expired=True`` (or explicit ``not_before``/``not_after``, aware datetimes) makes
    a certificate valid only in that period, e.g. one that expired yesterday.
    """
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not names:
        raise ValueError("a certificate needs at least one name")
    d = Path(dir).resolve()
    d.mkdir(parents=True, exist_ok=True)
    base = _safe_name(name or names[0])
    key, cert = d / f"{base}.key", d / f"{base}.crt"
    chain, pem = d / f"{base}.chain.crt", d / f"{base}.pem"
    san = ",".join(f"DNS:{n}" for n in names)
    exts = ("basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            f"subjectAltName={san}\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n")
    with tempfile.TemporaryDirectory(prefix="certs-", dir=d) as tmp_name:
        tmp = Path(tmp_name)
        csr, extfile = tmp / "req.csr", tmp / "ext.cnf"
        extfile.write_text("[server]\n" + exts, encoding="ascii")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-sha256", "-subj", f"/CN={names[0]}",
                 "-keyout", str(key), "-out", str(csr))
        os.chmod(key, 0o600)
        serial = str(int.from_bytes(os.urandom(8), "big"))
        if expired or not_before is not None or not_after is not None:
            now = _dt.datetime.now(_dt.UTC)
            start = not_before or (now - _dt.timedelta(days=2))
            end = not_after or (now - _dt.timedelta(days=1))
            _sign_with_dates(ca, tmp, csr, cert, extfile, serial, start, end)
        else:
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert_path),
                     "-CAkey", str(ca.key_path), "-set_serial", serial, "-sha256",
                     "-days", str(days), "-extfile", str(extfile), "-extensions", "server",
                     "-out", str(cert))
    ca_pem = ca.cert_path.read_text(encoding="ascii")
    cert_pem = cert.read_text(encoding="ascii")
    chain.write_text(cert_pem + ca_pem, encoding="ascii")
    pem.write_text(key.read_text(encoding="ascii") + cert_pem + ca_pem, encoding="ascii")
    os.chmod(pem, 0o600)
    return Certificate(names=names, key_path=key, cert_path=cert, chain_path=chain,
                       pem_path=pem)


def _sign_with_dates(ca: CA, tmp: Path, csr: Path, cert: Path, extfile: Path, serial: str,
                     start: _dt.datetime, end: _dt.datetime) -> None:
    """``openssl ca`` with a throw-away database: the one OpenSSL 3.0 signer that takes
    explicit validity dates."""
    (tmp / "index.txt").write_text("", encoding="ascii")
    (tmp / "serial").write_text(f"{int(serial):X}".rjust(16, "0") + "\n", encoding="ascii")
    cnf = tmp / "ca.cnf"
    cnf.write_text(
        "[ca]\ndefault_ca = test\n"
        "[test]\n"
        f"dir = {tmp}\n"
        "database = $dir/index.txt\nserial = $dir/serial\nnew_certs_dir = $dir\n"
        f"certificate = {ca.cert_path}\nprivate_key = {ca.key_path}\n"
        "default_md = sha256\npolicy = anything\nunique_subject = no\n"
        "copy_extensions = none\n"
        "[anything]\ncommonName = supplied\n", encoding="ascii")
    _openssl("ca", "-batch", "-config", str(cnf), "-in", str(csr), "-out", str(tmp / "out.pem"),
             "-notext", "-startdate", _asn1_time(start), "-enddate", _asn1_time(end),
             "-extfile", str(extfile), "-extensions", "server")
    cert.write_text((tmp / "out.pem").read_text(encoding="ascii"), encoding="ascii")

"""Certificates for tests of TLS endpoints: self-signed, or issued by a private CA."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    path_length: int | None = None,
    loopback: bool = True,
) -> x509.Certificate:
    """A certificate valid from five minutes ago for a day (clocks of a test run agree),
    for 127.0.0.1 unless ``loopback`` is false (a CA's names no host)."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )
    if loopback:
        builder = builder.add_extension(LOOPBACK, critical=False)
    constraints = x509.BasicConstraints(ca=ca, path_length=path_length)
    return builder.add_extension(constraints, critical=True).sign(signer, hashes.SHA256())


def _write(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("cstor test")
    certificate = _certificate(name, key, name, key, ca=True)
    return _write(folder / "cert.pem", certificate), _write_key(folder / "key.pem", key)


def certificate_from_a_private_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate for 127.0.0.1 issued by a CA of its own, as a private store's is:
    (the CA's certificate, the store's certificate, its key), PEM files: what
    AWS_CA_BUNDLE names is the CA's, not the store's own."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("cstor test CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True, path_length=0, loopback=False)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(_name("127.0.0.1"), key, ca_name, ca_key, ca=False)
    return (
        _write(folder / "ca.pem", ca),
        _write(folder / "store.pem", leaf),
        _write_key(folder / "store-key.pem", key),
    )

"""A throwaway certificate authority for loopback HTTPS (the cold-start bench, the TLS tests).

``self_signed(dir)`` writes ``cert.pem`` (a self-signed certificate for ``localhost`` only: no
IP address, so ``https://127.0.0.1`` fails the host-name check) and ``key.pem``;
``trust_bundle(dir, cert)`` writes a CA bundle holding the system's roots plus that certificate,
which ``SSL_CERT_FILE`` (OpenSSL, so ``ssl.create_default_context``) and ``AWS_CA_BUNDLE``
(botocore) can name, so clients verify as they do against AWS and load as many roots.
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "localhost"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def trust_bundle(folder: Path, cert: Path) -> Path:
    """The system's CA bundle (if OpenSSL names one) followed by ``cert``."""
    system = Path(ssl.get_default_verify_paths().cafile or "/nonexistent")
    roots = system.read_bytes() if system.is_file() else b""
    bundle = folder / "bundle.pem"
    bundle.write_bytes(roots.rstrip(b"\n") + b"\n" + cert.read_bytes())
    return bundle


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context

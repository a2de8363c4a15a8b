"""The S3 bucket backups go to, through boto3: make the bucket, upload a snapshot in parts
(hashed in the same pass), verify what the store holds, list, download, delete.

boto3 (and botocore's service models) take about a second to import: only the backup actions
import this module, and it imports boto3 only when a store is opened, so hooks stay cheap."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.backups import BACKUP_ID_PATTERN, METADATA_SUFFIX, S3Settings, composite_etag
from core.s3_attributes import encrypted, headers_for
from workload.digest import Digest, Digester
from workload.s3_client import s3_client

logger = logging.getLogger(__name__)

PART_SIZE = 16 * 1024 * 1024  # S3 wants 5 MiB at least per part but the last; 10,000 at most
PARALLEL_PARTS = 4  # parts in flight at once (memory: this many parts)


class StoreError(Exception):
    """S3 refused or could not be reached; the message says what and where."""


@dataclass(frozen=True)
class BackupMeta:
    """What a backup's manifest (and its object's S3 metadata) record."""

    id: str
    key: str
    size: int
    sha256: str
    revision: int
    keys: int
    etcd_version: str
    cluster_id: str
    member: str
    app: str
    created: str
    etag: str = ""

    @classmethod
    def from_json(cls, text: str) -> BackupMeta:
        raw = json.loads(text)
        fields = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**fields)


@dataclass(frozen=True)
class Listed:
    """One object under the application's prefix: its manifest when it has one."""

    id: str
    key: str
    size: int
    meta: BackupMeta | None
    modified: datetime.datetime | None = None  # the store's LastModified


class ObjectStore:
    """One bucket, as S3Settings describe it."""

    def __init__(self, settings: S3Settings, workdir: Path):
        self.settings = settings
        self._client = s3_client(settings, workdir)
        # KMS or customer keys: the store's ETags are no MD5 of the data (sha256 still is).
        self._md5_etags = not encrypted(settings.headers)
        if settings.headers:
            self._client.meta.events.register("before-sign.s3", self._add_headers)

    def _add_headers(self, request: Any, operation_name: str = "", **_: Any) -> None:
        """The provider's `attributes`, on the operations that need them."""
        for name, value in headers_for(self.settings.headers, operation_name).items():
            request.headers[name] = value

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        import botocore.exceptions

        try:
            return fn(**kwargs)
        except botocore.exceptions.ClientError as error:
            info = error.response.get("Error", {})
            raise StoreError(
                f"S3 {what} refused: {info.get('Code', '?')} {info.get('Message', '')}".strip()
            ) from error
        except botocore.exceptions.BotoCoreError as error:
            raise StoreError(f"S3 {what} failed: {error}") from error

    def ensure_bucket(self) -> bool:
        """Make the bucket when it is missing. True when this call made it."""
        import botocore.exceptions

        bucket = self.settings.bucket
        try:
            self._client.head_bucket(Bucket=bucket)
            return False
        except botocore.exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "403":  # HEAD answers have no body: ask again for the store's reason
                code = self._refusal() or code
            if code in ("403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"):
                raise StoreError(
                    f"S3 refused access to bucket {bucket!r} ({code}): wrong credentials, or "
                    "no rights on the bucket"
                ) from error
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise StoreError(f"S3 bucket {bucket!r} not usable: {code}") from error
        except botocore.exceptions.BotoCoreError as error:
            raise StoreError(f"S3 unreachable: {error}") from error
        args: dict[str, Any] = {"Bucket": bucket}
        region = self.settings.region
        if region and region != "us-east-1" and not self.settings.endpoint:
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**args)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False
            raise StoreError(f"S3 create-bucket {bucket!r} refused: {code}") from error
        logger.info("decision: created S3 bucket %s", bucket)
        return True

    def _refusal(self) -> str | None:
        """Why the store refuses this bucket, from a request whose answer has a body."""
        try:
            self._call("list-objects", self._client.list_objects_v2, Bucket=self.settings.bucket)
        except StoreError as error:
            cause = error.__cause__
            return str(getattr(cause, "response", {}).get("Error", {}).get("Code", "")) or None
        return None

    def abort_stale(self, prefix: str) -> list[str]:
        """Abort the multipart uploads a failed earlier backup left under `prefix` (its store
        went away before the abort reached it): their parts are no backup and cost space."""
        answer = self._call(
            "list-multipart-uploads",
            self._client.list_multipart_uploads,
            Bucket=self.settings.bucket,
            Prefix=prefix,
        )
        aborted = []
        for upload in answer.get("Uploads", []):
            # Only this application's backups: `<prefix><backup-id>`, nothing deeper or other
            # (a store may ignore Prefix; another tool may upload beside us).
            name = upload["Key"]
            if not name.startswith(prefix) or not BACKUP_ID_PATTERN.fullmatch(name[len(prefix) :]):
                continue
            self._abort(upload["Key"], upload["UploadId"])
            aborted.append(upload["Key"])
        if aborted:
            logger.info("decision: aborted stale S3 uploads %s", aborted)
        return aborted

    def upload(self, path: Path, meta: BackupMeta, progress: Callable[[int], None]) -> BackupMeta:
        """Stream `path` up in parts, each with its MD5 for the store to check, hashing sha256
        in the same pass; then check the store's object against what was read (size, the
        multipart ETag, the metadata) and only then write the manifest that lists it. Any
        failure aborts the upload or deletes the object: no partial backup stays."""
        bucket, key = self.settings.bucket, meta.key
        extra: dict[str, Any] = {"Metadata": _s3_metadata(meta)}
        if self.settings.storage_class:
            extra["StorageClass"] = self.settings.storage_class
        started = self._call(
            "create-multipart-upload",
            self._client.create_multipart_upload,
            Bucket=bucket,
            Key=key,
            **extra,
        )
        upload_id = started["UploadId"]
        try:
            parts, md5s, sha = self._parts(path, key, upload_id, progress)
            if sha != meta.sha256:
                raise StoreError("the snapshot changed while uploading (sha256 differs)")
            self._call(
                "complete-multipart-upload",
                self._client.complete_multipart_upload,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self._abort(key, upload_id)
            raise
        try:
            verified = self._verify(meta, composite_etag(md5s))
            self._put_manifest(verified)
        except BaseException:
            self._delete_quietly(key)
            raise
        return verified

    def _parts(
        self, path: Path, key: str, upload_id: str, progress: Callable[[int], None]
    ) -> tuple[list[dict[str, Any]], list[bytes], str]:
        """Read the file once, in order (sha256 and each part's MD5 as it is read), with up to
        PARALLEL_PARTS parts in flight: one stream alone leaves the store's bandwidth idle."""
        sha = hashlib.sha256()
        md5s: list[bytes] = []
        pending: list[tuple[int, bytes, Future[Any]]] = []
        parts: list[dict[str, Any]] = []
        sent = [0]

        def settle(limit: int) -> None:
            while len(pending) > limit:
                number, md5, future = pending.pop(0)
                answer, size = future.result()
                if self._md5_etags and answer.get("ETag", "").strip('"') != md5.hex():
                    raise StoreError(f"S3 part {number} came back with another checksum")
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                sent[0] += size
                progress(sent[0])

        with ThreadPoolExecutor(PARALLEL_PARTS) as pool, path.open("rb") as handle:
            try:
                for number, chunk in enumerate(iter(lambda: handle.read(PART_SIZE), b""), 1):
                    sha.update(chunk)
                    md5 = hashlib.md5(chunk).digest()
                    md5s.append(md5)
                    future = pool.submit(self._part, key, upload_id, number, chunk, md5)
                    pending.append((number, md5, future))
                    settle(PARALLEL_PARTS - 1)
                settle(0)
            finally:
                for _, _, future in pending:
                    future.cancel()
        if not parts:
            raise StoreError("the snapshot file is empty")
        return parts, md5s, sha.hexdigest()

    def _part(
        self, key: str, upload_id: str, number: int, chunk: bytes, md5: bytes
    ) -> tuple[Any, int]:
        answer = self._call(
            f"upload-part {number}",
            self._client.upload_part,
            Bucket=self.settings.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=chunk,
            ContentMD5=base64.b64encode(md5).decode(),
        )
        return answer, len(chunk)

    def _verify(self, meta: BackupMeta, etag: str) -> BackupMeta:
        head = self._call(
            "head-object", self._client.head_object, Bucket=self.settings.bucket, Key=meta.key
        )
        stored = head.get("ETag", "").strip('"')
        if head.get("ContentLength") != meta.size:
            raise StoreError(f"S3 holds {head.get('ContentLength')} bytes, {meta.size} were sent")
        if stored != etag and self._md5_etags:
            raise StoreError(f"S3 object checksum {stored} is not the uploaded parts' {etag}")
        if head.get("Metadata", {}).get("sha256") != meta.sha256:
            raise StoreError("S3 object metadata lost the sha256")
        return BackupMeta(**{**asdict(meta), "etag": stored})

    def _put_manifest(self, meta: BackupMeta) -> None:
        self._call(
            "put-object (manifest)",
            self._client.put_object,
            Bucket=self.settings.bucket,
            Key=meta.key + METADATA_SUFFIX,
            Body=json.dumps(asdict(meta), indent=1, sort_keys=True).encode(),
            ContentType="application/json",
        )

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self.settings.bucket, Key=key, UploadId=upload_id
            )
        except Exception as error:  # the store is gone: its own expiry removes the parts
            logger.warning("could not abort the upload of %s: %s", key, error)

    def _delete_quietly(self, key: str) -> None:
        for name in (key, key + METADATA_SUFFIX):
            try:
                self._client.delete_object(Bucket=self.settings.bucket, Key=name)
            except Exception as error:
                logger.warning("could not delete %s: %s", name, error)

    def delete(self, key: str) -> None:
        """One backup: its manifest first, so that it is never listed without its object."""
        for name in (key + METADATA_SUFFIX, key):
            self._call(
                "delete-object", self._client.delete_object, Bucket=self.settings.bucket, Key=name
            )

    def listing(self, prefix: str) -> list[Listed]:
        """Backups under `prefix`: objects, each with its manifest if it has one."""
        objects: dict[str, tuple[int, Any]] = {}
        manifests: set[str] = set()
        for item in self._objects(prefix):
            name = item["Key"]
            if name.endswith(METADATA_SUFFIX):
                manifests.add(name.removesuffix(METADATA_SUFFIX))
            elif "/" not in name.removeprefix(prefix):
                objects[name] = (int(item["Size"]), item.get("LastModified"))
        rows = []
        for key, (size, modified) in objects.items():
            meta = self.manifest(key) if key in manifests else None
            rows.append(Listed(key.removeprefix(prefix), key, size, meta, modified))
        return rows

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call(
            "list-objects", paginator.paginate, Bucket=self.settings.bucket, Prefix=prefix
        )
        import botocore.exceptions

        try:
            for page in pages:
                yield from page.get("Contents", [])
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                return
            raise StoreError(f"S3 list-objects refused: {code}") from error
        except botocore.exceptions.BotoCoreError as error:
            raise StoreError(f"S3 list-objects failed: {error}") from error

    def manifest(self, key: str) -> BackupMeta | None:
        try:
            answer = self._call(
                "get-object (manifest)",
                self._client.get_object,
                Bucket=self.settings.bucket,
                Key=key + METADATA_SUFFIX,
            )
            return BackupMeta.from_json(answer["Body"].read().decode())
        except StoreError:
            return None
        except (ValueError, TypeError, KeyError) as error:
            logger.warning("ignoring the unreadable manifest of %s: %s", key, error)
            return None

    def download(self, meta: BackupMeta, dest: Path, progress: Callable[[int], None]) -> Digest:
        """Stream the object into `dest`, hashing as it comes (its sha256 and etcd's appended
        hash, so the restore reads it no more)."""
        answer = self._call(
            "get-object", self._client.get_object, Bucket=self.settings.bucket, Key=meta.key
        )
        digester = Digester()
        import botocore.exceptions

        try:
            with dest.open("wb") as handle:
                for chunk in answer["Body"].iter_chunks(PART_SIZE // 4):
                    digester.update(chunk)
                    handle.write(chunk)
                    progress(digester.size)
        except (botocore.exceptions.BotoCoreError, ConnectionError) as error:
            raise StoreError(f"S3 download of {meta.key} broke off: {error}") from error
        return digester.finish()


def _s3_metadata(meta: BackupMeta) -> dict[str, str]:
    """x-amz-meta-* headers: the manifest's facts travel with the object too."""
    wanted = ("sha256", "revision", "keys", "etcd_version", "cluster_id", "member", "created")
    return {name.replace("_", "-"): str(getattr(meta, name)) for name in wanted}

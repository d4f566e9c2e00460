"""Storage in an S3 bucket prefix (``s3://bucket/prefix``), the product store of cloud runs.

Publishing is atomic because S3 shows an object only once its PutObject, or the Complete of
its multipart upload, succeeds; a failed multipart upload is aborted so no parts linger.
Every object carries its sha256 as user metadata (``x-amz-meta-sha256``).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ssc_common.errors import ConfigurationError, ObjectNotFound, StorageError, StorageUnreachable
from ssc_common.storage.base import CHUNK_BYTES, ObjectInfo, Storage, check_key, sha256_file
from ssc_common.storage.local import atomic_path

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB  # S3's smallest allowed part (all but the last)
MAX_PARTS = 10_000  # S3's largest part count per upload
SHA256_METADATA = "sha256"  # stored as the x-amz-meta-sha256 header

_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_CREDENTIAL_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "403",
}
_BUSY_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)")
_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*")


def _one_line(text: str) -> str:
    """Collapse whitespace so a message from a server or library fits on one line."""
    return " ".join(str(text).split())


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _recorded_sha256(head: dict[str, Any]) -> str | None:
    """The sha256 an object's metadata records, if it carries a well-formed one."""
    value = str(head.get("Metadata", {}).get(SHA256_METADATA, "")).strip().lower()
    return value if _SHA256_HEX.fullmatch(value) else None


_shared_loader: Any = None


def _new_session() -> boto3.session.Session:
    """A boto3 session of its own (credentials are resolved afresh), sharing the parsed API
    models with the sessions made before: that makes a new client ~5x cheaper."""
    global _shared_loader
    core = botocore.session.Session()
    if _shared_loader is None:
        _shared_loader = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _shared_loader)
    return boto3.session.Session(botocore_session=core)


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix (``""`` or without slashes at either end) of an s3:// URL."""
    parsed = urlparse(url)
    bucket = parsed.netloc
    prefix = parsed.path.strip("/")
    if parsed.scheme != "s3" or not bucket or parsed.query or parsed.fragment:
        raise ConfigurationError(url, "an S3 storage URL has the form s3://BUCKET[/PREFIX]")
    if prefix:
        try:
            check_key(prefix)
        except ValueError:
            raise ConfigurationError(url, f"invalid key prefix {prefix!r}") from None
    return bucket, prefix


class S3Storage(Storage):
    """Objects under a key prefix of one S3 bucket (AWS, or any S3 API via ``endpoint_url``).

    Requests are retried with backoff on 5xx, throttling and connection errors (botocore's
    "standard" mode); every failure reaches the caller as a one-line :class:`StorageError`.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        max_attempts: int = 8,
        multipart_threshold: int = 64 * MIB,
        part_size: int | None = None,
        max_concurrency: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        read_buffer_size: int = MIB,
    ) -> None:
        """Connect lazily to ``url`` (``s3://bucket/prefix``); credentials come from boto3's chain.

        ``max_attempts`` counts tries per request, the first included. Files of at least
        ``multipart_threshold`` bytes go up in parts of ``part_size`` bytes (default 16 MiB,
        grown if the file would need more than 10,000 parts), ``max_concurrency`` at a time.
        """
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if multipart_threshold < 1:
            raise ValueError("multipart_threshold must be positive")
        if part_size is not None and part_size < MIN_PART_BYTES:
            raise ValueError(f"part_size must be at least {MIN_PART_BYTES} bytes (an S3 limit)")
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.max_attempts = max_attempts
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size or 16 * MIB
        self.max_concurrency = max(1, max_concurrency)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.read_buffer_size = max(io.DEFAULT_BUFFER_SIZE, read_buffer_size)
        config = Config(
            region_name=region,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max(10, 2 * self.max_concurrency),
            # We send Content-MD5 ourselves; no extra CRC32 headers or aws-chunked bodies,
            # which not every S3-compatible server understands.
            request_checksum_calculation="when_required",
            # Path-style requests work on every S3-compatible server (MinIO, Ceph, moto).
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        self._client: Any = _new_session().client("s3", endpoint_url=endpoint_url, config=config)
        self.endpoint: str = self._client.meta.endpoint_url

    # -- keys and errors ---------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _translated(self, subject: str, action: str) -> Iterator[None]:
        """Turn botocore exceptions raised inside the block into one-line StorageErrors."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(subject, action, exc) from None
        except BotoCoreError as exc:
            raise self._botocore_error(subject, action, exc) from None

    def _client_error(self, subject: str, action: str, exc: ClientError) -> StorageError:
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code") or "")
        message = _one_line(error.get("Message") or "")
        status = int(meta.get("HTTPStatusCode") or 0)
        attempts = int(meta.get("RetryAttempts") or 0) + 1
        detail = f"{code}: {message}" if code and message else code or message or f"HTTP {status}"
        if code in _NOT_FOUND_CODES:  # HEAD answers carry no body, so the code is the status
            return ObjectNotFound(subject, "no such object")
        if code == "NoSuchBucket":
            return StorageUnreachable(
                subject, f"bucket {self.bucket!r} does not exist at {self.endpoint}"
            )
        if status == 403 or code in _CREDENTIAL_CODES:
            return StorageUnreachable(subject, f"{self.endpoint} refused access: {detail}")
        if code in ("PreconditionFailed", "412"):
            return StorageError(subject, "the object was replaced while it was being read")
        if status >= 500 or code in _BUSY_CODES:
            return StorageUnreachable(
                subject,
                f"{action} failed after {attempts} attempt(s): "
                f"{self.endpoint} answered HTTP {status} {detail}",
            )
        return StorageError(subject, f"{action} failed: {detail}")

    def _botocore_error(self, subject: str, action: str, exc: BotoCoreError) -> StorageError:
        if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
            return StorageUnreachable(subject, f"no usable AWS credentials: {_one_line(exc)}")
        if isinstance(exc, ConnectTimeoutError):
            return StorageUnreachable(
                subject,
                f"cannot connect to {self.endpoint}: "
                f"no connection within {self.connect_timeout:g} s",
            )
        if isinstance(exc, BotoConnectionError):
            return StorageUnreachable(
                subject, f"cannot connect to {self.endpoint}: {self._cause(exc)}"
            )
        if isinstance(exc, ReadTimeoutError):
            return StorageUnreachable(
                subject,
                f"{action} failed: no answer from {self.endpoint} within {self.read_timeout:g} s",
            )
        if isinstance(exc, HTTPClientError):
            return StorageUnreachable(
                subject,
                f"{action} failed: the connection to {self.endpoint} broke: {self._cause(exc)}",
            )
        return StorageError(subject, f"{action} failed: {self._cause(exc)}")

    @staticmethod
    def _cause(exc: BotoCoreError) -> str:
        """The operating system's words for a connection failure, else the exception's text."""
        inner: BaseException = getattr(exc, "kwargs", {}).get("error") or exc
        while inner.args and isinstance(inner.args[-1], BaseException):  # urllib3 wraps
            inner = inner.args[-1]
        text = str(inner)
        found = _ERRNO_TEXT.search(text)
        if found:
            return _one_line(found.group(1))
        return _one_line(_OBJECT_REPR.sub("", text)) or type(exc).__name__

    # -- writing -----------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        sha256 = hashlib.sha256(data).hexdigest()
        if len(data) >= self.multipart_threshold:
            self._put_multipart(key, io.BytesIO(data), len(data), sha256, origin="<bytes>")
        else:
            md5 = hashlib.md5(data, usedforsecurity=False).digest()
            with self._translated(self.uri(key), "upload"):
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._object_key(key),
                    Body=data,
                    ContentMD5=_b64(md5),
                    Metadata={SHA256_METADATA: sha256},
                )
        return ObjectInfo(key=key, uri=self.uri(key), size=len(data), sha256=sha256)

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        path = Path(path)
        self._object_key(key)  # reject a bad key before any work
        try:
            size = path.stat().st_size
            if size < self.multipart_threshold:
                data = path.read_bytes()
            else:
                sha256 = sha256_file(path)
        except FileNotFoundError:
            raise StorageError(str(path), "source file does not exist") from None
        except OSError as exc:
            raise StorageError(str(path), f"read failed: {exc.strerror or exc}") from None
        if size < self.multipart_threshold:
            return self.put_bytes(key, data)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the upload
        except OSError as exc:
            raise StorageError(str(path), f"read failed: {exc.strerror or exc}") from None
        with handle:
            self._put_multipart(key, handle, size, sha256, origin=str(path))
        return ObjectInfo(key=key, uri=self.uri(key), size=size, sha256=sha256)

    def _part_size_for(self, size: int) -> int:
        part_size = self.part_size
        while -(-size // part_size) > MAX_PARTS:
            part_size *= 2
        return part_size

    def _put_multipart(
        self, key: str, source: BinaryIO, size: int, sha256: str, *, origin: str
    ) -> None:
        """Upload ``source`` in parts; complete only if its bytes hash to ``sha256``.

        On any failure (including one raised by the caller's file) the upload is aborted,
        so neither an object nor stored parts remain.
        """
        uri = self.uri(key)
        object_key = self._object_key(key)
        with self._translated(uri, "starting multipart upload"):
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=object_key, Metadata={SHA256_METADATA: sha256}
            )["UploadId"]
        try:
            parts, uploaded_sha256, uploaded_size = self._upload_parts(
                object_key, uri, upload_id, source, self._part_size_for(size), origin
            )
            if uploaded_size != size or uploaded_sha256 != sha256:
                raise StorageError(origin, "changed while it was being uploaded")
            with self._translated(uri, "completing multipart upload"):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort(object_key, uri, upload_id)
            raise

    def _upload_parts(
        self,
        object_key: str,
        uri: str,
        upload_id: str,
        source: BinaryIO,
        part_size: int,
        origin: str,
    ) -> tuple[list[dict[str, Any]], str, int]:
        """Read ``source`` part by part and upload up to ``max_concurrency`` parts at once.

        Returns the parts for Complete, the sha256 of everything read and its size. Leaving
        the executor waits for parts in flight, so an abort afterwards finds them all.
        """
        digest = hashlib.sha256()
        total = 0
        parts: list[dict[str, Any]] = []
        pending: set[Future[dict[str, Any]]] = set()
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="s3-part") as pool:
            number = 0
            while True:
                try:
                    chunk = source.read(part_size)
                except OSError as exc:
                    raise StorageError(origin, f"read failed: {exc.strerror or exc}") from None
                if not chunk:
                    break
                number += 1
                digest.update(chunk)
                total += len(chunk)
                if len(pending) >= self.max_concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    parts.extend(future.result() for future in done)
                pending.add(
                    pool.submit(self._upload_part, object_key, uri, upload_id, number, chunk)
                )
                del chunk
            parts.extend(future.result() for future in pending)
        parts.sort(key=lambda part: part["PartNumber"])
        return parts, digest.hexdigest(), total

    def _upload_part(
        self, object_key: str, uri: str, upload_id: str, number: int, chunk: bytes
    ) -> dict[str, Any]:
        md5 = hashlib.md5(chunk, usedforsecurity=False).digest()
        with self._translated(uri, f"uploading part {number}"):
            answer = self._client.upload_part(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
                ContentMD5=_b64(md5),
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _abort(self, object_key: str, uri: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=object_key, UploadId=upload_id
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning(
                "could not abort multipart upload %s of %s (%s); its parts stay until a "
                "bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them",
                upload_id,
                uri,
                _one_line(str(exc)),
            )

    # -- reading -----------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any]:
        with self._translated(self.uri(key), "reading object metadata"):
            return self._client.head_object(Bucket=self.bucket, Key=self._object_key(key))

    def _stream(self, key: str, start: int, stop: int, etag: str | None) -> Iterator[bytes]:
        """Bytes ``[start, stop)`` of the object version ``etag``, in chunks.

        A download that breaks off mid-body (which botocore does not retry) resumes from
        where it stopped, up to ``max_attempts`` times.
        """
        uri = self.uri(key)
        position = start
        breaks = 0
        while position < stop:
            request: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": self._object_key(key),
                "Range": f"bytes={position}-{stop - 1}",
            }
            if etag:
                request["IfMatch"] = etag
            with self._translated(uri, "download"):
                body = self._client.get_object(**request)["Body"]
            cause = "the connection ended early"
            try:
                while position < stop:
                    chunk = body.read(min(CHUNK_BYTES, stop - position))
                    if not chunk:
                        break
                    position += len(chunk)
                    yield chunk
            except (BotoCoreError, OSError) as exc:
                cause = self._cause(exc) if isinstance(exc, BotoCoreError) else str(exc)
            finally:
                body.close()
            if position < stop:
                breaks += 1
                if breaks >= self.max_attempts:
                    raise StorageUnreachable(
                        uri,
                        f"download from {self.endpoint} broke off {breaks} time(s): "
                        f"{_one_line(cause)}",
                    )
                time.sleep(min(0.1 * 2**breaks, 2.0))

    def _verified(self, key: str, head: dict[str, Any], actual: str) -> ObjectInfo:
        """The object's info, once the bytes read (hashing to ``actual``) match its record."""
        recorded = _recorded_sha256(head)
        if recorded and recorded != actual:
            raise StorageError(
                self.uri(key), f"content has sha256 {actual}, but its metadata records {recorded}"
            )
        return ObjectInfo(
            key=key, uri=self.uri(key), size=int(head["ContentLength"]), sha256=actual
        )

    def get_bytes(self, key: str) -> bytes:
        head = self._head(key)
        data = b"".join(self._stream(key, 0, int(head["ContentLength"]), head.get("ETag")))
        self._verified(key, head, hashlib.sha256(data).hexdigest())
        return data

    def get_file(self, key: str, path: Path) -> ObjectInfo:
        head = self._head(key)
        digest = hashlib.sha256()
        try:
            with atomic_path(Path(path)) as temporary, open(temporary, "wb") as handle:
                size = int(head["ContentLength"])
                for chunk in self._stream(key, 0, size, head.get("ETag")):
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                info = self._verified(key, head, digest.hexdigest())
        except OSError as exc:
            raise StorageError(str(path), f"write failed: {exc.strerror or exc}") from None
        return info

    def open_read(self, key: str) -> BinaryIO:
        head = self._head(key)
        raw = S3RangeReader(self, key, int(head["ContentLength"]), head.get("ETag"))
        return io.BufferedReader(raw, buffer_size=self.read_buffer_size)

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def info(self, key: str) -> ObjectInfo:
        head = self._head(key)
        size = int(head["ContentLength"])
        sha256 = _recorded_sha256(head)
        if sha256 is None:  # uploaded by another tool: hash the bytes themselves
            digest = hashlib.sha256()
            for chunk in self._stream(key, 0, size, head.get("ETag")):
                digest.update(chunk)
            sha256 = digest.hexdigest()
        return ObjectInfo(key=key, uri=self.uri(key), size=size, sha256=sha256)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = f"{self.prefix}/" if self.prefix else ""
        pages = iter(
            self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix
            )
        )
        while True:
            with self._translated(self.url, "listing objects"):
                page = next(pages, None)
            if page is None:
                return
            for item in page.get("Contents", []):
                key = item["Key"][len(base) :]
                try:
                    check_key(key)  # skip "directory" markers and other foreign oddities
                    info = self.info(key)
                except (ValueError, ObjectNotFound):  # ObjectNotFound: deleted meanwhile
                    continue
                yield info

    def delete(self, key: str) -> None:
        with self._translated(self.uri(key), "delete"):
            self._client.delete_object(Bucket=self.bucket, Key=self._object_key(key))

    def check(self) -> None:
        try:
            with self._translated(self.url, "checking the bucket"):
                self._client.head_bucket(Bucket=self.bucket)
        except ObjectNotFound:
            raise StorageUnreachable(
                self.url, f"bucket {self.bucket!r} does not exist at {self.endpoint}"
            ) from None
        except StorageUnreachable:
            raise
        except StorageError as exc:
            raise StorageUnreachable(exc.subject, exc.problem) from None


class S3RangeReader(io.RawIOBase):
    """A seekable read-only view of one S3 object version that fetches ranges on demand.

    Wrap it in :class:`io.BufferedReader` (as :meth:`S3Storage.open_read` does) so small
    reads share one ranged GET; a reader of a multi-GB product fetches only what it reads.
    """

    def __init__(self, storage: S3Storage, key: str, size: int, etag: str | None) -> None:
        super().__init__()
        self._storage = storage
        self._key = key
        self._etag = etag
        self._position = 0
        self.size = size
        self.name = storage.uri(key)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if position < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        self._check_open()
        view = memoryview(buffer).cast("B")
        stop = min(self.size, self._position + len(view))
        filled = 0
        for chunk in self._storage._stream(self._key, self._position, stop, self._etag):
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        self._position += filled
        return filled

    def readall(self) -> bytes:
        self._check_open()
        data = b"".join(self._storage._stream(self._key, self._position, self.size, self._etag))
        self._position += len(data)
        return data

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

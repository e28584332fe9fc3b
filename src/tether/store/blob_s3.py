"""``TETHER_BLOBS=s3://bucket/prefix``: blobs as objects ``prefix/<sha256>`` in an S3
bucket, through boto3 (the ``s3`` extra; imported only when such a store is opened).
The endpoint, region and credentials come from boto3's usual sources
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, profiles), so MinIO, Ceph and R2 work as well as AWS. A PUT
is durable when S3 acknowledges it, which is before the commit that refers to it."""
from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import StoreError, UsageError
from .codec import check_digest

REFRESH_SECONDS = 600  # an existing blob put again is re-marked as used when older (gc's grace > this)
DELETE_BATCH = 1000  # S3's limit per DeleteObjects


def _missing(exc: Any) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3Blobs:
    """A BlobStore in ``bucket`` under ``prefix`` (``s3://bucket/prefix``)."""

    def __init__(self, bucket: str, prefix: str = "", url: str | None = None) -> None:
        """Checks that boto3 is installed (UsageError otherwise); the client itself, and
        boto3's import (~0.3 s), wait for the first blob this process reads or writes."""
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = url or f"s3://{bucket}/{self.prefix}"
        if importlib.util.find_spec("boto3") is None:
            raise UsageError(f"TETHER_BLOBS={self.url} needs boto3: pip install 'tether[s3]'")
        self._client: Any = None
        self._errors: tuple[type[Exception], ...] = ()
        self._lock = threading.Lock()

    @property
    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config
                from botocore.exceptions import BotoCoreError, ClientError
                self._errors = (BotoCoreError, ClientError)
                self._client = boto3.client("s3", config=Config(retries={"max_attempts": 5,
                                                                         "mode": "standard"}))
            return self._client

    def _key(self, digest: str) -> str:
        return self.prefix + check_digest(digest)

    def _fail(self, what: str, exc: Exception) -> StoreError:
        return StoreError(f"{what} {self.url} failed: {exc}")

    def get(self, digest: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket, Key=self._key(digest))["Body"].read()
            return body
        except self._errors as exc:
            if _missing(exc):
                return None
            raise self._fail(f"reading blob {digest} from", exc) from None

    def put(self, digest: str, payload: bytes) -> None:
        """One HEAD; a PUT when the object is missing, a copy onto itself (a new
        LastModified) when it is older than ``REFRESH_SECONDS``."""
        key = self._key(digest)
        try:
            try:
                head = self._s3.head_object(Bucket=self.bucket, Key=key)
            except self._errors as exc:
                if not _missing(exc):
                    raise
                self._s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(payload))
                return
            if time.time() - head["LastModified"].timestamp() > REFRESH_SECONDS:
                self._s3.copy_object(Bucket=self.bucket, Key=key, MetadataDirective="REPLACE",
                                     CopySource={"Bucket": self.bucket, "Key": key})
        except self._errors as exc:
            raise self._fail(f"writing blob {digest} to", exc) from None

    def iter_hashes(self, older_than: float | None = None) -> Iterator[str]:
        """Every object under the prefix whose name is a digest; with ``older_than``, those
        whose LastModified is before it."""
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(self.prefix):]
                    if len(name) != 64 or "/" in name:
                        continue
                    if older_than is None or obj["LastModified"].timestamp() < older_than:
                        yield name
        except self._errors as exc:
            raise self._fail("listing", exc) from None

    def delete(self, digests: Iterable[str]) -> int:
        """DeleteObjects in batches of 1,000; missing objects are skipped."""
        keys = [self._key(d) for d in digests]
        removed = 0
        try:
            for i in range(0, len(keys), DELETE_BATCH):
                batch = keys[i:i + DELETE_BATCH]
                out = self._s3.delete_objects(Bucket=self.bucket,
                                              Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
                removed += len(batch) - len(out.get("Errors", ()))
        except self._errors as exc:
            raise self._fail("deleting blobs from", exc) from None
        return removed

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

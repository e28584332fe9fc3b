"""``TETHER_BLOBS=file:///path``: blobs as files in a folder, one per content hash
(``path/ab/abcdef…``), written atomically: a temporary file in the same folder, fsync,
rename over the final name, fsync of the folder. A crash leaves at worst a stray
temporary file (``.tmp-*``, never listed as a blob) or a blob nothing refers to yet."""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import StoreError, UsageError
from .codec import check_digest

TEMP_PREFIX = ".tmp-"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobs:
    """A BlobStore in the folder ``root`` (created with its parents if missing)."""

    def __init__(self, root: str | os.PathLike[str], url: str | None = None) -> None:
        self.root = Path(root)
        self.url = url or f"file://{self.root}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"TETHER_BLOBS={self.url}: cannot create the folder {self.root}: "
                             f"{exc}") from None

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest

    def get(self, digest: str) -> bytes | None:
        """The file's bytes, or None when there is no such blob."""
        try:
            return self._path(digest).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read blob {digest} from {self.url}: {exc}") from None

    def put(self, digest: str, payload: bytes) -> None:
        """Durable on return (see the module); an existing blob only gets a new mtime."""
        path = self._path(digest)
        try:
            try:
                os.utime(path)  # already there: content addressed, so the same bytes
                return
            except FileNotFoundError:
                pass
            folder = path.parent
            new_folder = not folder.is_dir()
            if new_folder:
                folder.mkdir(exist_ok=True)
            tmp = folder / f"{TEMP_PREFIX}{digest[:16]}-{os.getpid()}-{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(folder)
            if new_folder:
                _fsync_dir(self.root)
        except OSError as exc:
            raise StoreError(f"cannot write blob {digest} to {self.url}: {exc}; free space or fix the "
                             "folder's permissions, then `tether resume` the run") from None

    def iter_hashes(self, older_than: float | None = None) -> Iterator[str]:
        """Every blob's digest (temporary files are not blobs); with ``older_than``, those
        whose mtime is before it."""
        for folder in sorted(self.root.iterdir()):
            if len(folder.name) == 2 and folder.is_dir():
                for entry in folder.iterdir():
                    if entry.name.startswith(TEMP_PREFIX) or len(entry.name) != 64:
                        continue
                    if older_than is not None:
                        try:
                            if entry.stat().st_mtime >= older_than:
                                continue
                        except FileNotFoundError:
                            continue
                    yield entry.name

    def delete(self, digests: Iterable[str]) -> int:
        """Unlink each blob's file; missing ones are skipped."""
        removed = 0
        for digest in digests:
            try:
                self._path(digest).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def close(self) -> None:
        pass

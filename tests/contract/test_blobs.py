"""Blob stores (``BlobStore``) and where a store keeps its offloaded values
(``BlobReferences``): the same contract for the database's own table (memory, SQLite,
PostgreSQL), a folder (``file://``) and an S3 bucket (``s3://``, a real S3-protocol
server on 127.0.0.1)."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import CorruptRecord
from tether.settings import Settings
from tether.store import codec, open_store
from tether.store.base import BlobStore, Commit, StepWrite
from tether.store.blobs import open_blobs

from ..conftest import drop_schema, postgres_url
from .helpers import new_run, var


def blob(text: str) -> tuple[str, bytes]:
    return hashlib.sha256(text.encode()).hexdigest(), b"j" + text.encode()


@pytest.fixture(params=["memory", "sqlite", "postgres", "file", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """A fresh blob store of each kind: the three databases' own tables, a folder, a bucket."""
    kind = request.param
    if kind in ("file", "s3"):
        url = f"file://{tmp_path / 'blobs'}" if kind == "file" else request.getfixturevalue("s3_blobs_url")
        b = open_blobs(url)
        yield b
        b.close()
        return
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 't.db'}"}.get(kind) or postgres_url()
    store = open_store(url)
    yield store.blobs
    store.close()
    if kind == "postgres":
        drop_schema(url)


def test_a_missing_blob_is_none(blob_store):
    assert isinstance(blob_store, BlobStore)
    assert blob_store.get("0" * 64) is None


def test_put_then_get_and_list_and_delete(blob_store):
    (d1, p1), (d2, p2) = blob("one"), blob("two")
    blob_store.put(d1, p1)
    blob_store.put(d2, p2)
    blob_store.put(d1, p1)  # idempotent
    assert blob_store.get(d1) == p1 and blob_store.get(d2) == p2
    assert sorted(blob_store.iter_hashes()) == sorted([d1, d2])
    assert blob_store.delete([d1]) == 1
    assert blob_store.get(d1) is None and list(blob_store.iter_hashes()) == [d2]
    blob_store.delete([d1])  # a missing blob is skipped
    assert list(blob_store.iter_hashes()) == [d2]


def test_iter_hashes_older_than_spares_blobs_stored_since(blob_store):
    import time
    digest, payload = blob("young")
    blob_store.put(digest, payload)
    assert list(blob_store.iter_hashes(older_than=time.time() + 60)) == [digest]
    young = list(blob_store.iter_hashes(older_than=time.time() - 3600))
    # an external store spares it; a database's table has no waiting blobs to spare
    assert young == ([] if blob_store.url.startswith(("file:", "s3:")) else [digest])


def test_a_large_payload_round_trips(blob_store):
    payload = b"z" + bytes(range(256)) * 8192  # 2 MiB
    digest = hashlib.sha256(payload).hexdigest()
    blob_store.put(digest, payload)
    assert blob_store.get(digest) == payload


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "0" * 63, ""])
def test_a_key_that_is_not_a_digest_is_refused(blob_store, bad):
    with pytest.raises(CorruptRecord):
        blob_store.get(bad)
    with pytest.raises(CorruptRecord):
        blob_store.put(bad, b"j1")


def test_the_store_lists_the_blobs_its_rows_refer_to(store):
    big = "x" * (codec.OFFLOAD_MIN + 10)
    run, _ = new_run(store)
    step = StepWrite("s1", "completed", 1, None, codec.encode([big, 1]), None, None, 1.0, 2.0, "k")
    store.commit(Commit("r1", run.lease_epoch, (step,), (var("big", big), var("small", 1))))
    refs = store.referenced_hashes()
    assert refs == {codec.encode(big).data[1:].decode(), codec.encode([big, 1]).data[1:].decode()}
    assert refs <= set(store.blobs.iter_hashes())
    assert store.own_blobs is store.blobs and store.blobs_url is None
    assert store.read_var("r1", "big").value == big


@pytest.fixture(params=["file", "s3"])
def external(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"file://{tmp_path / 'blobs'}" if request.param == "file" else request.getfixturevalue("s3_blobs_url")


def test_offloaded_values_go_to_tether_blobs_once_across_runs(sql_url, external):
    settings = Settings(blobs=external)
    store = open_store(sql_url, settings=settings)
    try:
        big = {"rows": ["y" * 1000] * 400}
        for run_id in ("a", "b"):
            run, _ = new_run(store, run_id)
            store.commit(Commit(run_id, run.lease_epoch, (), (var("big", big), var("n", 1))))
        digest = codec.encode(big).data[1:].decode()
        assert list(store.blobs.iter_hashes()) == [digest]  # stored once, outside the database
        assert store.referenced_hashes() == {digest}
        assert store.stats()["blobs"] == 0  # nothing in the database's own table
        assert list(store.own_blobs.iter_hashes()) == [] and store.blobs_url == external
    finally:
        store.close()
    again = open_store(sql_url, settings=settings)  # a new process: nothing cached
    try:
        assert again.read_var("b", "big").value == big
    finally:
        again.close()


def test_values_written_before_tether_blobs_was_set_stay_readable(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    big = "v" * (codec.OFFLOAD_MIN + 1)
    store = open_store(url, settings=Settings())
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, (), (var("big", big),)))
    store.close()
    store = open_store(url, settings=Settings(blobs=f"file://{tmp_path / 'blobs'}"))
    try:
        assert store.read_var("r1", "big").value == big
    finally:
        store.close()


def test_a_reference_to_a_missing_blob_is_a_corrupt_record_naming_it(tmp_path):
    folder = tmp_path / "blobs"
    store = open_store(f"sqlite:///{tmp_path / 't.db'}", settings=Settings(blobs=f"file://{folder}"))
    try:
        run, _ = new_run(store)
        store.commit(Commit("r1", run.lease_epoch, (), (var("big", "w" * codec.OFFLOAD_MIN),)))
        for f in folder.glob("*/*"):
            f.unlink()
        fresh = open_store(store.url, settings=Settings(blobs=f"file://{folder}"))
        with pytest.raises(CorruptRecord, match="missing"):
            fresh.read_var("r1", "big")
        fresh.close()
    finally:
        store.close()


def test_a_folder_blob_is_written_atomically_and_put_again_marks_it_used(tmp_path):
    import os

    from tether.store.blob_files import FileBlobs
    folder = tmp_path / "blobs"
    b = FileBlobs(folder)
    digest, payload = blob("atomic")
    (folder / digest[:2]).mkdir(parents=True)
    (folder / digest[:2] / f".tmp-{digest[:16]}-1-dead").write_bytes(b"half")  # a crash mid-write
    assert list(b.iter_hashes()) == [] and b.get(digest) is None
    b.put(digest, payload)
    path = folder / digest[:2] / digest
    assert path.read_bytes() == payload and list(b.iter_hashes()) == [digest]
    os.utime(path, (1_000_000, 1_000_000))
    b.put(digest, b"ignored: content addressed")
    assert path.stat().st_mtime > 1_000_000 and path.read_bytes() == payload


def test_an_s3_blob_put_again_after_a_while_is_marked_used(s3_blobs_url, monkeypatch):
    import time

    from tether.store import blob_s3
    b = open_blobs(s3_blobs_url)
    digest, payload = blob("refresh")
    b.inner.put(digest, payload)
    monkeypatch.setattr(blob_s3, "REFRESH_SECONDS", -1)  # every blob counts as old
    time.sleep(1.1)  # LastModified has a resolution of a second
    b.inner.put(digest, b"ignored: content addressed")
    assert b.get(digest) == payload
    assert list(b.iter_hashes(older_than=time.time() - 1.0)) == []  # its LastModified is new

"""Shared variables and named locks: values and locks that outlive one run."""
from __future__ import annotations

import threading

import pytest

from tether.errors import ConflictError, NotFound


def test_shared_variables_compare_and_set_and_immutable(store):
    with pytest.raises(NotFound):
        store.shared_get("cfg")
    first = store.shared_set("cfg", {"rate": 1}, expected_version=0)
    assert (first.value, first.version, first.immutable) == ({"rate": 1}, 1, False)
    with pytest.raises(ConflictError):
        store.shared_set("cfg", {"rate": 2}, expected_version=0)
    second = store.shared_set("cfg", {"rate": 2}, expected_version=1)
    assert second.version == 2 and store.shared_get("cfg").value == {"rate": 2}
    assert store.shared_delete("cfg", expected_version=2) and not store.shared_delete("cfg")
    with pytest.raises(NotFound):
        store.shared_get("cfg")
    again = store.shared_set("cfg", 7, expected_version=0)
    assert again.version == 4  # versions continue across a deletion
    frozen = store.shared_set("pi", 3.14, immutable=True)
    assert frozen.immutable
    with pytest.raises(ConflictError):
        store.shared_set("pi", 3)
    with pytest.raises(ConflictError):
        store.shared_delete("pi")
    assert [r.name for r in store.shared_list()] == ["cfg", "pi"]


def test_locks_are_exclusive_until_released_or_expired(store):
    assert store.lock_acquire("db", "a", 30.0)
    assert not store.lock_acquire("db", "b", 30.0)
    assert store.lock_acquire("db", "a", 30.0)  # re-entrant for its owner
    assert store.lock_renew("db", "a", 30.0) and not store.lock_renew("db", "b", 30.0)
    store.lock_release("db", "b")  # not b's: nothing happens
    assert not store.lock_acquire("db", "b", 30.0)
    store.lock_release("db", "a")
    assert store.lock_acquire("db", "b", -1.0)  # b holds it, already expired
    assert store.lock_acquire("db", "c", 30.0)
    assert not store.lock_renew("db", "b", 30.0)


def test_concurrent_lockers_never_hold_one_lock_together(store):
    holders: list[str] = []
    overlaps: list[int] = []
    guard = threading.Lock()

    def worker(name: str) -> None:
        got = 0
        while got < 5:
            if store.lock_acquire("crit", name, 30.0):
                with guard:
                    holders.append(name)
                    overlaps.append(len(set(holders)))
                with guard:
                    holders.remove(name)
                store.lock_release("crit", name)
                got += 1

    threads = [threading.Thread(target=worker, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 20 and max(overlaps) == 1

"""BoundedLRU: bounded by count and by bytes, least recent dropped first, safe across threads."""

from __future__ import annotations

import threading

import pytest

from csknet_studio.core.lru import BoundedLRU


def test_a_count_bound_drops_the_least_recently_used_and_get_refreshes():
    c: BoundedLRU[int, str] = BoundedLRU(max_items=3)
    for i in range(3):
        c.put(i, str(i))
    assert c.get(0) == "0"  # 0 becomes the most recent
    c.put(3, "3")
    assert c.keys() == [2, 0, 3] and 1 not in c and len(c) == 3
    assert c.get(1) is None and (c.hits, c.misses) == (1, 1)


def test_a_byte_bound_counts_sizes_and_a_replaced_value_is_not_counted_twice():
    c: BoundedLRU[str, bytes] = BoundedLRU(max_bytes=10, size=len)
    c.put("a", b"1234")
    c.put("a", b"12345")
    assert c.nbytes == 5
    c.put("b", b"1234")
    c.put("c", b"12")  # 11 bytes: "a" goes
    assert c.keys() == ["b", "c"] and c.nbytes == 6
    assert c.pop("b") == b"1234" and c.nbytes == 2 and c.pop("b") is None
    c.clear()
    assert len(c) == 0 and c.nbytes == 0


def test_a_value_over_the_budget_is_kept_only_when_the_newest_must_stay():
    c: BoundedLRU[int, bytes] = BoundedLRU(max_bytes=4, size=len)
    c.put(0, b"12")
    c.put(1, b"123456")
    assert c.keys() == [0] and c.nbytes == 2  # too big: not kept, the rest stays
    k: BoundedLRU[int, bytes] = BoundedLRU(max_bytes=4, size=len, keep_newest=True)
    k.put(0, b"12")
    k.put(1, b"123456")
    assert k.keys() == [1] and k.nbytes == 6
    z: BoundedLRU[int, int] = BoundedLRU(max_items=0)
    z.put(0, 0)
    assert 0 not in z


def test_get_or_load_loads_once_and_keeps_no_none():
    c: BoundedLRU[int, int] = BoundedLRU(max_items=2)
    calls: list[int] = []
    assert c.get_or_load(1, lambda: calls.append(1) or 10) == 10
    assert c.get_or_load(1, lambda: calls.append(1) or 11) == 10 and calls == [1]
    assert c.get_or_load(2, lambda: None) is None and 2 not in c


def test_a_byte_bound_needs_a_size_function():
    with pytest.raises(ValueError, match="size"):
        BoundedLRU(max_bytes=10)


def test_threads_putting_and_getting_keep_the_bounds():
    c: BoundedLRU[int, bytes] = BoundedLRU(max_items=16, max_bytes=64, size=len)

    def work(seed: int) -> None:
        for i in range(2000):
            c.put((seed * 7 + i) % 50, b"x" * (1 + i % 8))
            c.get(i % 50)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(c) <= 16 and c.nbytes <= 64
    kept = c.keys()
    assert c.nbytes == sum(len(c.get(k) or b"") for k in kept)

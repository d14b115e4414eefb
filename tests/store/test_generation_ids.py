"""Generation ids: time-ordered, unguessable, never handed out twice (threads and forked children included)."""

from __future__ import annotations

import os
import re
import threading

from tokenmux.store import new_generation_id


def test_ids_carry_the_second_and_eighty_random_bits() -> None:
    assert re.fullmatch(r"gen-1700000000-[0-9a-f]{20}", new_generation_id(1_700_000_000.4))


def test_no_id_repeats_across_threads_and_refills() -> None:
    ids: list[str] = []

    def draw() -> None:
        ids.extend(new_generation_id() for _ in range(2_000))  # several refills of the random digits

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 8_000


def test_a_forked_child_does_not_reuse_its_parents_random_digits() -> None:
    new_generation_id()  # digits are now buffered in this process
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next ids and leave at once
        os.close(read_end)
        os.write(write_end, " ".join(new_generation_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_generation_id() for _ in range(5)}
    assert len(child) == 5 and not child & parent

"""One pass over a snapshot's bytes: the whole file's sha256 and etcd's appended hash, however
the bytes are chunked, and while another process is still writing the file."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from workload.digest import Digester, digest_file, follow


def snapshot_bytes(size: int) -> bytes:
    body = random.Random(size).randbytes(size)  # the same in every xdist worker
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize("seed", range(20))
def test_any_chunking_gives_both_hashes(seed: int) -> None:
    rng = random.Random(seed)
    data = snapshot_bytes(rng.randrange(0, 5000))
    digester = Digester()
    at = 0
    while at < len(data):
        step = rng.choice([1, 2, 31, 32, 33, 64, 1000])
        digester.update(data[at : at + step])
        at += step
    digest = digester.finish()
    assert digest.size == len(data)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.embedded_ok == (len(data) > 32)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x" * 32,
        b"short",
        random.Random(0).randbytes(100),
        snapshot_bytes(100)[:-1],
        snapshot_bytes(100) + b"!",
    ],
    ids=["empty", "32-bytes", "short", "random", "torn", "trailing-byte"],
)
def test_foreign_or_torn_files_fail_the_embedded_check(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    path.write_bytes(data)
    digest = digest_file(path)
    assert not digest.embedded_ok
    assert digest.sha256 == hashlib.sha256(data).hexdigest()


def test_one_flipped_byte_fails_it(tmp_path: Path) -> None:
    data = bytearray(snapshot_bytes(4096))
    data[1000] ^= 1
    (tmp_path / "f.db").write_bytes(bytes(data))
    assert not digest_file(tmp_path / "f.db").embedded_ok


WRITER = """
import os, sys, time
part, final, data = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
with open(part, "wb") as out:
    for at in range(0, len(data), 7777):
        out.write(data[at : at + 7777]); out.flush(); time.sleep(0.001)
os.rename(part, final)
"""


def write_as_etcdctl_does(tmp_path: Path, data: bytes, target: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(data)
    part = target.with_name(target.name + ".part")
    subprocess.run([sys.executable, "-c", WRITER, str(part), str(target), str(source)], check=True)


def test_follows_a_file_written_then_renamed(tmp_path: Path) -> None:
    data = snapshot_bytes(300_000)
    target = tmp_path / "snap.db"
    follower = follow(target)
    write_as_etcdctl_does(tmp_path, data, target)
    digest = follower.result()
    assert digest is not None
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.embedded_ok and digest.size == len(data)


def test_a_replaced_file_is_not_vouched_for(tmp_path: Path) -> None:
    target = tmp_path / "snap.db"
    follower = follow(target)
    write_as_etcdctl_does(tmp_path, snapshot_bytes(50_000), target)
    replaced = tmp_path / "other"
    replaced.write_bytes(snapshot_bytes(50_000))
    os.replace(replaced, target)
    assert follower.result() is None


def test_nothing_written_gives_nothing(tmp_path: Path) -> None:
    follower = follow(tmp_path / "never.db")
    assert follower.result() is None
    follower = follow(tmp_path / "never.db")
    follower.stop()

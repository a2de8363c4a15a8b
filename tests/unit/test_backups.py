"""Snapshot files on the data volume: names, hashes, the folder, the listing table."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import pytest

from workload import snapshots as bk
from workload.snapshots import Backups, BadName, SnapshotMeta

WORKLOAD_ROOT = "/var/lib/etcd"


def meta(name: str, created: str = "2024-01-01T00:00:00Z", **changes) -> SnapshotMeta:
    values = {
        "name": name,
        "size": 20512,
        "sha256": "ab" * 32,
        "revision": 42,
        "keys": 7,
        "etcd_version": "3.5.1",
        "member": "etcd-k8s-0",
        "cluster_id": "c0ffee",
        "created": created,
    }
    values.update(changes)
    return SnapshotMeta(**values)


def snapshot_bytes(body: bytes) -> bytes:
    """What `etcdctl snapshot save` leaves: the db, then the sha256 of the db."""
    return body + hashlib.sha256(body).digest()


@pytest.fixture
def store(tmp_path: Path) -> Backups:
    return Backups(tmp_path / "data", WORKLOAD_ROOT)


def save(store: Backups, name: str, body: bytes = b"db", **changes) -> SnapshotMeta:
    """A snapshot as the action leaves it: written to incoming, then published."""
    store.prepare_incoming()
    store.incoming(name).write_bytes(snapshot_bytes(body))
    m = meta(name, size=len(body) + 32, **changes)
    store.publish(m)
    store.discard_incoming()
    return m


def warnings(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "workload.snapshots" and r.levelno == logging.WARNING
    ]


# ---- names --------------------------------------------------------------------------------------


class TestCheckName:
    @pytest.mark.parametrize(
        "name",
        [
            "a",
            "0",
            "snapshot-20240101-000000",
            "before_upgrade.v3.5",
            "A-b_C.d",
            "x" * 100,
            "a.",
            "a-",
        ],
    )
    def test_good_names_are_kept(self, name):
        assert bk.check_name(name) == name

    @pytest.mark.parametrize(
        "name, expected",
        [
            ("nightly.db", "nightly"),
            ("a.db", "a"),
            ("a.db.db", "a.db"),
            ("x" * 97 + ".db", "x" * 97),
        ],
    )
    def test_db_suffix_is_stripped(self, name, expected):
        assert bk.check_name(name) == expected

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "/",
            "a/b",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a..b",
            "..",
            ".",
            ".hidden",
            ".db",
            "-dash-first",
            "_underscore-first",
            "x" * 101,
            "x" * 98 + ".db",  # the length is checked before the suffix goes
            "a b",
            "a\\b",
            "a:b",
            "a*",
            "é",
            "snap-é",
            "ｓｎａｐ",  # fullwidth letters
            "٣",  # Arabic-Indic digit
            "a\x00b",
            "\na",
        ],
    )
    def test_bad_names_are_refused(self, name):
        with pytest.raises(BadName, match="invalid snapshot name"):
            bk.check_name(name)

    @pytest.mark.parametrize("name", ["a\n", "snap.db\n"])
    def test_trailing_newline_is_refused(self, name):
        with pytest.raises(BadName):
            bk.check_name(name)

    def test_bad_name_is_a_value_error(self):
        assert issubclass(BadName, ValueError)

    def test_message_quotes_the_name(self):
        with pytest.raises(BadName) as caught:
            bk.check_name("a/b")
        assert "'a/b'" in str(caught.value)


def test_space_needed_is_size_plus_a_tenth_plus_the_wal_margin():
    assert bk.SPACE_MARGIN == 64 * 1024 * 1024
    assert bk.space_needed(0) == bk.SPACE_MARGIN
    assert bk.space_needed(1000) == 1000 + 100 + bk.SPACE_MARGIN
    assert bk.space_needed(9) == 9 + bk.SPACE_MARGIN  # the tenth rounds down
    assert bk.space_needed(2**30) == 2**30 + 2**30 // 10 + bk.SPACE_MARGIN


# ---- hashes -------------------------------------------------------------------------------------


class TestEmbeddedHash:
    @pytest.mark.parametrize("size", [1, 32, 33, 4096, (1 << 20) + 17, 3 << 20])
    def test_db_followed_by_its_sha256_is_ok(self, tmp_path, size):
        path = tmp_path / "s.db"
        path.write_bytes(snapshot_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256)))
        assert bk.embedded_hash_ok(path)

    def test_truncated_is_not_ok(self, tmp_path):
        path = tmp_path / "s.db"
        data = snapshot_bytes(b"etcd" * 1000)
        path.write_bytes(data[:-1])
        assert not bk.embedded_hash_ok(path)
        path.write_bytes(data[:-32])  # the db without its hash
        assert not bk.embedded_hash_ok(path)

    def test_extra_bytes_are_not_ok(self, tmp_path):
        path = tmp_path / "s.db"
        path.write_bytes(snapshot_bytes(b"etcd" * 1000) + b"\0")
        assert not bk.embedded_hash_ok(path)

    @pytest.mark.parametrize("position", [0, 1000, -33, -1])
    def test_flipped_byte_is_not_ok(self, tmp_path, position):
        data = bytearray(snapshot_bytes(b"etcd" * 1000))
        data[position] ^= 0x01
        path = tmp_path / "s.db"
        path.write_bytes(bytes(data))
        assert not bk.embedded_hash_ok(path)

    @pytest.mark.parametrize("size", [0, 1, 31, 32])
    def test_no_more_than_a_hash_is_not_ok(self, tmp_path, size):
        path = tmp_path / "s.db"
        # 32 bytes that are the sha256 of nothing: still not a snapshot.
        path.write_bytes(hashlib.sha256(b"").digest()[:size])
        assert not bk.embedded_hash_ok(path)

    def test_foreign_file_is_not_ok(self, tmp_path):
        path = tmp_path / "s.db"
        path.write_bytes(b"SQLite format 3\0" + b"\0" * 4096)
        assert not bk.embedded_hash_ok(path)

    def test_missing_file_raises(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            bk.embedded_hash_ok(tmp_path / "nope.db")


class TestFileSha256:
    @pytest.mark.parametrize("data", [b"", b"abc", b"\x00" * ((1 << 20) * 2 + 5)])
    def test_is_the_hex_sha256_of_the_whole_file(self, tmp_path, data):
        path = tmp_path / "f"
        path.write_bytes(data)
        assert bk.file_sha256(path) == hashlib.sha256(data).hexdigest()

    def test_known_value(self, tmp_path):
        path = tmp_path / "f"
        path.write_bytes(b"abc")
        assert bk.file_sha256(path) == (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )


# ---- the folder ---------------------------------------------------------------------------------


class TestPaths:
    def test_charm_and_workload_paths(self, store, tmp_path):
        assert store.folder == tmp_path / "data" / "backups"
        assert store.file("s1") == tmp_path / "data" / "backups" / "s1.db"
        assert store.incoming("s1") == tmp_path / "data" / "backups" / ".incoming" / "s1.db"
        assert store.workload_file("s1") == "/var/lib/etcd/backups/s1.db"
        assert store.workload_incoming("s1") == "/var/lib/etcd/backups/.incoming/s1.db"

    def test_free_bytes_creates_the_root(self, store):
        assert not store.root.exists()
        assert store.free_bytes() > 0
        assert store.root.is_dir()


class TestIncoming:
    def test_prepare_creates_the_folder(self, store):
        store.prepare_incoming()
        assert (store.folder / ".incoming").is_dir()
        assert list((store.folder / ".incoming").iterdir()) == []

    def test_prepare_cleans_what_a_crashed_save_left(self, store):
        store.prepare_incoming()
        store.incoming("half").write_bytes(b"torn")
        (store.folder / ".incoming" / "half.db.part").write_bytes(b"torn")
        (store.folder / ".incoming" / "sub").mkdir()
        (store.folder / ".incoming" / "sub" / "x").write_bytes(b"x")
        store.prepare_incoming()
        assert list((store.folder / ".incoming").iterdir()) == []

    def test_prepare_leaves_published_snapshots_alone(self, store):
        save(store, "kept")
        store.prepare_incoming()
        assert store.names() == ["kept"]
        assert store.meta("kept") is not None

    def test_discard_removes_the_folder_and_tolerates_its_absence(self, store):
        store.discard_incoming()
        store.prepare_incoming()
        store.incoming("x").write_bytes(b"x")
        store.discard_incoming()
        assert not (store.folder / ".incoming").exists()
        store.discard_incoming()

    def test_incoming_files_are_never_listed(self, store):
        store.prepare_incoming()
        store.incoming("half").write_bytes(b"torn")
        assert store.names() == []
        assert store.listing() == []
        assert not store.exists("half")


class TestPublish:
    def test_moves_the_file_and_writes_the_sidecar(self, store):
        store.prepare_incoming()
        data = snapshot_bytes(b"payload")
        store.incoming("s1").write_bytes(data)
        m = meta("s1", size=len(data))
        store.publish(m)
        assert not store.incoming("s1").exists()
        assert store.file("s1").read_bytes() == data
        sidecar = json.loads((store.folder / "s1.json").read_text())
        assert sidecar == dataclasses.asdict(m)
        assert store.meta("s1") == m
        assert store.exists("s1")

    def test_sidecar_is_written_before_the_file_moves(self, store, monkeypatch):
        store.prepare_incoming()
        store.incoming("s1").write_bytes(b"x")
        seen = []

        def replace(src, dst):
            seen.append((Path(src), Path(dst), (store.folder / "s1.json").exists()))
            raise OSError("disk gone")

        monkeypatch.setattr(bk.os, "replace", replace)
        with pytest.raises(OSError, match="disk gone"):
            store.publish(meta("s1"))
        assert seen == [(store.incoming("s1"), store.file("s1"), True)]
        # Nothing listed, and the sidecar went with the failure: the name is free again.
        assert store.names() == []
        assert not store.exists("s1")

    def test_missing_incoming_file_raises(self, store):
        store.prepare_incoming()
        with pytest.raises(FileNotFoundError):
            store.publish(meta("ghost"))

    def test_as_results_uses_dashed_keys_and_strings(self):
        assert meta("s1").as_results() == {
            "name": "s1",
            "size": "20512",
            "sha256": "ab" * 32,
            "revision": "42",
            "keys": "7",
            "etcd-version": "3.5.1",
            "member": "etcd-k8s-0",
            "cluster-id": "c0ffee",
            "created": "2024-01-01T00:00:00Z",
        }


class TestMeta:
    def test_missing_sidecar_is_none_quietly(self, store, caplog):
        store.folder.mkdir(parents=True)
        store.file("bare").write_bytes(b"x")
        with caplog.at_level(logging.WARNING, logger="workload.snapshots"):
            assert store.meta("bare") is None
        assert warnings(caplog) == []

    def test_missing_folder_is_none(self, store):
        assert store.meta("nothing") is None

    @pytest.mark.parametrize(
        "text",
        [
            "{not json",
            "",
            "null",
            "[]",
            '"a string"',
            "42",
            json.dumps({"name": "s1"}),
        ],
        ids=["not-json", "empty", "null", "list", "string", "number", "missing"],
    )
    def test_garbage_sidecar_is_none_and_logged(self, store, caplog, text):
        save(store, "s1")
        (store.folder / "s1.json").write_text(text)
        with caplog.at_level(logging.WARNING, logger="workload.snapshots"):
            assert store.meta("s1") is None
        [record] = warnings(caplog)
        assert "s1" in record.getMessage()
        assert "unreadable sidecar" in record.getMessage()

    def test_undecodable_sidecar_is_none_and_logged(self, store, caplog):
        save(store, "s1")
        (store.folder / "s1.json").write_bytes(b"\xff\xfe\x00garbage")
        with caplog.at_level(logging.WARNING, logger="workload.snapshots"):
            assert store.meta("s1") is None
        assert len(warnings(caplog)) == 1


class TestListing:
    def test_empty_without_a_folder(self, store):
        assert store.names() == []
        assert store.listing() == []
        assert store.beyond_retention(0) == []

    def test_oldest_first_then_by_name(self, store):
        save(store, "c", created="2024-01-02T00:00:00Z")
        save(store, "b", created="2024-01-01T00:00:00Z")
        save(store, "a", created="2024-01-02T00:00:00Z")
        save(store, "z", created="2023-12-31T23:59:59Z")
        assert [name for name, _, _ in store.listing()] == ["z", "b", "a", "c"]

    def test_rows_carry_the_size_on_disk_and_the_sidecar(self, store):
        m = save(store, "s1", body=b"x" * 1000)
        [(name, size, sidecar)] = store.listing()
        assert (name, size, sidecar) == ("s1", 1032, m)

    def test_snapshot_without_sidecar_is_listed_first(self, store, caplog):
        save(store, "a", created="2024-01-01T00:00:00Z")
        save(store, "b", created="2024-01-02T00:00:00Z")
        store.file("copied-in").write_bytes(b"x" * 10)
        save(store, "garbled", created="2023-01-01T00:00:00Z")
        (store.folder / "garbled.json").write_text("{")
        with caplog.at_level(logging.WARNING, logger="workload.snapshots"):
            rows = store.listing()
        assert [(n, s) for n, s, _ in rows] == [
            ("copied-in", 10),
            ("garbled", 34),
            ("a", 34),
            ("b", 34),
        ]
        assert rows[0][2] is None and rows[1][2] is None
        assert len(warnings(caplog)) == 1

    def test_names_ignore_files_not_matching_the_pattern(self, store):
        save(store, "good")
        folder = store.folder
        (folder / ".hidden.db").write_bytes(b"x")
        (folder / "-dash.db").write_bytes(b"x")
        (folder / "has space.db").write_bytes(b"x")
        (folder / "é.db").write_bytes(b"x")
        (folder / ("x" * 101 + ".db")).write_bytes(b"x")
        (folder / "notes.txt").write_bytes(b"x")
        (folder / "good.db.part").write_bytes(b"x")
        (folder / "orphan.json").write_text("{}")
        assert store.names() == ["good"]
        assert [n for n, _, _ in store.listing()] == ["good"]

    def test_names_are_sorted(self, store):
        for name in ("b", "a", "c.1", "c"):
            save(store, name)
        assert store.names() == ["a", "b", "c", "c.1"]


class TestRemoveAndExists:
    def test_remove_takes_file_and_sidecar(self, store):
        save(store, "s1")
        save(store, "s2")
        store.remove("s1")
        assert not store.file("s1").exists()
        assert not (store.folder / "s1.json").exists()
        assert not store.exists("s1")
        assert store.names() == ["s2"]

    def test_remove_of_a_half_present_snapshot(self, store):
        save(store, "no-sidecar")
        (store.folder / "no-sidecar.json").unlink()
        store.remove("no-sidecar")
        save(store, "no-file")
        store.file("no-file").unlink()
        store.remove("no-file")
        assert not store.exists("no-sidecar") and not store.exists("no-file")

    def test_remove_of_nothing_is_quiet(self, store):
        store.folder.mkdir(parents=True)
        store.remove("never")

    def test_exists_with_either_the_file_or_the_sidecar(self, store):
        assert not store.exists("s1")
        save(store, "s1")
        assert store.exists("s1")
        (store.folder / "s1.json").unlink()
        assert store.exists("s1")  # file alone
        save(store, "s2")
        store.file("s2").unlink()
        assert store.exists("s2")  # sidecar alone

    def test_exists_is_by_exact_name(self, store):
        save(store, "s1")
        assert not store.exists("s")
        assert not store.exists("s1.db")


class TestRetention:
    @pytest.fixture
    def four(self, store) -> Backups:
        for day, name in enumerate(["d", "c", "b", "a"], start=1):
            save(store, name, created=f"2024-01-0{day}T00:00:00Z")
        return store

    @pytest.mark.parametrize(
        "keep, removed",
        [
            (0, ["d", "c", "b", "a"]),
            (1, ["d", "c", "b"]),
            (3, ["d"]),
            (4, []),
            (10, []),
        ],
    )
    def test_the_oldest_go_so_that_the_newest_keep_remain(self, four, keep, removed):
        assert four.beyond_retention(keep) == removed

    def test_negative_keep_removes_everything_once(self, four):
        assert four.beyond_retention(-1) == ["d", "c", "b", "a"]

    def test_retention_only_names_does_not_remove(self, four):
        four.beyond_retention(1)
        assert len(four.names()) == 4


# ---- formatting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, text",
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (20480, "20.0 KiB"),
        (1024**2, "1.0 MiB"),
        (64 * 1024**2 + 1024**2 // 2, "64.5 MiB"),
        (1024**3, "1.0 GiB"),
        (8 * 1024**3, "8.0 GiB"),
        (1024**4, "1024.0 GiB"),  # no TiB: stays in GiB
    ],
)
def test_human_bytes(size, text):
    assert bk.human_bytes(size) == text


class TestTable:
    def test_header_only_for_no_rows(self):
        assert bk.table([]) == f"{'NAME':<32} {'SIZE':>10} {'REVISION':>10} {'KEYS':>8}  CREATED"

    def test_rows_with_and_without_sidecar(self):
        text = bk.table(
            [
                ("bare", 10, None),
                ("nightly", 2048, meta("nightly", revision=1234, keys=56)),
            ]
        )
        header, bare, nightly = text.split("\n")
        assert header.split() == ["NAME", "SIZE", "REVISION", "KEYS", "CREATED"]
        assert bare.split() == ["bare", "10", "B", "?", "?", "(no", "sidecar)"]
        assert nightly.split() == ["nightly", "2.0", "KiB", "1234", "56", "2024-01-01T00:00:00Z"]

    def test_columns_line_up(self):
        text = bk.table(
            [
                ("a", 1, meta("a", revision=1, keys=1)),
                ("longer-name", 5 * 1024**3, meta("longer-name", revision=123456, keys=9999)),
            ]
        )
        lines = text.split("\n")
        # SIZE, REVISION and KEYS are right-aligned at the same columns in every line.
        ends = [(line[:43].rstrip(), line[:54].rstrip(), line[:63].rstrip()) for line in lines]
        assert {len(a) for a, _, _ in ends} == {43}
        assert {len(b) for _, b, _ in ends} == {54}
        assert {len(c) for _, _, c in ends} == {63}
        assert all(line[65:].strip() for line in lines)

    def test_long_name_is_not_cut(self):
        name = "n" * 60
        text = bk.table([(name, 1, None)])
        assert name in text


def test_sidecar_with_an_extra_key_still_reads(tmp_path):
    """A newer charm may add fields: an older one still reads what it knows."""
    store = Backups(tmp_path, "/var/lib/etcd")
    store.folder.mkdir(parents=True)
    (store.folder / "s1.json").write_text(
        json.dumps({**dataclasses.asdict(meta("s1")), "unexpected": 1})
    )
    assert store.meta("s1") == meta("s1")


def test_sidecar_with_wrong_types_is_ignored(tmp_path, caplog):
    store = Backups(tmp_path, "/var/lib/etcd")
    store.folder.mkdir(parents=True)
    (store.folder / "x.db").write_bytes(b"data")
    good = {
        "name": "x",
        "size": 4,
        "sha256": "0" * 64,
        "revision": 1,
        "keys": 1,
        "etcd_version": "3.5.1",
        "member": "m",
        "cluster_id": "1",
        "created": 20240101,
    }
    (store.folder / "x.json").write_text(json.dumps({**good, "size": "four"}))
    assert store.meta("x") is None
    assert store.listing() == [("x", 4, None)]


def test_failed_publish_leaves_no_sidecar(tmp_path, monkeypatch):
    store = Backups(tmp_path, "/var/lib/etcd")
    store.folder.mkdir(parents=True)
    store.prepare_incoming()
    store.incoming("x").write_bytes(b"data")

    def fail(*_):
        raise OSError("disk gone")

    monkeypatch.setattr(bk.os, "replace", fail)
    with pytest.raises(OSError):
        store.publish(meta("x"))
    assert not store.exists("x")

"""What LocalStorage promises beyond the shared contract (tested on both backends in
test_storage_s3.py): crash-safe atomic publishes, no visible temporary files, clear errors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ssc_common.errors import ObjectNotFound, StorageError, StorageUnreachable
from ssc_common.storage import LocalStorage, open_storage
from ssc_common.storage.local import TEMP_MARK, is_temporary


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage((tmp_path / "store").as_uri())


def files_under(root: Path) -> list[str]:
    """Every file below ``root``, hidden ones included, as sorted relative paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_url_is_the_absolute_file_uri_of_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    local = open_storage("file://./ssc-data")

    assert isinstance(local, LocalStorage)
    assert local.url == (tmp_path / "ssc-data").resolve().as_uri()
    assert local.uri("a/b") == f"{local.url}/a/b"


def test_objects_are_plain_files_under_the_root(store: LocalStorage) -> None:
    store.put_bytes("msos/s01/x.asdf", b"data")

    assert (store.root / "msos" / "s01" / "x.asdf").read_bytes() == b"data"
    assert files_under(store.root) == ["msos/s01/x.asdf"]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt])
@pytest.mark.parametrize("via", ["put_bytes", "put_file"])
def test_a_crash_during_put_leaves_the_old_object_and_no_temporary_file(
    store: LocalStorage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: BaseException,
    via: str,
) -> None:
    store.put_bytes("product.asdf", b"old version")
    source = tmp_path / "new.asdf"
    source.write_bytes(b"new version, never published")

    def crash(fd: int) -> None:  # the new bytes are written; syncing them fails
        raise failure

    monkeypatch.setattr(os, "fsync", crash)
    expected = StorageError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as caught:
        if via == "put_bytes":
            store.put_bytes("product.asdf", source.read_bytes())
        else:
            store.put_file("product.asdf", source)

    monkeypatch.undo()
    assert store.get_bytes("product.asdf") == b"old version"
    assert files_under(store.root) == ["product.asdf"]
    if expected is StorageError:
        assert str(caught.value) == (
            f"{store.uri('product.asdf')}: write failed: No space left on device"
        )


def test_a_failed_get_file_leaves_the_target_untouched(
    store: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes("k", b"stored")
    target = tmp_path / "out" / "target"
    target.parent.mkdir()
    target.write_bytes(b"before")

    def crash(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises((StorageError, OSError)):  # LocalStorage.get_file lets OSError through
        store.get_file("k", target)

    monkeypatch.undo()
    assert target.read_bytes() == b"before"
    assert files_under(target.parent) == ["target"]
    with pytest.raises(ObjectNotFound):
        store.get_file("missing", target)
    assert target.read_bytes() == b"before"


def test_temporary_and_hidden_files_are_never_listed(store: LocalStorage) -> None:
    store.put_bytes("a/visible", b"1")
    in_flight = store.root / "a" / f".visible{TEMP_MARK}0123abcd"
    in_flight.write_bytes(b"half")
    (store.root / ".hidden-dir").mkdir()
    (store.root / ".hidden-dir" / "x").write_bytes(b"x")

    assert is_temporary(in_flight.name)
    assert [info.key for info in store.list()] == ["a/visible"]


def test_list_of_a_store_not_yet_created_is_empty(tmp_path: Path) -> None:
    assert list(LocalStorage((tmp_path / "nothing").as_uri()).list()) == []


def test_info_computes_the_sha256_of_the_file(store: LocalStorage) -> None:
    store.put_bytes("k", b"x")
    (store.root / "k").write_bytes(b"changed behind our back")

    assert store.info("k").sha256 == hashlib.sha256(b"changed behind our back").hexdigest()


def test_put_file_of_a_missing_source_names_the_file(store: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        store.put_file("k", tmp_path / "absent.asdf")

    assert str(caught.value) == f"{tmp_path / 'absent.asdf'}: source file does not exist"
    assert not store.exists("k")


def test_check_creates_the_root_and_passes(store: LocalStorage) -> None:
    store.check()

    assert store.root.is_dir()
    assert files_under(store.root) == []


def test_check_of_an_unwritable_root_raises_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")  # the root would have to be a directory inside a file
    local = LocalStorage((blocker / "store").as_uri())

    with pytest.raises(StorageUnreachable) as caught:
        local.check()

    assert str(caught.value).startswith(f"{local.url}: not writable: ")
    assert "\n" not in str(caught.value)

"""The storage contract, on both backends, and what S3Storage adds over LocalStorage.

S3 tests run against moto's S3 server over real HTTP; faults (503s, dropped connections,
truncated downloads) come from FaultyProxy standing between botocore and moto.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import socket
import time
from pathlib import Path

import pytest

from ssc_common.errors import (
    ConfigurationError,
    ObjectNotFound,
    StorageError,
    StorageUnreachable,
)
from ssc_common.storage import LocalStorage, Storage
from ssc_common.storage.s3 import MIB, S3Storage
from ssc_common.testing.s3 import (
    is_complete_upload,
    is_get_object,
    is_put_object,
    is_upload_part,
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic random bytes."""
    return random.Random(seed).randbytes(size)


def assert_one_line(error: Exception) -> None:
    assert "\n" not in str(error)
    assert "Traceback" not in str(error)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each backend in turn: a local directory, and a prefix of a moto S3 bucket."""
    if request.param == "local":
        return LocalStorage((tmp_path / "store").as_uri())
    return request.getfixturevalue("make_s3_storage")("products", multipart_threshold=5 * MIB)


# -- the contract every backend keeps -----------------------------------------------------


def test_put_bytes_then_get_returns_the_bytes_and_their_sha256(storage: Storage) -> None:
    data = b"roman wfi level 2 product\n" * 100
    put = storage.put_bytes("msos/s01/f03/wfi01/reference.asdf", data)

    assert put.key == "msos/s01/f03/wfi01/reference.asdf"
    assert put.uri == storage.uri("msos/s01/f03/wfi01/reference.asdf")
    assert (put.size, put.sha256) == (len(data), sha256(data))
    assert storage.get_bytes(put.key) == data
    assert storage.info(put.key) == put


def test_put_file_then_get_file_copies_the_file(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "source.asdf"
    source.write_bytes(payload(300_000))

    put = storage.put_file("a/b.asdf", source)
    copy = storage.get_file("a/b.asdf", tmp_path / "out" / "copy.asdf")

    assert put.sha256 == sha256(source.read_bytes()) == copy.sha256
    assert (tmp_path / "out" / "copy.asdf").read_bytes() == source.read_bytes()
    assert os.listdir(tmp_path / "out") == ["copy.asdf"]  # no temporary file left behind


def test_an_empty_object_round_trips(storage: Storage, tmp_path: Path) -> None:
    info = storage.put_bytes("empty", b"")

    assert (info.size, info.sha256) == (0, sha256(b""))
    assert storage.get_bytes("empty") == b""
    assert storage.get_file("empty", tmp_path / "empty").size == 0
    with storage.open_read("empty") as stream:
        assert stream.read() == b""


def test_put_replaces_the_object(storage: Storage) -> None:
    storage.put_bytes("k", b"first version")
    second = storage.put_bytes("k", b"second")

    assert storage.get_bytes("k") == b"second"
    assert storage.info("k") == second


def test_exists_until_deleted_and_deleting_twice_is_fine(storage: Storage) -> None:
    assert not storage.exists("x/y")
    storage.put_bytes("x/y", b"1")
    assert storage.exists("x/y")

    storage.delete("x/y")
    storage.delete("x/y")

    assert not storage.exists("x/y")


def test_a_missing_object_raises_object_not_found(storage: Storage, tmp_path: Path) -> None:
    uri = storage.uri("no/such.asdf")
    for read in (
        storage.get_bytes,
        storage.info,
        storage.open_read,
        lambda key: storage.get_file(key, tmp_path / "target"),
    ):
        with pytest.raises(ObjectNotFound) as caught:
            read("no/such.asdf")
        assert str(caught.value) == f"{uri}: no such object"
    assert not (tmp_path / "target").exists()


def test_list_gives_keys_in_order_relative_to_the_store_filtered_by_prefix(
    storage: Storage,
) -> None:
    keys = ["b/2", "a/1", "b/10", "c", "a/0/deep", "b-other/1"]
    for key in keys:
        storage.put_bytes(key, key.encode())

    listed = list(storage.list())

    assert [info.key for info in listed] == sorted(keys)
    assert all(info.sha256 == sha256(info.key.encode()) for info in listed)
    assert all(info.size == len(info.key) for info in listed)
    assert [info.key for info in storage.list("b/")] == ["b/10", "b/2"]
    assert [info.key for info in storage.list("b")] == ["b-other/1", "b/10", "b/2"]
    assert list(storage.list("zzz")) == []


def test_invalid_keys_are_rejected(storage: Storage) -> None:
    for key in ("", "/abs", "a//b", "a/../b", "./a", "a/"):
        with pytest.raises(ValueError):
            storage.put_bytes(key, b"x")


def test_uri_and_key_of_are_inverse(storage: Storage) -> None:
    uri = storage.uri("msos/s01/x.asdf")

    assert uri == f"{storage.url}/msos/s01/x.asdf"
    assert storage.key_of(uri) == "msos/s01/x.asdf"


def test_open_read_seeks_and_reads_like_a_local_file(storage: Storage, tmp_path: Path) -> None:
    data = payload(200_000, seed=7)
    storage.put_bytes("blob", data)
    reference_path = tmp_path / "reference"
    reference_path.write_bytes(data)

    def session(stream: io.BufferedIOBase) -> list[object]:
        seen: list[object] = [stream.seekable(), stream.readable(), stream.tell()]
        seen += [stream.read(10), stream.read(0), stream.tell()]
        seen += [stream.seek(5, os.SEEK_CUR), stream.read(3)]
        seen += [stream.seek(-7, os.SEEK_END), stream.read(100), stream.read(), stream.tell()]
        seen += [stream.seek(len(data) + 10), stream.read(5), stream.tell()]
        seen += [stream.seek(150_000), stream.read(60_000), stream.tell()]
        seen += [stream.seek(0), stream.readline()[:20], stream.read1(4)]
        seen += [stream.seek(3), stream.read()]
        with pytest.raises(OSError):
            stream.seek(-1)
        return seen

    with open(reference_path, "rb") as local, storage.open_read("blob") as remote:
        assert session(remote) == session(local)
    assert remote.closed
    with pytest.raises(ValueError):
        remote.read(1)


# -- S3 specifics -------------------------------------------------------------------------


@pytest.mark.s3
def test_the_store_url_is_normalised() -> None:
    assert S3Storage("s3://bucket/a/b/").url == "s3://bucket/a/b"
    assert S3Storage("s3://bucket/").url == "s3://bucket"
    assert S3Storage("s3://bucket").uri("k/v") == "s3://bucket/k/v"
    for bad in ("s3:///prefix", "s3://bucket/a//b", "s3://bucket/../x", "http://bucket/x"):
        with pytest.raises(ConfigurationError):
            S3Storage(bad)


@pytest.mark.s3
def test_objects_carry_their_sha256_as_metadata(s3_storage: S3Storage, s3_server) -> None:
    s3_storage.put_bytes("p/one", b"hello")

    client = s3_server.client
    head = client.head_object(Bucket=s3_storage.bucket, Key="products/p/one")

    assert head["Metadata"] == {"sha256": sha256(b"hello")}


@pytest.mark.s3
def test_info_hashes_an_object_that_lacks_sha256_metadata(s3_storage: S3Storage, s3_server) -> None:
    client = s3_server.client
    client.put_object(Bucket=s3_storage.bucket, Key="products/foreign", Body=b"by someone else")

    assert s3_storage.info("foreign").sha256 == sha256(b"by someone else")
    assert [info.sha256 for info in s3_storage.list()] == [sha256(b"by someone else")]


@pytest.mark.s3
def test_list_shows_neither_other_prefixes_nor_unfinished_uploads(
    make_s3_storage, s3_server
) -> None:
    products = make_s3_storage("products")
    make_s3_storage("products-old").put_bytes("a", b"old")
    products.put_bytes("a", b"new")
    client = s3_server.client
    client.put_object(Bucket=products.bucket, Key="products/dir/", Body=b"")  # a "folder"
    client.create_multipart_upload(Bucket=products.bucket, Key="products/in-flight")

    assert [info.key for info in products.list()] == ["a"]
    assert not products.exists("in-flight")


@pytest.mark.s3
def test_uploads_carry_a_content_md5_of_their_body(make_s3_storage, faulty_proxy) -> None:
    store = make_s3_storage(
        endpoint_url=faulty_proxy.endpoint_url, multipart_threshold=5 * MIB, part_size=5 * MIB
    )
    store.put_bytes("small", b"x" * 1000)
    store.put_bytes("large", payload(6 * MIB))

    uploads = [r for r in faulty_proxy.requests if r.method == "PUT"]
    assert len(uploads) == 3  # one PutObject, two UploadParts
    for request in uploads:
        sent = request.headers["content-md5"]
        assert sent == base64.b64encode(request.body_md5).decode()


@pytest.mark.s3
def test_large_file_goes_multipart_and_is_atomic(
    make_s3_storage, faulty_proxy, s3_server, tmp_path: Path
) -> None:
    store = make_s3_storage(
        endpoint_url=faulty_proxy.endpoint_url, multipart_threshold=5 * MIB, part_size=5 * MIB
    )
    source = tmp_path / "big.asdf"
    source.write_bytes(payload(11 * MIB, seed=1))
    client = s3_server.client
    visible_before_complete = []
    faulty_proxy.on(
        is_complete_upload,
        lambda _: visible_before_complete.append(
            client.list_objects_v2(Bucket=store.bucket).get("KeyCount", 0)
        ),
    )

    info = store.put_file("big.asdf", source)

    assert info.sha256 == sha256(source.read_bytes())
    parts = [r.query["partNumber"] for r in faulty_proxy.requests if is_upload_part()(r)]
    assert sorted(parts) == ["1", "2", "3"]
    assert visible_before_complete == [0]  # all parts stored, yet no object until Complete
    assert store.get_bytes("big.asdf") == source.read_bytes()
    assert store.info("big.asdf") == info


@pytest.mark.s3
@pytest.mark.parametrize(
    ("failing", "fault"),
    [
        pytest.param(is_upload_part(2), "503", id="part-2-answers-503"),
        pytest.param(is_upload_part(2), "drop", id="part-2-connection-dropped"),
        pytest.param(is_complete_upload, "500", id="complete-answers-500"),
    ],
)
def test_failure_mid_multipart_upload_leaves_no_object_and_no_parts(
    make_s3_storage, faulty_proxy, s3_server, tmp_path: Path, failing, fault
) -> None:
    store = make_s3_storage(
        endpoint_url=faulty_proxy.endpoint_url,
        multipart_threshold=5 * MIB,
        part_size=5 * MIB,
        max_attempts=2,
    )
    store.put_bytes("product.asdf", b"previous version")
    source = tmp_path / "big.asdf"
    source.write_bytes(payload(11 * MIB, seed=2))
    faulty_proxy.inject(failing, fault, times=None)

    with pytest.raises(StorageError) as caught:
        store.put_file("product.asdf", source)

    assert_one_line(caught.value)
    assert caught.value.subject == store.uri("product.asdf")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert faulty_proxy.count(failing) == 2  # tried, retried once, gave up
    assert s3_server.multipart_uploads(store.bucket) == []
    faulty_proxy.clear()
    assert store.get_bytes("product.asdf") == b"previous version"


@pytest.mark.s3
def test_any_exception_during_a_multipart_upload_aborts_it(
    make_s3_storage, s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_s3_storage(multipart_threshold=5 * MIB, part_size=5 * MIB, max_concurrency=1)
    source = tmp_path / "big.asdf"
    source.write_bytes(payload(11 * MIB, seed=3))
    upload_part = S3Storage._upload_part

    def crash_on_part_2(self, object_key, uri, upload_id, number, chunk):
        if number == 2:
            raise KeyboardInterrupt
        return upload_part(self, object_key, uri, upload_id, number, chunk)

    monkeypatch.setattr(S3Storage, "_upload_part", crash_on_part_2)

    with pytest.raises(KeyboardInterrupt):  # not ours to translate: it propagates as is
        store.put_file("big.asdf", source)

    assert not store.exists("big.asdf")
    assert s3_server.multipart_uploads(store.bucket) == []


@pytest.mark.s3
@pytest.mark.parametrize("fault", ["503", "drop"])
def test_transient_5xx_is_retried(make_s3_storage, faulty_proxy, fault: str) -> None:
    store = make_s3_storage(endpoint_url=faulty_proxy.endpoint_url, max_attempts=3)
    faulty_proxy.inject(is_put_object, fault, times=2)

    info = store.put_bytes("k", b"finally")

    assert faulty_proxy.count(is_put_object) == 3
    assert len(faulty_proxy.faults) == 2
    assert store.get_bytes("k") == b"finally"
    assert info.sha256 == sha256(b"finally")


@pytest.mark.s3
def test_transient_failures_of_parts_are_retried(
    make_s3_storage, faulty_proxy, tmp_path: Path
) -> None:
    store = make_s3_storage(
        endpoint_url=faulty_proxy.endpoint_url, multipart_threshold=5 * MIB, part_size=5 * MIB
    )
    source = tmp_path / "big.asdf"
    source.write_bytes(payload(11 * MIB, seed=4))
    faulty_proxy.inject(is_upload_part(2), "503")
    faulty_proxy.inject(is_upload_part(3), "drop")

    store.put_file("big.asdf", source)

    assert faulty_proxy.count(is_upload_part()) == 5
    assert store.get_bytes("big.asdf") == source.read_bytes()


@pytest.mark.s3
def test_a_download_that_breaks_off_resumes_where_it_stopped(make_s3_storage, faulty_proxy) -> None:
    store = make_s3_storage(endpoint_url=faulty_proxy.endpoint_url)
    data = payload(1 * MIB, seed=5)
    store.put_bytes("blob", data)
    faulty_proxy.inject(is_get_object, "truncate")

    assert store.get_bytes("blob") == data

    ranges = [r.headers["range"] for r in faulty_proxy.requests if is_get_object(r)]
    assert ranges == [f"bytes=0-{len(data) - 1}", f"bytes={len(data) // 2}-{len(data) - 1}"]


@pytest.mark.s3
def test_a_download_that_keeps_failing_leaves_the_target_untouched(
    make_s3_storage, faulty_proxy, tmp_path: Path
) -> None:
    store = make_s3_storage(endpoint_url=faulty_proxy.endpoint_url, max_attempts=2)
    store.put_bytes("blob", payload(100_000))
    target = tmp_path / "target"
    target.write_bytes(b"what was here before")
    faulty_proxy.inject(is_get_object, "truncate", times=None)

    with pytest.raises(StorageUnreachable) as caught:
        store.get_file("blob", target)

    assert_one_line(caught.value)
    assert "broke off" in str(caught.value)
    assert target.read_bytes() == b"what was here before"
    assert os.listdir(tmp_path) == ["target"]


@pytest.mark.s3
def test_open_read_fetches_only_what_is_read(make_s3_storage, faulty_proxy) -> None:
    store = make_s3_storage(endpoint_url=faulty_proxy.endpoint_url, read_buffer_size=MIB)
    data = b"#ASDF 1.0.0\n%YAML 1.1\n" + payload(6 * MIB, seed=6)
    store.put_bytes("big.asdf", data)

    with store.open_read("big.asdf") as stream:
        assert stream.readline() == b"#ASDF 1.0.0\n"
        assert stream.readline() == b"%YAML 1.1\n"
        assert stream.read(100) == data[22:122]
        stream.seek(-1000, os.SEEK_END)
        assert stream.read() == data[-1000:]

    assert faulty_proxy.count(is_get_object) == 2  # the first MiB, then the tail


@pytest.mark.s3
def test_an_object_replaced_while_open_is_not_read_as_a_mix(s3_storage: S3Storage) -> None:
    s3_storage.put_bytes("k", b"A" * 100)

    with s3_storage.open_read("k") as stream:
        s3_storage.put_bytes("k", b"B" * 100)
        with pytest.raises(StorageError, match="replaced while it was being read"):
            stream.read(10)


@pytest.mark.s3
def test_unreachable_endpoint_raises_one_line_error(aws_env) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = S3Storage(
        "s3://bucket/products",
        endpoint_url=f"http://127.0.0.1:{port}",
        max_attempts=2,
        connect_timeout=1,
    )

    for operation in (store.check, lambda: store.put_bytes("k", b"x"), lambda: store.info("k")):
        started = time.monotonic()
        with pytest.raises(StorageUnreachable) as caught:
            operation()
        assert time.monotonic() - started < 5
        assert_one_line(caught.value)
        assert f"cannot connect to http://127.0.0.1:{port}" in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.s3
def test_a_missing_bucket_is_named(s3_server, aws_env) -> None:
    store = S3Storage("s3://no-such-bucket/products", endpoint_url=s3_server.endpoint_url)

    with pytest.raises(StorageUnreachable) as caught:
        store.check()
    assert str(caught.value) == (
        f"s3://no-such-bucket/products: bucket 'no-such-bucket' does not exist at "
        f"{s3_server.endpoint_url}"
    )
    with pytest.raises(StorageUnreachable, match="bucket 'no-such-bucket' does not exist"):
        store.put_bytes("k", b"x")


@pytest.mark.s3
def test_check_passes_on_an_existing_bucket(s3_storage: S3Storage) -> None:
    s3_storage.check()


@pytest.mark.s3
def test_missing_credentials_are_reported_as_unreachable(
    s3_server, aws_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3Storage("s3://bucket", endpoint_url=s3_server.endpoint_url)

    with pytest.raises(StorageUnreachable, match="no usable AWS credentials") as caught:
        store.check()
    assert_one_line(caught.value)


@pytest.mark.s3
def test_put_file_of_a_missing_source_names_the_file(s3_storage: S3Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        s3_storage.put_file("k", tmp_path / "absent.asdf")

    assert str(caught.value) == f"{tmp_path / 'absent.asdf'}: source file does not exist"

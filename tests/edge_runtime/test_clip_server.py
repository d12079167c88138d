"""The device's read-only clip endpoint over real HTTP: the token, names only inside the clip folder, no
symbolic links, no writes."""

from __future__ import annotations

import http.client
import logging

import pytest

from edge_runtime.clip_server import ENV_CLIP_TOKEN, ENV_CLIP_TOKEN_FILE, ClipServer, read_clip_token

TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "e1.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"x" * 1000)
    (folder / ".e2.mp4.part").write_bytes(b"half")
    (tmp_path / "secret.mp4").write_bytes(b"outside")
    (folder / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    (folder / "sub").mkdir()
    with ClipServer(folder, "127.0.0.1", 0, TOKEN) as srv:
        yield srv


def _get(server, path, token=TOKEN, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, resp


def test_a_clip_is_served_with_the_right_token(server):
    status, body, resp = _get(server, "/clips/e1.mp4")
    assert status == 200 and body.startswith(b"\0\0\0\x18ftyp") and len(body) == 1012
    assert resp.getheader("Content-Type") == "video/mp4"


@pytest.mark.parametrize("token", [None, "", "wrong-token-0123456789", TOKEN + "x"])
def test_a_missing_or_wrong_token_is_401(server, token):
    status, body, resp = _get(server, "/clips/e1.mp4", token=token)
    assert status == 401 and body == b"" and resp.getheader("WWW-Authenticate").startswith("Bearer")


@pytest.mark.parametrize(
    "path",
    [
        "/clips/../secret.mp4",
        "/clips/%2e%2e/secret.mp4",
        "/clips/..%2fsecret.mp4",
        "/clips//etc/passwd",
        "/clips/sub/../e1.mp4",
        "/clips/link.mp4",  # a symbolic link out of the folder
        "/clips/.e2.mp4.part",  # a clip being written
        "/clips/sub",
        "/clips/nope.mp4",
        "/e1.mp4",
        "/",
    ],
)
def test_anything_but_a_published_clip_in_the_folder_is_404(server, path):
    status, body, _ = _get(server, path)
    assert status == 404 and body == b""


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
def test_the_endpoint_is_read_only(server, method):
    status, _, _ = _get(server, "/clips/e1.mp4", method=method)
    assert status == 405
    assert (server.folder / "e1.mp4").stat().st_size == 1012


def test_the_token_never_reaches_the_log(server, caplog):
    with caplog.at_level(logging.DEBUG, logger="edge_runtime.clip_server"):
        _get(server, "/clips/e1.mp4")
        _get(server, "/clips/e1.mp4", token="wrong-token-0123456789")
    assert caplog.records and not any(TOKEN in r.getMessage() for r in caplog.records)


def test_the_token_comes_from_the_environment_or_a_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert read_clip_token(environ={ENV_CLIP_TOKEN: TOKEN}) == TOKEN
    assert read_clip_token(environ={ENV_CLIP_TOKEN_FILE: str(path)}) == TOKEN
    assert read_clip_token(str(path), environ={}) == TOKEN


@pytest.mark.parametrize(
    "environ, needle",
    [
        ({}, ENV_CLIP_TOKEN),
        ({ENV_CLIP_TOKEN: "short"}, "at least"),
        ({ENV_CLIP_TOKEN_FILE: "/nonexistent"}, "cannot read"),
    ],
)
def test_no_token_or_a_short_one_is_one_line(environ, needle):
    with pytest.raises(ValueError, match=needle) as err:
        read_clip_token(environ=environ)
    assert "\n" not in str(err.value)

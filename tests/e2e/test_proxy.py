"""End-to-end: the proxy the environment names carries every Compass request, and
NO_PROXY keeps them direct, as httpx applies them; other *_PROXY variables are not
ours to use."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.forward_proxy import ForwardProxy
from tests.e2e.support import SYNCAGENT, run_sync, write_config

pytestmark = pytest.mark.e2e

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")


def environment(**proxies: str) -> dict[str, str]:
    """This process's environment with only the given proxy variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in (*PROXY_VARIABLES, "socks_proxy")
    }
    return {**env, **proxies}


def one_file_config(tmp_path: Path, url: str) -> Path:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.txt").write_bytes(b"through the proxy")
    mapping = {"local": "media", "folder_id": 1001}
    return write_config(tmp_path, url, [mapping])


def test_every_compass_request_goes_through_the_named_proxy(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = one_file_config(tmp_path, emulator.url)

    with ForwardProxy() as proxy:
        done = run_sync(config, env=environment(HTTP_PROXY=proxy.url))

    assert done.returncode == 0, done.stderr
    assert done.mapping["uploaded"] == 1
    paths = [line.split(" ", 1)[1].split("?")[0] for line in proxy.seen]
    assert f"{emulator.url}/api/v1/authenticate" in paths
    assert any("/s3/parts/" in p for p in paths)  # the part, to its presigned URL


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:{port}"])
def test_no_proxy_keeps_the_requests_direct(
    tmp_path: Path, emulator: EmulatorServer, entry: str
) -> None:
    config = one_file_config(tmp_path, emulator.url)
    no_proxy = entry.format(port=emulator.port)

    with ForwardProxy() as proxy:
        done = run_sync(
            config, env=environment(HTTP_PROXY=proxy.url, NO_PROXY=no_proxy)
        )

    assert done.returncode == 0, done.stderr
    assert done.mapping["uploaded"] == 1
    assert proxy.seen == []


def test_ftp_and_socks_proxy_variables_are_left_alone(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = one_file_config(tmp_path, emulator.url)
    env = environment(FTP_PROXY="ftp://127.0.0.1:9", socks_proxy="socks://127.0.0.1:9")

    done = run_sync(config, env=env)

    assert done.returncode == 0, done.stderr
    assert done.mapping["uploaded"] == 1


def test_a_proxy_that_cannot_be_used_is_a_clear_configuration_error(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = one_file_config(tmp_path, emulator.url)

    done = subprocess.run(
        [*SYNCAGENT, "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment(ALL_PROXY="gopher://127.0.0.1:9"),
    )

    assert done.returncode == 2
    assert "the proxy set in the environment" in done.stderr
    assert "Unknown scheme for proxy URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_dead_proxy_is_named_as_the_way_that_failed(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = one_file_config(tmp_path, emulator.url)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens

    done = run_sync(config, env=environment(HTTP_PROXY=dead))

    assert done.returncode != 0
    assert "through the proxy the environment names" in done.stderr


def test_the_embedded_emulator_is_reached_directly_whatever_the_proxy(
    tmp_path: Path,
) -> None:
    # A proxy elsewhere could never reach this machine's loopback.
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.txt").write_bytes(b"no proxy in between")
    config = tmp_path / "agent.toml"
    config.write_text(
        '[compass]\nurl = "embedded"\nusername = "demo"\npassword = "demo"\n'
        '[ledger]\nurl = "sqlite:///ledger.db"\n'
        '[[mapping]]\nlocal = "media"\nfolder_id = 1001\n'
    )

    with ForwardProxy() as proxy:
        done = run_sync(config, env=environment(HTTP_PROXY=proxy.url))

    assert done.returncode == 0, done.stderr
    assert done.mapping["uploaded"] == 1
    assert proxy.seen == []

"""The command line: configuration problems found at start exit 2 and name the key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from syncagent.ledger import Ledger

RUN = [sys.executable, "-m", "syncagent", "run"]

CONFIG = """
[compass]
url = "http://127.0.0.1:9"
username = "demo"
password = "demo"
[ledger]
url = "{ledger}"
[[mapping]]
local = "media"
folder_id = 1001
"""


def sync(tmp_path: Path, ledger_url: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "media").mkdir(exist_ok=True)
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG.format(ledger=ledger_url))
    return subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ledger_without_its_database_driver_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    done = sync(tmp_path, "nosuchdb+nodriver://user:hunter2@127.0.0.1:1/ledger")

    assert done.returncode == 2
    assert "configuration error" in done.stderr
    assert f"{tmp_path / 'agent.toml'}: ledger.url" in done.stderr
    assert "hunter2" not in done.stderr
    assert "Traceback" not in done.stderr


def test_ledger_in_an_unwritable_place_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")

    done = sync(tmp_path, f"sqlite:///{tmp_path}/blocker/ledger.db")

    assert done.returncode == 2
    assert "ledger.url" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_value_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG.format(ledger="sqlite:///l.db") + "colour = 1\n")

    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert f"{config}: mapping[1].colour: unknown key" in done.stderr


def test_refused_credentials_exit_2_and_still_print_json(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(
        CONFIG.format(ledger="sqlite:///l.db")
        .replace("http://127.0.0.1:9", emulator.url)
        .replace('password = "demo"', 'password = "wrong-password"')
    )

    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    summary = json.loads(done.stdout)
    assert summary["ok"] is False and summary["exit_code"] == 2
    assert "refused the credentials of user 'demo'" in summary["fatal"]
    assert "wrong-password" not in done.stdout + done.stderr


def test_a_url_with_no_compass_login_exits_2_at_once(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    wrong = f"{emulator.url}/runner"  # a path below the base URL
    config.write_text(
        CONFIG.format(ledger="sqlite:///l.db").replace("http://127.0.0.1:9", wrong)
    )

    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "is compass.url the base URL of Compass?" in done.stderr


def test_status_prints_one_line_per_failure_whatever_the_name(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "lnk\nWARNING forged.txt").symlink_to("/nonexistent")
    config = tmp_path / "agent.toml"
    config.write_text(
        CONFIG.format(ledger="sqlite:///l.db").replace(
            "http://127.0.0.1:9", emulator.url
        )
    )
    synced = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert synced.returncode == 1
    assert "\nWARNING forged.txt" not in synced.stdout + synced.stderr

    status = subprocess.run(
        [sys.executable, "-m", "syncagent", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert status.returncode == 1
    assert "failed: lnk\\nWARNING forged.txt: broken symbolic link" in status.stdout
    assert "\nWARNING forged.txt" not in status.stdout


def test_status_reads_a_ledger_it_may_not_write(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    from tests.e2e.support import unprivileged_prefix

    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "one.txt").write_text("one")
    config = tmp_path / "agent.toml"
    config.write_text(
        CONFIG.format(ledger="sqlite:///state/l.db").replace(
            "http://127.0.0.1:9", emulator.url
        )
    )
    command = [sys.executable, "-m", "syncagent"]
    assert (
        subprocess.run(
            [*command, "sync", "--config", str(config)], check=False
        ).returncode
        == 0
    )
    for path in (tmp_path / "state").iterdir():
        path.chmod(0o444)
    (tmp_path / "state").chmod(0o555)
    try:
        status = subprocess.run(
            [*unprivileged_prefix(), *command, "status", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        (tmp_path / "state").chmod(0o755)

    assert status.returncode == 0, status.stderr
    assert "synced 1, pending 0, in flight 0, failed 0" in status.stdout


def test_the_file_its_output_goes_to_is_not_synced(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    share = tmp_path / "share"  # config, ledger and log all inside the synced folder
    share.mkdir()
    (share / "photo.jpg").write_text("photo")
    config = share / "agent.toml"
    config.write_text(
        CONFIG.format(ledger="sqlite:///state/l.db")
        .replace("http://127.0.0.1:9", emulator.url)
        .replace('local = "media"', 'local = "."')
    )
    codes = []
    with open(share / "sync.log", "ab") as log:
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-m", "syncagent", "sync", "--config", str(config)],
                stdout=log,
                stderr=log,
                timeout=60,
                check=False,
            )
            codes.append(done.returncode)

    assert codes == [0, 0], (share / "sync.log").read_text()
    text = (share / "sync.log").read_text()
    assert "1 uploaded" in text and "nothing to do (1 file in sync)" in text


def test_json_readers_get_json_for_configuration_errors_too(tmp_path: Path) -> None:
    for command in ("sync", "status"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "syncagent",
                command,
                "--config",
                "nope.toml",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )

        assert done.returncode == 2
        summary = json.loads(done.stdout)
        assert summary["ok"] is False and summary["exit_code"] == 2
        assert "no such configuration file" in summary["fatal"]


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stop_while_the_agent_still_logs_in_exits_0_at_once(
    tmp_path: Path, name: str
) -> None:
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG.format(ledger="sqlite:///ledger.db"))  # port 9: nobody
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen(
            [sys.executable, "-m", "syncagent", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "retrying" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.send_signal(signal.Signals[name])

    assert agent.wait(timeout=10) == 0
    assert f"{name} while starting: stopped" in log.read_text()


def test_of_two_agents_registered_together_the_later_gives_way(tmp_path: Path) -> None:
    from syncagent.commands.run import _first_registered
    from syncagent.config import load_config
    from syncagent.runtime import open_runtime

    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG.format(ledger="sqlite:///ledger.db"))
    with (
        open_runtime(load_config(config), "run") as first,
        open_runtime(load_config(config), "run") as second,
    ):
        assert _first_registered(first)
        assert not _first_registered(second)


def test_an_agent_another_took_for_dead_stops_once_it_sees_it(
    tmp_path: Path,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Suspended for minutes (Ctrl-Z), an agent is taken for dead and a new one
    # removes its registration; resumed, it must not work beside the new one.
    from syncagent import runtime as runtime_module
    from syncagent.commands.run import _serve
    from syncagent.config import load_config

    monkeypatch.setattr(runtime_module, "HEARTBEAT_SECONDS", 0.05)
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    text = CONFIG.format(ledger="sqlite:///ledger.db")
    config.write_text(text.replace("http://127.0.0.1:9", emulator.url))
    with runtime_module.open_runtime(load_config(config), "run") as runtime:
        assert runtime.ledger.heartbeat(runtime.owner)
        runtime.ledger.unregister_agent(runtime.owner)  # what the new agent does

        started = time.monotonic()
        assert _serve(runtime) == 1

        assert time.monotonic() - started < 10
        assert not runtime.ledger.heartbeat(runtime.owner)
    assert "registration on the ledger was removed by another" in caplog.text


@pytest.mark.parametrize("command", ["status", "sync"])
def test_a_ledger_server_that_does_not_answer_is_one_error_line(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(
        CONFIG.format(ledger=f"postgresql+psycopg://agent@127.0.0.1:{port}/ledger")
    )

    done = subprocess.run(
        [sys.executable, "-m", "syncagent", command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert "cannot reach the ledger's database server at" in done.stderr
    assert "Traceback" not in done.stderr
    assert "configuration error" not in done.stderr


def test_status_needs_no_password_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    text = CONFIG.format(ledger="sqlite:///ledger.db")
    config.write_text(text.replace('password = "demo"', 'password_env = "SA_UNSET"'))
    env = {k: v for k, v in os.environ.items() if k != "SA_UNSET"}
    Ledger(f"sqlite:///{tmp_path / 'ledger.db'}").close()  # as an earlier run left it

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syncagent", command, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )

    status, sync = run("status"), run("sync")

    assert status.returncode == 0, status.stderr
    assert "Compass folder 1001" in status.stdout
    assert sync.returncode == 2
    assert "SA_UNSET is not set" in sync.stderr


def test_status_before_any_sync_shows_what_is_pending_and_makes_no_ledger(
    tmp_path: Path,
) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.txt").write_text("a")
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG.format(ledger="sqlite:///ledger.db"))

    status = subprocess.run(
        [sys.executable, "-m", "syncagent", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert status.returncode == 0, status.stderr
    assert "synced 0, pending 1" in status.stdout
    assert not (tmp_path / "ledger.db").exists()


def test_run_with_json_logs_reports_a_configuration_error_as_a_json_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    text = CONFIG.format(ledger="sqlite:///ledger.db")
    config.write_text(f"[agent]\npull_interval = 0\n{text}")

    done = subprocess.run(
        [*RUN, "--config", str(config), "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["level"] for line in lines] == ["ERROR"]
    assert lines[0]["message"] == (
        f"configuration error: {config}: agent.pull_interval: must be at least 1 second"
    )


def test_run_with_json_logs_reports_a_missing_configuration_as_a_json_line(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [*RUN, "--config", "nope.toml", "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 2
    assert "no such configuration file" in json.loads(done.stderr)["message"]


def settle_0_config(tmp_path: Path, url: str) -> Path:
    """A configuration for `url` with settle_seconds = 0, which is warned about."""
    (tmp_path / "media").mkdir()
    config = tmp_path / "agent.toml"
    text = CONFIG.format(ledger="sqlite:///ledger.db")
    config.write_text(
        "[agent]\nsettle_seconds = 0\n" + text.replace("http://127.0.0.1:9", url)
    )
    return config


def test_sync_warns_of_settle_seconds_0(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = settle_0_config(tmp_path, emulator.url)

    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert f"WARNING {config}: agent.settle_seconds: 0 means" in done.stderr


def test_run_with_json_logs_logs_only_json_lines_its_warnings_included(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = settle_0_config(tmp_path, emulator.url)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen(
            [*RUN, "--config", str(config), "--log-format", "json"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "agent started" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.send_signal(signal.SIGTERM)

    assert agent.wait(timeout=30) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    warnings = [line["message"] for line in lines if line["level"] == "WARNING"]
    assert warnings[0].startswith(f"{config}: agent.settle_seconds: 0 means")
    assert lines[-1]["message"] == "agent stopped"

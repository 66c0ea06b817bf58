"""The configuration loader: defaults, relative paths, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.config import (
    ConfigError,
    find_config,
    load_config,
    parse_duration,
    parse_size,
)

MINIMAL = """
[compass]
url = "embedded"
username = "demo"
password = "demo"

[[mapping]]
local = "media"
folder_id = 1001
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))

    assert config.compass.embedded
    assert config.transfer.part_size == 8 * 1024 * 1024
    assert config.transfer.concurrency == 4
    assert config.agent.settle_seconds == 5
    assert config.agent.rescan_interval == 3600
    mapping = config.mappings[0]
    assert mapping.local_root == tmp_path / "media"
    assert mapping.direction == "upload"
    assert config.ledger_url == f"sqlite:///{tmp_path}/.syncagent/ledger.db"
    assert config.embedded_data == tmp_path / ".syncagent" / "emulator"


def test_password_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = MINIMAL.replace('password = "demo"', 'password_env = "SA_TEST_PASSWORD"')
    monkeypatch.setenv("SA_TEST_PASSWORD", "s3cret")

    config = load_config(write(tmp_path, text))

    assert config.compass.password == "s3cret"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("folder_id = 1001", 'folder_id = "abc"'), "mapping[1].folder_id"),
        (("folder_id = 1001", "folder_id = -4"), "mapping[1].folder_id"),
        (
            (
                'local = "media"\n',
                'local = "media"\nmode = "dropbox"\ndirection = "both"\n',
            ),
            "mapping[1].mode",
        ),
        (
            ('local = "media"\n', 'local = "media"\ndirection = "sideways"\n'),
            "mapping[1].direction",
        ),
        (('local = "media"\n', 'local = "media"\ncolour = 1\n'), "mapping[1].colour"),
        (('url = "embedded"', 'url = "ftp://x"'), "compass.url"),
        (('username = "demo"\n', ""), "compass.username"),
        (
            ('password = "demo"', 'password_env = "SA_NOT_SET_ANYWHERE"'),
            "compass.password_env",
        ),
        (('username = "demo"', 'username = " "'), "compass.username"),
        (('url = "embedded"', 'url = "embedded"\ntimeout = -5'), "compass.timeout"),
        (('url = "embedded"', 'url = "embedded"\ntimeout = 0'), "compass.timeout"),
        (
            ('url = "embedded"', 'url = "embedded"\nverify_tls = "nope.pem"'),
            "compass.verify_tls",
        ),
        (("[[mapping]]", '[ledger]\nurl = "nonsense"\n[[mapping]]'), "ledger.url"),
        (
            ("[[mapping]]", '[transfer]\npart_size = "lots"\n[[mapping]]'),
            "transfer.part_size",
        ),
        (
            ("[[mapping]]", '[agent]\nrescan_interval = "soon"\n[[mapping]]'),
            "agent.rescan_interval",
        ),
        (
            ("[[mapping]]", "[agent]\nsettle_seconds = -1\n[[mapping]]"),
            "agent.settle_seconds",
        ),
        (
            ("[[mapping]]", "[agent]\npull_interval = 0.001\n[[mapping]]"),
            "agent.pull_interval",
        ),
        (
            ("[[mapping]]", '[transfer]\npart_size = "6GiB"\n[[mapping]]'),
            "transfer.part_size",
        ),
    ],
)
def test_bad_values_name_their_key(
    tmp_path: Path, change: tuple[str, str], key: str
) -> None:
    text = MINIMAL.replace(*change)

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))

    assert key in str(caught.value)
    assert str(tmp_path / "agent.toml") in str(caught.value)


def test_credentials_in_the_compass_url_are_refused_without_echoing_them(
    tmp_path: Path,
) -> None:
    text = MINIMAL.replace('url = "embedded"', 'url = "https://demo:UrlPa55@mam.test"')

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))

    assert "compass.url" in str(caught.value)
    assert "compass.username and compass.password" in str(caught.value)
    assert "UrlPa55" not in str(caught.value)


def test_small_part_size_and_bad_concurrency_are_refused(tmp_path: Path) -> None:
    for table, key in [
        ('[transfer]\npart_size = "1MiB"\n', "transfer.part_size"),
        ("[transfer]\nconcurrency = 0\n", "transfer.concurrency"),
    ]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(write(tmp_path, MINIMAL + table))


def test_nested_mappings_are_refused(tmp_path: Path) -> None:
    text = MINIMAL + '[[mapping]]\nlocal = "media/sub"\nfolder_id = 1002\n'

    with pytest.raises(ConfigError, match="must not nest"):
        load_config(write(tmp_path, text))


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[compass\n"))
    with pytest.raises(ConfigError, match="no such configuration file"):
        find_config(tmp_path / "nope.toml")


def test_config_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(path))
    assert find_config(None) == path


def test_sizes_and_durations() -> None:
    assert parse_size("8MiB", "k") == 8 * 1024 * 1024
    assert parse_size("5 MB", "k") == 5_000_000
    assert parse_size(1024, "k") == 1024
    assert parse_duration("1h", "k") == 3600
    assert parse_duration("90", "k") == 90
    assert parse_duration(2.5, "k") == 2.5
    with pytest.raises(ConfigError, match="k: expected a size"):
        parse_size("lots", "k")
    with pytest.raises(ConfigError, match="k: expected a duration"):
        parse_duration("soon", "k")


def test_embedded_data_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    text = MINIMAL + '[embedded]\ndata = "taken"\n'

    with pytest.raises(ConfigError, match=r"embedded\.data: .*taken is not a folder"):
        load_config(write(tmp_path, text))


def test_conflict_copies_are_excluded_only_in_two_way_mappings(tmp_path: Path) -> None:
    from syncagent.engine.filters import PathFilter

    ordinary = "Team (conflict review asset list).txt"
    copy = "notes (conflict 2026-12-04 asset 4711).txt"
    upload = load_config(write(tmp_path, MINIMAL)).mappings[0]
    both = load_config(
        write(
            tmp_path,
            MINIMAL.replace("folder_id = 1001", 'folder_id = 1001\ndirection = "both"'),
        )
    ).mappings[0]

    upload_rules = PathFilter(upload.include, upload.exclude)
    both_rules = PathFilter(both.include, both.exclude)
    assert upload_rules.includes_file(ordinary) and upload_rules.includes_file(copy)
    assert both_rules.includes_file(ordinary)
    assert not both_rules.includes_file(copy)


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+pysqlite"])
def test_the_agents_own_files_inside_a_mapping_are_never_synced(
    tmp_path: Path, scheme: str
) -> None:
    from syncagent.engine.filters import PathFilter

    text = MINIMAL.replace('local = "media"', 'local = "."') + (
        f'[ledger]\nurl = "{scheme}:///state/ledger.db"\n[embedded]\ndata = "emu"\n'
    )
    config = load_config(write(tmp_path, text))
    [mapping] = config.mappings
    rules = PathFilter(mapping.include, mapping.exclude)

    assert config.ledger_url == f"{scheme}:///{tmp_path}/state/ledger.db"

    for own in ["agent.toml", "state/ledger.db", "state/ledger.db-wal", "emu"]:
        assert rules.excludes(own) or not rules.includes_file(own), own
    assert rules.includes_file("photo.jpg")
    assert rules.includes_file("other/agent.toml")


def test_a_config_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(MINIMAL, encoding="utf-16")

    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("pull_interval = 0", "agent.pull_interval: must be at least 1 second"),
        ("settle_seconds = -1", "agent.settle_seconds: must be at least 0 seconds"),
    ],
)
def test_a_duration_below_its_minimum_says_the_minimum_in_words(
    tmp_path: Path, setting: str, problem: str
) -> None:
    text = MINIMAL.replace("[[mapping]]", f"[agent]\n{setting}\n[[mapping]]")

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))

    assert str(caught.value).endswith(problem)


@pytest.mark.parametrize("after", ["move", "delete"])
def test_after_ingest_on_a_sync_mapping_is_an_error(tmp_path: Path, after: str) -> None:
    text = MINIMAL.replace(
        'local = "media"\n', f'local = "media"\nafter_ingest = "{after}"\n'
    )

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))

    assert "mapping[1].after_ingest: only a drop box" in str(caught.value)
    assert 'mode = "dropbox"' in str(caught.value)


def test_after_ingest_keep_on_a_sync_mapping_is_what_it_does_anyway(
    tmp_path: Path,
) -> None:
    text = MINIMAL.replace(
        'local = "media"\n', 'local = "media"\nafter_ingest = "keep"\n'
    )

    config = load_config(write(tmp_path, text))

    assert config.mappings[0].after_ingest == "keep"
    assert config.warnings == ()


def test_settle_seconds_0_is_accepted_with_a_warning_naming_the_key(
    tmp_path: Path,
) -> None:
    text = MINIMAL.replace("[[mapping]]", "[agent]\nsettle_seconds = 0\n[[mapping]]")

    config = load_config(write(tmp_path, text))

    assert config.agent.settle_seconds == 0
    [warning] = config.warnings
    assert warning.startswith(f"{tmp_path / 'agent.toml'}: agent.settle_seconds: 0 ")
    assert "half-way" in warning


def test_remove_emptied_folders_is_off_unless_asked_for(tmp_path: Path) -> None:
    assert not load_config(write(tmp_path, MINIMAL)).mappings[0].remove_emptied_folders

    asked = MINIMAL.replace(
        'local = "media"\n',
        'local = "media"\nmode = "dropbox"\nafter_ingest = "move"\n'
        "remove_emptied_folders = true\n",
    )
    assert load_config(write(tmp_path, asked)).mappings[0].remove_emptied_folders

    wrong = asked.replace(
        "remove_emptied_folders = true", 'remove_emptied_folders = "y"'
    )
    with pytest.raises(ConfigError, match=r"mapping\[1\]\.remove_emptied_folders"):
        load_config(write(tmp_path, wrong))


def _mapping_with(tmp_path: Path, lines: str) -> Path:
    return write(
        tmp_path, MINIMAL.replace('local = "media"\n', f'local = "media"\n{lines}')
    )


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            'direction = "download"\nproxies = ["large_thumbnal"]\n',
            "mapping[1].proxies: unknown proxy type 'large_thumbnal'; Compass has ",
        ),
        (
            'direction = "download"\nproxies = ["Video_SD"]\n',
            "mapping[1].proxies: unknown proxy type 'Video_SD'",
        ),
        (
            'proxies = ["large_thumbnail"]\n',
            "mapping[1].proxies: only a mapping that downloads uses it; this one has "
            'direction = "upload"',
        ),
        ("restore_archived = true\n", "mapping[1].restore_archived: only a mapping"),
        ('on_remote_delete = "keep"\n', "mapping[1].on_remote_delete: only a mapping"),
        (
            'direction = "download"\non_local_delete = "remove"\n',
            "mapping[1].on_local_delete: only a mapping that uploads uses it",
        ),
        (
            'direction = "both"\nproxies = ["small_thumbnail"]\nproxies_only = true\n',
            "mapping[1].proxies_only: a mirror of proxies only cannot be two-way",
        ),
        (
            'direction = "download"\nproxies_only = true\n',
            "mapping[1].proxies_only: with no proxy types listed in proxies",
        ),
    ],
)
def test_keys_that_would_do_nothing_are_errors_naming_the_key(
    tmp_path: Path, lines: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_mapping_with(tmp_path, lines))

    assert problem in str(caught.value)


def test_every_proxy_type_of_the_reference_is_taken(tmp_path: Path) -> None:
    types = [
        "large_thumbnail",
        "medium_thumbnail",
        "small_thumbnail",
        "standard_thumbnail",
        "video_hd_1080_plus",
        "video_hd_1080",
        "video_hd_720",
        "video_sd_plus",
        "video_sd",
        "video_mobile",
        "standard_audio",
        "video_hd_720_tc",
        "video_sd_tc",
    ]
    listed = ", ".join(f'"{t}"' for t in types)

    config = load_config(
        _mapping_with(tmp_path, f'direction = "both"\nproxies = [{listed}]\n')
    )

    assert config.mappings[0].proxies == tuple(types)


def test_the_readme_configuration_block_is_a_valid_config(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]

    config = load_config(write(tmp_path, block))

    upload, mirror = config.mappings
    assert (upload.direction, upload.folder_id) == ("upload", 1001)
    assert (mirror.direction, mirror.local_root) == ("download", tmp_path / "mirror")
    assert config.transfer.part_size == 8 * 1024 * 1024

"""End-to-end: `syncagent sync` as a subprocess against the emulator over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.compass_writer import CompassWriter
from tests.e2e.support import (
    SYNCAGENT,
    RemoteView,
    assert_mirrored,
    md5_file,
    run_sync,
    write_config,
)
from tests.e2e.test_agent import ledger_of

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]

ODD_NAMES = [
    "with space.txt",
    'quote\'s "double".txt',
    "emoji 🎬 clip.mov",
    "caf\u00e9.txt",  # NFC
    "cafe\u0301.txt",  # NFD: the same accent, another name on Linux
    "a" * 251 + ".txt",  # 255 bytes, the longest name Linux allows
    "-rf.txt",
    "--help.jpg",
    "[draft] (v2) #1 %20 & more.txt",
    "日本語のファイル.pdf",
    "tab\tand newline\nname.txt",
]


def make_tree(root: Path, seed: int = 1) -> None:
    """A few hundred files: nested folders, odd names, empty and multi-part files."""
    rng = random.Random(seed)
    for index, name in enumerate(ODD_NAMES):
        folder = root / ("odd" if index % 2 else "odd/dossier été")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(rng.randbytes(rng.randrange(1, 4000)))
    for index in range(280):
        folder = root / f"shoot-{index % 7}" / f"day {index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        size = 0 if index % 40 == 0 else rng.randrange(1, 20_000)
        (folder / f"frame_{index:04d}.jpg").write_bytes(rng.randbytes(size))
    big = root / "masters"
    big.mkdir()
    (big / "reel 1.mov").write_bytes(rng.randbytes(11 * MIB + 123))
    (big / "reel 2.mov").write_bytes(rng.randbytes(5 * MIB))  # exactly one part
    (root / "empty.txt").write_bytes(b"")


@pytest.fixture
def view(emulator: EmulatorServer) -> RemoteView:
    return RemoteView(emulator.url)


def test_tree_of_odd_names_is_mirrored_and_a_second_sync_does_nothing(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, ledger_url: str
) -> None:
    root = tmp_path / "media"
    make_tree(root)
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": "media", "folder_id": 1001}],
        ledger=ledger_url,
    )

    first = run_sync(config)

    assert first.returncode == 0, first.stderr
    assert first.mapping["uploaded"] == 294
    assert first.mapping["failures"] == []
    assert_mirrored(root, view, 1001)

    before = view.stats()
    second = run_sync(config)
    after = view.stats()

    assert second.returncode == 0
    assert second.mapping["uploaded"] == 0
    assert second.mapping["bytes_read"] == 0
    assert second.mapping["bytes_sent"] == 0
    assert second.mapping["unchanged"] == 294
    assert after["part_uploads"] == before["part_uploads"]


def test_changes_become_revisions_and_touches_are_recorded_without_upload(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, ledger_url: str
) -> None:
    root = tmp_path / "media"
    make_tree(root, seed=2)
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": "media", "folder_id": 1001}],
        ledger=ledger_url,
    )
    assert run_sync(config).returncode == 0
    assets = assert_mirrored(root, view, 1001)

    changed = ["shoot-1/day 1/frame_0001.jpg", "masters/reel 1.mov", "odd/--help.jpg"]
    same_size = ["shoot-2/day 2/frame_0002.jpg"]
    touched = ["shoot-3/day 0/frame_0003.jpg", "empty.txt", "masters/reel 2.mov"]
    for rel_path in changed:
        with open(root / rel_path, "ab") as stream:
            stream.write(b"more bytes")
    for rel_path in same_size:
        data = bytearray((root / rel_path).read_bytes())
        data[0] ^= 0xFF
        (root / rel_path).write_bytes(bytes(data))
    later = time.time() + 5
    for rel_path in touched:
        os.utime(root / rel_path, (later, later))
    revisions_before = {
        p: len(view.get(f"/api/v1/asset_items/{assets[p]['id']}/revisions"))
        for p in changed + same_size + touched
    }

    result = run_sync(config)

    assert result.returncode == 0, result.stderr
    assert result.mapping["revised"] == 4
    assert result.mapping["touched"] == 3
    assert result.mapping["uploaded"] == 0
    after = assert_mirrored(root, view, 1001)
    assert len(after) == len(assets)
    for rel_path in changed + same_size:
        assert after[rel_path]["id"] == assets[rel_path]["id"]
        revisions = view.get(f"/api/v1/asset_items/{assets[rel_path]['id']}/revisions")
        assert len(revisions) == revisions_before[rel_path] + 1, rel_path
    for rel_path in touched:
        revisions = view.get(f"/api/v1/asset_items/{assets[rel_path]['id']}/revisions")
        assert len(revisions) == revisions_before[rel_path], rel_path
    assert run_sync(config).mapping["bytes_read"] == 0


def test_bad_input_is_reported_and_the_rest_is_synced(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "good.txt").write_text("fine")
    (root / "locked.txt").write_text("no access")
    (root / "locked.txt").chmod(0)
    (root / "broken-link.txt").symlink_to(root / "nowhere.txt")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the root")
    (root / "escape.txt").symlink_to(secret)
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )

    result = run_sync(config, unprivileged=True)

    assert result.returncode == 1
    failures = result.failures()
    assert set(failures) == {"locked.txt", "broken-link.txt", "escape.txt"}
    assert "Permission denied" in failures["locked.txt"]
    assert "broken symbolic link" in failures["broken-link.txt"]
    assert "outside the mapping" in failures["escape.txt"]
    remote = view.tree(1001)
    assert sorted(remote) == ["good.txt"]
    assert "outside the root" not in result.stderr


def test_quick_start_config_syncs_the_examples_into_the_embedded_emulator(
    tmp_path: Path,
) -> None:
    shutil.copy(REPO / "agent.toml", tmp_path / "agent.toml")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    expected = sum(
        1 for p in (tmp_path / "examples" / "dropbox").rglob("*") if p.is_file()
    )

    first = run_sync(tmp_path / "agent.toml")
    second = run_sync(tmp_path / "agent.toml")

    assert first.returncode == 0, first.stderr
    assert first.mapping["uploaded"] == expected
    assert second.returncode == 0
    assert second.mapping["uploaded"] == 0
    assert second.mapping["unchanged"] == expected
    assert second.mapping["bytes_read"] == 0


def test_tokens_and_passwords_never_reach_the_logs_or_the_ledger(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    password = "s3cret-Pa55-word"
    created = httpx.post(
        f"{emulator.url}/_emulator/users",
        json={"name": "ingest", "password": password, "permissions": {"1001": "all"}},
    )
    created.raise_for_status()
    root = tmp_path / "media"
    root.mkdir()
    (root / "clip.mov").write_bytes(b"z" * (6 * MIB))
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": "media", "folder_id": 1001}],
        username="ingest",
        password=password,
    )

    result = run_sync(config, verbose=True)

    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr
    ledger_bytes = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir())
    for text in (result.stderr, ledger_bytes.decode("latin-1")):
        assert password not in text
        assert "eyJ" not in text  # no JWT
        assert "X-Amz-Signature=" not in text and "Signature=" not in text


def test_a_lost_ledger_or_a_narrowed_include_adopts_rather_than_duplicates(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    make_tree(root, seed=3)
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    assert run_sync(config).returncode == 0
    before = {path: assets[0]["id"] for path, assets in view.tree(1001).items()}

    shutil.rmtree(tmp_path / "state")  # the ledger is lost
    preview = run_sync(config, dry_run=True)
    actions = {p["action"] for p in preview.mapping["planned"]}
    assert actions == {"adopt"}, preview.mapping["planned"][:5]
    assert len(preview.mapping["planned"]) == 294
    after_loss = run_sync(config)

    assert after_loss.returncode == 0, after_loss.failures()
    assert after_loss.mapping["uploaded"] == 0
    assert after_loss.mapping["adopted"] == 294
    assert after_loss.mapping["bytes_sent"] == 0
    assert after_loss.mapping["folders_created"] == 0  # found, not made
    remote = assert_mirrored(root, view, 1001)
    assert {path: asset["id"] for path, asset in remote.items()} == before

    narrow = write_config(
        tmp_path,
        emulator.url,
        [{"local": "media", "folder_id": 1001, "include": ["*.mov"]}],
    )
    assert run_sync(narrow).mapping["forgotten"] == 291
    widened = run_sync(
        write_config(tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}])
    )

    assert widened.mapping["uploaded"] == 0
    assert widened.mapping["adopted"] == 291
    assert_mirrored(root, view, 1001)

    root.rename(tmp_path / "moved")  # the user moves the folder: a new mapping
    moved = run_sync(
        write_config(tmp_path, emulator.url, [{"local": "moved", "folder_id": 1001}])
    )

    assert (moved.mapping["uploaded"], moved.mapping["adopted"]) == (0, 294)
    assert_mirrored(tmp_path / "moved", view, 1001)


def test_a_file_edited_after_its_asset_was_deleted_goes_up_as_a_new_asset(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "memo.txt").write_text("first")
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    assert run_sync(config).returncode == 0
    [old] = view.tree(1001)["memo.txt"]
    view.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": old["id"], "folder_ids": [1001]}],
    )
    (root / "memo.txt").write_text("edited after the asset was deleted")

    result = run_sync(config)

    assert result.returncode == 0, result.failures()
    assert (result.mapping["uploaded"], result.mapping["revised"]) == (1, 0)
    remote = assert_mirrored(root, view, 1001)
    assert remote["memo.txt"]["id"] != old["id"]
    assert run_sync(config).mapping["unchanged"] == 1


def test_a_folder_that_became_a_file_and_back_syncs_in_one_run_each(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "x.txt").write_text("in")
    (root / "thing").write_text("file")
    # A file that stays: with none of the synced files left, the pass would take
    # the root for an unmounted share (unless an inode happened to be reused).
    (root / "stays.txt").write_text("stays")
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    assert run_sync(config).returncode == 0

    shutil.rmtree(root / "dir")
    (root / "dir").write_text("now a file")
    (root / "thing").unlink()
    (root / "thing").mkdir()
    (root / "thing" / "y.txt").write_text("inner")
    changed = run_sync(config)
    again = run_sync(config)

    assert changed.returncode == 0, changed.failures()
    assert changed.mapping["uploaded"] == 2
    assert again.mapping["uploaded"] == again.mapping["adopted"] == 0
    assert again.mapping["unchanged"] == 3
    remote = view.tree(1001)
    assert len(remote["dir"]) == 1 and len(remote["thing/y.txt"]) == 1


def test_an_asset_of_a_mapping_whose_root_is_offline_is_not_adopted_by_another(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "same.txt").write_text("same bytes")
    both = [
        {"local": "a", "folder_id": 1001},
        {"local": "b", "folder_id": 1001},
    ]
    config = write_config(tmp_path, emulator.url, both)
    assert run_sync(config).returncode == 0

    (tmp_path / "a").rename(tmp_path / "a-unmounted")  # a share not mounted now
    (tmp_path / "b" / "same.txt").write_text("same bytes")
    result = run_sync(config)

    [a, b] = result.summary["mappings"]
    assert a["fatal"] is not None  # its root is missing: reported, not synced
    assert (b["adopted"], b["uploaded"]) == (0, 1)
    assert len(view.tree(1001)["same.txt"]) == 2  # one asset per mapping


def test_an_adopted_asset_in_two_folders_is_recorded_in_the_mappings_folder(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    from tests.e2e.compass_writer import CompassWriter

    writer = CompassWriter(emulator.url)
    item = {"name": "shared.txt", "folder_ids": [1001, 1002], "file_size": 14}
    created = writer.call("POST", "/api/v2/uploads/http", {"asset_items": [item]})
    asset_id = int(created["asset_items"][0]["id"])
    writer._send(asset_id, b"in two folders")
    root = tmp_path / "media"
    root.mkdir()
    (root / "shared.txt").write_bytes(b"in two folders")
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": "media", "folder_id": 1002, "on_local_delete": "remove"}],
    )
    assert run_sync(config).mapping["adopted"] == 1

    (root / "shared.txt").unlink()
    assert run_sync(config).mapping["removed"] == 1

    # Removed from the mapping's folder only; the other folder keeps it.
    assert view.get(f"/api/v1/asset_items/{asset_id}")["folder_ids"] == [1001]


def test_a_file_renamed_after_its_asset_was_deleted_goes_up_as_a_new_asset(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "r.txt").write_text("rename me")
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    assert run_sync(config).returncode == 0
    [old] = view.tree(1001)["r.txt"]
    view.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": old["id"], "folder_ids": [1001]}],
    )
    (root / "r.txt").rename(root / "r2.txt")

    result = run_sync(config)

    assert result.returncode == 0, result.failures()
    assert (result.mapping["uploaded"], result.mapping["renamed"]) == (1, 0)
    assert_mirrored(root, view, 1001)


def test_a_decomposed_local_name_adopts_the_composed_compass_name(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    from tests.e2e.compass_writer import CompassWriter

    [asset_id] = CompassWriter(emulator.url).upload_many(
        1001, [("caf\u00e9.txt", b"menu")]
    )
    root = tmp_path / "media"
    root.mkdir()
    (root / "cafe\u0301.txt").write_bytes(b"menu")  # as a Mac writes the name
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )

    result = run_sync(config)

    assert (result.mapping["adopted"], result.mapping["uploaded"]) == (1, 0)
    assert [a["id"] for a in view.folder_assets(1001)] == [asset_id]


def _mount_point(root: Path, shape: str) -> None:
    """Make `root` look like a mount point with no share mounted on it."""
    root.mkdir()
    if shape == "new disk":
        (root / "lost+found").mkdir()
    elif shape == "hidden file and empty folders":
        (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (root / "sub" / "deeper").mkdir(parents=True)
    elif shape == "a file saved there meanwhile":
        (root / "untitled.txt").write_text("saved while the share was away")


@pytest.mark.parametrize(
    "shape",
    [
        "empty",
        "new disk",
        "hidden file and empty folders",
        "a file saved there meanwhile",
    ],
)
@pytest.mark.parametrize(
    "mapping",
    [
        {"direction": "both", "on_local_delete": "remove"},
        {"direction": "upload", "on_local_delete": "remove"},
        {"direction": "both"},
        {"direction": "upload"},
        {"direction": "download"},
    ],
    ids=[
        "two-way removing",
        "upload removing",
        "two-way keeping",
        "upload keeping",
        "mirror",
    ],
)
def test_an_unmounted_root_changes_nothing_in_compass_nor_in_the_ledger(
    tmp_path: Path,
    emulator: EmulatorServer,
    view: RemoteView,
    shape: str,
    mapping: dict[str, str],
) -> None:
    root = tmp_path / "share"
    (root / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (root / name).write_text(name)
    uploaded = write_config(
        tmp_path, emulator.url, [{"local": "share", "folder_id": 1001}]
    )
    assert run_sync(uploaded).returncode == 0
    config = write_config(
        tmp_path, emulator.url, [{"local": "share", "folder_id": 1001, **mapping}]
    )
    assert run_sync(config).returncode == 0

    root.rename(tmp_path / "share-away")  # the share is not mounted
    missing = run_sync(config)
    _mount_point(root, shape)
    unmounted = run_sync(config)

    for result in (missing, unmounted):
        assert result.returncode == 1
        assert all(m["fatal"] for m in result.summary["mappings"]), result.summary
    # What monitoring reads says it too: this mapping is not syncing.
    status = subprocess.run(
        [*SYNCAGENT, "status", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 1, status.stdout
    [watched] = json.loads(status.stdout)["mappings"]
    assert watched["stopped"].startswith(("upload: ", "pull: ")), watched
    synced_names = {"a.txt", "b.txt", "c.txt"}
    assert not synced_names & {p.name for p in root.rglob("*")}  # none pulled there
    assert sorted(view.tree(1001)) == ["a.txt", "b.txt", "sub/c.txt"]

    shutil.rmtree(root)
    (tmp_path / "share-away").rename(root)  # mounted again
    back = run_sync(config)

    assert back.returncode == 0, back.failures()
    upload = back.summary["mappings"][-1]
    assert upload["unchanged"] == 3, back.summary  # nothing was forgotten
    assert sorted(view.tree(1001)) == ["a.txt", "b.txt", "sub/c.txt"]


@pytest.mark.parametrize("on_local_delete", ["remove", "keep"])
def test_a_move_cut_short_after_its_upload_is_finished_next_run(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, on_local_delete: str
) -> None:
    root = tmp_path / "media"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "b" / "keep.dat").write_bytes(b"keep")  # folders are made for files
    (root / "a" / "clip.dat").write_bytes(b"frames" * 1000)
    mapping = {"local": "media", "folder_id": 1001, "on_local_delete": on_local_delete}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert run_sync(config).returncode == 0
    (root / "a" / "clip.dat").rename(root / "b" / "clip.dat")
    # The state a kill leaves between the new asset verified and the old one
    # removed: both entries in the ledger, both assets in Compass.
    moved = root / "b" / "clip.dat"
    ledger = ledger_of(config)
    try:
        [mapping_id] = ledger.mappings()
        old = ledger.entries(mapping_id)["a/clip.dat"]
        b_folder = view.subfolders(1001)["b"]
        new_asset = CompassWriter(emulator.url).upload(
            b_folder, "clip.dat", moved.read_bytes()
        )
        st = moved.stat()
        ledger.put_entry(
            mapping_id,
            replace(
                old,
                rel_path="b/clip.dat",
                folder_id=b_folder,
                asset_id=new_asset,
                inode=st.st_ino,
                mtime_ns=st.st_mtime_ns,
            ),
        )
    finally:
        ledger.close()

    result = run_sync(config)

    assert result.returncode == 0, result.failures()
    if on_local_delete == "remove":
        assert result.mapping["moved"] == 1
        assert_mirrored(root, view, 1001)  # clip.dat in b/ only, once
    else:
        assert (result.mapping["moved"], result.mapping["forgotten"]) == (0, 1)
        assert [a["id"] for a in view.tree(1001)["a/clip.dat"]] == [old.asset_id]
    assert run_sync(config).mapping["unchanged"] == 2


@pytest.mark.parametrize(
    "settings",
    [
        {"on_local_delete": "remove"},
        {"on_local_delete": "keep"},
        {"on_local_delete": "remove", "direction": "both"},
        {"on_local_delete": "keep", "direction": "both"},
    ],
    ids=["upload-remove", "upload-keep", "both-remove", "both-keep"],
)
@pytest.mark.parametrize("new_path", ["b/clip.mp4", "a/clip.m4v"])
def test_a_move_keeps_the_old_asset_unless_local_deletes_remove_assets(
    tmp_path: Path,
    emulator: EmulatorServer,
    view: RemoteView,
    settings: dict[str, str],
    new_path: str,
) -> None:
    root = tmp_path / "media"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        (root / folder / "other.txt").write_text(folder)
    (root / "a" / "clip.mp4").write_bytes(b"frames" * 100)
    mapping = {"local": "media", "folder_id": 1001, **settings}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert run_sync(config).returncode == 0
    [old] = view.tree(1001)["a/clip.mp4"]
    writer = CompassWriter(emulator.url)
    writer.revise(old["id"], "clip.mp4", b"frames" * 100)  # a history to lose

    # Compass can move an asset to no other folder, nor change its extension.
    (root / "a" / "clip.mp4").rename(root / new_path)
    result = run_sync(config)

    assert result.returncode == 0, result.failures()
    upload = result.summary["mappings"][-1]  # a two-way mapping pulls first
    assert upload["uploaded"] == 1
    tree = view.tree(1001)
    assert [a["checksum"] for a in tree[new_path]] == [md5_file(root / new_path)]
    if settings["on_local_delete"] == "remove":
        assert (upload["moved"], upload["forgotten"]) == (1, 0)
        assert "a/clip.mp4" not in tree
    else:
        assert (upload["moved"], upload["forgotten"]) == (0, 1)
        assert [a["id"] for a in tree["a/clip.mp4"]] == [old["id"]]
        assert f"its asset {old['id']} stays in Compass" in result.stderr
    again = run_sync(config).summary["mappings"][-1]
    assert (again["unchanged"], again["uploaded"]) == (3, 0)
    # Kept in Compass, yet not brought back down where the file left.
    assert not (root / "a" / "clip.mp4").exists()


def test_a_folder_that_cannot_be_listed_removes_nothing_in_compass(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    (root / "locked").mkdir(parents=True)
    (root / "ok.txt").write_text("ok")
    (root / "locked" / "in.txt").write_text("inner")
    mapping = {"local": "media", "folder_id": 1001, "on_local_delete": "remove"}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert run_sync(config).returncode == 0

    (root / "locked").chmod(0)  # a permission mistake, a flaky share
    try:
        folder = run_sync(config, unprivileged=True)
        root.chmod(0)
        whole = run_sync(config, unprivileged=True)
    finally:
        root.chmod(0o755)
        (root / "locked").chmod(0o755)

    assert set(folder.failures()) == {"locked"}
    assert set(whole.failures()) == {"."}
    for result in (folder, whole):
        assert result.returncode == 1
        assert (result.mapping["removed"], result.mapping["forgotten"]) == (0, 0)
    assert sorted(view.tree(1001)) == ["locked/in.txt", "ok.txt"]

    again = run_sync(config)

    assert again.returncode == 0, again.failures()
    assert (again.mapping["unchanged"], again.mapping["uploaded"]) == (2, 0)


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_a_folder_emptied_on_purpose_is_started_afresh_by_db_forget(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, direction: str
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    for name in ("a.txt", "b.txt"):
        (root / name).write_text(name)
    upload = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    assert run_sync(upload).returncode == 0
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": "media", "folder_id": 1001, "direction": direction}],
    )
    for name in ("a.txt", "b.txt"):
        (root / name).unlink()

    refused = run_sync(config)

    assert refused.returncode == 1
    fatal = refused.mapping["fatal"]
    assert "not one of the files synced with this folder is left in it" in fatal
    assert f"`syncagent db forget {root}` starts this mapping afresh" in fatal
    assert not any(root.iterdir())  # a mirror pulled nothing into it either

    forget = subprocess.run(
        [*SYNCAGENT, "db", "forget", "--config", str(config), str(root)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert forget.returncode == 0, forget.stderr
    assert forget.stdout.startswith(f"forgot 2 files synced with {root};")
    afresh = run_sync(config)
    assert afresh.returncode == 0, afresh.summary
    assert sorted(view.tree(1001)) == ["a.txt", "b.txt"]  # kept in Compass
    if direction == "download":
        assert afresh.mapping["downloaded"] == 2
        assert sorted(p.name for p in root.iterdir()) == ["a.txt", "b.txt"]


def test_a_new_exclude_forgets_files_but_removes_no_asset(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    (root / "raw").mkdir(parents=True)
    for name in ("a.mov", "b.jpg", "raw/c.jpg"):
        (root / name).write_text(name)
    mapping = {"local": "media", "folder_id": 1001, "on_local_delete": "remove"}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert run_sync(config).returncode == 0
    narrowed = {**mapping, "exclude": ["*.mov", "raw"]}
    config = write_config(tmp_path, emulator.url, [narrowed])

    result = run_sync(config)

    assert result.returncode == 0, result.failures()
    assert (result.mapping["removed"], result.mapping["forgotten"]) == (0, 2)
    assert sorted(view.tree(1001)) == ["a.mov", "b.jpg", "raw/c.jpg"]


def test_a_folder_unreadable_from_the_first_sync_stays_listed_as_failed(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    root = tmp_path / "media"
    (root / "locked").mkdir(parents=True)
    (root / "ok.txt").write_text("ok")
    (root / "locked").chmod(0)
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    try:
        result = run_sync(config, unprivileged=True)
    finally:
        (root / "locked").chmod(0o755)

    assert set(result.failures()) == {"locked"}
    ledger = ledger_of(config)
    try:
        [mapping_id] = ledger.mappings()
        assert [f.rel_path for f in ledger.failures(mapping_id)] == ["locked"]
    finally:
        ledger.close()


def test_a_new_file_on_a_reused_inode_with_the_same_size_and_time_is_no_rename(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    old = root / "a.txt"
    old.write_bytes(b"AAAA\n")
    os.utime(old, (1767225600, 1767225600))  # whole seconds, as cp -p or tar set
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    assert run_sync(config).returncode == 0
    old.unlink()
    new = root / "b.txt"
    new.write_bytes(b"BBBB\n")
    os.utime(new, (1767225600, 1767225600))
    # The disk gave the new file the deleted one's inode: what the ledger sees.
    ledger = ledger_of(config)
    try:
        [mapping_id] = ledger.mappings()
        entry = ledger.entries(mapping_id)["a.txt"]
        ledger.put_entry(mapping_id, replace(entry, inode=new.stat().st_ino))
    finally:
        ledger.close()

    result = run_sync(config)

    assert result.returncode == 0, result.failures()
    assert (result.mapping["renamed"], result.mapping["uploaded"]) == (0, 1)
    remote = view.tree(1001)
    assert [a["checksum"] for a in remote["b.txt"]] == [md5_file(new)]


@pytest.mark.parametrize("on_local_delete", ["keep", "remove"])
def test_each_file_deleted_here_says_what_became_of_its_asset(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, on_local_delete: str
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    for name in ("a.txt", "b.txt", "stays.txt"):  # not an emptied root
        (root / name).write_bytes(name.encode())
    mapping = {"local": "media", "folder_id": 1001, "on_local_delete": on_local_delete}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert run_sync(config).returncode == 0
    ids = {name: assets[0]["id"] for name, assets in view.tree(1001).items()}
    writer = CompassWriter(emulator.url)
    writer.remove(1001, [ids["b.txt"]])  # someone removed it in Compass first
    writer.close()
    (root / "a.txt").unlink()
    (root / "b.txt").unlink()

    done = run_sync(config)

    assert done.returncode == 0, done.stderr
    if on_local_delete == "keep":
        assert (done.mapping["forgotten"], done.mapping["removed"]) == (2, 0)
        assert f"a.txt: the file was deleted here; its asset {ids['a.txt']} stays" in (
            done.stderr
        )
    else:
        assert (done.mapping["forgotten"], done.mapping["removed"]) == (1, 1)
        assert f"its asset {ids['a.txt']} removed from Compass folder" in done.stderr
        assert f"its asset {ids['b.txt']} was already gone from Compass" in done.stderr


def test_an_asset_renamed_in_compass_to_a_left_out_name_is_not_sent_again(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "draft.txt").write_text("draft")
    (root / "final.txt").write_text("final")
    mapping = {"local": "media", "folder_id": 1001, "direction": "both"}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert run_sync(config).returncode == 0
    [draft] = view.tree(1001)["draft.txt"]

    CompassWriter(emulator.url).rename({draft["id"]: ".draft.txt"})  # hidden there
    result = run_sync(config)

    assert result.returncode == 0, result.summary
    pull, upload = result.summary["mappings"]
    assert [n["rel_path"] for n in pull["notices"]] == ["draft.txt"]
    assert upload["uploaded"] == 0
    assert sorted(view.tree(1001)) == [".draft.txt", "final.txt"]  # no second asset
    assert (root / "draft.txt").read_text() == "draft"


def test_every_synced_file_renamed_at_once_is_no_unmounted_share(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_text(name)
    mapping = {"local": "media", "folder_id": 1001, "on_local_delete": "remove"}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert run_sync(config).returncode == 0
    ids = {path: assets[0]["id"] for path, assets in view.tree(1001).items()}

    for name in ("a.txt", "b.txt", "c.txt"):  # a bulk renamer's work
        (root / name).rename(root / f"2026-{name}")
    result = run_sync(config)

    assert result.returncode == 0, result.summary
    assert (result.mapping["renamed"], result.mapping["removed"]) == (3, 0)
    renamed = view.tree(1001)
    assert {p: a[0]["id"] for p, a in renamed.items()} == {
        f"2026-{path}": asset_id for path, asset_id in ids.items()
    }


def test_a_revision_keeps_the_name_the_asset_was_given_in_compass(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "draft.txt").write_bytes(b"first\n")
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    assert run_sync(config).returncode == 0
    [asset] = view.tree(1001)["draft.txt"]
    CompassWriter(emulator.url).rename({asset["id"]: "Final title.txt"})
    (root / "draft.txt").write_bytes(b"second, longer\n")

    result = run_sync(config)

    assert (result.returncode, result.mapping["revised"]) == (0, 1), result.stderr
    [revised] = view.tree(1001)["Final title.txt"]
    assert revised["id"] == asset["id"]
    assert revised["checksum"] == hashlib.md5(b"second, longer\n").hexdigest()
    again = run_sync(config)
    assert (again.mapping["revised"], again.mapping["renamed"]) == (0, 0)


def test_with_several_mappings_each_file_line_names_its_mapping(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    for folder, name in (("stills", "same.txt"), ("clips", "same.txt")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(folder.encode())
    config = write_config(
        tmp_path,
        emulator.url,
        [
            {"local": "stills", "folder_id": 1001},
            {"local": "clips", "folder_id": 1002},
        ],
    )

    result = run_sync(config)

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "uploaded, " in line]
    assert sorted(line.split(" ", 2)[2].split(",")[0] for line in lines) == [
        "[clips] same.txt: uploaded",
        "[stills] same.txt: uploaded",
    ]

    alone = write_config(
        tmp_path, emulator.url, [{"local": "stills", "folder_id": 1001}]
    )
    (tmp_path / "stills/new.txt").write_bytes(b"new")
    single = run_sync(alone)
    assert "] new.txt: uploaded" not in single.stderr
    assert " new.txt: uploaded" in single.stderr

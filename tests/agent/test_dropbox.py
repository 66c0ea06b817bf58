"""Drop box hooks: sidecars checked against the vocabularies, done/ and failed/."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from syncagent.compass import TransientError
from syncagent.config import MappingConfig
from syncagent.engine.dropbox import (
    DropBoxHooks,
    failed_drops,
    ingest_mapping,
    is_sidecar,
    pass_defer,
)
from syncagent.engine.filters import PathFilter
from syncagent.engine.problems import FileProblem
from syncagent.engine.scanner import LocalFile, stat_file
from syncagent.engine.sidecar import check_sidecar, vocabulary_values
from syncagent.ledger import EntryRecord, Ledger

VOCABULARIES = vocabulary_values(
    {
        "mpaa_band": [{"name": "Yellow"}, {"name": "Green"}, {"name": "Red"}],
        "territory": [{"name": "Canada"}, {"name": "Qatar"}],
    }
)


class Vocabularies:
    """Stands in for the client: answers the vocabularies call, or fails it."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    def vocabularies(self) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise TransientError("Compass answered 503 three times")
        return {"mpaa_band": [{"name": "Green"}], "territory": [{"name": "Canada"}]}


@pytest.fixture
def ledger(tmp_path: Path):
    opened = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def make_hooks(root: Path, ledger: Ledger, after: str = "move", client=None):
    mapping = MappingConfig(
        local_root=root, folder_id=1001, mode="dropbox", after_ingest=after
    )
    mapping_id = ledger.ensure_mapping(str(root), 1001)
    hooks = DropBoxHooks(mapping, mapping_id, client or Vocabularies(), ledger)
    return hooks, mapping_id


def record(ledger: Ledger, mapping_id: int, root: Path, rel_path: str) -> None:
    st = (root / rel_path).stat()
    ledger.put_entry(
        mapping_id,
        EntryRecord(
            rel_path,
            "file",
            1001,
            7,
            rel_path,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            "0" * 32,
        ),
    )


# -- sidecars ---------------------------------------------------------------------


def test_a_valid_sidecar_becomes_the_asset_description() -> None:
    description = check_sidecar(
        {
            "custom_metadata_fields": [
                {"category": "MPG", "label": "MPAA Band", "value": "Green"},
                {
                    "category": "Content Details",
                    "label": "Territory",
                    "value": ["Canada", "Qatar"],
                },
                {
                    "category": "Content Details",
                    "label": "Description",
                    "value": "Dusk",
                },
            ],
            "titles": [{"gpms_id": 987, "alpha_id": 654}],
        },
        VOCABULARIES,
    )
    assert description.custom_metadata_fields[0] == {
        "category": "MPG",
        "label": "MPAA Band",
        "value": "Green",
    }
    assert description.custom_metadata_fields[1]["value"] == ["Canada", "Qatar"]
    assert description.titles == [{"gpms_id": 987, "alpha_id": 654}]


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        (
            {
                "custom_metadata_fields": [
                    {"category": "MPG", "label": "MPAA Band", "value": "Purple"}
                ]
            },
            "custom_metadata_fields[0] (MPG / MPAA Band): 'Purple' is not in the "
            "vocabulary mpaa_band (allowed: Green, Red, Yellow)",
        ),
        (
            {
                "custom_metadata_fields": [
                    {"category": "C", "label": "Territory", "value": ["Canada", "Mars"]}
                ]
            },
            "(C / Territory): 'Mars' is not in the vocabulary territory "
            "(allowed: Canada, Qatar)",
        ),
        ([1, 2], "expected a JSON object with custom_metadata_fields, titles"),
        ({"metadata": {}}, "unknown key 'metadata'; a sidecar holds"),
        ({"titles": {"gpms_id": 1}}, "titles must be a list of objects"),
        ({"titles": [{"gpms_id": "987"}]}, "titles[0].gpms_id must be an integer"),
        ({"titles": [{"alpha_id": 5}]}, "titles[0]: gpms_id is missing"),
        (
            {"custom_metadata_fields": [{"category": "MPG", "label": "Note"}]},
            "custom_metadata_fields[0] (MPG / Note): value is missing",
        ),
        (
            {"custom_metadata_fields": [{"category": "", "label": "x", "value": "y"}]},
            "custom_metadata_fields[0]: category must be a non-empty string",
        ),
        (
            {"custom_metadata_fields": [{"category": "A", "label": "B", "value": 3}]},
            "value must be a string or a list of strings",
        ),
    ],
)
def test_a_bad_sidecar_says_what_is_wrong(sidecar: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_sidecar(sidecar, VOCABULARIES)
    assert message in str(caught.value)


def test_describe_reads_the_sidecar_beside_the_file(
    tmp_path: Path, ledger: Ledger
) -> None:
    client = Vocabularies()
    hooks, _ = make_hooks(tmp_path, ledger, client=client)
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "a.mov.json").write_text(
        json.dumps(
            {
                "custom_metadata_fields": [
                    {"category": "MPG", "label": "MPAA Band", "value": "Green"}
                ]
            }
        )
    )
    (tmp_path / "b.mov").write_bytes(b"b")

    assert hooks.describe("a.mov").custom_metadata_fields[0]["value"] == "Green"
    assert hooks.describe("b.mov").custom_metadata_fields == []
    hooks.describe("a.mov")
    assert client.calls == 1  # asked once per pass


def test_unparseable_sidecar_is_a_permanent_problem(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "a.mov.json").write_text("{not json")
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / "a.mov.json", (an_hour_ago, an_hour_ago))
    with pytest.raises(FileProblem) as caught:
        hooks.describe("a.mov")
    assert caught.value.permanent
    assert caught.value.reason.startswith("sidecar a.mov.json: not valid JSON")


def test_a_sidecar_half_written_moments_ago_is_tried_again(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "a.mov.json").write_text('{"titles":[{"gpms_id"')
    with pytest.raises(FileProblem) as caught:
        hooks.describe("a.mov")
    assert not caught.value.permanent
    assert caught.value.reason.endswith("it changed moments ago, so it is tried again")
    hooks.failed("a.mov", caught.value.reason, permanent=False)
    assert not (tmp_path / "failed").exists()


def test_a_file_waits_while_its_sidecar_settles(tmp_path: Path, ledger: Ledger) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "a.mov.json").write_text('{"titles": []}')
    (tmp_path / "b.mov").write_bytes(b"b")
    settling = {"a.mov.json"}
    asked: list[str] = []

    def watcher_defer(local: LocalFile) -> bool:
        asked.append(local.rel_path)
        return local.rel_path in settling

    defer = pass_defer(hooks, watcher_defer)
    assert defer is not None
    a, b, sidecar = (stat_file(tmp_path, n) for n in ("a.mov", "b.mov", "a.mov.json"))
    assert a is not None and b is not None and sidecar is not None

    assert defer(a) is True
    assert asked == ["a.mov.json"]  # the file itself is left in the settle queue
    assert defer(b) is False
    assert defer(sidecar) is True  # a sidecar never goes on its own
    settling.clear()
    assert defer(a) is False


def test_unreachable_vocabularies_are_worth_a_retry(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger, client=Vocabularies(fail=True))
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "a.mov.json").write_text('{"titles": []}')
    with pytest.raises(FileProblem) as caught:
        hooks.describe("a.mov")
    assert not caught.value.permanent
    assert "cannot check the sidecar against the vocabularies" in caught.value.reason


def test_a_json_file_is_a_sidecar_only_beside_its_file(tmp_path: Path) -> None:
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "a.mov.json").write_text("{}")
    (tmp_path / "report.json").write_text("{}")
    assert is_sidecar(tmp_path, "a.mov.json")
    assert not is_sidecar(tmp_path, "report.json")
    assert not is_sidecar(tmp_path, "a.mov")


def test_a_drop_box_scan_leaves_out_done_and_failed(tmp_path: Path) -> None:
    mapping = MappingConfig(local_root=tmp_path, folder_id=1, mode="dropbox")
    scanned = ingest_mapping(mapping)
    rules = PathFilter(scanned.include, scanned.exclude)
    assert rules.excludes("done") and rules.excludes("failed")
    assert not rules.excludes("photos/done")
    plain = MappingConfig(local_root=tmp_path, folder_id=1)
    assert ingest_mapping(plain) is plain


# -- after ingest -----------------------------------------------------------------


def test_a_verified_file_moves_to_done_with_its_sidecar(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, mapping_id = make_hooks(tmp_path, ledger)
    (tmp_path / "shoot").mkdir()
    (tmp_path / "shoot/a.jpg").write_bytes(b"a")
    (tmp_path / "shoot/a.jpg.json").write_text("{}")
    record(ledger, mapping_id, tmp_path, "shoot/a.jpg")

    hooks.synced("shoot/a.jpg", 7)

    assert (tmp_path / "done/shoot/a.jpg").read_bytes() == b"a"
    assert (tmp_path / "done/shoot/a.jpg.json").exists()
    assert not (tmp_path / "shoot/a.jpg").exists()
    assert ledger.entries(mapping_id) == {}


def test_a_name_taken_in_done_gets_a_number(tmp_path: Path, ledger: Ledger) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "done").mkdir()
    (tmp_path / "done/a.jpg").write_bytes(b"first")
    (tmp_path / "a.jpg").write_bytes(b"second")

    hooks.synced("a.jpg", 8)

    assert (tmp_path / "done/a.jpg").read_bytes() == b"first"
    assert (tmp_path / "done/a (2).jpg").read_bytes() == b"second"


def test_delete_mode_deletes_file_and_sidecar(tmp_path: Path, ledger: Ledger) -> None:
    root = tmp_path / "box"
    root.mkdir()
    hooks, mapping_id = make_hooks(root, ledger, after="delete")
    (root / "a.jpg").write_bytes(b"a")
    (root / "a.jpg.json").write_text("{}")
    (root / "other.jpg").write_bytes(b"o")
    record(ledger, mapping_id, root, "a.jpg")

    hooks.synced("a.jpg", 7)

    assert sorted(p.name for p in root.iterdir()) == ["other.jpg"]
    assert ledger.entries(mapping_id) == {}


@pytest.mark.parametrize("after", ["move", "delete"])
def test_a_file_put_in_place_of_the_verified_one_is_left_as_a_new_drop(
    tmp_path: Path, ledger: Ledger, after: str
) -> None:
    root = tmp_path / "box"
    root.mkdir()
    hooks, mapping_id = make_hooks(root, ledger, after=after)
    (root / "rep.bin").write_bytes(b"the version that went up")
    record(ledger, mapping_id, root, "rep.bin")
    (root / ".rep.tmp").write_bytes(b"a newer version")  # a copy tool's save
    os.replace(root / ".rep.tmp", root / "rep.bin")

    hooks.synced("rep.bin", 7)

    assert (root / "rep.bin").read_bytes() == b"a newer version"
    assert not (root / "done").exists()
    assert ledger.entries(mapping_id) == {}  # the next pass takes it as a new drop


def test_keep_mode_leaves_the_file_synced(tmp_path: Path, ledger: Ledger) -> None:
    hooks, mapping_id = make_hooks(tmp_path, ledger, after="keep")
    (tmp_path / "a.jpg").write_bytes(b"a")
    record(ledger, mapping_id, tmp_path, "a.jpg")
    hooks.synced("a.jpg", 7)
    hooks.failed("a.jpg", "refused", permanent=True)
    assert (tmp_path / "a.jpg").exists()
    assert list(ledger.entries(mapping_id)) == ["a.jpg"]


def test_a_permanent_failure_moves_to_failed_with_the_reason(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/b.mov").write_bytes(b"b")
    (tmp_path / "sub/b.mov.json").write_text("{bad")

    hooks.failed("sub/b.mov", "sidecar sub/b.mov.json: not valid JSON", permanent=True)

    assert (tmp_path / "failed/sub/b.mov").exists()
    assert (tmp_path / "failed/sub/b.mov.json").exists()
    note = (tmp_path / "failed/sub/b.mov.error.txt").read_text()
    assert note.startswith("sub/b.mov: sidecar sub/b.mov.json: not valid JSON\n")
    [drop] = failed_drops(tmp_path)
    assert drop.rel_path == "failed/sub/b.mov"
    assert drop.reason == "sub/b.mov: sidecar sub/b.mov.json: not valid JSON"


def test_a_passing_failure_or_a_link_stays_put(tmp_path: Path, ledger: Ledger) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "link.mov").symlink_to("/etc/hostname")
    hooks.failed("a.mov", "Compass answered 503", permanent=False)
    hooks.failed("link.mov", "symbolic link to outside the mapping", permanent=True)
    hooks.failed(".", "cannot list the folder", permanent=True)
    assert (tmp_path / "a.mov").exists() and (tmp_path / "link.mov").is_symlink()
    assert not (tmp_path / "failed").exists()


def test_recover_finishes_what_a_crash_left(tmp_path: Path, ledger: Ledger) -> None:
    hooks, mapping_id = make_hooks(tmp_path, ledger)
    (tmp_path / "verified.mov").write_bytes(b"v")
    record(ledger, mapping_id, tmp_path, "verified.mov")
    (tmp_path / "moved.mov").write_bytes(b"m")
    record(ledger, mapping_id, tmp_path, "moved.mov")
    (tmp_path / "done").mkdir()
    (tmp_path / "moved.mov").rename(tmp_path / "done/moved.mov")
    (tmp_path / "deleted.mov").write_bytes(b"d")
    record(ledger, mapping_id, tmp_path, "deleted.mov")
    (tmp_path / "deleted.mov").unlink()

    hooks.recover()

    assert (tmp_path / "done/verified.mov").exists()
    assert (tmp_path / "done/moved.mov").exists()
    assert ledger.entries(mapping_id) == {}


def test_recover_leaves_a_file_renamed_in_the_drop_box_to_the_pass(
    tmp_path: Path, ledger: Ledger
) -> None:
    """Renamed while it went up: the pass renames the asset rather than upload it
    a second time."""
    hooks, mapping_id = make_hooks(tmp_path, ledger)
    (tmp_path / "mid.mov").write_bytes(b"m")
    record(ledger, mapping_id, tmp_path, "mid.mov")
    (tmp_path / "sub").mkdir()
    (tmp_path / "mid.mov").rename(tmp_path / "sub/mid-renamed.mov")

    hooks.recover()

    assert list(ledger.entries(mapping_id)) == ["mid.mov"]
    assert (tmp_path / "sub/mid-renamed.mov").exists()


# -- links and names taken in done/ and failed/ ----------------------------------


def test_a_linked_done_folder_is_never_moved_through(
    tmp_path: Path, ledger: Ledger
) -> None:
    root, outside = tmp_path / "box", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    hooks, mapping_id = make_hooks(root, ledger)
    (root / "done").symlink_to(outside)
    (root / "a.mov").write_bytes(b"a")
    record(ledger, mapping_id, root, "a.mov")

    hooks.synced("a.mov", 7)

    assert list(outside.iterdir()) == []
    assert (root / "a.mov").read_bytes() == b"a"
    assert list(ledger.entries(mapping_id)) == ["a.mov"]
    [failure] = ledger.failures(mapping_id)
    assert failure.rel_path == "a.mov"
    assert failure.reason == (
        "uploaded, but not moved to done/: done is a symbolic link or a file, "
        "not a folder; nothing was written there"
    )


def test_a_linked_folder_inside_done_is_never_moved_through(
    tmp_path: Path, ledger: Ledger
) -> None:
    root, outside = tmp_path / "box", tmp_path / "outside"
    (root / "done").mkdir(parents=True)
    (root / "promo").mkdir()
    outside.mkdir()
    hooks, mapping_id = make_hooks(root, ledger)
    (root / "done/promo").symlink_to(outside)
    (root / "promo/b.mov").write_bytes(b"b")
    (root / "promo/b.mov.json").write_text("{}")
    record(ledger, mapping_id, root, "promo/b.mov")

    hooks.synced("promo/b.mov", 7)
    hooks.recover()  # the next pass tries again, and is refused again

    assert list(outside.iterdir()) == []
    assert (root / "promo/b.mov").exists() and (root / "promo/b.mov.json").exists()
    [failure] = ledger.failures(mapping_id)
    assert "done/promo is a symbolic link or a file" in failure.reason
    assert failure.count == 2


def test_the_error_note_is_never_written_through_a_link(
    tmp_path: Path, ledger: Ledger
) -> None:
    root, outside = tmp_path / "box", tmp_path / "outside"
    (root / "failed").mkdir(parents=True)
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    (root / "failed/ev.mov.error.txt").symlink_to("../../outside/victim.txt")
    hooks, _ = make_hooks(root, ledger)
    (root / "ev.mov").write_bytes(b"ev")

    hooks.failed("ev.mov", "sidecar ev.mov.json: unknown key 'x'", permanent=True)

    assert (outside / "victim.txt").read_text() == "precious"
    assert (root / "failed/ev.mov.error.txt").is_symlink()
    assert (root / "failed/ev (2).mov").read_bytes() == b"ev"
    note = (root / "failed/ev (2).mov.error.txt").read_text()
    assert note.startswith("ev.mov: sidecar ev.mov.json: unknown key 'x'\n")
    # status never reads a note through a link either
    reasons = {d.rel_path: d.reason for d in failed_drops(root)}
    assert (
        reasons["failed/ev (2).mov"] == "ev.mov: sidecar ev.mov.json: unknown key 'x'"
    )


def test_a_sidecar_never_replaces_a_file_in_done(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, mapping_id = make_hooks(tmp_path, ledger)
    (tmp_path / "done").mkdir()
    (tmp_path / "done/q.mov.json").write_text("lonely-json-content")
    (tmp_path / "q.mov").write_bytes(b"q")
    (tmp_path / "q.mov.json").write_text('{"titles": [{"gpms_id": 9}]}')
    record(ledger, mapping_id, tmp_path, "q.mov")

    hooks.synced("q.mov", 7)

    done = tmp_path / "done"
    assert sorted(p.name for p in done.iterdir()) == [
        "q (2).mov",
        "q (2).mov.json",
        "q.mov.json",
    ]
    assert (done / "q.mov.json").read_text() == "lonely-json-content"
    assert (done / "q (2).mov.json").read_text() == '{"titles": [{"gpms_id": 9}]}'


def test_a_note_already_in_failed_is_never_replaced(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed/x.mov.error.txt").write_text("an older note\n")
    (tmp_path / "x.mov").write_bytes(b"x")

    hooks.failed("x.mov", "refused", permanent=True)

    assert (tmp_path / "failed/x.mov.error.txt").read_text() == "an older note\n"
    assert (
        (tmp_path / "failed/x (2).mov.error.txt")
        .read_text()
        .startswith("x.mov: refused\n")
    )


def test_status_lists_a_failed_json_file_and_follows_no_linked_failed(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "notes.json").write_text("{}")
    hooks.failed("notes.json", "Compass refused it", permanent=True)
    assert [d.rel_path for d in failed_drops(tmp_path)] == ["failed/notes.json"]

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "failed").mkdir(parents=True)
    (elsewhere / "failed/secret.mov").write_bytes(b"s")
    box = tmp_path / "box"
    box.mkdir()
    (box / "failed").symlink_to(elsewhere / "failed")
    assert failed_drops(box) == []


# -- names near the disk's limit, and sidecars that are not files ------------------

LONG_CJK = "映" * 83 + ".mov"  # 253 bytes: its sidecar's name cannot exist


def test_a_file_whose_sidecar_name_cannot_exist_has_no_sidecar(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, mapping_id = make_hooks(tmp_path, ledger)
    (tmp_path / LONG_CJK).write_bytes(b"clip")
    record(ledger, mapping_id, tmp_path, LONG_CJK)

    assert hooks.describe(LONG_CJK).titles == []
    hooks.synced(LONG_CJK, 7)
    (tmp_path / LONG_CJK).write_bytes(b"clip again")
    hooks.synced(LONG_CJK, 8)

    assert (tmp_path / "done" / LONG_CJK).read_bytes() == b"clip"
    [second] = [p for p in (tmp_path / "done").iterdir() if p.name != LONG_CJK]
    assert second.read_bytes() == b"clip again"
    assert len(second.name.encode()) <= 255 and second.name.endswith(" (2).mov")


def test_a_failed_file_with_a_long_name_gets_a_note_whose_name_fits(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    name = "E" * 244 + ".mov"  # 248 bytes: `<name>.error.txt` would be 258
    (tmp_path / name).write_bytes(b"e")

    hooks.failed(name, "Compass refused it", permanent=True)

    assert (tmp_path / "failed" / name).read_bytes() == b"e"
    [note] = [p for p in (tmp_path / "failed").iterdir() if p.name != name]
    assert note.name.endswith(".error.txt") and len(note.name.encode()) <= 255
    [drop] = failed_drops(tmp_path)
    assert (drop.rel_path, drop.reason) == (
        f"failed/{name}",
        f"{name}: Compass refused it",
    )


def test_a_sidecar_that_is_a_link_or_a_pipe_fails_its_file_and_goes_with_it(
    tmp_path: Path, ledger: Ledger
) -> None:
    root = tmp_path / "box"
    root.mkdir()
    hooks, _ = make_hooks(root, ledger)
    outside = tmp_path / "outside.json"
    outside.write_text('{"titles": [{"gpms_id": 1}]}')
    (root / "b.mov").write_bytes(b"b")
    (root / "b.mov.json").symlink_to(outside)
    (root / "c.mov").write_bytes(b"c")
    os.mkfifo(root / "c.mov.json")

    reasons = {}
    for name in ("b.mov", "c.mov"):
        with pytest.raises(FileProblem) as caught:
            hooks.describe(name)
        assert caught.value.permanent
        reasons[name] = caught.value.reason
        hooks.failed(name, caught.value.reason, permanent=True)

    assert reasons == {
        "b.mov": "sidecar b.mov.json: a symbolic link; links are never followed",
        "c.mov": "sidecar c.mov.json: not a regular file (a pipe, device or socket); "
        "never opened",
    }
    failed = root / "failed"
    assert (failed / "b.mov.json").is_symlink()
    assert os.readlink(failed / "b.mov.json") == str(outside)
    assert stat.S_ISFIFO(os.lstat(failed / "c.mov.json").st_mode)
    assert sorted(p.name for p in root.iterdir()) == ["failed"]
    assert outside.read_text() == '{"titles": [{"gpms_id": 1}]}'


def test_a_folder_named_like_a_sidecar_is_not_one(
    tmp_path: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(tmp_path, ledger)
    (tmp_path / "a.mov").write_bytes(b"a")
    (tmp_path / "a.mov.json").mkdir()

    assert hooks.describe("a.mov").titles == []

"""Adopting the asset a lost create answer made: ours, never someone else's upload."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from syncagent.compass import AssetItem
from syncagent.engine.progress import NoProgress
from syncagent.engine.upload import Uploader
from syncagent.ledger import Ledger, UploadStart, utcnow


class FolderOf:
    """Just enough of a Compass client: one folder's assets and their details."""

    def __init__(self, assets: list[AssetItem]) -> None:
        self.assets = {a.asset_id: a for a in assets}

    def list_folder_assets(self, folder_id: int) -> list[AssetItem]:
        return [a for a in self.assets.values() if folder_id in a.folder_ids]

    def get_assets(self, asset_ids: list[int]) -> list[AssetItem]:
        return [self.assets[i] for i in asset_ids if i in self.assets]


def placeholder(asset_id: int, minutes_ago: float) -> AssetItem:
    return AssetItem(
        asset_id=asset_id,
        name="C0001.MP4",
        status="created",
        folder_ids=(1001,),
        created_at=utcnow() - timedelta(minutes=minutes_ago),
    )


def orphan_for(tmp_path: Path, assets: list[AssetItem]) -> int | None:
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    mapping_id = ledger.ensure_mapping(str(tmp_path), 1001)
    start = UploadStart("C0001.MP4", "new", 1001, "C0001.MP4", None, 9, 1, 1)
    [upload] = ledger.begin_uploads(mapping_id, [start], "me", timedelta(minutes=5))
    client: Any = FolderOf(assets)
    uploader = Uploader(
        client,
        ledger,
        owner="me",
        part_size=5 << 20,
        concurrency=1,
        memory_limit=5 << 20,
        progress=NoProgress(),
    )
    try:
        return uploader.adopt_orphans([upload]).get(upload.upload_id)
    finally:
        uploader.close()


def test_someone_elses_upload_in_progress_is_not_taken_for_ours(tmp_path: Path) -> None:
    assert orphan_for(tmp_path, [placeholder(224, minutes_ago=10)]) is None


def test_the_newest_unfinished_asset_made_since_the_upload_began_is_ours(
    tmp_path: Path,
) -> None:
    assets = [placeholder(224, minutes_ago=10), placeholder(225, minutes_ago=0)]

    assert orphan_for(tmp_path, assets) == 225

"""Folder routes: create a folder, list a folder's subfolders."""

from __future__ import annotations

from sqlalchemy import select
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncagent.emulator.access import folder_flags, folder_name_taken, require_folder
from syncagent.emulator.clock import iso_from_ms
from syncagent.emulator.db import Folder
from syncagent.emulator.users import copy_permissions
from syncagent.emulator.validate import as_object, get_int, get_str, invalid
from syncagent.emulator.web import ApiError, Call, api_route, created


async def create_folder(call: Call) -> Response:
    """Create a folder under a parent; it inherits the parent's permissions."""
    body = as_object(call.body)
    name = get_str(body, "name").strip()
    parent_id = get_int(body, "parent_id")

    with call.ctx.sessions.begin() as session:
        if session.get(Folder, parent_id) is None:
            raise invalid(f"parent_id: folder {parent_id} does not exist")
        require_folder(session, call.user_id, parent_id, "folder_manage")
        if folder_name_taken(session, name, parent_id):
            raise invalid(
                f"name: a folder called {name!r} already exists in {parent_id}"
            )
        folder = Folder(
            name=name, parent_id=parent_id, updated_at=call.ctx.clock.now_ms()
        )
        session.add(folder)
        session.flush()
        copy_permissions(session, parent_id, folder.id)

    return created(
        {
            "actions": {"deletable": False},
            "id": folder.id,
            "is_folder": True,
            "name": folder.name,
            "permissions": None,
            "size": None,
            "type": "Folder",
            "updated_at": iso_from_ms(folder.updated_at),
        }
    )


async def list_subfolders(call: Call) -> Response:
    """List the subfolders of a folder that the user may view."""
    folder_id = call.path_int("folder_id")

    with call.ctx.sessions() as session:
        folder = require_folder(session, call.user_id, folder_id, "view")
        query = select(Folder).where(Folder.parent_id == folder_id).order_by(Folder.id)
        children = []
        for child in session.scalars(query):
            flags = folder_flags(session, call.user_id, child.id)
            if not flags["view"]:
                continue
            grandchild = select(Folder.id).where(Folder.parent_id == child.id).limit(1)
            children.append(
                {
                    "id": child.id,
                    "has_children": session.scalar(grandchild) is not None,
                    "name": child.name,
                    "permissions": {**flags, "folder_id": child.id},
                }
            )
        parent_flags = folder_flags(session, call.user_id, folder_id)

    return JSONResponse(
        {
            "folders": children,
            "id": folder.id,
            "name": folder.name,
            "permissions": {**parent_flags, "folder_id": folder_id},
        }
    )


def routes() -> list[Route]:
    """The folder routes."""
    return [
        api_route("POST", "/api/v1/folders", create_folder),
        api_route("GET", "/api/v1/folders/{folder_id}/subfolders", list_subfolders),
    ]


__all__ = ["ApiError", "routes"]

"""`syncagent emulator`: serve a local Compass emulator until interrupted."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from syncagent.emulator.server import EmulatorServer

DEFAULT_DATA_DIR = Path(click.get_app_dir("syncagent")) / "emulator"


def _parse_user(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    users = []
    for value in values:
        name, sep, password = value.partition(":")
        if not sep or not name:
            raise click.BadParameter(f"{value!r}: expected NAME:PASSWORD")
        users.append((name, password))
    return users


def _parse_folder(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[int, str, int | None]]:
    folders = []
    for value in values:
        id_text, sep, rest = value.partition(":")
        name, parent = rest, None
        head, colon, tail = rest.rpartition(":")
        if colon and tail.isdigit():
            name, parent = head, int(tail)
        if not sep or not id_text.isdigit() or not name:
            raise click.BadParameter(f"{value!r}: expected ID:NAME[:PARENT_ID]")
        folders.append((int(id_text), name, parent))
    return folders


@click.command(name="emulator")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Directory for the emulator's database and file bytes; kept across restarts.",
)
@click.option(
    "--user",
    "users",
    multiple=True,
    callback=_parse_user,
    metavar="NAME:PASSWORD",
    help="A user to create (repeatable); it gets every permission on the --folder "
    "folders.",
)
@click.option(
    "--folder",
    "folders",
    multiple=True,
    callback=_parse_folder,
    metavar="ID:NAME[:PARENT_ID]",
    help="A folder to create unless its ID exists (repeatable).",
)
@click.option(
    "--token-ttl",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Lifetime of access tokens.",
)
@click.option(
    "--url-ttl",
    default=900.0,
    show_default=True,
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Lifetime of presigned part and download URLs.",
)
@click.option(
    "--faults",
    default=None,
    metavar="SPEC",
    help="Inject faults: comma-separated CHANNEL:KIND@WHEN rules, e.g. "
    "'api:503@0.1,part:reset@#3,download:corrupt@%5'. Channels: api, part, "
    "download. Kinds: 500, 503, 429, reset, slow, token_expired, url_expired, "
    "corrupt. WHEN: a rate (0.1), the Nth request (#3), from the Nth on (#3+) "
    "or every Nth (%5). Also changeable at runtime via /_emulator/faults.",
)
@click.option(
    "--ingest-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="After complete answers, keep the asset as it was (a new one 'created', "
    "with no size nor checksum) for this long on the emulator's clock, as an "
    "asynchronous ingest would. 0: complete at once.",
)
def emulator_command(
    *,
    host: str,
    port: int,
    data_dir: Path,
    users: list[tuple[str, str]],
    folders: list[tuple[int, str, int | None]],
    token_ttl: float,
    url_ttl: float,
    faults: str | None,
    ingest_delay: float,
) -> None:
    """Serve a local Compass API emulator until Ctrl-C.

    On an empty data directory with no --user and no --folder it creates user
    demo (password demo) and folders 1001 "Dropbox" and 1002 "Library", on
    which demo has every permission. Test helpers live under /_emulator/.
    """
    if faults:
        _check_faults(faults)
    server = EmulatorServer(
        data_dir,
        host=host,
        port=port,
        users=users,
        folders=folders,
        token_ttl=token_ttl,
        url_ttl=url_ttl,
        faults=faults,
        ingest_delay=ingest_delay,
    )
    try:
        url = server.start()
    except (OSError, ValueError, RuntimeError) as exc:
        raise click.ClickException(f"cannot start the emulator: {exc}") from exc
    click.echo(f"Compass emulator listening on {url} (data in {data_dir})", nl=True)
    _wait_for_signal()
    server.stop()


def _check_faults(spec: str) -> None:
    from syncagent.emulator.faults import FaultPlan

    try:
        FaultPlan.parse(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from exc


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    while not stop.wait(1.0):
        pass

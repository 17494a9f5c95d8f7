"""The file a log head is remembered in (``hotline.logwatch.Head``): a witness's last cosigned
checkpoint, ``hotline listen``'s chain head. Written atomically and durably, readable by its
owner only."""

from __future__ import annotations

import json
from pathlib import Path

from hotline.canonical import parse
from hotline.errorcodes import Code
from hotline.errors import LogError, WireError
from hotline.logwatch import Head
from hotline.privatefiles import write_private_atomically

MAX_HEAD_BYTES = 4096  # a head is {"size", "root"}: some 80 bytes; a damaged file is not read whole


def read_head(path: Path) -> Head | None:
    """The head remembered in ``path``; None if there is no such file.

    Raises:
        LogError: ``log.bad_head``, the file holds no head. It is never taken for "no head": a
            witness that forgot what it cosigned would cosign a log rolled back behind it.
    """
    try:
        with path.open("rb") as file:
            text = file.read(MAX_HEAD_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogError(f"log head {path} is unreadable: {exc.strerror}", code=Code.LOG_BAD_HEAD) from exc
    try:
        head = Head.from_json(parse(text, max_bytes=MAX_HEAD_BYTES))
    except WireError:  # not strict JSON, or larger than any head
        head = None
    if head is None:
        raise LogError(f"log head {path} holds no {{\"size\", \"root\"}} of a checkpoint",
                       code=Code.LOG_BAD_HEAD)
    return head


def write_head(path: Path, head: Head) -> None:
    write_private_atomically(path, json.dumps(head.to_json()).encode())

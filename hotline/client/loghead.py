"""The file a log head is remembered in (``hotline.logwatch.Head``): a witness's last cosigned
checkpoint, ``hotline listen``'s chain head. Written atomically and durably, readable by its
owner only."""

from __future__ import annotations

import json
from pathlib import Path

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.logwatch import Head
from hotline.privatefiles import write_private_atomically


def read_head(path: Path) -> Head | None:
    """The head remembered in ``path``; None if there is no such file.

    Raises:
        LogError: ``log.bad_head``, the file holds no head. It is never taken for "no head": a
            witness that forgot what it cosigned would cosign a log rolled back behind it.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogError(f"log head {path} is unreadable: {exc.strerror}", code=Code.LOG_BAD_HEAD) from exc
    try:
        head = Head.from_json(json.loads(text))
    except (ValueError, RecursionError):
        head = None
    if head is None:
        raise LogError(f"log head {path} holds no {{\"size\", \"root\"}} of a checkpoint",
                       code=Code.LOG_BAD_HEAD)
    return head


def write_head(path: Path, head: Head) -> None:
    write_private_atomically(path, json.dumps(head.to_json()).encode())

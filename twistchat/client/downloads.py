"""
Where received files go: a name from the network made safe to use as a
file name, and a path in the download folder that never overwrites
anything ("name (1).ext", "name (2).ext", ...).  Pure functions of names,
plus one atomic claim of a path, so every rule is a unit test.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 200
"""Room under the usual 255-byte file name limit for " (NNN)" and ".part"."""
FALLBACK_NAME = "download"
_RESERVED = set('<>:"/\\|?*')
"""Characters some file systems refuse (Windows); replaced everywhere, so a
name means the same file on any system."""
_DEVICE_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                 *(f"lpt{i}" for i in range(1, 10))}


def safe_file_name(name: str) -> str:
    """A file name for what the network called ``name``: only its last path
    component (no ``../``, no absolute path, ``/`` or ``\\``), no control or
    format characters, no leading dots (hidden files) or trailing dots and
    spaces, at most ``MAX_NAME_BYTES`` UTF-8 bytes (the extension kept)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if ch in _RESERVED else ch for ch in name
                   if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").rstrip(". ")
    if not name:
        return FALLBACK_NAME
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    if stem.split(".")[0].lower() in _DEVICE_NAMES:
        stem = "_" + stem
    ext = ("." + ext) if ext else ""
    if len(ext.encode()) > MAX_NAME_BYTES // 2:
        stem, ext = stem + ext, ""
    while len((stem + ext).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return (stem + ext) or FALLBACK_NAME


def candidates(name: str):
    """``name``, then ``stem (1).ext``, ``stem (2).ext``, ..."""
    yield name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    ext = ("." + ext) if ext else ""
    number = 1
    while True:
        yield f"{stem} ({number}){ext}"
        number += 1


def claim(folder: Path, name: str, source: Path) -> Path:
    """Give the finished file ``source`` (in ``folder``) its name: the first
    of ``candidates(name)`` that does not exist, taken atomically (a hard
    link fails if the name exists, so a file that appeared meanwhile is
    never replaced); ``source`` is gone afterwards."""
    for candidate in candidates(name):
        target = folder / candidate
        try:
            os.link(source, target)
        except FileExistsError:
            continue
        except OSError:  # no hard links here: create the name exclusively, then move
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                continue
            os.replace(source, target)
            return target
        os.unlink(source)
        return target
    raise AssertionError("unreachable")  # candidates never ends


def default_download_dir() -> Path:
    """``~/Downloads/twistchat``: where a person looks for what they received."""
    return Path.home() / "Downloads" / "twistchat"

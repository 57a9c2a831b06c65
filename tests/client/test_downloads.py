"""Names from the network made safe, and saving that never overwrites."""

from __future__ import annotations

import pytest

from twistchat.client.downloads import MAX_NAME_BYTES, candidates, claim, safe_file_name


@pytest.mark.parametrize("given, safe", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("/etc/shadow", "shadow"),
    ("..\\..\\Windows\\system.ini", "system.ini"),
    ("C:\\boot.ini", "boot.ini"),
    ("..", "download"),
    ("", "download"),
    ("   ", "download"),
    (".bashrc", "bashrc"),
    ("evil\x1b[2J.txt", "evil[2J.txt"),
    ("line\nbreak\r.txt", "linebreak.txt"),
    ("\u202etxt.exe", "txt.exe"),          # a right-to-left override hides the real extension
    ("a:b*c?.jpg", "a_b_c_.jpg"),
    ("trailing. . ", "trailing"),
    ("CON.txt", "_CON.txt"),
    ("café ☕.png", "café ☕.png"),
])
def test_names_from_the_network_are_made_safe(given, safe):
    assert safe_file_name(given) == safe


def test_a_long_name_is_cut_keeping_its_extension():
    name = safe_file_name("é" * 300 + ".tar.gz")
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith(".gz")


def test_candidates_number_before_the_extension():
    names = candidates("photo.jpg")
    assert [next(names) for _ in range(3)] == ["photo.jpg", "photo (1).jpg", "photo (2).jpg"]
    names = candidates("README")
    assert [next(names) for _ in range(2)] == ["README", "README (1)"]


def test_claiming_a_name_never_overwrites(tmp_path):
    (tmp_path / "a.txt").write_text("mine")
    (tmp_path / "a (1).txt").write_text("mine too")
    part = tmp_path / ".x.part"
    part.write_text("received")
    saved = claim(tmp_path, "a.txt", part)
    assert saved == tmp_path / "a (2).txt" and saved.read_text() == "received"
    assert (tmp_path / "a.txt").read_text() == "mine" and not part.exists()

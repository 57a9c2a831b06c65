"""The known_servers file: pinned server keys per host and port, one file
per user, written atomically and readable only by the user."""

from __future__ import annotations

import stat

import pytest

from twistchat.client import KnownServers, StateError
from twistchat.client.known_servers import FILE_NAME, check_fingerprint, server_name
from twistchat.endpoint.keys import fingerprint

KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))


def test_a_pin_is_kept_on_disk_per_host_and_port_mode_0600(tmp_path):
    known = KnownServers.load(tmp_path / "state")
    assert known.get(("127.0.0.1", 9999)) is None
    known.pin(("127.0.0.1", 9999), KEY_A)
    known.pin(("Chat.Example", 9999), KEY_B)
    path = tmp_path / "state" / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = KnownServers.load(tmp_path / "state")
    assert again.get(("127.0.0.1", 9999)) == KEY_A
    assert again.get(("chat.example", 9999)) == KEY_B  # host names fold case
    assert again.get(("127.0.0.1", 9998)) is None       # another port is another server
    assert fingerprint(KEY_A) in path.read_text()      # for a person reading the file
    assert [p.name for p in path.parent.iterdir()] == [FILE_NAME]  # no temporary file left


def test_re_pinning_replaces_and_keeps_what_another_client_wrote_meanwhile(tmp_path):
    first, second = KnownServers.load(tmp_path), KnownServers.load(tmp_path)
    first.pin(("127.0.0.1", 1), KEY_A)
    second.pin(("127.0.0.1", 2), KEY_A)   # read before first wrote: must not lose it
    second.pin(("127.0.0.1", 1), KEY_B)
    again = KnownServers.load(tmp_path)
    assert again.get(("127.0.0.1", 1)) == KEY_B and again.get(("127.0.0.1", 2)) == KEY_A


def test_ipv6_addresses_are_bracketed():
    assert server_name(("::1", 9999)) == "[::1]:9999"
    assert server_name(("127.0.0.1", 9999)) == "127.0.0.1:9999"
    known = KnownServers(None)
    known.pin(("::1", 9999), KEY_A)
    assert known.get(("::1", 9999)) == KEY_A and known.get(("::1", 9998)) is None


def test_a_damaged_file_is_a_clear_error_not_a_silent_fresh_start(tmp_path):
    (tmp_path / FILE_NAME).write_text("# comment\n\n127.0.0.1:9999 not-base64!\n")
    with pytest.raises(StateError, match="line 3"):
        KnownServers.load(tmp_path)
    (tmp_path / FILE_NAME).write_text("127.0.0.1:9999 AAAA\n")  # base64, but not 32 bytes
    with pytest.raises(StateError, match="line 1"):
        KnownServers.load(tmp_path)


def test_memory_only_store_writes_nothing(tmp_path):
    known = KnownServers(None)
    known.pin(("h", 1), KEY_A)
    assert known.get(("h", 1)) == KEY_A
    with pytest.raises(ValueError):
        known.pin(("h", 1), b"short")


def test_fingerprints_are_checked_as_the_server_prints_them():
    good = fingerprint(KEY_A)
    assert check_fingerprint(f" {good}\n") == good
    for bad in ("", "SHA256:short", good[7:], "MD5:" + good[7:], good + "A"):
        with pytest.raises(ValueError):
            check_fingerprint(bad)

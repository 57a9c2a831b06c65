"""The server's long-term key: --key (default beside the database), created
mode 0600 on first start and loaded after, shown as a fingerprint in the
start-up log line and by --fingerprint without starting the server."""

from __future__ import annotations

import stat

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher

from twistchat.chat.server.keyfile import DEFAULT_KEY_NAME
from twistchat.chat.server.service import Options, make_service
from twistchat.endpoint.keys import key_fingerprint

from .test_service import UDPMemoryReactor, parse


def test_the_key_is_created_0600_beside_the_database_then_loaded(tmp_path):
    db = str(tmp_path / "chat.sqlite3")
    first = make_service(parse("--db", db, "--port", "0"), MemoryReactorClock())
    path = tmp_path / DEFAULT_KEY_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = make_service(parse("--db", db, "--port", "0"), MemoryReactorClock())
    assert key_fingerprint(first.static_key) == key_fingerprint(second.static_key)
    assert second.endpoint.static_key is second.static_key


def test_key_option_puts_it_elsewhere_and_memory_servers_get_a_throwaway_one(tmp_path):
    elsewhere = tmp_path / "keys" / "server.key"
    elsewhere.parent.mkdir()
    service = make_service(parse("--db", ":memory:", "--key", str(elsewhere)), MemoryReactorClock())
    assert elsewhere.exists() and service.key_file == elsewhere
    throwaway = make_service(parse("--db", ":memory:"), MemoryReactorClock())
    assert throwaway.key_file is None
    assert list(tmp_path.iterdir()) == [elsewhere.parent]  # nothing written for it


def test_a_file_that_holds_no_key_stops_the_start_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    with pytest.raises(SystemExit, match="does not hold a twistchat server key"):
        make_service(parse("--key", str(bad), "--db", ":memory:"), MemoryReactorClock())


def test_the_start_up_line_shows_the_fingerprint(tmp_path):
    key = tmp_path / "server.key"
    service = make_service(parse("--db", ":memory:", "--key", str(key), "--port", "4242"),
                           UDPMemoryReactor())
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        service.startService()
    finally:
        globalLogPublisher.removeObserver(seen.append)
    (line,) = [e for e in seen if "twistchat listening" in e.get("log_format", "")]
    assert line["fingerprint"] == key_fingerprint(service.static_key)
    assert line["key_file"] == key
    service.stopService()


def test_fingerprint_prints_and_exits_without_starting(tmp_path, capsys):
    db = str(tmp_path / "c.sqlite3")
    with pytest.raises(SystemExit) as done:
        Options().parseOptions(["--db", db, "--fingerprint"])
    assert done.value.code == 0
    printed = capsys.readouterr().out.split()
    service = make_service(parse("--db", ":memory:", "--key", str(tmp_path / DEFAULT_KEY_NAME)),
                           MemoryReactorClock())  # the same key, kept
    assert printed == [key_fingerprint(service.static_key), str(tmp_path / DEFAULT_KEY_NAME)]
    assert not (tmp_path / "c.sqlite3").exists()  # the server was not started

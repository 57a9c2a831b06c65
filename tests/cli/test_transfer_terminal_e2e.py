"""``/send`` in a real pseudo-terminal: the progress is drawn on the status
line while the file goes, and only the plain prompt is left once it is sent."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from cli.test_terminal_e2e import DEADLINE, Terminal
from support.processes import BIN

pytestmark = pytest.mark.e2e


def test_the_progress_shows_on_the_status_line_then_goes(twistd_server, tmp_path):
    common = ["--port", str(twistd_server.port), "--state-dir", str(tmp_path / "state")]
    output = tmp_path / "yan.out"
    receiver = subprocess.Popen([str(BIN / "twistchat-client"), "yan", *common,
                                 "--downloads", str(tmp_path / "in")],
                                stdin=subprocess.PIPE, stdout=output.open("w"), text=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while "connected" not in output.read_text():
            assert time.monotonic() < deadline and receiver.poll() is None, output.read_text()
            time.sleep(0.05)
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(2 * 1024 * 1024))
        zed = Terminal([str(BIN / "twistchat-client"), "zed", *common])
        zed.wait_for(b"type /help")
        zed.wait_for(b"> ")
        zed.type(f"/send yan {source}\r".encode())
        zed.wait_for("[↑ big.bin ".encode())
        after = zed.wait_for(f"sent {source} to yan: 2.0 MiB in ".encode())
        zed.settle()
        assert zed.screen.endswith(b"\n> ")  # the prompt is plain again
        assert b"Mbit/s" in after
        zed.type(b"/quit\r")
        assert zed.exit_status() == 0
    finally:
        receiver.stdin.close()
        receiver.wait(timeout=DEADLINE)
    assert "received big.bin from zed" in output.read_text()
    assert (tmp_path / "in" / "big.bin").read_bytes() == source.read_bytes()

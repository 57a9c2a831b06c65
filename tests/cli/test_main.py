from twistchat.cli.main import _mailbox_note


def test_the_connect_line_counts_stored_messages_in_plain_english():
    assert _mailbox_note(0) == ""
    assert _mailbox_note(1) == "; 1 stored message follows"
    assert _mailbox_note(3) == "; 3 stored messages follow"

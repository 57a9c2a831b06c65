"""The codec: round trips, and that no input can raise anything but ChatProtocolError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode


ROUND_TRIP = [
    p.Login(id=1, nick="alice"),
    p.Login(id=2, nick="Bob[1]", password="hunter22", secret=None),
    p.Join(id=3, room="#tea", key="k"),
    p.Join(id=3, room="ABCD1234"),
    p.Say(id=4, room="#tea", text="multi\nline\ttext ✓"),
    p.Dm(id=5, to="bob", text="hi"),
    p.Dm(id=5, to="bob", text="hi", idem="0123abcdef:x_y.z-" + "k" * 46),
    p.Say(id=4, room="#tea", text="x", idem="a"),
    p.Data(id=6, to="bob", idem="k1", payload=b"\n"),
    p.Data(id=6, to="bob", payload=b"\x00\n\xff\n"),
    p.Data(id=6, to="bob", payload=b""),
    p.Topic(id=7, room="#tea", topic=""),
    p.History(id=8, room="#tea", since=10, limit=5),
    p.Mode(id=9, room="#tea", invite_only=True, key=""),
    p.Quit(id=10, reason="bye"),
]


@pytest.mark.parametrize("message", ROUND_TRIP, ids=lambda m: type(m).__name__)
def test_request_round_trip(message):
    assert p.decode_request(p.encode(message)) == message


SERVER = [
    p.Ok(id=1, result={"room": "#tea", "members": [{"nick": "a", "away": None, "op": True}]}),
    p.ErrorReply(id=2, code="ROOM_FULL", message="room is full"),
    p.ErrorReply(id=None, code="BAD_MESSAGE", message="x"),
    p.MessageEvent(room="#tea", nick="a", text="hi", msg_id=3, ts=1000),
    p.DmEvent(nick="a", to="b", text="hi", dm_id=3, ts=1, stored=True),
    p.DataEvent(nick="a", payload=b"\n\n"),
    p.QuitEvent(room="#tea", nick="a", reason="timed out", timeout=True),
    p.ReplacedEvent(),
]


@pytest.mark.parametrize("message", SERVER, ids=lambda m: type(m).__name__)
def test_server_message_round_trip(message):
    assert p.decode_server_message(p.encode(message)) == message


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k not in ("t", "id")), _JSON_VALUES,
                       max_size=4),
       st.text(), st.integers(min_value=0, max_value=2**53 - 1))
def test_the_json_written_is_json_dumps_with_the_documented_options(result, text, n):
    """The codec's C encoder, made once, writes what ``json.dumps`` does
    (UTF-8 unescaped, no spaces), field for field."""
    def dumps(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    assert p.encode(p.Ok(id=n, result=result)) == dumps({"t": "ok", "id": n, **result})
    event = p.MessageEvent(room="#tea", nick="a", text=text, msg_id=n, ts=n)
    assert p.encode(event) == dumps({"t": "message", "room": "#tea", "nick": "a", "text": text,
                                     "msg_id": n, "ts": n})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet=' \t\n\r{}[]":,0123456789.eEtrufalsn-\\x', max_size=24),
                 st.builds(lambda v, before, after: before + json.dumps(v) + after, _JSON_VALUES,
                           st.sampled_from(["", " ", "\n\t"]), st.sampled_from(["", " \r\n", "x", "{}"]))))
def test_a_request_is_read_as_the_json_decoder_reads_it(text):
    """The codec calls the JSON decoder's C scanner itself: it takes and
    refuses exactly what ``JSONDecoder.decode`` does, white space included."""
    from twistchat.chat.protocol import codec

    def read(function):
        try:
            return ("value", function(text))
        except ValueError:
            return ("refused",)
    assert repr(read(codec._from_json)) == repr(read(codec._DECODER.decode))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_value_that_is_not_json_is_refused_not_written(value):
    with pytest.raises(ValueError):
        p.encode(p.Ok(id=1, result={"x": [value]}))


def test_json_part_has_no_raw_newline_so_payload_split_is_unambiguous():
    raw = p.encode(p.Data(id=1, to="bob", payload=b"{}\n"))
    header, payload = raw.split(b"\n", 1)
    assert json.loads(header) == {"t": "data", "id": 1, "to": "bob"}
    assert payload == b"{}\n"


def _code(data, limits=p.DEFAULT_LIMITS):
    with pytest.raises(ChatProtocolError) as info:
        p.decode_request(data, limits)
    return info.value.code, info.value.request_id


@pytest.mark.parametrize("data, code, rid", [
    (b"\xff\xfe", ErrorCode.BAD_MESSAGE, None),
    (b"[1]", ErrorCode.BAD_MESSAGE, None),
    (b'{"t":"ping","id":1,"id":2}', ErrorCode.BAD_MESSAGE, None),
    (b'{"t":"ping","id":NaN}', ErrorCode.BAD_MESSAGE, None),
    (b'{"id":1}', ErrorCode.BAD_MESSAGE, 1),
    (b'{"t":"ping","id":1}\nxx', ErrorCode.BAD_MESSAGE, 1),
    (b'{"t":"fly","id":1}', ErrorCode.UNKNOWN_TYPE, 1),
    (b'{"t":"message","id":1}', ErrorCode.UNKNOWN_TYPE, 1),
    (b'{"t":"ping"}', ErrorCode.BAD_FIELD, None),
    (b'{"t":"ping","id":-1}', ErrorCode.BAD_FIELD, None),
    (b'{"t":"ping","id":1.5}', ErrorCode.BAD_FIELD, None),
    (b'{"t":"ping","id":true}', ErrorCode.BAD_FIELD, None),
    (b'{"t":"say","id":1,"room":"#a","text":5}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"say","id":1,"room":"#a","text":""}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"say","id":1,"room":"#a","text":"\\ud800"}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"say","id":1,"room":"#a","text":"a\\u0000"}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"say","id":1,"room":"nope","text":"x"}', ErrorCode.BAD_ROOM, 1),
    (b'{"t":"join","id":1,"room":"ABCDO123"}', ErrorCode.BAD_ROOM, 1),
    (b'{"t":"login","id":1,"nick":"1abc"}', ErrorCode.BAD_NICK, 1),
    (b'{"t":"login","id":1,"nick":"' + b"a" * 33 + b'"}', ErrorCode.BAD_NICK, 1),
    (b'{"t":"data","id":1,"to":"bob"}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"say","id":1,"room":"#a","text":"x","idem":""}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"say","id":1,"room":"#a","text":"x","idem":"a b"}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"dm","id":1,"to":"b","text":"x","idem":"' + b"k" * 65 + b'"}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"dm","id":1,"to":"b","text":"x","idem":7}', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"data","id":1,"to":"b","idem":"\\u00e9"}\n', ErrorCode.BAD_FIELD, 1),
    (b'{"t":"topic","id":1,"room":"#a","topic":"' + b"x" * 513 + b'"}', ErrorCode.TOO_LARGE, 1),
])
def test_bad_input_gets_its_documented_code(data, code, rid):
    assert _code(data) == (code, rid)


def test_text_and_payload_limits_are_configurable():
    limits = p.Limits(max_text_bytes=10, max_payload_bytes=4)
    say = p.encode(p.Say(id=1, room="#a", text="é" * 6))  # 12 bytes
    assert _code(say, limits) == (ErrorCode.TOO_LARGE, 1)
    data = p.encode(p.Data(id=2, to="b", payload=b"12345"))
    assert _code(data, limits) == (ErrorCode.TOO_LARGE, 2)
    assert _code(b" " * (limits.max_header_bytes + 1), limits)[0] is ErrorCode.TOO_LARGE


def test_a_request_too_large_is_refused_under_its_id_so_it_is_answered():
    limits = p.Limits(max_text_bytes=10)
    over = b'{"t":"say","id":77,"room":"#a","text":"' + b"x" * limits.max_header_bytes + b'"}'
    assert _code(over, limits) == (ErrorCode.TOO_LARGE, 77)
    assert _code(b'{"t":"say","id":' + b" " * limits.max_header_bytes + b'"x"}', limits) == \
        (ErrorCode.TOO_LARGE, None)                # no readable id: null, as before


def test_a_server_message_may_be_larger_than_a_requests_json_part():
    reply = p.Ok(id=1, result={"room": "#a", "history": [p.hist(1, "a", "x" * 4096, 1)] * 20})
    data = p.encode(reply)
    assert len(data) > p.DEFAULT_LIMITS.max_header_bytes
    assert p.decode_server_message(data) == reply


@given(st.lists(st.text(max_size=40), max_size=30), st.integers(min_value=0, max_value=3000))
@settings(max_examples=200, deadline=None)
def test_a_page_is_the_longest_prefix_that_fits_its_budget(texts, budget):
    from twistchat.chat.protocol.pages import fill
    entries = [p.hist(i, "nick", text or "t", i) for i, text in enumerate(texts)]
    fields = {"room": "#a", "history": [], "more": False}
    try:
        taken = fill(budget, 5, fields, "history", entries)
    except ChatProtocolError as e:
        assert e.code is ErrorCode.REPLY_TOO_LARGE
        assert len(p.encode(p.Ok(id=5, result=fields))) > budget
        return
    assert taken == entries[:len(taken)]
    assert len(p.encode(p.Ok(id=5, result={**fields, "history": taken}))) <= budget
    if len(taken) < len(entries):
        assert len(p.encode(p.Ok(id=5, result={**fields, "history": entries[:len(taken) + 1]}))) > budget
    newest = fill(budget, 5, fields, "history", entries, newest=True)
    assert newest == entries[len(entries) - len(newest):]
    assert len(p.encode(p.Ok(id=5, result={**fields, "history": newest}))) <= budget


def test_nick_folding_is_rfc1459_within_the_charset():
    assert p.fold_nick("Alice[X]") == p.fold_nick("aLICE{x}") == "alice{x}"
    assert p.fold_nick("a-b") != p.fold_nick("a_b")


def test_every_error_code_has_text():
    for code in ErrorCode:
        assert code.text and ChatProtocolError(code).message == code.text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decoding_any_bytes_raises_only_the_typed_error(data):
    for decode in (p.decode_request, p.decode_server_message):
        try:
            decode(data)
        except ChatProtocolError:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(p.REQUESTS)), st.dictionaries(
    st.sampled_from(["id", "nick", "room", "text", "to", "password", "secret", "key",
                     "since", "limit", "reason", "topic", "message", "invite_only"]),
    json_values, max_size=6))
def test_structured_garbage_raises_only_the_typed_error(kind, fields):
    data = json.dumps({"t": kind, **fields}).encode()
    try:
        p.decode_request(data)
    except ChatProtocolError:
        pass


def test_the_sizes_the_limits_imply_are_those_of_the_worst_case_messages():
    limits = p.Limits(max_text_bytes=100, max_payload_bytes=1000)
    # the largest request the decoder takes is exactly max_request_bytes
    start, end = b'{"t":"data","id":1,"to":"bob","pad":"', b'"}'
    header = start + b"x" * (limits.max_header_bytes - len(start) - len(end)) + end
    assert len(header) == limits.max_header_bytes
    request = header + b"\n" + bytes(1000)
    assert len(request) == p.max_request_bytes(limits)
    p.decode_request(request, limits)
    # and no event of user content from valid input is larger than max_event_bytes
    text = '"' * 100
    room, nick = "#" + "r" * p.ROOM_NAME_MAX_LENGTH, "n" * p.NICK_MAX_LENGTH
    biggest = [p.MessageEvent(room=room, nick=nick, text=text, msg_id=p.MAX_REQUEST_ID, ts=p.MAX_REQUEST_ID),
               p.DmEvent(nick=nick, to=nick, text=text, dm_id=p.MAX_REQUEST_ID, ts=p.MAX_REQUEST_ID),
               p.DataEvent(nick=nick, payload=bytes(1000))]
    assert max(len(p.encode(e)) for e in biggest) == p.max_event_bytes(limits)
    assert p.max_event_bytes(limits) >= len(p.encode(p.MessageEvent(
        room=room, nick=nick, text="\n" * 50 + "é" * 25, msg_id=1, ts=1)))

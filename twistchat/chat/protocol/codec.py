"""
The one codec: a message to the bytes of one reliable transport message and
back.  One UTF-8 JSON object, optionally followed by ``b"\\n"`` and a binary
payload; decoding arbitrary bytes raises only ChatProtocolError.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import attrs

from twistchat.chat.protocol.codes import ErrorCode
from twistchat.chat.protocol.errors import ChatProtocolError
from twistchat.chat.protocol.limits import DEFAULT_LIMITS, MAX_REQUEST_ID, Limits
from twistchat.chat.protocol.schema import REQUESTS, SERVER_MESSAGES, Message, Request
from twistchat.chat.protocol.server_messages import ErrorReply
from twistchat.chat.protocol.validation import Check, checker


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""Made once: ``json.dumps`` with any option builds a new encoder per call."""

_C_ENCODE = None if json.encoder.c_make_encoder is None else json.encoder.c_make_encoder(
    None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
"""``_ENCODER``'s C encoder, made once: ``JSONEncoder.encode`` makes one
(and a closure) per call, a third of what encoding a room line cost
(issue 16). The same options, but no check for circular references: no
message holds one, and a table of them shared between calls would be left
dirty by a call that raised."""


def _to_json(obj: dict[str, Any]) -> str:
    if _C_ENCODE is None:  # a Python without the C accelerator
        return _ENCODER.encode(obj)
    return "".join(_C_ENCODE(obj, 0))


@functools.cache
def _encode_plan(cls: type[Message]) -> tuple[tuple[str, int], ...]:
    """A class's fields in wire order, each with how ``encode`` treats it
    (worked out once a class, not per message)."""
    keep_none = issubclass(cls, ErrorReply)
    return tuple((field.name, _PAYLOAD if field.name == "payload" else _RESULT
                  if field.name == "result" else _ALWAYS if keep_none and field.name == "id"
                  else _UNLESS_NONE)
                 for field in attrs.fields(cls))


_UNLESS_NONE, _ALWAYS, _PAYLOAD, _RESULT = range(4)
"""How ``encode`` writes a field: left out when None; always (an error
reply's id, null when the request had none); after the newline; merged."""


def encode(message: Message) -> bytes:
    """Serialise one message to the bytes of one reliable transport message."""
    obj: dict[str, Any] = {"t": message.TYPE}
    payload = b""
    for name, how in _encode_plan(type(message)):
        value = getattr(message, name)
        if how == _UNLESS_NONE:
            if value is not None:
                obj[name] = value
        elif how == _PAYLOAD:
            payload = value
        elif how == _RESULT:
            for key, item in value.items():
                if key in ("t", "id"):
                    raise ValueError(f"reply field {key!r} is reserved")
                obj[key] = item
        else:
            obj[name] = value
    header = _to_json(obj).encode("utf-8")
    if message.HAS_PAYLOAD:
        return header + b"\n" + bytes(payload)
    return header


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
"""Made once, as ``_ENCODER``: no NaN or Infinity, no duplicate keys."""
_SCAN = _DECODER.scan_once
_SPACE = json.decoder.WHITESPACE.match


def _from_json(text: str) -> Any:
    """``_DECODER.decode(text)`` (one JSON value, white space around it)
    without its two Python-level calls on the way to the C scanner: every
    request is read through here (issue 16). Raises ValueError."""
    try:
        obj, end = _SCAN(text, _SPACE(text, 0).end())
    except StopIteration:
        raise ValueError("expecting a value") from None
    if _SPACE(text, end).end() != len(text):
        raise ValueError("extra data after the value")
    return obj


_BYTES_LIKE = (bytes, bytearray, memoryview)


def _id_in(header: bytes) -> int | None:
    """The request id in a JSON part too large to take, so that its refusal
    still answers the request (what arrives is bounded by the transport's
    ``max_message_size``, so reading it is too)."""
    try:
        obj = json.loads(header.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return _request_id(obj) if isinstance(obj, dict) else None


def _parse(data: bytes, header_cap: int | None) -> tuple[dict[str, Any], bytes | None]:
    if not isinstance(data, _BYTES_LIKE):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "message must be bytes")
    data = bytes(data)
    newline = data.find(b"\n")
    header, payload = (data, None) if newline < 0 else (data[:newline], data[newline + 1:])
    if header_cap is not None and len(header) > header_cap:
        raise ChatProtocolError(ErrorCode.TOO_LARGE, "JSON part too large", _id_in(header))
    try:
        text = header.decode("utf-8")
        obj = _from_json(text)
    except UnicodeDecodeError:
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "not a valid JSON object") from None
    if not isinstance(obj, dict):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "not a JSON object")
    return obj, payload


@functools.cache
def _build_plan(cls: type[Message]) -> tuple[tuple[str, Check | None, bool, bool], ...]:
    """A class's fields, each as (name, its kind's check, optional, has a
    default); payload and result have no check."""
    return tuple((field.name,
                  None if field.name in ("payload", "result") else checker(field.metadata["kind"]),
                  field.metadata.get("optional", False), field.default is not attrs.NOTHING)
                 for field in attrs.fields(cls))


def _build(cls: type[Message], obj: dict[str, Any], payload: bytes | None,
           limits: Limits, rid: int | None) -> Message:
    if payload is not None and not cls.HAS_PAYLOAD:
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, f"{cls.TYPE} carries no payload", rid)
    kwargs: dict[str, Any] = {}
    for name, check, optional, has_default in _build_plan(cls):
        if name == "payload":
            if payload is None:
                raise ChatProtocolError(ErrorCode.BAD_FIELD, "payload missing", rid)
            if len(payload) > limits.max_payload_bytes:
                raise ChatProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"payload is {len(payload)} bytes, limit {limits.max_payload_bytes}", rid)
            kwargs["payload"] = payload
            continue
        if name == "result":
            kwargs["result"] = {k: v for k, v in obj.items() if k not in ("t", "id")}
            continue
        value = obj.get(name)
        if value is None:
            if optional:
                kwargs[name] = None
                continue
            if has_default and name not in obj:
                continue
            raise ChatProtocolError(ErrorCode.BAD_FIELD, f"{name} missing", rid)
        kwargs[name] = check(value, name, limits, rid)  # type: ignore[misc]
    return cls(**kwargs)


def _request_id(obj: dict[str, Any]) -> int | None:
    rid = obj.get("id")
    return rid if type(rid) is int and 0 <= rid <= MAX_REQUEST_ID else None


def decode_request(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """Decode what a client sent.  Raises ChatProtocolError (with ``request_id``
    set whenever the message had a readable id) and nothing else."""
    obj, payload = _parse(data, limits.max_header_bytes)
    rid = _request_id(obj)
    kind = obj.get("t")
    if not isinstance(kind, str):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "field t missing", rid)
    cls = REQUESTS.get(kind)
    if cls is None:
        raise ChatProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown request type {kind[:40]!r}", rid)
    if rid is None:
        raise ChatProtocolError(ErrorCode.BAD_FIELD, "id must be an integer 0..2^53-1")
    return _build(cls, obj, payload, limits, rid)  # type: ignore[return-value]


def decode_server_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode what a server sent (a reply or an event).  Raises only
    ChatProtocolError.  The JSON part has no cap of its own: a reply may fill
    the whole message (up to ``max_message_bytes``, PROTOCOL.md C1, C10),
    which the transport bounded already."""
    obj, payload = _parse(data, None)
    kind = obj.get("t")
    if not isinstance(kind, str):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "field t missing")
    cls = SERVER_MESSAGES.get(kind)
    if cls is None:
        raise ChatProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown server message {kind[:40]!r}")
    return _build(cls, obj, payload, limits, None)

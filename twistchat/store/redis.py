"""
Redis store (issue 17, docs/CLUSTER.md): the ``ChatStore`` and
``SocialStore`` contracts on one Redis server that several twistd nodes
share, with the semantics of the memory and SQLite stores.

* **Committed means Redis said OK**: a method's Deferred fires after Redis
  answered the command or script that did the work; every write that
  changes several keys is one Lua script (``redis_scripts``), run whole or
  not at all, so a node killed mid-operation leaves Redis consistent.
* **Checks with their effect**: a mailbox's quotas, an idempotency key, a
  contact list's limit are looked at in the script that inserts, so racing
  writers on different nodes can neither exceed a quota nor do one keyed
  request twice.
* **One id counter** (``INCRBY`` for ``reserve_ids``; ``append_line``
  allocates a line's id in the script that appends it), so ids are never
  reused across nodes or restarts.
* Keys are named in ``redis_keys``; the connection (lazy, reconnecting,
  never left waiting) is ``redis_link``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed

from twistchat.store.base import (
    Account,
    HistoryEntry,
    IdemRecord,
    MailboxFull,
    Receipt,
    SenderQuotaFull,
    StoredDm,
    StoreFull,
    TooManyCreated,
)
from twistchat.store import redis_keys as keys
from twistchat.store import redis_scripts as scripts
from twistchat.store.redis_address import parse_redis_url
from twistchat.store.redis_link import RedisLink
from twistchat.store.redis_social import RedisSocial, history_entry

NO_BOUND = -1
"""What the scripts take for a quota of None."""
BATCH = 1000
"""Accounts expired, or idempotency keys purged, per script: a purge of many
runs as several short scripts, so Redis never blocks long on one."""
CREATOR_AT_LIMIT = -1
"""``CREATE_ROOM``'s answer when the creator has ``created_limit`` rooms kept."""
_REFUSALS = {"mailbox": MailboxFull, "sender": SenderQuotaFull, "store": StoreFull}

LineAppended = tuple["HistoryEntry | None", "Mapping[str, Any] | None"]
"""``append_line``'s result: the line as kept, or (a known idempotency key)
None and the first answer."""


def idem_args(record: IdemRecord | None, answer: Mapping[str, Any] | None = None) -> list[Any]:
    """The five script arguments of an optional idempotency record (its
    ``answer`` unless another is given)."""
    if record is None:
        return ["0", "", "", "", ""]
    return ["1", record.nick_key, record.idem,
            json.dumps(dict(record.answer if answer is None else answer)), int(record.ts)]


def _quota(bound: int | None) -> int:
    return NO_BOUND if bound is None else int(bound)


def _line_fields(nick: str, text: str, ts: int) -> str:
    return json.dumps({"nick": nick, "text": text, "ts": int(ts)})


class RedisStore(RedisSocial):
    def __init__(self, reactor: Any, url: str, **link: Any) -> None:
        """``url``: ``redis://HOST:PORT/DB``; ``link``: RedisLink's timeouts."""
        self.link = RedisLink(reactor, parse_redis_url(url), **link)

    @property
    def url(self) -> str:
        return self.link.address.url

    def connect(self) -> Deferred[None]:
        """Connect now rather than at the first command (StoreUnavailable if Redis cannot be reached)."""
        return self.link.ready()

    # ---- identities

    def get_account(self, key: str) -> Deferred[Account | None]:
        def account(row: list[Any]) -> Account | None:
            nick, credential, has_password, created, last_seen = row
            if nick is None:
                return None
            return Account(key, nick, credential, has_password == "1", int(created), int(last_seen))
        return self.link.command("HMGET", keys.ACCOUNT + key, "nick", "credential", "has_password",
                                 "created", "last_seen").addCallback(account)

    def put_account(self, account: Account) -> Deferred[None]:
        return self._write(scripts.PUT_ACCOUNT, *_account_args(account))

    def rename_account(self, old_key: str, account: Account) -> Deferred[None]:
        return self._write(scripts.RENAME_ACCOUNT, old_key, *_account_args(account))

    def touch_account(self, key: str, last_seen: int) -> Deferred[None]:
        return self._write(scripts.TOUCH_ACCOUNT, key, int(last_seen))

    def delete_expired_accounts(self, last_seen_before: int, keep: Collection[str] = (),
                                password_seen_before: int | None = None) -> Deferred[list[str]]:
        args = [int(last_seen_before), "" if password_seen_before is None else int(password_seen_before),
                BATCH, *keep]
        gone: list[str] = []

        def batch(deleted: list[str]) -> Any:
            gone.extend(deleted)
            if len(deleted) < BATCH:
                return gone
            return self.link.script(scripts.DELETE_EXPIRED_ACCOUNTS, *args).addCallback(batch)
        return self.link.script(scripts.DELETE_EXPIRED_ACCOUNTS, *args).addCallback(batch)

    # ---- ids

    def last_id(self) -> Deferred[int]:
        return self.link.command("GET", keys.ID_COUNTER).addCallback(lambda mark: int(mark or 0))

    def reserve_ids(self, count: int) -> Deferred[int]:
        return self.link.command("INCRBY", keys.ID_COUNTER, int(count)).addCallback(int)

    # ---- idempotency keys

    def get_idem(self, nick_key: str, idem: str) -> Deferred[Mapping[str, Any] | None]:
        return self.link.command("HGET", keys.IDEM + nick_key, idem).addCallback(_answer)

    def put_idem(self, record: IdemRecord) -> Deferred[Mapping[str, Any] | None]:
        return self.link.script(scripts.PUT_IDEM, *idem_args(record)).addCallback(_answer)

    def delete_idem_before(self, ts: int) -> Deferred[None]:
        def batch(purged: int) -> Any:
            if purged < BATCH:
                return None
            return self.link.script(scripts.PURGE_IDEM, int(ts), BATCH).addCallback(batch)
        return self.link.script(scripts.PURGE_IDEM, int(ts), BATCH).addCallback(batch)

    # ---- history

    def append_history(self, entry: HistoryEntry, keep: int,
                       idem: IdemRecord | None = None) -> Deferred[Mapping[str, Any] | None]:
        return self.link.script(scripts.APPEND_HISTORY, entry.room, int(entry.msg_id),
                                _line_fields(entry.nick, entry.text, entry.ts), int(keep),
                                *idem_args(idem)).addCallback(_answer)

    def append_line(self, room_key: str, nick: str, text: str, ts: int, keep: int,
                    idem: IdemRecord | None = None, channel: str | None = None) -> Deferred[LineAppended]:
        """A room line whose ``msg_id`` is allocated in the script that keeps
        it, so ids grow in history order whichever node appends (the cluster's
        ``say``).  In that one script: a known ``idem`` key returns
        ``(None, first answer)`` and nothing is done; else the id counter is
        incremented, the line appended (history trimmed to ``keep``),
        ``idem`` kept with its answer plus ``msg_id`` (its answer: the
        caller's fields, e.g. ``{"room": name, "ts": ts}``, without it), and,
        if ``channel`` is given, the line published there as the JSON record
        ``{"room": room_key, "msg_id", "nick", "text", "ts"}`` (docs/CLUSTER.md),
        so subscribers get a room's lines in id order."""
        answer = None
        if idem is not None:
            answer = {k: v for k, v in idem.answer.items() if k != "msg_id"}
        record = json.dumps({"room": room_key, "nick": nick, "text": text, "ts": int(ts)})

        def appended(reply: list[Any]) -> LineAppended:
            kind, value = reply
            if kind == "known":
                return None, json.loads(value)
            return HistoryEntry(room_key, int(value), nick, text, int(ts)), None
        return self.link.script(scripts.APPEND_LINE, room_key, _line_fields(nick, text, ts), int(keep),
                                channel or "", record, *idem_args(idem, answer)).addCallback(appended)

    def get_history(self, room: str, since: int | None, limit: int) -> Deferred[list[HistoryEntry]]:
        if limit <= 0:
            return succeed([])
        low = "-inf" if since is None else f"({int(since)}"
        d = self.link.command("ZREVRANGEBYSCORE", keys.HISTORY + room, "+inf", low, "LIMIT", 0, int(limit))
        return d.addCallback(lambda lines: [history_entry(room, line) for line in reversed(lines)])

    def delete_history(self, room: str) -> Deferred[None]:
        return self.link.command("DEL", keys.HISTORY + room).addCallback(lambda _: None)

    # ---- mailbox and receipts

    def store_dm(self, dm: StoredDm, capacity: int | None = None,
                 idem: IdemRecord | None = None, per_sender: int | None = None,
                 total: int | None = None) -> Deferred[Mapping[str, Any] | None]:
        def stored(reply: list[Any]) -> Mapping[str, Any] | None:
            if reply[0] == "known":
                return json.loads(reply[1])
            if reply[0] == "refused":
                raise _REFUSALS[reply[1]](dm.to_key)
            return None
        return self.link.script(
            scripts.STORE_DM, int(dm.dm_id), dm.to_key, dm.to_nick, dm.sender, dm.text, int(dm.ts),
            dm.sender_key, _quota(capacity), _quota(per_sender), _quota(total),
            *idem_args(idem)).addCallback(stored)

    def stored_dm_count(self) -> Deferred[int]:
        return self.link.command("GET", keys.DM_COUNT).addCallback(lambda count: int(count or 0))

    def mailbox_count(self, to_key: str) -> Deferred[int]:
        return self.link.command("ZCARD", keys.MAILBOX + to_key).addCallback(int)

    def get_mailbox(self, to_key: str) -> Deferred[list[StoredDm]]:
        def dms(flat: list[Any]) -> list[StoredDm]:
            return [StoredDm(int(flat[i]), flat[i + 1], flat[i + 2], flat[i + 3], flat[i + 4],
                             int(flat[i + 5]), flat[i + 6]) for i in range(0, len(flat), 7)]
        return self.link.script(scripts.GET_MAILBOX, to_key).addCallback(dms)

    def dm_acknowledged(self, dm_id: int) -> Deferred[Receipt | None]:
        def receipt(reply: list[Any] | None) -> Receipt | None:
            if reply is None:
                return None
            sender_key, to_nick, ts = reply
            return Receipt(int(dm_id), sender_key, to_nick, int(ts))
        return self.link.script(scripts.DM_ACKNOWLEDGED, int(dm_id)).addCallback(receipt)

    def get_receipts(self, sender_key: str) -> Deferred[list[Receipt]]:
        def receipts(flat: list[Any]) -> list[Receipt]:
            return [Receipt(int(flat[i]), sender_key, flat[i + 1], int(flat[i + 2]))
                    for i in range(0, len(flat), 3)]
        return self.link.script(scripts.GET_RECEIPTS, sender_key).addCallback(receipts)

    def delete_receipt(self, dm_id: int) -> Deferred[None]:
        return self._write(scripts.DELETE_RECEIPT, int(dm_id))

    # ---- rooms

    def put_room(self, key: str, state: Mapping[str, Any]) -> Deferred[None]:
        return self.link.command("HSET", keys.ROOMS, key, json.dumps(dict(state))).addCallback(lambda _: None)

    def create_room(self, key: str, state: Mapping[str, Any],
                    created_limit: int | None = None) -> Deferred[tuple[bool, dict[str, Any]]]:
        """``HSETNX`` and, if the room was kept already, its state, in one
        script: nodes racing to open one new room agree on its first state.
        A room created here is counted for its creator (``state``'s
        ``creator_key``) until it is dropped; with ``created_limit`` a
        creator who has that many already is refused ``TooManyCreated``, in
        the same script, so nodes creating at the same instant cannot exceed
        it (``max_rooms_created`` per user, not per node)."""
        def kept(reply: list[Any]) -> tuple[bool, dict[str, Any]]:
            if int(reply[0]) == CREATOR_AT_LIMIT:
                raise TooManyCreated(state["creator_key"])
            created, value = reply
            return int(created) == 1, json.loads(value)
        return self.link.script(scripts.CREATE_ROOM, key, json.dumps(dict(state)), state["creator_key"],
                                _quota(created_limit)).addCallback(kept)

    def delete_room(self, key: str) -> Deferred[None]:
        return self._write(scripts.DELETE_ROOM, key)

    def drop_room(self, key: str, roster_key: str, channel: str | None = None,
                  record: bytes = b"") -> Deferred[bool]:
        """The room leaves the network, if nobody is in it: in one script,
        unless the broker's roster ``roster_key`` has a member or a kept
        membership names the room, its state and history are deleted, it
        leaves its creator's count, and ``record`` is published on
        ``channel`` (the other nodes drop their copies).  True if dropped."""
        return self.link.script(scripts.DROP_ROOM, key, roster_key, channel or "",
                                record.decode()).addCallback(lambda dropped: int(dropped) == 1)

    def load_rooms(self) -> Deferred[dict[str, dict[str, Any]]]:
        def rooms(flat: list[Any]) -> dict[str, dict[str, Any]]:
            return {flat[i]: json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}
        return self.link.command("HGETALL", keys.ROOMS).addCallback(rooms)

    # ---- lifecycle

    def flush(self) -> Deferred[None]:
        """A PING behind every command issued before it, on the one connection."""
        return self.link.command("PING").addCallback(lambda _: None)

    def close(self) -> Deferred[None]:
        if self.link.closed or not self.link.connected:
            return self.link.close()
        d = self.flush()
        d.addErrback(lambda _: None)  # closing anyway: what failed has told its caller
        return d.addCallback(lambda _: self.link.close())


def _account_args(account: Account) -> list[Any]:
    return [account.key, account.nick, account.credential, int(account.has_password),
            int(account.created), int(account.last_seen)]


def _answer(reply: str | None) -> Mapping[str, Any] | None:
    return None if reply is None else json.loads(reply)

"""
How events look: one line each, ``HH:MM`` local time first, then the room
or ``[dm]``, the sender and the text. Pure functions of the event and a
clock, so the look is a unit test.
"""

from __future__ import annotations

import time
from typing import Any

from twistchat.chat import protocol as p

NOTICE = "-!-"
ERROR = "!!!"


def clock_text(ts_ms: int | None = None, now: float | None = None) -> str:
    """Local time of a server timestamp (ms), or of ``now`` (s)."""
    seconds = ts_ms / 1000 if ts_ms is not None else (now if now is not None else time.time())
    return time.strftime("%H:%M", time.localtime(seconds))


def _text(room: str, nick: str, text: str) -> str:
    if text.startswith("/me "):
        return f"[{room}] * {nick} {text[4:]}"
    return f"[{room}] <{nick}> {text}"


def message(event: p.MessageEvent, replay: bool = False) -> str:
    mark = " (history)" if replay else ""
    return f"{clock_text(event.ts)} {_text(event.room, event.nick, event.text)}{mark}"


def own_message(room: str, nick: str, text: str, ts: int) -> str:
    return f"{clock_text(ts)} {_text(room, nick, text)}"


def direct(event: p.DmEvent) -> str:
    mark = " (sent while you were away)" if event.stored else ""
    return f"{clock_text(event.ts)} [dm] <{event.nick}> {event.text}{mark}"


def own_direct(to: str, text: str, reply: dict[str, Any]) -> str:
    """Our DM, once the server stored it; a note if nobody is there to take it
    yet (the ``delivered`` notice follows when the recipient has it)."""
    line = f"{clock_text(reply.get('ts'))} [dm to {to}] {text}"
    if not reply.get("online"):
        line += f"\n{clock_text(reply.get('ts'))} {NOTICE} {to} is offline: stored for offline delivery"
    return line


def delivered(event: p.DeliveredEvent, now: float | None = None) -> str:
    """The recipient's transport has our DM: said for every DM, online or not."""
    return f"{clock_text(now=now)} {NOTICE} {event.to} received your message of {clock_text(event.ts)} (delivered)"


def presence(event: p.Event, now: float | None = None) -> str:
    t = clock_text(now=now)
    if isinstance(event, p.JoinEvent):
        return f"{t} {NOTICE} {event.nick} joined {event.room}"
    if isinstance(event, p.PartEvent):
        return f"{t} {NOTICE} {event.nick} left {event.room}" + _reason(event.reason)
    if isinstance(event, p.QuitEvent):
        why = "timed out" if event.timeout else None
        return f"{t} {NOTICE} {event.nick} quit" + _reason(why or event.reason)
    if isinstance(event, p.KickEvent):
        verb = "banned" if event.banned else "kicked"
        return f"{t} {NOTICE} {event.nick} was {verb} from {event.room} by {event.by}" + _reason(event.reason)
    if isinstance(event, p.NickEvent):
        return f"{t} {NOTICE} {event.old} is now known as {event.new}"
    if isinstance(event, p.AwayEvent):
        if event.message:
            return f"{t} {NOTICE} {event.nick} is away ({event.message})"
        return f"{t} {NOTICE} {event.nick} is back"
    if isinstance(event, p.TopicEvent):
        return f"{t} {NOTICE} {event.nick} set the topic of {event.room}: {event.topic}"
    if isinstance(event, p.ModeEvent):
        flags = ("invite-only" if event.invite_only else "open") + (", key required" if event.has_key else "")
        if event.limit:
            flags += f", at most {event.limit} members"
        return f"{t} {NOTICE} {event.nick} made {event.room} {flags} (modes: {modes(_event_modes(event))})"
    if isinstance(event, p.OpEvent):
        return f"{t} {NOTICE} {event.by} made {event.nick} operator of {event.room}"
    if isinstance(event, p.InvitedEvent):
        return f"{t} {NOTICE} {event.by} invites you to {event.room} (/join {event.room})"
    return f"{t} {NOTICE} {event.TYPE}"


def _event_modes(event: p.ModeEvent) -> dict[str, Any]:
    return {"invite_only": event.invite_only, "has_key": event.has_key, "limit": event.limit}


def modes(room: dict[str, Any]) -> str:
    """A room's modes as IRC writes them: ``+i +k +l 5``, or ``none``."""
    flags = (["+i"] if room.get("invite_only") else []) + (["+k"] if room.get("has_key") else [])
    if room.get("limit"):
        flags.append(f"+l {room['limit']}")
    return " ".join(flags) or "none"


def _reason(reason: str | None) -> str:
    return f" ({reason})" if reason else ""


def notice(text: str, now: float | None = None) -> str:
    return f"{clock_text(now=now)} {NOTICE} {text}"


def error(code: str, text: str, now: float | None = None) -> str:
    return f"{clock_text(now=now)} {ERROR} {code}: {text}" if text else f"{clock_text(now=now)} {ERROR} {code}"


def reply(action: str, args: tuple, result: dict[str, Any], now: float | None = None) -> list[str]:
    """What to show when a command succeeded (most show nothing but events)."""
    t = clock_text(now=now)
    if action in ("join", "create"):
        lines = [f"{t} {NOTICE} now talking in {result['room']}"]
        if action == "create":
            lines[0] += f" (a private group: others join it with /join {result['room']})"
        if result.get("topic"):
            lines.append(f"{t} {NOTICE} topic: {result['topic']} (set by {result.get('topic_by')})")
        if modes(result) != "none":
            lines.append(f"{t} {NOTICE} modes: {modes(result)}")
        lines.append(f"{t} {NOTICE} members: {_members(result, result.get('member_count'))}")
        return lines
    if action == "who":
        return [f"{t} {NOTICE} {result['room']}: {_members(result, result.get('count'))}"]
    if action == "list_rooms":
        rooms = result.get("rooms", [])
        if not rooms:
            return [f"{t} {NOTICE} no rooms yet (/join #room creates one)"]
        return [f"{t} {NOTICE} {r['room']} ({r['members']} members)" + (f": {r['topic']}" if r.get("topic") else "")
                for r in rooms]
    if action == "topic" and len(args) > 1 and args[1] is None:
        topic = result.get("topic")
        return [f"{t} {NOTICE} topic of {result['room']}: {topic}" if topic else f"{t} {NOTICE} {result['room']} has no topic"]
    if action == "set_nick":
        return [f"{t} {NOTICE} you are now {result['nick']}"]
    if action == "away":
        return [f"{t} {NOTICE} " + (f"you are away ({result['away']})" if result.get("away") else "you are back")]
    if action == "register":
        if len(args) > 1:  # /password CURRENT NEW
            return [f"{t} {NOTICE} your password is changed"]
        return [f"{t} {NOTICE} your nick is now protected by your password"]
    if action == "part":
        return [f"{t} {NOTICE} you left {result['room']}"]
    if action == "ping":
        return [f"{t} {NOTICE} pong: {_ms(result['rtt'])} round trip to the server"]
    if action == "watch":
        return [f"{t} {NOTICE} watching {result['nick']}: {presence_of(result, now)}"]
    if action == "unwatch":
        return [f"{t} {NOTICE} no longer watching {result['nick']}"]
    if action == "contacts":
        entries = result.get("contacts", [])
        if not entries:
            return [f"{t} {NOTICE} you watch nobody (/watch NICK)"]
        return [f"{t} {NOTICE} {presence_of(entry, now)}" for entry in entries]
    return []


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _server_of_list(st: Any) -> str:
    """The server, and where it stands in the list when there is one."""
    if len(st.servers) < 2:
        return st.server
    place = st.servers.index(st.server) + 1
    return f"{st.server} ({place} of {len(st.servers)}: {', '.join(st.servers)})"


def status(st: Any, now: float | None = None) -> list[str]:
    """``/status``: a ``client.status.ClientStatus``, one fact a line."""
    t = f"{clock_text(now=now)} {NOTICE}"
    lines = [f"{t} server {_server_of_list(st)}, key {st.server_key or 'not yet proven'}",
             f"{t} you are {st.nick}, {st.state.value}"
             + (f" for {_duration(st.logged_in_for)}" if st.logged_in_for is not None else ""),
             f"{t} rooms: {', '.join(st.rooms) or 'none'}"]
    tr = st.transport
    if tr is not None:
        rtt = _ms(tr.smoothed_rtt) if tr.rtt_sampled else "not measured yet"
        ping = f", last /ping {_ms(st.ping_rtt)}" if st.ping_rtt is not None else ""
        lines.append(f"{t} rtt {rtt}{ping}; loss {tr.loss_towards_peer:.1%} out, "
                     f"{tr.loss_from_peer:.1%} in ({tr.packets_lost} of {tr.packets_sent} "
                     f"packets sent lost)")
        lines.append(f"{t} unacknowledged: {tr.unacked_messages} messages ({tr.unacked_bytes} "
                     f"bytes) on the transport; {st.unanswered} requests unanswered, "
                     f"{st.held} held for the next login")
    else:
        lines.append(f"{t} no session now; {st.held} requests held for the next login")
    return lines




def presence_of(entry: Any, now: float | None = None) -> str:
    """A contact's state in words (a ``contact`` event, or an entry of
    ``watch`` and ``contacts`` replies)."""
    get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
    nick, state = get("nick"), get("state")
    if state == "away":
        return f"{nick} is away" + _reason(get("away"))
    if state == "online":
        return f"{nick} is online"
    seen = get("last_seen")
    return f"{nick} is offline" + (f" (last seen {_day_and_time(seen, now)})" if seen else "")


def _day_and_time(ts_ms: int, now: float | None) -> str:
    """``HH:MM`` today, the date too for an older time."""
    now = time.time() if now is None else now
    if time.localtime(ts_ms / 1000)[:3] == time.localtime(now)[:3]:
        return clock_text(ts_ms)
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts_ms / 1000))


def contact(event: p.ContactEvent, now: float | None = None) -> str:
    return f"{clock_text(now=now)} {NOTICE} {presence_of(event, now)}"


def rejoined(event: p.RejoinedEvent, now: float | None = None) -> list[str]:
    """Put back in a room at login (PROTOCOL.md C12): the room, then what
    of the lines missed meanwhile comes, and how many were not kept."""
    t = clock_text(now=now)
    members = _members({"members": event.members or []}, event.member_count)
    lines = [f"{t} {NOTICE} back in {event.room} (members: {members})"]
    if event.not_kept:
        lines.append(f"{t} {NOTICE} {_messages(event.not_kept, 'earlier ')}in {event.room} not kept")
    if event.missed:
        verb = "follows" if event.missed == 1 else "follow"
        lines.append(f"{t} {NOTICE} {_messages(event.missed)}you missed in {event.room} {verb}")
    return lines


def _messages(count: int, kind: str = "") -> str:
    return f"1 {kind}message " if count == 1 else f"{count} {kind}messages "


def _members(result: dict[str, Any], count: int | None) -> str:
    """The members listed, and how many more there are: a join reply lists
    the first few of a big room (PROTOCOL.md C6), ``/who`` all of them."""
    listed = result.get("members", [])
    names = ", ".join(_member(m) for m in listed)
    more = (count or 0) - len(listed)
    if more > 0:
        names += f"{', ' if names else ''}and {more} more ({count} in all: /who lists them)"
    return names


def _member(member: dict[str, Any]) -> str:
    name = ("@" if member.get("op") else "") + member["nick"]
    return f"{name} (away)" if member.get("away") else name

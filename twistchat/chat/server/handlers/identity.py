"""Identity requests: log in (registering on first use), set a password,
change nick.  Newest login wins; a replaced session is told why."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredLock

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick
from twistchat.chat.server import identities
from twistchat.chat.server.core import Handler, ServerCore
from twistchat.chat.server.guards import LoginRefused, source_of
from twistchat.chat.server.user import User
from twistchat.endpoint.api import CloseCode
from twistchat.store.base import Account

async def login(server: ServerCore, user: User, request: p.Login) -> None:
    """Refused at once while the nick or the source backs off, or while the
    nick has ``login_queue`` logins being checked; the credential is checked
    before the nick's lock is taken, so wrong guesses never hold up the
    owner's login (PROTOCOL.md C4)."""
    if user.logged_in:
        raise ChatProtocolError(ErrorCode.ALREADY_LOGGED_IN)
    key = fold_nick(request.nick)
    try:
        with server.logins.attempt(key, source_of(user.session.peer), server.clock.seconds()):
            checked = await server.registered(key)
            if checked is not None:
                await _check_credential(server, user, request, checked)
            lock = server.login_locks.setdefault(key, DeferredLock())
            await lock.acquire()
            try:
                await _login_locked(server, user, request, key, checked)
            finally:
                lock.release()
                if not lock.locked and not lock.waiting:
                    server.login_locks.pop(key, None)
    except LoginRefused as refused:
        _login_failed(server, user, request, ChatProtocolError(ErrorCode.RATE_LIMITED, refused.why))
    except ChatProtocolError as error:
        if error.code not in (ErrorCode.BAD_CREDENTIAL, ErrorCode.RATE_LIMITED):
            raise
        _login_failed(server, user, request, error)


def _login_failed(server: ServerCore, user: User, request: p.Login,
                  error: ChatProtocolError) -> None:
    """Answer a refused login; the session's last one is closed after its answer."""
    user.login_failures += 1
    user.session.fail(request, error.code, error.message)
    if user.login_failures >= server.config.login_failures_per_session:
        server.log.info("closing a session from {peer} after {count} failed logins",
                        peer=user.session.peer, count=user.login_failures)
        server.depart(user, "too many failed logins")
        user.session.close("too many failed logins", CloseCode.NORMAL, graceful=True)


async def _check_credential(server: ServerCore, user: User, request: p.Login,
                            account: Account) -> None:
    """BAD_CREDENTIAL unless the login's password or secret matches
    ``account`` (checked off the reactor thread); a failure feeds the back-off."""
    given = request.password if request.password is not None else request.secret
    if given is None or not await server.run_credential_work(
            user, identities.verify_credential, given, account.credential):
        server.logins.failed(account.key, source_of(user.session.peer), server.clock.seconds())
        server.log.info("wrong credential for {nick} from {peer}", nick=request.nick,
                        peer=user.session.peer)
        raise ChatProtocolError(ErrorCode.BAD_CREDENTIAL)


async def _login_locked(server: ServerCore, user: User, request: p.Login, key: str,
                        checked: Account | None) -> None:
    """The login's effects, one login of ``key`` at a time; ``checked`` is the
    registration its credential was checked against before the lock."""
    config = server.config
    session = user.session
    account = await server.registered(key)
    new_secret = None
    registered_now = account is None
    if account is None:
        if request.password is not None and len(request.password) < p.PASSWORD_MIN_LENGTH:
            raise ChatProtocolError(ErrorCode.WEAK_PASSWORD)
        if not server.logins.may_register(source_of(session.peer), server.clock.seconds()):
            raise ChatProtocolError(ErrorCode.RATE_LIMITED,
                                    "too many new registrations from your network; try later")
        if request.password is not None:
            credential, has_password = await _password_hash(server, user, request.password), True
        else:
            new_secret = identities.new_secret(config.secret_bytes)
            credential, has_password = await _hash(server, user, new_secret), False
        now = server.now_ms()
        account = Account(key=key, nick=request.nick, credential=credential,
                          has_password=has_password, created=now, last_seen=now)
        await server.store.put_account(account)
        server.log.info("registered {nick}", nick=request.nick)
    elif checked is None or account.credential != checked.credential:
        await _check_credential(server, user, request, account)  # changed while we checked
    if user.departed:  # the transport went away while we checked
        return
    if server.cluster is not None:  # the newest login wins on every node
        await server.bounded(server.cluster.claim(key, user))
        if user.departed:
            return
    previous = server.online.get(key)
    if previous is not None and previous is not user:
        server.replace(previous)
    user.key, user.nick = key, account.nick
    server.online[key] = user
    server.logins.succeeded(key, source_of(session.peer))
    session.mark_trusted()  # a full server closes sessions not logged in first
    await server.store.touch_account(key, server.now_ms())
    waiting = await server.mailbox.pending(key)
    kept_rooms = await server.memberships.memberships(user)  # issue 14: C11, C12
    if server.cluster is not None:
        await server.cluster.shared_rooms.open_kept(kept_rooms, user)
    contact_list = await server.store.get_contacts(key)
    elsewhere = await server.presence_elsewhere(contact_list)
    if not user.departed:  # its transport may have gone while we read
        server.contacts.online(user)
    fields: dict[str, Any] = {
        "nick": account.nick, "registered": registered_now,
        "keepalive": int(config.keepalive_interval), "idle_timeout": int(config.idle_timeout),
        "max_text_bytes": config.max_text_bytes, "max_payload_bytes": config.max_payload_bytes,
        "max_message_bytes": config.max_message_bytes, "mailbox": len(waiting),
        "rooms": len(kept_rooms), "contacts": len(contact_list)}
    if new_secret is not None:
        fields["secret"] = new_secret
    session.reply(request, **fields)
    server.log.info("{nick} logged in from {peer}", nick=account.nick, peer=session.peer)
    await server.mailbox.replay(user, waiting)
    if not user.departed:
        server.contacts.logged_in(user, contact_list, elsewhere)
        await server.memberships.restore(user, kept_rooms)


def _hash(server: ServerCore, user: User, secret: str) -> Deferred[str]:
    c = server.config
    return server.run_credential_work(user, identities.hash_credential, secret,
                                      c.scrypt_n, c.scrypt_r, c.scrypt_p)


async def _password_hash(server: ServerCore, user: User, password: str) -> str:
    if len(password) < p.PASSWORD_MIN_LENGTH:
        raise ChatProtocolError(ErrorCode.WEAK_PASSWORD)
    return await _hash(server, user, password)


async def set_password(server: ServerCore, user: User, request: p.SetPassword) -> None:
    """Only with the current credential (checked off the reactor thread, as a
    login's is): a session left open, or taken over, cannot take the nick."""
    if len(request.password) < p.PASSWORD_MIN_LENGTH:
        raise ChatProtocolError(ErrorCode.WEAK_PASSWORD)
    account = await server.store.get_account(user.key)
    if account is None:
        raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
    if not await server.run_credential_work(user, identities.verify_credential, request.current,
                                            account.credential):
        server.log.info("set_password for {nick} with a wrong current credential from {peer}",
                        nick=account.nick, peer=user.session.peer)
        raise ChatProtocolError(ErrorCode.BAD_CREDENTIAL)
    credential = await _password_hash(server, user, request.password)
    await server.store.put_account(Account(
        key=account.key, nick=account.nick, credential=credential, has_password=True,
        created=account.created, last_seen=server.now_ms()))
    user.session.reply(request)


async def nick(server: ServerCore, user: User, request: p.Nick) -> None:
    new_key = fold_nick(request.nick)
    old_key, old_nick = user.key, user.nick
    if new_key != old_key and (new_key in server.online or await server.registered(new_key) is not None
                               or (server.cluster is not None
                                   and await server.cluster.holder(new_key) is not None)):
        raise ChatProtocolError(ErrorCode.NICK_TAKEN)
    account = await server.store.get_account(old_key)
    if account is None:
        raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
    if new_key != old_key and new_key in server.online:  # raced with a login
        raise ChatProtocolError(ErrorCode.NICK_TAKEN)
    await server.store.rename_account(old_key, Account(
        key=new_key, nick=request.nick, credential=account.credential,
        has_password=account.has_password, created=account.created, last_seen=server.now_ms()))
    del server.online[old_key]
    if server.cluster is not None:
        server.cluster.released(user)
    user.key, user.nick = new_key, request.nick
    server.online[new_key] = user
    if server.cluster is not None:
        await server.bounded(server.cluster.claim(new_key, user))
        for room in user.rooms.values():
            server.cluster.left(room, old_key)
            server.background(server.cluster.joined(room, user), "update a roster")
    server.rooms.rename_member(old_key, user)
    server.memberships.renamed(old_key, user)
    server.contacts.renamed(old_key, old_nick, user, server.now_ms())
    for room in list(user.rooms.values()):
        server.tell(room, p.NickEvent(room=room.name, old=old_nick, new=request.nick))
        if room.op_key == new_key:
            server.save_room(room)
    user.session.reply(request, nick=request.nick)


HANDLERS: dict[type, Handler] = {p.Login: login, p.SetPassword: set_password, p.Nick: nick}

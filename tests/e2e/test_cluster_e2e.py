"""Issue 17's acceptance test: one Redis, three real ``twistd twistchat
--redis URL`` nodes sharing one ``--key``, and six client-library users
(two per node, each given the whole host list) in one room, saying lines
and sending DMs across nodes. Every member sees every line once, in one
order (``msg_id``'s, the room channel's); a DM reaches its recipient on
another node once and its sender is told ``delivered`` once. Then the first
node gets SIGKILL while lines are still being said: its users move to the
other nodes, log in again and catch up, and once the dust settles every
member has every line once, in the same order, and no DM is lost or
doubled. Last, newest login wins across nodes: logging in alice on another
node ends her first session with ``replaced``.

The nodes suggest a keepalive of 1 s, so a client gives a dead node up
after 3 s of silence (``reliable/config.py``), and heartbeat every second,
so the survivors take the dead node's users as gone within 3 s."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from support.processes import Server
from support.waiting import until, within
from twistchat.client import ChatClient, ChatObserver, ClientState
from twistchat.endpoint.endpoint import ClientEndpoint

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

ROOM = "#cluster"
NODES = 3
USERS_PER_NODE = 2
LINES_BEFORE = 3
"""Lines each user says, one after the other, before the kill."""
LINES_DURING = 6
"""Lines each user says while the first node is killed (one every SAY_PAUSE)."""
SAY_PAUSE = 0.25
KILL_AFTER = 0.6
"""Seconds into the second round the first node is killed: lines are in flight."""
DMS_EACH = 3
"""DMs each user sends (to the user two places on, on another node) and gets:
one before the kill, one as it happens, one after."""
SETTLE = 30
"""Seconds the moved users have to notice, reconnect, log in and catch up."""
NODE_OPTIONS = ("--keepalive", "1", "--node-heartbeat", "1", "--scrypt-n", "1024",
                "--history", "1000")


class Seen(ChatObserver):
    """What one user was shown."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.replayed: set[int] = set()
        self.dms: list[int] = []
        self.receipts: list[int] = []
        self.disconnects: list[tuple[str, float | None]] = []
        self.errors: list[str] = []
        self.reconnects = 0

    def message(self, event, replay):
        self.lines.append(event.msg_id)
        if replay:
            self.replayed.add(event.msg_id)

    def direct(self, event):
        self.dms.append(event.dm_id)

    def delivered(self, event):
        self.receipts.append(event.dm_id)

    def disconnected(self, reason, retry_in):
        self.disconnects.append((reason, retry_in))

    def error(self, error):
        self.errors.append(error.code)

    def reconnected(self):
        self.reconnects += 1


class User:
    def __init__(self, nick: str, endpoint: ClientEndpoint, hosts: list[tuple[str, int]]) -> None:
        self.nick = nick
        self.seen = Seen()
        self.said: list[int] = []
        self.sent_dms: list[int] = []
        self.client = ChatClient(reactor, endpoint, hosts, nick, self.seen,
                                 password=f"{nick} secret", state=ClientState(None))

    def shown_all_but_own(self, said: list[int]) -> bool:
        """This user was shown every line of ``said`` (in ``msg_id`` order:
        the room's one order) but its own, each once, in that order; its own
        lines it has from their echo, but one whose answer died with the
        killed node: the re-login's replay may bring that first, as history
        (tests/client/test_failover.py), and the resent say then gets its id."""
        lines = self.seen.lines
        others = [m for m in lines if not (m in self.said and m in self.seen.replayed)]
        return others == [m for m in said if m not in self.said] and len(set(lines)) == len(lines)

    @defer.inlineCallbacks
    def say(self, text: str):
        reply = yield self.client.say(ROOM, text)
        self.said.append(reply["msg_id"])

    @defer.inlineCallbacks
    def dm(self, to: str, text: str):
        reply = yield self.client.msg(to, text)
        self.sent_dms.append(reply["dm_id"])


def pause(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


def hosts_from(nodes: list[Server], first: int) -> list[tuple[str, int]]:
    """Every node, starting with the user's own."""
    order = nodes[first:] + nodes[:first]
    return [("127.0.0.1", node.port) for node in order]


@pytest_twisted.inlineCallbacks
def test_three_nodes_one_room_and_a_node_killed(tmp_path, redis_url):
    key = tmp_path / "network.key"
    nodes = []
    for index in range(NODES):
        (tmp_path / f"n{index}").mkdir()
        nodes.append(Server(tmp_path / f"n{index}", args=(
            "--redis", redis_url, "--key", str(key), "--node-name", f"n{index}", *NODE_OPTIONS)))
    endpoint = ClientEndpoint(reactor)
    port = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
    users: list[User] = []
    try:
        for node in nodes:
            node.start()
        names = iter(("ann", "bob", "cat", "dan", "eve", "fay"))
        homes = {}
        for index in range(NODES):
            for _ in range(USERS_PER_NODE):
                user = User(next(names), endpoint, hosts_from(nodes, index))
                homes[user.nick] = index
                users.append(user)
        for user in users:
            yield within(user.client.connect())
            yield within(user.client.join(ROOM))
        for user in users:
            assert f"{user.nick} logged in" in nodes[homes[user.nick]].log_text()
        everyone = len(users)

        # Round one: every user says lines and DMs the user two places on (another node).
        yield within(defer.gatherResults([
            _say_lines(user, "before", LINES_BEFORE, 0) for user in users]), 20)
        yield within(defer.gatherResults([
            user.dm(users[(i + USERS_PER_NODE) % everyone].nick, f"dm 1 from {user.nick}")
            for i, user in enumerate(users)]))
        said = sorted(m for user in users for m in user.said)
        assert len(said) == everyone * LINES_BEFORE
        yield _everyone_shown(users, said)
        yield until(lambda: all(len(user.seen.receipts) == 1 for user in users))
        for i, user in enumerate(users):
            recipient = users[(i + USERS_PER_NODE) % everyone]
            assert user.sent_dms[0] in recipient.seen.dms
            assert sorted(user.seen.receipts) == sorted(user.sent_dms)
        assert all(len(user.seen.dms) == 1 for user in users)

        # Round two: lines and DMs keep coming while node 0 is killed.
        talk = defer.gatherResults([
            _say_lines(user, "during", LINES_DURING, SAY_PAUSE) for user in users] + [
            _dm_later(user, users[(i + USERS_PER_NODE) % everyone].nick, "dm 2", KILL_AFTER)
            for i, user in enumerate(users)])
        yield pause(KILL_AFTER)
        nodes[0].kill()
        yield within(talk, SETTLE)            # every request answered: resent after the move
        moved = [user for user in users if homes[user.nick] == 0]
        yield until(lambda: all(user.seen.reconnects for user in moved), SETTLE)
        for user in moved:
            assert user.client.address != ("127.0.0.1", nodes[0].port)
        yield within(defer.gatherResults([
            user.dm(users[(i + USERS_PER_NODE) % everyone].nick, f"dm 3 from {user.nick}")
            for i, user in enumerate(users)]))
        said = sorted(m for user in users for m in user.said)
        assert len(said) == everyone * (LINES_BEFORE + LINES_DURING)
        yield _everyone_shown(users, said, SETTLE)
        yield until(lambda: all(len(user.seen.receipts) == DMS_EACH for user in users))
        for i, user in enumerate(users):
            recipient = users[(i + USERS_PER_NODE) % everyone]
            assert set(user.sent_dms) <= set(recipient.seen.dms)
            assert sorted(user.seen.receipts) == sorted(user.sent_dms)
        for user in users:                    # nothing shown twice, nothing lost
            assert len(user.seen.dms) == DMS_EACH and len(set(user.seen.dms)) == DMS_EACH, user.nick

        # Newest login wins across nodes: alice on node 1, then on node 2.
        first = User("alice", endpoint, hosts_from(nodes, 1))
        yield within(first.client.connect())
        second = User("alice", endpoint, hosts_from(nodes, 2))
        yield within(second.client.connect())
        assert (first.client.address[1], second.client.address[1]) == (nodes[1].port, nodes[2].port)
        yield until(lambda: first.seen.disconnects)
        assert first.seen.errors == ["REPLACED"]
        [(reason, retry_in)] = first.seen.disconnects
        assert reason.startswith("logged in from another session") and retry_in is None  # no fight
        assert second.client.ready and not second.seen.disconnects
        users += [first, second]
        for node in nodes[1:]:
            assert "Traceback" not in node.log_text(), node.log_text()
    finally:
        for user in users:
            user.client.stop()
        for node in nodes:
            node.kill()
        port.stopListening()


@defer.inlineCallbacks
def _say_lines(user: User, label: str, count: int, gap: float):
    for n in range(count):
        yield user.say(f"{label} {n} from {user.nick}")
        if gap:
            yield pause(gap)


@defer.inlineCallbacks
def _dm_later(user: User, to: str, label: str, delay: float):
    """A DM sent just as the node is killed (a little before: the kill lands while it is in flight)."""
    yield pause(delay * 0.9)
    yield user.dm(to, f"{label} from {user.nick}")


@defer.inlineCallbacks
def _everyone_shown(users: list[User], said: list[int], timeout: float = 10):
    """Wait until every user was shown ``said`` (``User.shown_all_but_own``);
    else fail naming who was shown what."""
    try:
        yield until(lambda: all(user.shown_all_but_own(said) for user in users), timeout)
    except AssertionError:
        raise AssertionError("said " + repr(said) + "".join(
            f"\n{user.nick} shown {user.seen.lines}, said {user.said}" for user in users
            if not user.shown_all_but_own(said))) from None

"""
The Lua scripts of ``RedisStore``: every write that changes several keys is
one script, and Redis runs a script whole or not at all, so a node killed
mid-operation (or a connection lost mid-reply) leaves Redis consistent; a
quota is counted in the script that inserts, so racing nodes cannot exceed
it.  Sent with ``EVALSHA`` once the connection knows the script, ``EVAL``
otherwise (txredisapi's ``eval``).

Conventions, for exactness: numbers cross into Lua as decimal strings and
are spliced into JSON as text (``fmt`` for counters), never re-encoded by
cjson (whose 14 significant digits would round large ids).  A JSON object
the caller built gets ``msg_id`` prepended by ``with_id``.  An optional
idempotency record is five arguments: ``"1"`` (or ``"0"``: none), nick key,
key, answer (JSON), ts.

The scripts touch keys they compute (a rename moves a nick's whole
estate), so they need one Redis, not Redis Cluster (docs/CLUSTER.md).
"""

from __future__ import annotations

import attrs

from twistchat.store.base import IDEM_KEPT_PER_NICK
from twistchat.store.redis_keys import lua_key_table

PRELUDE = lua_key_table() + f"local KEPT = {IDEM_KEPT_PER_NICK}\n" + r"""
local function fmt(n) return string.format('%d', n) end
local function with_id(id, object)
  if object == '{}' then return '{"msg_id":' .. id .. '}' end
  return '{"msg_id":' .. id .. ',' .. string.sub(object, 2)
end
local function bump_id(id)
  if tonumber(id) > tonumber(redis.call('GET', K.id) or '0') then redis.call('SET', K.id, id) end
end
local function with_fields(ids, prefix, ...)
  -- each id, then its hash's fields (false where missing), in one flat list
  local out = {}
  for _, id in ipairs(ids) do
    table.insert(out, id)
    for _, v in ipairs(redis.call('HMGET', prefix .. id, ...)) do table.insert(out, v) end
  end
  return out
end
local function decrement(hash, field)
  if redis.call('HINCRBY', hash, field, -1) <= 0 then redis.call('HDEL', hash, field) end
end

local function idem_args(i)
  if ARGV[i] ~= '1' then return nil end
  return {nick = ARGV[i + 1], idem = ARGV[i + 2], answer = ARGV[i + 3], ts = ARGV[i + 4]}
end
local function idem_member(nick, idem) return #nick .. ':' .. nick .. idem end
local function idem_known(r)
  if not r then return false end
  return redis.call('HGET', K.idem .. r.nick, r.idem)
end
local function idem_forget(nick, idem)
  redis.call('HDEL', K.idem .. nick, idem)
  redis.call('ZREM', K.idem_order .. nick, idem)
  redis.call('ZREM', K.idem_age, idem_member(nick, idem))
end
local function idem_keep(r, answer)
  if not r then return end
  redis.call('HSET', K.idem .. r.nick, r.idem, answer)
  redis.call('ZADD', K.idem_order .. r.nick, redis.call('INCR', K.idem_seq), r.idem)
  redis.call('ZADD', K.idem_age, r.ts, idem_member(r.nick, r.idem))
  local excess = redis.call('ZCARD', K.idem_order .. r.nick) - KEPT
  if excess > 0 then
    for _, idem in ipairs(redis.call('ZRANGE', K.idem_order .. r.nick, 0, excess - 1)) do
      idem_forget(r.nick, idem)
    end
  end
end

local function append_line(room, msg_id, fields, keep)
  local line = redis.call('HINCRBY', K.room_lines, room, 1)
  local entry = '{"msg_id":' .. msg_id .. ',"line":' .. fmt(line) .. ',' .. string.sub(fields, 2)
  redis.call('ZADD', K.history .. room, msg_id, entry)
  redis.call('ZREMRANGEBYRANK', K.history .. room, 0, -(keep + 1))
end

local function index_account(key, has_password, last_seen)
  local into, out = K.seen_unclaimed, K.seen_password
  if has_password == '1' then into, out = K.seen_password, K.seen_unclaimed end
  redis.call('ZADD', into, last_seen, key)
  redis.call('ZREM', out, key)
end
local function put_account(i)
  local key = ARGV[i]
  redis.call('HSET', K.account .. key, 'nick', ARGV[i + 1], 'credential', ARGV[i + 2],
             'has_password', ARGV[i + 3], 'created', ARGV[i + 4], 'last_seen', ARGV[i + 5])
  index_account(key, ARGV[i + 3], ARGV[i + 5])
end

local function forget_room(room)
  redis.call('HDEL', K.rooms, room)
  local creator = redis.call('HGET', K.room_creator, room)
  if creator then
    redis.call('SREM', K.created .. creator, room)
    redis.call('HDEL', K.room_creator, room)
  end
end

local function forget_dm(id, to, sender)
  redis.call('DEL', K.dm .. id)
  redis.call('ZREM', K.mailbox .. to, id)
  decrement(K.mailbox_senders .. to, sender)
  redis.call('SREM', K.sent .. sender, id)
  redis.call('DECR', K.dm_count)
end
"""


@attrs.frozen
class Script:
    name: str
    body: str

    @property
    def source(self) -> str:
        return PRELUDE + self.body


APPEND_HISTORY = Script("append_history", """
-- room, msg_id, line fields (JSON without msg_id), keep, idem (5..9)
local r = idem_args(5)
local known = idem_known(r)
if known then return known end
append_line(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
bump_id(ARGV[2])
if r then idem_keep(r, r.answer) end
return false
""")

APPEND_LINE = Script("append_line", """
-- room, line fields, keep, channel ('' none), record fields, idem (6..10) whose
-- answer gets the msg_id allocated here
local r = idem_args(6)
local known = idem_known(r)
if known then return {'known', known} end
local msg_id = fmt(redis.call('INCR', K.id))
append_line(ARGV[1], msg_id, ARGV[2], tonumber(ARGV[3]))
if r then idem_keep(r, with_id(msg_id, r.answer)) end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], with_id(msg_id, ARGV[5])) end
return {'line', msg_id}
""")

CREATE_ROOM = Script("create_room", """
-- room key, state (JSON), creator key, limit (-1: none): kept unless a
-- state is kept already, and counted in the creator's set; {1, state} if
-- created here, {0, the state kept before}, or {-1} if the creator's set
-- holds limit rooms already (nothing kept)
local room, creator, limit = ARGV[1], ARGV[3], tonumber(ARGV[4])
local kept = redis.call('HGET', K.rooms, room)
if kept then return {0, kept} end
if limit >= 0 and redis.call('SCARD', K.created .. creator) >= limit then return {-1} end
redis.call('HSETNX', K.rooms, room, ARGV[2])
redis.call('SADD', K.created .. creator, room)
redis.call('HSET', K.room_creator, room, creator)
return {1, ARGV[2]}
""")

DELETE_ROOM = Script("delete_room", """
-- room key: its state goes, and it leaves its creator's set
forget_room(ARGV[1])
return false
""")

DROP_ROOM = Script("drop_room", """
-- room key, its roster's key (the broker's), channel ('' none), record:
-- the room's state and history go, it leaves its creator's set, and the
-- record is published, only if no node has a member in it (the roster is
-- empty) and no kept membership names it; 1 dropped, 0 held
local room = ARGV[1]
if redis.call('EXISTS', ARGV[2]) == 1 then return 0 end
for _, nick in ipairs(redis.call('SMEMBERS', K.members)) do
  if redis.call('HEXISTS', K.memberships .. nick, room) == 1 then return 0 end
end
forget_room(room)
redis.call('DEL', K.history .. room)
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
""")

PUT_IDEM = Script("put_idem", """
local r = idem_args(1)
local known = idem_known(r)
if known then return known end
idem_keep(r, r.answer)
return false
""")

PURGE_IDEM = Script("purge_idem", """
-- ts, batch: forget up to batch keys kept before ts; returns how many
local old = redis.call('ZRANGEBYSCORE', K.idem_age, '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(old) do
  local n, rest = string.match(member, '^(%d+):(.*)$')
  n = tonumber(n)
  idem_forget(string.sub(rest, 1, n), string.sub(rest, n + 1))
end
return #old
""")

STORE_DM = Script("store_dm", """
-- dm_id, to_key, to_nick, sender, text, ts, sender_key, capacity, per_sender,
-- total (-1: no bound), idem (11..15)
local r = idem_args(11)
local known = idem_known(r)
if known then return {'known', known} end
local id, to, sender_key = ARGV[1], ARGV[2], ARGV[7]
local capacity, per_sender, total = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
if capacity >= 0 and redis.call('ZCARD', K.mailbox .. to) >= capacity then
  return {'refused', 'mailbox'}
end
if per_sender >= 0 and
   tonumber(redis.call('HGET', K.mailbox_senders .. to, sender_key) or '0') >= per_sender then
  return {'refused', 'sender'}
end
if total >= 0 and tonumber(redis.call('GET', K.dm_count) or '0') >= total then
  return {'refused', 'store'}
end
if redis.call('EXISTS', K.dm .. id) == 1 then return redis.error_reply('dm ' .. id .. ' is stored already') end
redis.call('HSET', K.dm .. id, 'to_key', to, 'to_nick', ARGV[3], 'sender', ARGV[4], 'text', ARGV[5],
           'ts', ARGV[6], 'sender_key', sender_key)
redis.call('ZADD', K.mailbox .. to, id, id)
redis.call('HINCRBY', K.mailbox_senders .. to, sender_key, 1)
redis.call('SADD', K.sent .. sender_key, id)
redis.call('INCR', K.dm_count)
bump_id(id)
if r then idem_keep(r, r.answer) end
return {'stored'}
""")

GET_MAILBOX = Script("get_mailbox", """
return with_fields(redis.call('ZRANGE', K.mailbox .. ARGV[1], 0, -1), K.dm,
                   'to_key', 'to_nick', 'sender', 'text', 'ts', 'sender_key')
""")

DM_ACKNOWLEDGED = Script("dm_acknowledged", """
local id = ARGV[1]
local dm = redis.call('HMGET', K.dm .. id, 'to_key', 'sender_key', 'to_nick', 'ts')
if not dm[1] then return false end
local sender = dm[2]
forget_dm(id, dm[1], sender)
local before = redis.call('HGET', K.receipt .. id, 'sender_key')
if before and before ~= sender then redis.call('ZREM', K.receipts .. before, id) end
redis.call('HSET', K.receipt .. id, 'sender_key', sender, 'to_nick', dm[3], 'ts', dm[4])
redis.call('ZADD', K.receipts .. sender, id, id)
return {sender, dm[3], dm[4]}
""")

GET_RECEIPTS = Script("get_receipts", """
return with_fields(redis.call('ZRANGE', K.receipts .. ARGV[1], 0, -1), K.receipt, 'to_nick', 'ts')
""")

DELETE_RECEIPT = Script("delete_receipt", """
local sender = redis.call('HGET', K.receipt .. ARGV[1], 'sender_key')
if sender then
  redis.call('ZREM', K.receipts .. sender, ARGV[1])
  redis.call('DEL', K.receipt .. ARGV[1])
end
return false
""")

PUT_ACCOUNT = Script("put_account", """
put_account(1)
return false
""")

TOUCH_ACCOUNT = Script("touch_account", """
local has_password = redis.call('HGET', K.account .. ARGV[1], 'has_password')
if not has_password then return false end
redis.call('HSET', K.account .. ARGV[1], 'last_seen', ARGV[2])
index_account(ARGV[1], has_password, ARGV[2])
return false
""")

RENAME_ACCOUNT = Script("rename_account", """
-- old key, then the new account as put_account takes it
local old, new, nick = ARGV[1], ARGV[2], ARGV[3]
redis.call('DEL', K.account .. old)
redis.call('ZREM', K.seen_unclaimed, old)
redis.call('ZREM', K.seen_password, old)
put_account(2)
if old == new then return false end
for _, id in ipairs(redis.call('ZRANGE', K.mailbox .. old, 0, -1)) do
  redis.call('HSET', K.dm .. id, 'to_key', new, 'to_nick', nick)
  redis.call('ZADD', K.mailbox .. new, id, id)
end
local senders = redis.call('HGETALL', K.mailbox_senders .. old)
for i = 1, #senders, 2 do redis.call('HINCRBY', K.mailbox_senders .. new, senders[i], senders[i + 1]) end
redis.call('DEL', K.mailbox .. old, K.mailbox_senders .. old)
for _, id in ipairs(redis.call('SMEMBERS', K.sent .. old)) do
  local to = redis.call('HGET', K.dm .. id, 'to_key')
  redis.call('HSET', K.dm .. id, 'sender_key', new)
  decrement(K.mailbox_senders .. to, old)
  redis.call('HINCRBY', K.mailbox_senders .. to, new, 1)
  redis.call('SADD', K.sent .. new, id)
end
redis.call('DEL', K.sent .. old)
for _, id in ipairs(redis.call('ZRANGE', K.receipts .. old, 0, -1)) do
  redis.call('HSET', K.receipt .. id, 'sender_key', new)
  redis.call('ZADD', K.receipts .. new, id, id)
end
redis.call('DEL', K.receipts .. old)
local kept = redis.call('HGETALL', K.idem .. old)
for i = 1, #kept, 2 do
  local idem = kept[i]
  local seq = redis.call('ZSCORE', K.idem_order .. old, idem)
  local ts = redis.call('ZSCORE', K.idem_age, idem_member(old, idem))
  idem_forget(new, idem)
  redis.call('HSET', K.idem .. new, idem, kept[i + 1])
  redis.call('ZADD', K.idem_order .. new, seq, idem)
  redis.call('ZADD', K.idem_age, ts, idem_member(new, idem))
  redis.call('ZREM', K.idem_age, idem_member(old, idem))
end
redis.call('DEL', K.idem .. old, K.idem_order .. old)
if redis.call('EXISTS', K.contacts .. old) == 1 then
  redis.call('SUNIONSTORE', K.contacts .. new, K.contacts .. new, K.contacts .. old)
  redis.call('DEL', K.contacts .. old)
end
local made = redis.call('SMEMBERS', K.created .. old)
for _, room in ipairs(made) do
  redis.call('SADD', K.created .. new, room)
  redis.call('HSET', K.room_creator, room, new)
end
redis.call('DEL', K.created .. old)
local rooms = redis.call('HGETALL', K.memberships .. old)
if #rooms > 0 then
  for i = 1, #rooms, 2 do redis.call('HSET', K.memberships .. new, rooms[i], rooms[i + 1]) end
  redis.call('DEL', K.memberships .. old)
  redis.call('SREM', K.members, old)
  redis.call('SADD', K.members, new)
end
return false
""")

DELETE_EXPIRED_ACCOUNTS = Script("delete_expired_accounts", """
-- last_seen_before, password_seen_before ('' none), batch, keys kept (4..):
-- deletes up to batch accounts with all they own; returns their keys
local keep = {}
for i = 4, #ARGV do keep[ARGV[i]] = true end
local batch = tonumber(ARGV[3])
local candidates = redis.call('ZRANGEBYSCORE', K.seen_unclaimed, '-inf', '(' .. ARGV[1])
if ARGV[2] ~= '' then
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', K.seen_password, '-inf', '(' .. ARGV[2])) do
    table.insert(candidates, key)
  end
end
local gone = {}
for _, key in ipairs(candidates) do
  if #gone >= batch then break end
  if not keep[key] then
    table.insert(gone, key)
    redis.call('DEL', K.account .. key)
    redis.call('ZREM', K.seen_unclaimed, key)
    redis.call('ZREM', K.seen_password, key)
    for _, id in ipairs(redis.call('ZRANGE', K.mailbox .. key, 0, -1)) do
      forget_dm(id, key, redis.call('HGET', K.dm .. id, 'sender_key'))
    end
    redis.call('DEL', K.mailbox .. key, K.mailbox_senders .. key)
    for _, id in ipairs(redis.call('ZRANGE', K.receipts .. key, 0, -1)) do
      redis.call('DEL', K.receipt .. id)
    end
    redis.call('DEL', K.receipts .. key)
    for _, idem in ipairs(redis.call('HKEYS', K.idem .. key)) do
      redis.call('ZREM', K.idem_age, idem_member(key, idem))
    end
    redis.call('DEL', K.idem .. key, K.idem_order .. key, K.contacts .. key, K.memberships .. key)
    redis.call('SREM', K.members, key)
  end
end
return gone
""")

# ---- contacts and memberships (redis_social)

WATCH = Script("watch", """
-- owner, contact, limit: 1 added, 0 there already, -1 the list is full
local list = K.contacts .. ARGV[1]
if redis.call('SISMEMBER', list, ARGV[2]) == 1 then return 0 end
if redis.call('SCARD', list) >= tonumber(ARGV[3]) then return -1 end
redis.call('SADD', list, ARGV[2])
return 1
""")

GET_CONTACTS = Script("get_contacts", """
local keys = redis.call('SMEMBERS', K.contacts .. ARGV[1])
table.sort(keys)
return with_fields(keys, K.account, 'nick', 'last_seen')
""")

KEEP_MEMBERSHIP = Script("keep_membership", """
-- nick, room key, room name: marked at the room's newest kept line
local rooms = K.memberships .. ARGV[1]
if redis.call('HEXISTS', rooms, ARGV[2]) == 1 then return false end
local newest = redis.call('ZRANGE', K.history .. ARGV[2], -1, -1, 'WITHSCORES')
local lines = redis.call('HGET', K.room_lines, ARGV[2]) or '0'
local seq = fmt(redis.call('INCR', K.membership_seq))
redis.call('HSET', rooms, ARGV[2], (newest[2] or '0') .. ' ' .. lines .. ' ' .. seq .. ' ' .. ARGV[3])
redis.call('SADD', K.members, ARGV[1])
return false
""")

DROP_MEMBERSHIP = Script("drop_membership", """
redis.call('HDEL', K.memberships .. ARGV[1], ARGV[2])
if redis.call('HLEN', K.memberships .. ARGV[1]) == 0 then redis.call('SREM', K.members, ARGV[1]) end
return false
""")

MEMBERSHIP_ROOMS = Script("membership_rooms", """
local out = {}
for _, nick in ipairs(redis.call('SMEMBERS', K.members)) do
  for _, room in ipairs(redis.call('HKEYS', K.memberships .. nick)) do
    table.insert(out, nick)
    table.insert(out, room)
  end
end
return out
""")

ADVANCE_MARKS = Script("advance_marks", """
-- (nick, room, msg_id) triples: each mark moves forward only
for i = 1, #ARGV, 3 do
  local rooms, room, msg_id = K.memberships .. ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local kept = redis.call('HGET', rooms, room)
  if kept then
    local last_seen, seen_line, seq, name = string.match(kept, '^(%d+) (%d+) (%d+) (.*)$')
    if tonumber(last_seen) < tonumber(msg_id) then
      local line = redis.call('ZRANGEBYSCORE', K.history .. room, msg_id, msg_id)[1]
      if line then seen_line = string.match(line, '^{"msg_id":%d+,"line":(%d+),') end
      redis.call('HSET', rooms, room, msg_id .. ' ' .. seen_line .. ' ' .. seq .. ' ' .. name)
    end
  end
end
return false
""")

GET_MISSED = Script("get_missed", """
-- room, since, limit: {lines ever kept, newest kept lines after since (newest first)}
local lines = {}
if tonumber(ARGV[3]) > 0 then
  lines = redis.call('ZREVRANGEBYSCORE', K.history .. ARGV[1], '+inf', '(' .. ARGV[2],
                     'LIMIT', 0, tonumber(ARGV[3]))
end
return {redis.call('HGET', K.room_lines, ARGV[1]) or '0', lines}
""")

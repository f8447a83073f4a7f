"""The job store in Redis (scale-out): the same contract as :class:`SqliteJobStore`, each
transition one Lua script, so that any number of web processes and workers on any machines
agree. Queue messages are pushed onto huey's own list inside the accepting script.

Keys (prefix ``dg:<queue name>:``): ``delivery:<id>`` → job key (expires after a week, longer
than GitHub offers a redelivery); ``pr:<pr_key>`` hash {head, updated_at}; ``job:<key>`` hash;
``active`` sorted set of queued/running jobs scored by the time the reaper should look at them.
"""

from __future__ import annotations

from typing import Any

from huey.storage import RedisStorage

from depthgate.app.jobs import Accepted, Claim, JobRecord, JobSpec, JobState, Skip
from depthgate.app.store import new_token

DELIVERY_TTL_S = 7 * 24 * 3600
FINISHED_TTL_S = 30 * 24 * 3600

# KEYS: delivery, job, pr, huey queue, active. ARGV: job key, pr key, head, updated_at, spec,
# payload, message, now, delivery ttl, stale_s
_ACCEPT = """
local created = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[9])
local function queue()
  redis.call('HSET', KEYS[2], 'state', 'queued', 'token', '', 'error', '', 'attempts', 0,
             'lease_until', ARGV[8], 'updated', ARGV[8])
  redis.call('PERSIST', KEYS[2])
  redis.call('ZADD', KEYS[5], tonumber(ARGV[8]) + tonumber(ARGV[10]), ARGV[1])
  redis.call('LPUSH', KEYS[4], ARGV[7])
end
if not created then
  if redis.call('HGET', KEYS[2], 'state') ~= 'failed' then return 'duplicate' end
  queue()
  return 'requeued'
end
if ARGV[2] ~= '' then
  local cur = redis.call('HGET', KEYS[3], 'updated_at')
  if (not cur) or ARGV[4] >= cur then
    redis.call('HSET', KEYS[3], 'head', ARGV[3], 'updated_at', ARGV[4])
  end
end
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'queued' or state == 'running' then return 'collapsed' end
redis.call('HSET', KEYS[2], 'spec', ARGV[5], 'payload', ARGV[6], 'pr_key', ARGV[2],
           'head', ARGV[3])
queue()
return 'queued'
"""

# KEYS: job, pr, active. ARGV: job key, now, lease_s, token
_CLAIM = """
local j = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'spec', 'payload', 'reviewed',
                     'pr_key', 'head')
if not j[1] then return {'skip', 'unknown job'} end
if j[1] ~= 'queued' then return {'skip', 'job is ' .. j[1]} end
if j[6] and j[6] ~= '' then
  local head = redis.call('HGET', KEYS[2], 'head')
  if head and head ~= j[7] then
    redis.call('HSET', KEYS[1], 'state', 'superseded', 'updated', ARGV[2])
    redis.call('ZREM', KEYS[3], ARGV[1])
    return {'skip', 'superseded'}
  end
end
local attempts = tonumber(j[2] or '0') + 1
local until_ = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'running', 'attempts', attempts, 'token', ARGV[4],
           'lease_until', until_, 'updated', ARGV[2])
redis.call('ZADD', KEYS[3], until_, ARGV[1])
return {'ok', tostring(attempts), j[3], j[4], j[5] or ''}
"""

# KEYS: job, active. ARGV: job key, token, until
_HEARTBEAT = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS: job, active. ARGV: job key, token, state, conclusion, error, config hash, now, ttl
_FINISH = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'conclusion', ARGV[4], 'error', ARGV[5],
           'token', '', 'updated', ARGV[7])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'reviewed', ARGV[6]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[8])
return 1
"""

# KEYS: job, active. ARGV: job key, token, due, error, stale_s
_RETRY = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'token', '', 'lease_until', ARGV[3],
           'error', ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[5]), ARGV[1])
return 1
"""

# KEYS: job, active. ARGV: job key, now, stale_s
_REAP_ONE = """
local j = redis.call('HMGET', KEYS[1], 'state', 'lease_until')
local now = tonumber(ARGV[2])
if (j[1] == 'running' and tonumber(j[2]) < now)
   or (j[1] == 'queued' and tonumber(j[2]) < now - tonumber(ARGV[3])) then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'token', '', 'lease_until', ARGV[2])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
  return 1
end
if j[1] ~= 'queued' and j[1] ~= 'running' then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 0
"""


def _s(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisJobStore:
    def __init__(self, storage: RedisStorage, *, stale_s: float = 900.0) -> None:
        self.storage = storage
        self.conn = storage.conn
        self.queue_key: str = storage.queue_key
        self.prefix = f"dg:{storage.name}:"
        self.stale_s = stale_s
        self._accept = self.conn.register_script(_ACCEPT)
        self._claim = self.conn.register_script(_CLAIM)
        self._heartbeat = self.conn.register_script(_HEARTBEAT)
        self._finish = self.conn.register_script(_FINISH)
        self._retry = self.conn.register_script(_RETRY)
        self._reap_one = self.conn.register_script(_REAP_ONE)

    def _job(self, key: str) -> str:
        return f"{self.prefix}job:{key}"

    def _pr(self, pr_key: str | None) -> str:
        return f"{self.prefix}pr:{pr_key or '-'}"

    @property
    def _active(self) -> str:
        return f"{self.prefix}active"

    def accept(self, spec: JobSpec, payload: bytes, message: bytes, now: float) -> Accepted:
        result = self._accept(
            keys=[
                f"{self.prefix}delivery:{spec.delivery_id}",
                self._job(spec.key),
                self._pr(spec.pr_key),
                self.queue_key,
                self._active,
            ],
            args=[
                spec.key,
                spec.pr_key or "",
                spec.head_sha or "",
                spec.updated_at,
                spec.to_json(),
                payload,
                message,
                repr(now),
                DELIVERY_TTL_S,
                repr(self.stale_s),
            ],
        )
        return Accepted(_s(result))

    def claim(self, key: str, now: float, lease_s: float) -> Claim | Skip:
        token = new_token()
        res = self._claim(
            keys=[self._job(key), self._pr(self._pr_key_of(key)), self._active],
            args=[key, repr(now), repr(lease_s), token],
        )
        if _s(res[0]) == "skip":
            return Skip(_s(res[1]))
        attempt, spec, payload, reviewed = int(res[1]), _s(res[2]), res[3], _s(res[4])
        return Claim(JobSpec.from_json(spec), bytes(payload), attempt, token, reviewed or None)

    def _pr_key_of(self, key: str) -> str | None:
        pr_key = self.conn.hget(self._job(key), "pr_key")
        return _s(pr_key) or None if pr_key is not None else None

    def heartbeat(self, key: str, token: str, until: float) -> bool:
        return bool(
            self._heartbeat(keys=[self._job(key), self._active], args=[key, token, repr(until)])
        )

    def finish(
        self,
        key: str,
        token: str,
        state: JobState,
        *,
        now: float,
        conclusion: str | None = None,
        error: str | None = None,
        config_hash: str | None = None,
    ) -> bool:
        args = [key, token, str(state), conclusion or "", error or "", config_hash or ""]
        return bool(
            self._finish(
                keys=[self._job(key), self._active], args=[*args, repr(now), FINISHED_TTL_S]
            )
        )

    def retry_later(self, key: str, token: str, due: float, error: str) -> bool:
        return bool(
            self._retry(
                keys=[self._job(key), self._active],
                args=[key, token, repr(due), error, repr(self.stale_s)],
            )
        )

    def reap(self, now: float, stale_s: float) -> list[str]:
        keys: list[str] = []
        for raw in self.conn.zrangebyscore(self._active, "-inf", repr(now), start=0, num=1000):
            key = _s(raw)
            if self._reap_one(keys=[self._job(key), self._active], args=[key, repr(now), stale_s]):
                keys.append(key)
        return keys

    def is_current(self, spec: JobSpec) -> bool:
        if spec.pr_key is None:
            return True
        head = self.conn.hget(self._pr(spec.pr_key), "head")
        return head is None or _s(head) == spec.head_sha

    def record(self, key: str) -> JobRecord | None:
        row = self.conn.hmget(
            self._job(key), ["state", "attempts", "conclusion", "error", "reviewed"]
        )
        if row[0] is None:
            return None
        state, attempts, conclusion, error, reviewed = (_s(v) if v is not None else "" for v in row)
        return JobRecord(
            key,
            JobState(state),
            int(attempts or 0),
            conclusion or None,
            error or None,
            reviewed or None,
        )

    def delivery_seen(self, delivery_id: str) -> bool:
        return bool(self.conn.exists(f"{self.prefix}delivery:{delivery_id}"))

    def active_count(self) -> int:
        return int(self.conn.zcard(self._active))

    def ping(self) -> None:
        self.conn.ping()

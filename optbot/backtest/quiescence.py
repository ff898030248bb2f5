"""Is the bus quiet? Every consumer group has read and acked all there is, nothing new.

One Lua call (one round trip, one consistent instant) looks at every stream in Redis:
for each consumer group, entries delivered but not acked (``pending``) and entries not
yet delivered (its ``last-delivered-id`` behind the stream's ``last-generated-id``, which
is what XINFO's ``lag`` counts, also when trimming left ``lag`` unknown; a group created
at an id beyond an empty stream is not behind); and the sum of
``entries-added`` over the streams, so the driver can tell that nothing was published
since it last looked. The clock stream itself is left out: the driver writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

_SCRIPT = """
local skip = ARGV[1]
local function behind(a, b)  -- stream id a < b
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local added = 0
local busy = {}
local cursor = "0"
repeat
  local page = redis.call('SCAN', cursor, 'COUNT', 1000, 'TYPE', 'stream')
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    if key ~= skip then
      local info = redis.call('XINFO', 'STREAM', key)
      local last, n = '0-0', 0
      for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then last = info[i + 1] end
        if info[i] == 'entries-added' then n = info[i + 1] end
      end
      added = added + n
      for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
        local name, pending, delivered = '', 0, '0-0'
        for i = 1, #g, 2 do
          if g[i] == 'name' then name = g[i + 1] end
          if g[i] == 'pending' then pending = g[i + 1] end
          if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
        end
        if pending > 0 or behind(delivered, last) then
          busy[#busy + 1] = key .. '/' .. name .. ' pending=' .. pending ..
            ' delivered=' .. delivered .. ' last=' .. last
        end
      end
    end
  end
until cursor == "0"
return {added, busy}
"""


@dataclass(frozen=True)
class BusState:
    """The bus at one instant: entries ever added (all streams but the clock), and the
    consumer groups that still have something to read or to ack."""

    added: int
    busy: list[str] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        return not self.busy


class Quiescence:
    """Reads ``BusState`` in one round trip (the script is loaded once)."""

    def __init__(self, redis: aioredis.Redis, clock_stream: str) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._clock_stream = clock_stream

    async def state(self) -> BusState:
        raw: Any = await self._script(keys=[], args=[self._clock_stream])
        added, busy = raw
        return BusState(int(added), [b.decode() if isinstance(b, bytes) else b for b in busy])

    async def quiet_since(self, added_before: int) -> tuple[bool, BusState]:
        """Quiet now, and nothing published since ``added_before`` was read."""
        now = await self.state()
        return now.idle and now.added == added_before, now

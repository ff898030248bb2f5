"""Market-data subscriptions: the desired set, the open lines, resubscription.

The desired set (what consumers asked for, with priorities) is kept in Redis
(``gw:subs``) so a standby that takes over, or a restarted adapter, opens exactly
the same lines. Lines are opened only for qualified contracts, through the pacer,
within the line budget.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.gateway_adapter.budget import PRIO_POSITION, LineBudget, effective_priority
from services.gateway_adapter.connection import IbConnection
from services.gateway_adapter.pacing import TokenBucket
from services.gateway_adapter.publish import QuotePublisher
from services.gateway_adapter.qualify import Failure, Qualified, Qualifier
from services.gateway_adapter.status import StatusReporter
from shared.contract import GW_SUBS as SUBS_KEY
from shared.contract import last_quote_key
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import ContractRef, SecType

log = get_logger("optbot.gateway_adapter.subscriptions")

MAX_TICKERS = 101  # IB: "Max number of tickers has been reached" (also our budget refusals)
NOT_SUBSCRIBED = 354  # IB: no market-data subscription for this symbol
DELAYED_INSTEAD = 10167  # IB: not subscribed, displaying delayed data
LINE_DEAD = frozenset({200, 300, MAX_TICKERS})  # the line is not (or no longer) open
DELAYED = 3


class Desired(msgspec.Struct, frozen=True):
    ref: ContractRef
    priority: int
    delayed: bool = False  # fall back to delayed data (after 354)
    requesters: tuple[str, ...] = ("",)  # who still needs the line ("" = anonymous)


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Desired)


class Subscriptions:
    """Owns the desired set and the open lines; reacts to line-level IB errors."""

    def __init__(
        self,
        *,
        conn: IbConnection,
        qualifier: Qualifier,
        quotes: QuotePublisher,
        pacer: TokenBucket,
        status: StatusReporter,
        redis: aioredis.Redis,
        max_lines: int,
        index_symbols: frozenset[str],
        held: Any = frozenset,  # () -> set of held ContractRef keys
        data_type_code: int = 1,
        last_ttl_s: int = 3600,
    ) -> None:
        self._conn = conn
        self._last_ttl_s = last_ttl_s
        self._qualifier = qualifier
        self._quotes = quotes
        self._pacer = pacer
        self._status = status
        self._redis = redis
        self._index = index_symbols
        self._held = held
        self._data_type = data_type_code
        self.budget = LineBudget(max_lines)
        self.desired: dict[str, Desired] = {}
        self.open: dict[str, Qualified] = {}
        self._by_contract: dict[int, str] = {}  # id(ib contract) -> key
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._set_up_on = -1  # conn.connects of the connection reopen_all set up
        conn.listeners.append(self._on_error)

    def _spawn(self, aw: Any) -> None:
        """Follow-up work from a synchronous IB callback, kept referenced until done."""
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_up(self) -> bool:
        """Connected, and ``reopen_all`` has run for this connection.

        A line opened between the connect and ``reopen_all`` would be cleared and
        requested again by it: IB would keep a second line that nothing ever cancels."""
        return self._conn.connected and self._set_up_on == self._conn.connects

    def reset(self) -> None:
        """Forget everything in memory (a new term reloads the desired set from Redis)."""
        self._set_up_on = -1
        self.budget = LineBudget(self.budget.limit)
        self.desired.clear()
        self.open.clear()
        self._by_contract.clear()
        self._quotes.clear()

    async def load(self) -> int:
        """Read the desired set a previous owner left in ``gw:subs``."""
        raw = await self._redis.hgetall(SUBS_KEY)
        for field, value in raw.items():
            try:
                d = _dec.decode(value)
            except msgspec.DecodeError:
                continue
            key = as_str(field)
            if self.budget.admit(key, d.priority).ok:
                self.desired[key] = d
        return len(self.desired)

    # --- requests ---------------------------------------------------------------------------

    async def subscribe(
        self, refs: list[ContractRef], priority: int, requester: str = ""
    ) -> dict[str, str]:
        """Admit, persist and (when connected) open; returns refusal reasons by key.

        Each line remembers its requesters, so one requester's unsubscribe never
        closes a line another still needs.
        """
        refused: dict[str, str] = {}
        admitted: list[str] = []
        held = self._held()
        for key in held:  # a chain line we came to hold is no longer a chain line
            if key in self.budget:
                self.budget.admit(key, PRIO_POSITION)
        for ref in refs:
            key = ref.key
            prio = effective_priority(
                priority,
                held=key in held,
                index=ref.sec_type is not SecType.OPT and ref.symbol.upper() in self._index,
            )
            adm = self.budget.admit(key, prio)
            if not adm.ok:
                refused[key] = adm.reason
                self._status.error(MAX_TICKERS, adm.reason, symbol=key, severity="refused")
                continue
            if adm.evict is not None:
                await self._evict(adm.evict, key, prio)
            old = self.desired.get(key)
            who = tuple(sorted({*(old.requesters if old else ()), requester}))
            self.desired[key] = Desired(
                ref, self.budget.priority(key) or prio, old.delayed if old else False, who
            )
            admitted.append(key)
        if admitted:
            await self._persist(admitted)
            if self._set_up():  # else reopen_all opens them with the rest
                await self.open_lines(admitted)
        return refused

    async def unsubscribe(self, refs: list[ContractRef], requester: str = "") -> list[str]:
        """Drop ``requester``'s claim; close a line only when nobody (and no position) needs it.

        Returns the keys whose lines were closed.
        """
        held = self._held()
        closed: list[str] = []
        kept: list[str] = []
        for key in dict.fromkeys(r.key for r in refs if r.key in self.desired):
            d = self.desired[key]
            who = tuple(r for r in d.requesters if r != requester)
            if who or key in held:
                self.desired[key] = Desired(d.ref, d.priority, d.delayed, who)
                kept.append(key)
                continue
            self.desired.pop(key, None)
            self.budget.release(key)
            await self._close_line(key)
            closed.append(key)
        if closed:
            await self._redis.hdel(SUBS_KEY, *closed)
        if kept:
            await self._persist(kept)
        return closed

    async def _evict(self, victim: str, for_key: str, prio: int) -> None:
        self.desired.pop(victim, None)
        await self._close_line(victim)
        await self._redis.hdel(SUBS_KEY, victim)
        self._status.error(
            MAX_TICKERS,
            f"line evicted to make room for {for_key} (priority {prio})",
            symbol=victim,
            severity="evicted",
        )

    async def _persist(self, keys: list[str]) -> None:
        mapping = {k: _enc.encode(self.desired[k]) for k in keys if k in self.desired}
        if mapping:
            await self._redis.hset(SUBS_KEY, mapping=mapping)  # type: ignore[arg-type]

    # --- lines -----------------------------------------------------------------------------

    async def open_lines(self, keys: list[str]) -> None:
        """Qualify (cache first) and reqMktData each desired key not open yet."""
        async with self._lock:
            todo = [self.desired[k].ref for k in keys if k in self.desired and k not in self.open]
            if not todo:
                return
            results = await self._qualifier.qualify(todo)
            for key, res in results.items():
                if isinstance(res, Failure):
                    self._refuse(key, res.code, res.reason)
                elif key in self.desired:
                    await self._request(key, res)

    async def _request(self, key: str, q: Qualified) -> None:
        await self._pacer.take()
        d = self.desired.get(key)
        if d is None or key in self.open:  # refused or unsubscribed while we waited
            return
        delayed = d.delayed and self._data_type < DELAYED
        if delayed:  # per-symbol fallback after 354: reqMarketDataType applies per request
            self._conn.ib.reqMarketDataType(DELAYED)
        ticker = self._conn.ib.reqMktData(q.contract)
        if delayed:
            self._conn.ib.reqMarketDataType(self._data_type)
        self._by_contract[id(q.contract)] = key
        self._quotes.route(ticker, q.ref)
        self.open[key] = q
        await self._set_expiry(key, live=True)

    async def _close_line(self, key: str) -> None:
        q = self.open.pop(key, None)
        self._quotes.unroute(key)
        if q is None:
            return
        await self._set_expiry(key, live=False)
        self._by_contract.pop(id(q.contract), None)
        if self._conn.connected:
            await self._pacer.take()
            self._conn.ib.cancelMktData(q.contract)

    async def _set_expiry(self, key: str, *, live: bool) -> None:
        """A closed line's last quote stays readable for a while, then goes (the strategy
        streams new option contracts all day; each would leave a hash forever); a live
        line's never expires. Awaited, not spawned: a close then a reopen must reach
        Redis in that order."""
        name = last_quote_key(key)
        try:
            if live:
                await self._redis.persist(name)
            else:
                await self._redis.expire(name, self._last_ttl_s)
        except RedisError as exc:  # the hash only lingers or expires late: log, go on
            log.warning("last_quote_expiry_failed", key=key, error=str(exc))

    def _refuse(self, key: str, code: int, reason: str) -> None:
        """A contract IB cannot serve: report it, forget it, keep running."""
        self._status.error(code, reason, symbol=key, severity="refused")
        self.desired.pop(key, None)
        self.budget.release(key)
        q = self.open.pop(key, None)
        if q is not None:
            self._by_contract.pop(id(q.contract), None)
        self._quotes.unroute(key)
        self._spawn(self._redis.hdel(SUBS_KEY, key))
        self._spawn(self._set_expiry(key, live=False))

    async def reopen_all(self) -> None:
        """After a (re)connect: every previous line is gone; open the desired set again."""
        self._set_up_on = self._conn.connects
        self.open.clear()
        self._by_contract.clear()
        self._quotes.clear()
        await self.open_lines(list(self.desired))

    async def resubscribe(self) -> None:
        """1101 (connectivity restored, data lost): cancel and request every line again."""
        keys = list(self.open)
        for key in keys:
            await self._close_line(key)
        await self.open_lines(keys)

    # --- IB errors about our lines -----------------------------------------------------------

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> bool:
        key = self._by_contract.get(id(contract)) if contract is not None else None
        if key is None:
            return False
        if code == NOT_SUBSCRIBED and self._data_type < DELAYED and key in self.desired:
            d = self.desired[key]
            if not d.delayed:
                self._status.error(
                    code,
                    f"{text} (retrying as delayed)",
                    req_id=req_id,
                    symbol=key,
                    severity="warning",
                )
                self.desired[key] = Desired(d.ref, d.priority, True, d.requesters)
                self.open.pop(key, None)
                self._spawn(self._retry(key))
                return True
        if code == DELAYED_INSTEAD:
            self._status.error(code, text, req_id=req_id, symbol=key, severity="warning")
            return True
        if code == MAX_TICKERS and self._make_room(key, req_id, text):
            return True
        if code in LINE_DEAD or code == NOT_SUBSCRIBED:
            self._refuse(key, code, text)
            return True
        self._status.error(code, text, req_id=req_id, symbol=key)
        return True

    def _make_room(self, key: str, req_id: int, text: str) -> bool:
        """IB 101 although our budget had room: IB counts lines we do not (TWS itself,
        another client, a limit below OPTBOT_IB_MAX_LINES). A line takes the lowest open
        line below its priority instead of being dropped; a chain line never can."""
        prio = self.budget.priority(key)
        if prio is None or key not in self.desired:
            return False
        victim = self.budget.lowest_below(prio, among=set(self.open) - {key})
        if victim is None:
            return False
        self._status.error(
            MAX_TICKERS,
            f"{text} (IB's own limit; giving it {victim}'s line)",
            req_id=req_id,
            symbol=key,
            severity="warning",
        )
        q = self.open.pop(key, None)
        if q is not None:
            self._by_contract.pop(id(q.contract), None)
        self.budget.release(victim)
        self._spawn(self._evict_and_retry(victim, key, prio))
        return True

    async def _evict_and_retry(self, victim: str, key: str, prio: int) -> None:
        await self._evict(victim, key, prio)
        await self.open_lines([key])

    async def _retry(self, key: str) -> None:
        await self._persist([key])
        await self.open_lines([key])

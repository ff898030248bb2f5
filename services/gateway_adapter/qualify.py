"""Contract qualification with a conId cache in Redis (``gw:contracts``).

IB answers "Can't find EId" / 200 for requests on contracts it cannot resolve;
the old system sent unqualified contracts and got exactly that. Every contract is
qualified (``qualifyContractsAsync``) before any request, and the result is kept
in the hash ``gw:contracts`` (field = ContractRef.key, value = JSON of the IB
contract), so a restarted adapter reuses it instead of asking again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import msgspec
import redis.asyncio as aioredis
from ib_async import Contract, Index, Option, Stock

from services.gateway_adapter.connection import IbConnection
from services.gateway_adapter.pacing import TokenBucket
from shared.contract import GW_CONTRACTS as CACHE_KEY
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import ContractRef, SecType

log = get_logger("optbot.gateway_adapter.qualify")

NO_DEFINITION = 200  # IB: "No security definition has been found for the request"
_CHUNK = 20
_FIELDS = (
    "conId",
    "symbol",
    "secType",
    "lastTradeDateOrContractMonth",
    "strike",
    "right",
    "multiplier",
    "exchange",
    "primaryExchange",
    "currency",
    "localSymbol",
    "tradingClass",
)
INDEX_EXCHANGES = {"VIX": "CBOE", "SPX": "CBOE", "VXN": "CBOE", "NDX": "NASDAQ", "RUT": "RUSSELL"}


@dataclass(frozen=True, slots=True)
class Qualified:
    ref: ContractRef  # as requested, with con_id (and multiplier) filled in
    contract: Contract


@dataclass(frozen=True, slots=True)
class Failure:
    code: int
    reason: str


def to_ib(ref: ContractRef) -> Contract:
    """The (unqualified) ib_async contract for a ContractRef."""
    if ref.sec_type is SecType.IND:
        exchange = (
            ref.exchange if ref.exchange != "SMART" else INDEX_EXCHANGES.get(ref.symbol, "CBOE")
        )
        return Index(ref.symbol, exchange, ref.currency, conId=ref.con_id)
    if ref.sec_type is SecType.OPT:
        return Option(
            ref.symbol,
            ref.expiry,
            ref.strike or 0.0,
            ref.right.value if ref.right else "",
            ref.exchange,
            multiplier=str(ref.multiplier) if ref.multiplier > 1 else "",
            currency=ref.currency,
            conId=ref.con_id,
        )
    return Stock(ref.symbol, ref.exchange, ref.currency, conId=ref.con_id)


def contract_json(c: Contract) -> str:
    return json.dumps({f: getattr(c, f) for f in _FIELDS}, separators=(",", ":"))


def contract_from_json(raw: bytes | str) -> Contract | None:
    """A cached contract, or None when the entry is unreadable or incomplete."""
    try:
        data = json.loads(raw)
        c = Contract(**{f: data[f] for f in _FIELDS})
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(c.conId, int) and c.conId > 0 and c.symbol and c.secType and c.exchange):
        return None
    if c.secType == "OPT" and not (c.lastTradeDateOrContractMonth and c.strike and c.right):
        return None
    return c


def qualified_ref(ref: ContractRef, c: Contract) -> ContractRef:
    mult = int(float(c.multiplier)) if c.multiplier else ref.multiplier
    return msgspec.structs.replace(ref, con_id=c.conId, multiplier=max(1, mult))


class Qualifier:
    """Qualifies ContractRefs, from the cache when it can, from IB when it must."""

    def __init__(
        self, conn: IbConnection, redis: aioredis.Redis, pacer: TokenBucket, timeout_s: float
    ) -> None:
        self._conn = conn
        self._redis = redis
        self._pacer = pacer
        self._timeout = timeout_s
        self.cache: dict[str, Contract] = {}
        self.from_ib = 0
        self.from_cache = 0

    async def load(self) -> int:
        """Read ``gw:contracts``; incomplete entries are dropped (and re-qualified later)."""
        raw = await self._redis.hgetall(CACHE_KEY)
        for field, value in raw.items():
            key = as_str(field)
            c = contract_from_json(value)
            if c is not None:
                self.cache[key] = c
        return len(self.cache)

    def cached(self, ref: ContractRef) -> Qualified | None:
        c = self.cache.get(ref.key)
        return Qualified(qualified_ref(ref, c), c) if c is not None else None

    async def qualify(self, refs: list[ContractRef]) -> dict[str, Qualified | Failure]:
        """Every ref's outcome by key; IB is asked only for what the cache lacks."""
        out: dict[str, Qualified | Failure] = {}
        missing: list[ContractRef] = []
        for ref in refs:
            hit = self.cached(ref)
            if hit is not None:
                self.from_cache += 1
                out[ref.key] = hit
            elif ref.key not in out:
                missing.append(ref)
        # One reqContractDetails per contract: a chunk never exceeds the bucket's burst, so
        # the messages are spread out as the tokens come, not sent together after them
        # (IB error 100 counts any sliding second).
        chunk = max(1, min(_CHUNK, int(self._pacer.burst)))
        for i in range(0, len(missing), chunk):
            out.update(await self._ask_ib(missing[i : i + chunk]))
        return out

    async def _ask_ib(self, refs: list[ContractRef]) -> dict[str, Qualified | Failure]:
        contracts = [to_ib(r) for r in refs]
        await self._pacer.take(len(contracts))
        with self._conn.watch(contracts) as errors:
            try:
                results = await asyncio.wait_for(
                    self._conn.ib.qualifyContractsAsync(*contracts, returnAll=True), self._timeout
                )
            except TimeoutError:
                return {r.key: Failure(0, "qualification timed out") for r in refs}
        out: dict[str, Qualified | Failure] = {}
        fresh: dict[str, str] = {}
        for ref, c, res in zip(refs, contracts, results, strict=True):
            if isinstance(res, Contract) and res.conId:
                self.from_ib += 1
                self.cache[ref.key] = res
                fresh[ref.key] = contract_json(res)
                out[ref.key] = Qualified(qualified_ref(ref, res), res)
            elif isinstance(res, list):
                names = ", ".join(
                    f"{p.symbol}/{p.currency}/{p.primaryExchange or p.exchange}"
                    for p in res[:4]
                    if p is not None
                )
                out[ref.key] = Failure(
                    NO_DEFINITION, f"ambiguous contract: {len(res)} matches ({names})"
                )
            else:
                code, text = (errors[id(c)] or [(NO_DEFINITION, "unknown contract")])[0]
                out[ref.key] = Failure(code, text)
        if fresh:
            await self._redis.hset(CACHE_KEY, mapping=fresh)  # type: ignore[arg-type]
        return out

"""Trading cycles: entries on a schedule and on new signals; exits every second.

An entry cycle walks the momentum candidates that agree with market sentiment,
asks the gateway for each one's option chain, waits briefly for the chain's
quotes, selects a contract, sizes it and hands the order to the desk. Each step
that stops short is a decision with its reason. Exits, repricing, marks and the
daily-loss halt run on the faster management tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections.abc import Callable
from decimal import Decimal

from redis.exceptions import RedisError

from services.strategy.chains import ChainClient, itm_moneyness
from services.strategy.cooldown import ChainCooldown
from services.strategy.desk import Books, Context, Desk
from services.strategy.exits import ExitParams, exit_reason
from services.strategy.gate import entry_block, entry_room, free_slots
from services.strategy.ledger import Holding, trading_day
from services.strategy.money import ZERO, cents, dec, fmt
from services.strategy.orders import contract_side, entry_id, exit_id, limit_price
from services.strategy.risk import RISK_ENGINE, RiskState, daily_loss_limit, total_premium_cap
from services.strategy.selection import OptionView, SelectionParams, right_for, select
from services.strategy.sizing import size_order
from shared import clock
from shared.contract import GW_COMMANDS
from shared.logs import get_logger
from shared.schemas import (
    NO_CONTRACT_IN_WINDOW,
    Action,
    Candidate,
    ContractRef,
    DecisionKind,
    DecisionOutcome,
    Direction,
    OptionChain,
    OrderNew,
    Sentiment,
    Unsubscribe,
)
from shared.settings import Settings

log = get_logger("optbot.strategy.cycle")

DAY_OPEN_WAIT_S = 30.0  # longest wait for fresh marks before a day opens without them
AGREES = {Direction.LONG: Sentiment.BULLISH, Direction.SHORT: Sentiment.BEARISH}


def utcnow() -> dt.datetime:
    return clock.current().now()


def clock_time() -> float:
    return clock.current().time()


class Cycles:
    def __init__(self, books: Books, desk: Desk, chains: ChainClient, settings: Settings) -> None:
        self.books = books
        self.desk = desk
        self.chains = chains
        self.s = settings
        self.selection = SelectionParams.from_settings(settings)
        self.exit_params = ExitParams.from_settings(settings)
        self.cooldown = ChainCooldown.from_settings(settings)
        self.wake = asyncio.Event()
        self.cycles = 0
        self._seq = itertools.count(1)
        self._lock = asyncio.Lock()
        self.flatten_pending: dict[str, str] = {}  # contract key -> who asked
        self.wall_clock: Callable[[], float] = clock_time  # the trading day's clock
        self._day_wait_from: float | None = None

    def cycle_id(self) -> str:
        return f"{utcnow():%Y%m%d-%H%M%S}-{next(self._seq)}"

    async def run(self, stop: asyncio.Event) -> None:
        """Entry cycles every interval, or sooner when a signal wakes us."""
        while not stop.is_set():
            try:
                await self.entry_cycle()
            except RedisError as exc:  # Redis away: the next cycle tries again
                log.warning("cycle_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await clock.current().wait_for(
                    _first(stop, self.wake), self.s.strat_cycle_interval_s
                )
            self.wake.clear()

    # --- entries ------------------------------------------------------------------------

    async def entry_cycle(self) -> None:
        async with self._lock:
            self.cycles += 1
            cycle = self.cycle_id()
            status = await self.desk.refresh_status()
            if status.state is not RiskState.ACTIVE:
                ctx = Context(cycle, DecisionKind.ENTRY)
                reason = f"no entries: risk state {status.state.value} ({status.why})"
                self.desk.decide(ctx, DecisionOutcome.SKIPPED, reason, dedupe="cycle")
                return
            # What risk would deny whatever the contract is decided before any chain
            # (each chain opens market-data lines), and no more chains than free slots.
            view = self.desk.view("-", clock.current().monotonic())
            limits = self.desk.risk.limits
            block, room = entry_block(view, limits), entry_room(view, limits)
            picks = self.books.market.candidates[: self.s.strat_max_candidates]
            ready = [c for c in picks if self._ready(cycle, c, block, room)]
            slots = free_slots(view, limits)
            for cand in ready[slots:]:
                why = f"max_positions: {slots} free slot(s) go to better candidates first"
                ctx = self._context(cycle, cand)
                self.desk.decide(ctx, DecisionOutcome.SKIPPED, why, dedupe=cand.symbol)
            ready = ready[:slots]
            chains = await asyncio.gather(*(self._chain(cycle, c) for c in ready))
            for cand, chain in zip(ready, chains, strict=True):
                if chain is not None:
                    await self._choose_and_send(self._context(cycle, cand), cand, chain)
                    await self._release(chain)

    def _agreement(self, cand: Candidate) -> str | None:
        """Why the candidate is not traded now, or None when sentiment agrees."""
        sentiment = self.books.market.sentiment
        if sentiment is None:
            return "no market sentiment yet"
        if sentiment is Sentiment.NEUTRAL and self.s.strat_trade_neutral:
            return None
        if sentiment is not AGREES[cand.direction]:
            want = AGREES[cand.direction].value
            return f"sentiment {sentiment.value}: {cand.direction.value} candidates need {want}"
        return None

    def _occupied(self, symbol: str) -> str | None:
        for h in self.books.ledger.positions.values():
            if h.contract.symbol == symbol and h.qty:
                return f"already holding {h.contract.key} x{h.qty}"
        if self.books.orders.has_entry_for(symbol):
            return f"an entry order for {symbol} is working"
        return self._reentry_wait(symbol)

    def _reentry_wait(self, symbol: str) -> str | None:
        """After a losing round trip the same underlying rests: in a sell-off, buying the
        dip again right after a stop-loss is how one loss becomes several."""
        last = self.books.ledger.closed.get(symbol)
        wait = self.s.strat_reentry_cooldown_s
        if last is None or last.pnl >= 0 or wait <= 0:
            return None
        until = last.ts_ns / 1e9 + wait
        if self.wall_clock() >= until:
            return None
        at = dt.datetime.fromtimestamp(until, dt.UTC)
        return (
            f"re-entry cooldown: {symbol}'s last round trip lost {fmt(-last.pnl)}; "
            f"no new entry before {at:%H:%M:%S} UTC"
        )

    @staticmethod
    def _context(cycle: str, cand: Candidate) -> Context:
        return Context(
            cycle, DecisionKind.ENTRY, cand.symbol, cand.direction, {"score": cand.score}
        )

    def _spot(self, symbol: str) -> float | None:
        q = self.books.market.fresh(symbol, self.s.risk_max_quote_age_s)
        return q.mark if q is not None else None

    def _rest(self, symbol: str, why: str, premium: Decimal | None = None) -> str:
        """Put ``symbol`` in the chain cooldown; the text the decision adds to say so."""
        self.cooldown.note(symbol, why, spot=self._spot(symbol), premium=premium)
        seconds = self.cooldown.seconds
        return f"; no new chain for {seconds:g}s" if seconds > 0 else ""

    def _ready(self, cycle: str, cand: Candidate, block: str | None, room: Decimal) -> bool:
        """Whether the candidate is worth a chain request; if not, the decision says why."""
        skip = self._agreement(cand) or self._occupied(cand.symbol) or block
        if skip is None:
            skip = self.cooldown.blocked(cand.symbol, spot=self._spot(cand.symbol), room=room)
        if skip is not None:
            ctx = self._context(cycle, cand)
            self.desk.decide(ctx, DecisionOutcome.SKIPPED, skip, dedupe=cand.symbol)
        return skip is None

    async def _chain(self, cycle: str, cand: Candidate) -> OptionChain | None:
        """The chain with a first quote for its contracts (or a skip decision and None)."""
        ctx = self._context(cycle, cand)
        try:
            chain = await self.chains.fetch(
                cand.symbol,
                right_for(cand.direction),
                min_dte=self.s.strat_min_dte,
                max_dte=self.s.strat_max_dte,
                moneyness=self.s.strat_chain_moneyness,
                itm_moneyness=itm_moneyness(self.s.strat_delta_max, self.s.strat_chain_moneyness),
                max_contracts=self.s.strat_chain_max_contracts,
            )
        except (TimeoutError, ConnectionError) as exc:
            reason = f"no option chain: {type(exc).__name__} {exc}".strip()
            self.desk.decide(ctx, DecisionOutcome.SKIPPED, reason, dedupe=cand.symbol)
            return None
        if chain.error or not chain.contracts:
            reason = f"no option chain: {chain.error or 'empty'}"
            if chain.error in ("", NO_CONTRACT_IN_WINDOW):  # a fact, not a hiccup: rest it
                reason += self._rest(cand.symbol, reason)
            self.desk.decide(ctx, DecisionOutcome.SKIPPED, reason, dedupe=cand.symbol)
            return None
        await self._wait_for_quotes(chain.contracts)
        return chain

    async def _release(self, chain: OptionChain) -> None:
        """Give back the lines of the chain we do not hold or trade (IB's line budget)."""
        keep = {h.contract.key for h in self.books.ledger.positions.values()}
        keep |= {w.order.contract.key for w in self.books.orders.working.values()}
        drop = [c for c in chain.contracts if c.key not in keep]
        if drop:
            await self.desk.pub.publish(
                GW_COMMANDS, Unsubscribe(contracts=drop, requester="strategy"), key="strategy"
            )

    async def _wait_for_quotes(self, contracts: list[ContractRef]) -> None:
        """Give the gateway's new lines a moment to send a first quote each."""
        deadline = clock.current().monotonic() + self.s.strat_quote_wait_s
        market = self.books.market
        while clock.current().monotonic() < deadline:
            if all(market.quote(c.key) is not None for c in contracts):
                return
            await clock.current().sleep(0.1)

    def _views(self, contracts: list[ContractRef]) -> list[OptionView]:
        views = []
        for c in contracts:
            q = self.books.market.fresh(c.key, self.s.risk_max_quote_age_s)
            if q is None:
                views.append(OptionView(c, quoted=False))
                continue
            views.append(
                OptionView(
                    c,
                    bid=q.bid,
                    ask=q.ask,
                    delta=q.delta,
                    iv=q.iv,
                    und_price=q.und_price,
                    volume=q.volume,
                )
            )
        return views

    async def _choose_and_send(self, ctx: Context, cand: Candidate, chain: OptionChain) -> None:
        market = self.books.market
        spot_q = market.fresh(cand.symbol, self.s.risk_max_quote_age_s)
        spot = spot_q.mark if spot_q else None
        sel = select(
            cand.direction,
            self._views(list(chain.contracts)),
            now=utcnow(),
            params=self.selection,
            spot=spot,
        )
        if sel.choice is None:
            reason = sel.reason + self._rest(cand.symbol, sel.reason)
            self.desk.decide(ctx, DecisionOutcome.SKIPPED, reason, dedupe=cand.symbol)
            return
        opt = sel.choice.option
        assert opt.bid is not None and opt.ask is not None
        price = limit_price(Action.BUY, opt.bid, opt.ask, 0, self.desk.pricing)
        base = self.desk.day.opening_equity
        room = total_premium_cap(base, self.desk.risk.limits)
        room -= self.desk.view(opt.contract.key, clock.current().monotonic()).premium_at_risk
        size = size_order(
            net_liquidation=float(base),
            price=price,
            multiplier=opt.contract.multiplier,
            premium_pct=self.desk.risk.limits.max_premium_pct,
            max_contracts=self.desk.risk.limits.max_contracts,
            room=max(room, ZERO),
        )
        inputs = {**ctx.inputs, "delta": round(sel.choice.delta, 4), "price": price}
        ctx = Context(ctx.cycle, ctx.kind, ctx.symbol, ctx.direction, inputs)
        if size.quantity == 0:
            reason = f"{sel.reason}; {size.reason}"
            reason += self._rest(cand.symbol, size.reason, size.premium)
            self.desk.decide(ctx, DecisionOutcome.SKIPPED, reason, dedupe=cand.symbol)
            return
        right = right_for(cand.direction)
        n = self.books.orders.entries_today(utcnow().date(), cand.symbol, right)
        order = OrderNew(
            client_order_id=entry_id(utcnow().date(), cand.symbol, right, n),
            contract=opt.contract,
            action=Action.BUY,
            quantity=size.quantity,
            limit_price=price,
            reason=f"entry {cand.direction.value} {cand.symbol}: {sel.reason}; {size.reason}",
        )
        self.books.last_reason.pop(cand.symbol, None)
        self.cooldown.clear(cand.symbol)
        await self.desk.submit(order, ctx)

    # --- management tick ----------------------------------------------------------------

    async def manage(self) -> None:
        """Marks, the trading day, the daily-loss rule, exits, repricing: once a second."""
        cycle = self.cycle_id()
        self.mark_positions()
        await self._open_day()
        await self._check_daily_loss()
        for key, holding in list(self.books.ledger.positions.items()):
            who = self.flatten_pending.get(key)
            why = f"flatten requested by {who}" if who else None
            await self._exit(cycle, key, holding, why=why, operator=who or "")
        for key in [k for k in self.flatten_pending if k not in self.books.ledger.positions]:
            del self.flatten_pending[key]
        await self.desk.manage(cycle)

    def mark_positions(self) -> None:
        """Mark at the mid of a fresh two-sided quote; anything else leaves the mark stale."""
        for key in self.books.ledger.positions:
            q = self.books.market.fresh(key, self.s.risk_max_quote_age_s)
            if q is not None and q.bid is not None and q.ask is not None:
                self.books.ledger.mark(key, (q.bid + q.ask) / 2)
            else:
                self.books.ledger.mark_stale(key)

    async def _open_day(self) -> None:
        """Open the New York trading day once its positions are freshly marked."""
        now = self.wall_clock()
        day = self.desk.day
        if day.current is not None and day.current.day == trading_day(now):
            self._day_wait_from = None
            return
        stale = len(self.books.ledger.stale_marks)
        if self._day_wait_from is None:
            self._day_wait_from = clock.current().monotonic()
        waited = clock.current().monotonic() - self._day_wait_from - DAY_OPEN_WAIT_S
        opened = await day.roll(now, self._broker_equity(), stale, waited)
        if opened is not None:
            self._day_wait_from = None
            ctx = Context(self.cycle_id(), DecisionKind.RISK)
            reason = (
                f"trading day {opened.day} opened: equity {fmt(opened.open_equity)} "
                f"({opened.source}), daily loss limit "
                f"{fmt(daily_loss_limit(opened.open_equity, self.desk.risk.limits))}"
                + (f"; {opened.stale_marks} position(s) on stale marks" if stale else "")
            )
            self.desk.decide(ctx, DecisionOutcome.TAKEN, reason)
            await self._new_day_resume(opened.day)

    def _broker_equity(self) -> Decimal | None:
        return self.books.net_liquidation

    async def _new_day_resume(self, today: dt.date) -> None:
        """A REDUCING the engine set for an earlier day's loss ends with that day."""
        st = self.books.status
        if (
            st.state is RiskState.REDUCING
            and st.who == RISK_ENGINE
            and st.breach_day
            and st.breach_day < today.isoformat()
        ):
            why = f"new trading day {today}: daily loss reset (limit breached {st.breach_day})"
            await self.desk.set_state(RiskState.ACTIVE, why, RISK_ENGINE)

    async def _check_daily_loss(self) -> None:
        """A breach stops new exposure once a day; it never overrides a later operator."""
        st = self.books.status
        opened = self.desk.day.current
        if opened is None or st.state is not RiskState.ACTIVE:
            return
        today = opened.day.isoformat()
        if st.breach_day == today:
            return  # tripped today already: the operator's state since then stands
        reason = self.desk.risk.loss_breached(self.desk.view("-", clock.current().monotonic()))
        if reason is None:
            return
        stale = self.books.ledger.stale_marks
        why = (
            f"{reason} (trading day {today}, opening equity {fmt(opened.open_equity)}"
            + (f"; stale marks: {', '.join(stale)}" if stale else "")
            + "): exits only"
        )
        await self.desk.set_state(RiskState.REDUCING, why, RISK_ENGINE, breach_day=today)
        await self.desk.cancel_entries("risk REDUCING: daily loss", self.cycle_id())

    async def _exit(
        self, cycle: str, key: str, h: Holding, why: str | None = None, operator: str = ""
    ) -> None:
        """Close ``h`` when a rule (or ``why``) says so, on the side it would trade at.

        Price rules see the bid of a fresh two-sided quote for a long (the ask for a
        short), never a mid or a one-sided mark. A working entry in the same contract
        is cancelled first; the exit goes once the cancel is confirmed.
        """
        if not h.qty or self.books.orders.working_exit(key) is not None:
            return
        q = self.books.market.fresh(key, self.s.risk_max_quote_age_s)
        two_sided = q is not None and q.bid is not None and q.ask is not None
        price = None
        if two_sided:
            assert q is not None and q.bid is not None and q.ask is not None
            price = dec(q.bid) if h.qty > 0 else dec(q.ask)
        reason = why or exit_reason(
            contract=h.contract,
            qty=h.qty,
            avg_price=h.avg_price,
            mark=price,
            opened_ns=h.opened_ns,
            now=utcnow(),
            sentiment=self.books.market.sentiment,
            params=self.exit_params,
        )
        if reason is None:
            return
        ctx = Context(cycle, DecisionKind.EXIT, h.contract.symbol)
        entry = self.books.orders.working_entry(key)
        if entry is not None:
            cid = entry.order.client_order_id
            if not entry.cancel_sent:
                await self.desk.cancel(cid, f"exit due ({reason}): entry cancelled first", cycle)
            skip = f"exit due ({reason}): waiting for the cancel of entry {cid}"
            self.desk.decide(ctx, DecisionOutcome.SKIPPED, skip, dedupe=f"exit {key}")
            return
        if q is None or q.bid is None or q.ask is None:
            skip = f"exit due ({reason}) but no fresh two-sided quote for {key}"
            self.desk.decide(ctx, DecisionOutcome.SKIPPED, skip, dedupe=f"exit {key}")
            return
        action = contract_side(h.contract, h.qty)
        attempt = self.books.orders.exit_attempts(h.entry_order)
        pnl = cents((price or ZERO) * h.qty * h.contract.multiplier - h.cost)
        order = OrderNew(
            client_order_id=exit_id(h.entry_order, attempt),
            contract=h.contract,
            action=action,
            quantity=abs(h.qty),
            limit_price=limit_price(action, q.bid, q.ask, 0, self.desk.pricing),
            reduce_only=True,
            reason=f"exit {key}: {reason} (unrealized at the {'bid' if h.qty > 0 else 'ask'} "
            f"{fmt(pnl)})",
            requested_by=operator,
        )
        self.books.last_reason.pop(f"exit {key}", None)
        await self.desk.submit(order, ctx)

    async def flatten(self, target: str, who: str) -> None:
        """Close every position (or the one named ``target``) now, in any risk state.

        The request stays pending until the position is gone, so a flatten that
        meets no quote or a working entry is carried out on the next ticks.
        """
        cycle = self.cycle_id()
        for key, h in list(self.books.ledger.positions.items()):
            if not target or target in (key, h.contract.symbol):
                self.flatten_pending[key] = who
                await self._exit(cycle, key, h, why=f"flatten requested by {who}", operator=who)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()

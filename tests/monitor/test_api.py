"""REST API over real HTTP against the private Redis, with data published the way
the services publish it (envelopes through ``Publisher``, plain hashes)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis

from shared.bus import Publisher
from shared.contract import (
    ACCOUNT,
    GW_STATUS,
    MD_CANDIDATES,
    MD_SENTIMENT,
    RISK_STATE,
    STRATEGY_EQUITY,
    STRATEGY_PNL,
    STRATEGY_POSITIONS,
    SYS_CONTROL,
    last_quote_key,
)
from shared.contract.values import EquityPoint, to_json
from shared.envelope import decode
from shared.schemas import ConnState, GatewayStatus
from shared.settings import Settings
from tests.monitor import samples
from tests.monitor.conftest import TOKEN, StartMonitor
from tests.running import strategy_running

pytestmark = pytest.mark.timeout(60)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def seeded(redis: aioredis.Redis, settings: Settings) -> None:
    await samples.seed(redis, settings)


@pytest.fixture
async def client(start_monitor: StartMonitor, seeded: None) -> httpx.AsyncClient:
    mon = await start_monitor()
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        yield c  # type: ignore[misc]


async def test_get_status_when_gateway_connected_reports_client_version_and_services(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/status")).json()
    assert body["mode"] == "simulated"
    assert (
        body["gateway"]
        | {"state": "connected", "client_id": 1, "server_version": 178, "data_type": "live"}
        == body["gateway"]
    )
    names = {s["name"]: s for s in body["services"]}
    assert names["monitor"]["alive"] is True
    assert names["gateway_adapter"]["alive"] is True
    assert body["risk"]["state"] == "UNKNOWN"
    assert body["controls_enabled"] is True


async def test_get_status_when_heartbeat_lags_transition_shows_adapters_newest_status(
    client: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings
) -> None:
    """The adapter mirrors a transition into its heartbeat only at its next beat."""
    pub = Publisher(redis, settings, src="gateway_adapter/gw-a")
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.CONNECTING, instance="gw-a"))
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1, instance="gw-a"))
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.STANDBY, instance="gw-b"))  # a standby
    await pub.flush()
    beat = samples.gateway_heartbeat() | {"instance": "gw-a", "ib_state": "connecting"}
    await redis.hset("svc:gateway_adapter", mapping=beat)
    body = (await client.get("/api/status")).json()
    assert (body["gateway"]["state"], body["gateway"]["instance"]) == ("connected", "gw-a")


async def test_get_quotes_when_vix_is_an_index_shows_positive_last_and_no_bid(
    client: httpx.AsyncClient,
) -> None:
    quotes = {q["key"]: q for q in (await client.get("/api/quotes")).json()["quotes"]}
    vix = quotes["VIX"]
    assert vix["bid"] is None and vix["ask"] is None
    assert vix["price"] == pytest.approx(14.0) and vix["price"] > 0
    spy = quotes["SPY"]
    assert spy["bid"] < spy["ask"] and spy["stale"] is False
    assert spy["change"] == pytest.approx(spy["price"] - spy["close"])
    assert quotes["IWM"]["price"] is None and quotes["IWM"]["stale"] is True


async def test_get_quote_when_adapter_wrote_sentinels_returns_nulls_not_minus_one(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    old = str(time.time_ns() - 120 * 10**9)
    await redis.hset(
        last_quote_key("VIX"),
        mapping={
            "bid": "-1",
            "ask": "-1.0",
            "last": "nan",
            "mark": "",
            "close": "13.9",
            "updated": old,
        },
    )
    q = (await client.get("/api/quotes/VIX")).json()
    assert (q["bid"], q["ask"], q["last"]) == (None, None, None)
    assert q["price"] == pytest.approx(13.9)
    assert q["stale"] is True and q["age_s"] > 100


async def test_get_market_when_signals_written_returns_sentiment_and_candidates(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/market")).json()
    assert body["sentiment"]["state"] == "BULLISH"
    assert body["sentiment"]["inputs"]["spy_trend_pct"] == pytest.approx(0.41)
    cands = body["candidates"]["candidates"]
    assert [(c["symbol"], c["direction"]) for c in cands] == [("AAPL", "long"), ("MSFT", "short")]
    assert cands[0]["inputs"] == {"roc_short": 0.5}
    assert body["candidates"]["excluded"] == {"INTC": "price below minimum"}


async def test_get_market_when_signal_hashes_break_contract_shows_none_and_logs(
    client: httpx.AsyncClient, redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A renamed ``state`` or a candidate row without ``score`` is an error in the log,
    not a sentiment that looks like warming up or a list silently missing a row."""
    state = await redis.hget(MD_SENTIMENT, "state")
    await redis.hdel(MD_SENTIMENT, "state")
    await redis.hset(MD_SENTIMENT, "status", state)
    rows = [{"symbol": "AAPL", "direction": "long", "score": 1.2}, {"symbol": "MSFT"}]
    await redis.hset(MD_CANDIDATES, "json", json.dumps(rows))
    body = (await client.get("/api/market")).json()
    assert body["sentiment"]["state"] is None and body["candidates"]["candidates"] == []
    assert caplog.text.count("contract_hash_unreadable") == 2
    assert MD_SENTIMENT in caplog.text and MD_CANDIDATES in caplog.text


async def test_get_bars_when_market_data_wrote_window_returns_bars_and_live_quote(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/bars/SPY", params={"limit": 10})).json()
    assert len(body["bars"]) == 10
    assert body["bars"][-1]["c"] == pytest.approx(501.9)
    assert body["quote"]["key"] == "SPY"


async def test_get_orders_when_order_filled_lists_request_events_and_fill(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/orders")).json()
    assert body["requests"][0]["contract"] == "AAPL 20261218 250 C"
    assert [e["kind"] for e in body["events"]] == ["fill", "ack"]
    assert body["fills"][0]["fill_price"] == pytest.approx(4.22)


async def test_get_account_when_snapshots_published_returns_positions_greeks_and_equity(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/account")).json()
    assert body["net_liquidation"] == pytest.approx(3760.5)
    assert [p["net_liquidation"] for p in body["equity"]] == [3756.96, 3751.0, 3760.5]
    (pos,) = body["positions"]
    assert pos["contract"] == "AAPL 20261218 250 C" and pos["delta"] == pytest.approx(0.42)
    assert pos["unrealized_pnl"] == pytest.approx((4.2 * 100 - 422.0) * 2)


async def test_get_account_when_simulated_book_published_shows_it_not_the_broker_account(
    client: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings
) -> None:
    pub = Publisher(redis, settings, src="gateway_adapter/t")
    for net_liq in (3756.96, 3700.0):
        sim = msgspec.structs.replace(
            samples.account_snapshot(net_liq), account="DU1234567-SIM", simulated=True
        )
        pub.add(ACCOUNT, sim, key="DU1234567-SIM")
    pub.add(ACCOUNT, samples.account_snapshot(3756.96), key="DU1234567")  # broker's, newest
    await pub.flush()
    body = (await client.get("/api/account")).json()
    assert body["account"] == "DU1234567-SIM" and body["net_liquidation"] == pytest.approx(3700.0)
    assert body["source"] == "account (simulated book)"
    curve = [p["net_liquidation"] for p in body["equity"]]
    assert 3751.0 not in curve and 3760.5 not in curve  # the broker's points stay out


async def test_get_system_when_dlq_and_ib_warning_exist_shows_them_with_reasons(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/system")).json()
    assert body["dlq"]["count"] == 1
    assert "invalid body" in body["dlq"]["latest"][0]["fields"]["reason"]
    assert body["ib_errors"][0]["code"] == 2104
    streams = {s["name"]: s for s in body["streams"]}
    assert streams["md:ticks"]["length"] >= 6
    decisions = (await client.get("/api/decisions")).json()["decisions"]
    assert [(d["symbol"], d["outcome"]) for d in decisions] == [
        ("MSFT", "denied"),
        ("AAPL", "taken"),
    ]
    assert decisions[0]["reason"] == "max_positions: 3 open"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/quotes?keys=SPY,%3Cscript%3E", 422),
        ("/api/quotes/DROP%20TABLE", 422),
        ("/api/quotes/ZZZZ", 404),
        ("/api/bars/SP%3BY?limit=5", 422),
        ("/api/bars/SPY?limit=0", 422),
        ("/api/orders?limit=100000", 422),
    ],
)
async def test_get_api_when_input_is_bad_returns_4xx_with_a_reason(
    client: httpx.AsyncClient, path: str, status: int
) -> None:
    r = await client.get(path)
    assert r.status_code == status
    assert r.json()["detail"]


async def test_post_halt_when_token_valid_answers_the_state_the_strategy_applied(
    client: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings
) -> None:
    async with strategy_running(settings, redis):
        r = await client.post(
            "/api/control/halt", json={"why": "vol spike", "who": "ana"}, headers=AUTH
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["state"], body["previous"], body["changed"]) == ("HALTED", "ACTIVE", True)
        # answered after the strategy applied it: the state is there already
        state = {k.decode(): v.decode() for k, v in (await redis.hgetall(RISK_STATE)).items()}
        assert (state["state"], state["why"], state["who"]) == ("HALTED", "vol spike", "ana")
        assert body["since"] == pytest.approx(float(state["since"]), abs=0.001)
    request, applied = [(i.decode(), decode(f)) for i, f in await redis.xrange(SYS_CONTROL)]
    assert (request[0], applied[0]) == (body["event_id"], body["applied_id"])
    req = request[1]
    assert (req.type, req.body.action.value, req.body.who, req.body.why) == (
        "control", "halt", "ana", "vol spike"
    )  # fmt: skip
    assert req.src.startswith("monitor/") and req.ts > 0 and req.body.expires > time.time()
    rec = applied[1]
    assert (rec.type, rec.body.state.value, rec.body.request) == (
        "risk.state",
        "HALTED",
        request[0],
    )
    assert rec.src.startswith("strategy/")
    risk = (await client.get("/api/status")).json()["risk"]
    assert risk["state"] == "HALTED" and risk["why"] == "vol spike"


async def test_post_halt_when_no_strategy_runs_answers_503_with_the_reason_and_writes_no_state(
    start_monitor: StartMonitor, seeded: None, redis: aioredis.Redis
) -> None:
    mon = await start_monitor(control_timeout_s=0.3)
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        r = await c.post("/api/control/halt", json={"why": "x"}, headers=AUTH)
        flat = await c.post("/api/control/flatten", json={"target": "AAPL"}, headers=AUTH)
    assert r.status_code == 503
    assert "not applied within 0.3s: the strategy is not running" in r.json()["detail"]
    assert flat.status_code == 503 and "flatten not sent" in flat.json()["detail"]
    assert await redis.exists(RISK_STATE) == 0
    assert await redis.xlen(SYS_CONTROL) == 1  # the expired halt request, nothing applied


async def test_post_halt_when_token_wrong_returns_401_logs_and_changes_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    for headers in ({"Authorization": "Bearer nope"}, {}, {"Authorization": f"Basic {TOKEN}"}):
        r = await client.post("/api/control/halt", json={"why": "x"}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert await redis.exists(RISK_STATE) == 0
    assert await redis.xlen(SYS_CONTROL) == 0
    assert caplog.text.count("control_refused") == 3
    assert "wrong token" in caplog.text and "missing token" in caplog.text
    assert TOKEN not in caplog.text


async def test_post_control_when_no_token_configured_returns_403_and_status_says_disabled(
    start_monitor: StartMonitor, seeded: None, redis: aioredis.Redis
) -> None:
    mon = await start_monitor(control_token="")
    async with httpx.AsyncClient(base_url=mon.url) as c:
        r = await c.post("/api/control/halt", headers={"Authorization": "Bearer x"})
        assert r.status_code == 403 and "OPTBOT_CONTROL_TOKEN" in r.json()["detail"]
        assert (await c.get("/api/status")).json()["controls_enabled"] is False
    assert await redis.xlen(SYS_CONTROL) == 0


async def test_post_reduce_then_resume_when_authorized_moves_reducing_then_active(
    client: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings
) -> None:
    async with strategy_running(settings, redis):
        r = await client.post("/api/control/reduce", headers=AUTH)
        assert r.json()["state"] == "REDUCING"
        assert (await redis.hget(RISK_STATE, "state")) == b"REDUCING"
        again = await client.post("/api/control/reduce", headers=AUTH)
        assert (again.json()["state"], again.json()["changed"]) == ("REDUCING", False)
        r = await client.post("/api/control/resume", json={"why": "calm again"}, headers=AUTH)
        assert r.json()["state"] == "ACTIVE"
    bodies = [decode(f).body for _, f in await redis.xrange(SYS_CONTROL)]
    seen = [b.action.value if b.TYPE == "control" else b.state.value for b in bodies]
    assert seen == ["reduce", "REDUCING", "reduce", "REDUCING", "resume", "ACTIVE"]


async def test_post_flatten_when_authorized_publishes_control_with_target_only(
    client: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings
) -> None:
    target = "AAPL 20261218 250 C"
    async with strategy_running(settings, redis):
        r = await client.post(
            "/api/control/flatten", json={"target": target, "why": "take profit"}, headers=AUTH
        )
        assert r.status_code == 200 and r.json()["state"] is None
    flattens = [
        decode(f).body for _, f in await redis.xrange(SYS_CONTROL) if f[b"type"] == b"control"
    ]
    assert [(b.action.value, b.target) for b in flattens] == [("flatten", target)]
    assert await redis.exists(RISK_STATE) == 0
    bad = await client.post("/api/control/flatten", json={"target": "rm -rf"}, headers=AUTH)
    assert bad.status_code == 422
    unauth = await client.post("/api/control/flatten", json={"target": "rm -rf"})
    assert unauth.status_code == 401


async def test_get_readyz_when_quotes_fresh_is_ready_and_when_empty_is_503(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    await redis.delete("md:ticks")
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json()["reasons"] == ["no quotes on md:ticks yet"]


async def test_get_page_when_served_uses_only_local_assets_and_shows_no_secret(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert (
        page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    )
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in [a for a in assets if a.startswith("/static/")] + ["/favicon.ico"]:
        assert (await client.get(asset)).status_code == 200, asset
    for path in ("/", "/static/app.js", "/api/status", "/openapi.json", "/metrics"):
        assert TOKEN not in (await client.get(path)).text, path


async def test_get_docs_when_offline_serves_swagger_and_redoc_assets_locally(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assets = re.findall(
            r'(?:src|href|url)\s*[:=]\s*["\']([^"\']+\.(?:js|css|png))["\']', page.text
        )
        assert assets, page.text[:500]
        for asset in assets:
            assert asset.startswith("/"), f"{path} loads {asset} from outside"
            assert (await client.get(asset)).status_code == 200, asset


async def test_get_account_when_strategy_ledger_runs_uses_its_positions_pnl_and_curve(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    key = samples.OPTION.key
    row = samples.position_row(mark="4.3000", unrealized="16.00", delta=0.42)
    await redis.hset(STRATEGY_POSITIONS, key, to_json(row))
    pnl = samples.pnl_fields(daily_pnl="14.70", unrealized="16.00", commissions="1.30")
    await redis.hset(STRATEGY_PNL, mapping=pnl.fields())
    for i, eq in enumerate((3756.96, 3760.0, 3771.66)):
        point = EquityPoint(t=1000.0 + i, equity=str(eq), realized="0.00", unrealized="0.00")
        await redis.rpush(STRATEGY_EQUITY, to_json(point))
    body = (await client.get("/api/account")).json()
    assert body["source"] == "strategy"
    assert (body["day_pnl"], body["commissions"]) == (14.7, 1.3)
    (pos,) = body["positions"]
    assert (pos["contract"], pos["quantity"], pos["mark"], pos["unrealized_pnl"]) == (
        key,
        2,
        4.3,
        16.0,
    )
    assert pos["gamma"] == pytest.approx(0.02)  # greeks still come from md:last
    assert pos["avg_cost"] == pytest.approx(422.0)  # per contract (no cost: 4.22 x 100)
    assert [p["net_liquidation"] for p in body["equity"]] == [3756.96, 3760.0, 3771.66]


async def test_get_account_when_ledger_hash_breaks_contract_logs_it_and_uses_broker(
    client: httpx.AsyncClient, redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A strategy:pnl without ``daily_pnl`` (a renamed field) is an error, not a day P&L of
    nothing shown as the ledger's; a position row that lost ``qty`` is left out, logged."""
    fields = samples.pnl_fields().fields()
    fields["day_pnl"] = fields.pop("daily_pnl")
    await redis.hset(STRATEGY_PNL, mapping=fields)
    body = (await client.get("/api/account")).json()
    assert body["source"] != "strategy"
    assert "contract_hash_unreadable" in caplog.text and "daily_pnl" in caplog.text
    await redis.hset(STRATEGY_PNL, mapping=samples.pnl_fields().fields())
    row = msgspec.structs.asdict(samples.position_row())
    row["quantity"] = row.pop("qty")
    await redis.hset(STRATEGY_POSITIONS, samples.OPTION.key, msgspec.json.encode(row))
    body = (await client.get("/api/account")).json()
    assert body["source"] == "strategy" and body["positions"] == []
    assert "contract_row_unreadable" in caplog.text


async def test_get_account_when_ledger_or_broker_holds_same_position_shows_same_avg_cost(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    """2 calls bought at 4.22: IB reports 422.00 a contract, the ledger 4.22 a share."""
    broker = (await client.get("/api/account")).json()
    (from_broker,) = broker["positions"]
    assert broker["source"] != "strategy" and from_broker["avg_cost"] == pytest.approx(422.0)
    row = samples.position_row(cost="844.00", mark="4.3000")
    await redis.hset(STRATEGY_POSITIONS, samples.OPTION.key, to_json(row))
    await redis.hset(STRATEGY_PNL, mapping=samples.pnl_fields().fields())
    ledger = (await client.get("/api/account")).json()
    (from_ledger,) = ledger["positions"]
    assert ledger["source"] == "strategy"
    assert from_ledger["avg_cost"] == pytest.approx(from_broker["avg_cost"])
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["Position"]
    assert "per contract" in schema["properties"]["avg_cost"]["description"]
    page = (await client.get("/")).text
    assert "Avg cost / contract" in page


async def test_post_halt_when_token_guessed_repeatedly_locks_client_out_but_not_the_right_token(
    client: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings
) -> None:
    wrong = {"Authorization": "Bearer nope"}
    for _ in range(settings.monitor_control_max_failures):
        assert (await client.post("/api/control/halt", headers=wrong)).status_code == 401
    locked = await client.post("/api/control/halt", headers=wrong)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert not await redis.exists(RISK_STATE)
    # the token is checked first: whoever else shares the address, the operator gets in
    right = {"Authorization": f"Bearer {TOKEN}"}
    async with strategy_running(settings, redis):
        assert (await client.post("/api/control/halt", headers=right)).status_code == 200
    assert await redis.hget(RISK_STATE, "state") == b"HALTED"
    assert (await client.post("/api/control/halt", headers=wrong)).status_code == 429


async def test_post_when_body_oversized_returns_413_before_reading_it(
    client: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings
) -> None:
    right = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    huge = b'{"why": "' + b"x" * (settings.monitor_max_body_bytes + 1) + b'"}'
    declared = await client.post("/api/control/halt", headers=right, content=huge)
    assert declared.status_code == 413 and "request body over" in declared.json()["detail"]

    async def chunks() -> Any:  # no Content-Length: the limit applies as it streams in
        for i in range(0, len(huge), 8192):
            yield huge[i : i + 8192]

    streamed = await client.post("/api/control/halt", headers=right, content=chunks())
    assert streamed.status_code == 413
    assert not await redis.exists(RISK_STATE)
    async with strategy_running(settings, redis):
        small = await client.post("/api/control/halt", headers=right, json={"why": "fine"})
    assert small.status_code == 200


async def test_post_when_body_malformed_returns_4xx_with_reason(client: httpx.AsyncClient) -> None:
    right = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for body in (b"{not json", b'{"why": 5}', b"[1, 2]"):
        r = await client.post("/api/control/halt", headers=right, content=body)
        assert 400 <= r.status_code < 500 and r.json()["detail"], (body, r.status_code)

"""One valid body of every message type, for round trips and fixtures."""

from __future__ import annotations

from shared.schemas import (
    AccountRefresh,
    AccountSnapshot,
    Action,
    Bar,
    Candidate,
    CandidatesSignal,
    ConnState,
    ContractRef,
    Control,
    ControlAction,
    DataType,
    Direction,
    GatewayStatus,
    HistoryBars,
    HistoryRequest,
    IbError,
    OptionChain,
    OptionChainRequest,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    Position,
    Quote,
    Right,
    Schema,
    SecType,
    Sentiment,
    SentimentSignal,
    Subscribe,
    Unsubscribe,
)

SPY = ContractRef(symbol="SPY", con_id=756733)
VIX = ContractRef(symbol="VIX", sec_type=SecType.IND, exchange="CBOE")
CALL = ContractRef(
    symbol="AAPL",
    sec_type=SecType.OPT,
    con_id=9001,
    expiry="20261218",
    strike=250.0,
    right=Right.CALL,
    multiplier=100,
)
BAR = Bar(
    symbol="SPY",
    start_ns=1_700_000_000_000_000_000,
    interval_s=60,
    open=500.0,
    high=501.5,
    low=499.25,
    close=501.0,
    volume=1200.0,
)

SAMPLES: list[Schema] = [
    Quote(contract=SPY, bid=500.01, ask=500.03, last=500.02, bid_size=3, ask_size=5, volume=1e6),
    Quote(contract=VIX, last=17.25, close=16.9, data_type=DataType.DELAYED),
    Quote(
        contract=CALL,
        bid=5.1,
        ask=5.3,
        iv=0.31,
        delta=0.42,
        gamma=0.03,
        vega=0.2,
        theta=-0.05,
        und_price=245.0,
        ib_ts=1_700_000_000_000_000_000,
    ),
    BAR,
    SentimentSignal(
        state=Sentiment.BULLISH,
        previous=Sentiment.NEUTRAL,
        inputs={"spy_ret_30m": 0.004, "vix": 14.2},
        reason="trend up, VIX calm",
    ),
    CandidatesSignal(
        candidates=[
            Candidate(symbol="NVDA", direction=Direction.LONG, score=2.5, inputs={"roc": 0.01})
        ]
    ),
    Subscribe(contracts=[SPY, VIX, CALL], priority=9, requester="market_data"),
    Unsubscribe(contracts=[CALL]),
    OptionChainRequest(request_id="r1", underlying="AAPL", right=Right.CALL, reply_to="md:signals"),
    HistoryRequest(request_id="h1", contract=SPY, duration="2 D", bar_size="1 min"),
    AccountRefresh(request_id="a1"),
    OptionChain(request_id="r1", underlying="AAPL", contracts=[CALL]),
    HistoryBars(request_id="h1", symbol="SPY", bars=[BAR]),
    GatewayStatus(state=ConnState.CONNECTED, client_id=1, server_version=178, account="DU1234567"),
    IbError(code=200, message="No security definition has been found", req_id=12, symbol="XXXX"),
    OrderNew(client_order_id="c-1", contract=CALL, action=Action.BUY, quantity=2, limit_price=5.2),
    OrderCancel(client_order_id="c-1", reason="timeout"),
    OrderModify(client_order_id="c-1", limit_price=5.25),
    OrderEvent(
        client_order_id="c-1",
        kind=OrderEventKind.FILL,
        contract=CALL,
        action=Action.BUY,
        fill_qty=2,
        fill_price=5.2,
        commission=1.3,
        filled_total=2,
        exec_id="e1",
    ),
    AccountSnapshot(
        account="DU1234567",
        net_liquidation=3756.96,
        cash=3756.96,
        buying_power=3756.96,
        positions=[Position(contract=CALL, quantity=2, avg_cost=520.65)],
    ),
    Control(action=ControlAction.HALT, who="trader", why="news"),
]

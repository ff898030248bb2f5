"""IB's published message layouts for server versions 157..178, as an independent check.

Written from the official TWS API's Python decoder (``ibapi/decoder.py``,
``ibapi/orderdecoder.py``, ``ibapi/server_versions.py``, 10.x), not from the
simulator's encoders: each reader consumes fields in IB's order, following IB's
``MIN_SERVER_VER_*`` gates, and the message must end exactly where IB stops reading.
Only the messages the simulator sends are described; any other id fails the check.

Below FRACTIONAL_SIZE_SUPPORT (163) market-data sizes and bar volumes are whole
numbers (IB's 9.x decoder reads them with ``decode(int)``; order and position
quantities are floats from FRACTIONAL_POSITIONS, 101, so they may have a fraction).
"""

from __future__ import annotations

from collections.abc import Callable

# IB's gate values (server_versions.py), spelled out so this file shares nothing with
# the simulator.
MIN_SERVER_VER_DURATION = 158
MIN_SERVER_VER_POST_TO_ATS = 160
MIN_SERVER_VER_AUTO_CANCEL_PARENT = 162
MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT = 163
MIN_SERVER_VER_SIZE_RULES = 164
MIN_SERVER_VER_ADVANCED_ORDER_REJECT = 166
MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS = 170
MIN_SERVER_VER_FA_PROFILE_DESUPPORT = 177
MIN_SERVER_VER_PENDING_PRICE_REVISION = 178

# a field count alone misses a shift that adds and drops as many fields: IB's decoder
# also reads these as ints or from a closed set, so a shifted value is caught here
INTS = {"version", "reqId", "orderId", "conId", "permId", "clientId", "tickType"}
INTS |= {"errorCode", "underConId", "priceMagnifier", "tickerId"}
SEC_TYPES = {"STK", "OPT", "IND", "FUT", "FOP", "CASH", "BAG", "WAR", "BOND", "CFD", "FUND"}
ORDER_STATUSES = {"PendingSubmit", "PendingCancel", "PreSubmitted", "Submitted"}
ORDER_STATUSES |= {"ApiCancelled", "Cancelled", "Filled", "Inactive"}

# (message id, field) read as int by clients below FRACTIONAL_SIZE_SUPPORT
WHOLE_BELOW_163 = {(1, "size"), (2, "size"), (17, "volume"), (17, "barCount")}

CONTRACT = [
    "conId",
    "symbol",
    "secType",
    "lastTradeDateOrContractMonth",
    "strike",
    "right",
    "multiplier",
    "exchange",
    "currency",
    "localSymbol",
    "tradingClass",
]

# Messages whose layout is the same for every version from 157 to 178. Those IB
# dispatches through EWrapper signatures (interpretWithSignature) keep their
# leading version field; the others are IB's process*Msg readers.
FIXED: dict[int, list[str]] = {
    1: ["version", "reqId", "tickType", "price", "size", "attrMask"],
    2: ["version", "reqId", "tickType", "size"],
    3: [
        "orderId",
        "status",
        "filled",
        "remaining",
        "avgFillPrice",
        "permId",
        "parentId",
        "lastFillPrice",
        "clientId",
        "whyHeld",
        "mktCapPrice",
    ],
    6: ["version", "key", "val", "currency", "accountName"],
    7: [
        "version",
        *CONTRACT[:6],
        "multiplier",
        "primaryExchange",
        "currency",
        "localSymbol",
        "tradingClass",
        "position",
        "marketPrice",
        "marketValue",
        "averageCost",
        "unrealizedPNL",
        "realizedPNL",
        "accountName",
    ],
    8: ["version", "timeStamp"],
    9: ["version", "orderId"],
    15: ["version", "accountsList"],
    21: [
        "reqId",
        "tickType",
        "tickAttrib",
        "impliedVol",
        "delta",
        "optPrice",
        "pvDividend",
        "gamma",
        "vega",
        "theta",
        "undPrice",
    ],
    46: ["version", "reqId", "tickType", "value"],
    49: ["version", "time"],
    52: ["version", "reqId"],
    53: ["version"],
    54: ["version", "accountName"],
    55: ["version", "reqId"],
    57: ["version", "reqId"],
    58: ["version", "reqId", "marketDataType"],
    59: [
        "version",
        "execId",
        "commission",
        "currency",
        "realizedPNL",
        "yield",
        "yieldRedemptionDate",
    ],
    61: ["version", "account", *CONTRACT, "position", "avgCost"],
    62: ["version"],
    63: ["version", "reqId", "account", "tag", "value", "currency"],
    64: ["version", "reqId"],
    72: ["version", "reqId"],
    73: ["version", "reqId", "account", "modelCode", "key", "value", "currency"],
    74: ["version", "reqId"],
    76: ["reqId"],
    81: ["tickerId", "minTick", "bboExchange", "snapshotPermissions"],
    94: ["reqId", "dailyPnL", "unrealizedPnL", "realizedPnL"],
    102: [],
}


class LayoutError(AssertionError):
    """A message does not match IB's layout for the negotiated version."""


class Reader:
    """Consumes fields by name, as IB's ``decode`` does, and records what it read."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.pos = 1  # fields[0] is the message id
        self.named: dict[str, str] = {}
        self.read: list[tuple[str, str]] = []  # every (name, value), repeats included

    def take(self, *names: str) -> None:
        for name in names:
            if self.pos >= len(self.fields):
                raise LayoutError(f"message {self.fields[0]} ended before {name!r}")
            self.named.setdefault(name, self.fields[self.pos])
            self.read.append((name, self.fields[self.pos]))
            self.pos += 1

    def count(self, name: str) -> int:
        self.take(name)
        try:
            return int(self.fields[self.pos - 1] or 0)
        except ValueError as e:
            raise LayoutError(f"{name} is not a count: {self.fields[self.pos - 1]!r}") from e

    def value(self, name: str) -> str:
        return self.named[name]

    def done(self) -> dict[str, str]:
        if self.pos != len(self.fields):
            extra = self.fields[self.pos :]
            raise LayoutError(f"message {self.fields[0]} has {len(extra)} extra fields: {extra}")
        return self.named


def _error(r: Reader, v: int) -> None:
    r.take("version", "reqId", "errorCode", "errorString")
    if v >= MIN_SERVER_VER_ADVANCED_ORDER_REJECT:
        r.take("advancedOrderRejectJson")


def _contract_details(r: Reader, v: int) -> None:
    """processContractDataMsg."""
    if v < MIN_SERVER_VER_SIZE_RULES:
        r.take("version")
    r.take("reqId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right")
    r.take("exchange", "currency", "localSymbol", "marketName", "tradingClass", "conId")
    r.take("minTick")
    if v < MIN_SERVER_VER_SIZE_RULES:
        r.take("mdSizeMultiplier")
    r.take("multiplier", "orderTypes", "validExchanges", "priceMagnifier", "underConId")
    r.take("longName", "primaryExchange", "contractMonth", "industry", "category")
    r.take("subcategory", "timeZoneId", "tradingHours", "liquidHours", "evRule", "evMultiplier")
    for _ in range(r.count("secIdListCount")):
        r.take("secIdTag", "secIdValue")
    r.take("aggGroup", "underSymbol", "underSecType", "marketRuleIds", "realExpirationDate")
    r.take("stockType")
    if v == MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT:
        r.take("sizeMinTick")
    if v >= MIN_SERVER_VER_SIZE_RULES:
        r.take("minSize", "sizeIncrement", "suggestedSizeIncrement")


def _exec_details(r: Reader, v: int) -> None:
    """processExecutionDataMsg (no version field from LAST_LIQUIDITY, 136)."""
    r.take("reqId", "orderId", *CONTRACT)
    r.take("execId", "time", "acctNumber", "exchange", "side", "shares", "price", "permId")
    r.take("clientId", "liquidation", "cumQty", "avgPrice", "orderRef", "evRule")
    r.take("evMultiplier", "modelCode", "lastLiquidity")
    if v >= MIN_SERVER_VER_PENDING_PRICE_REVISION:
        r.take("pendingPriceRevision")


def _historical_data(r: Reader, v: int) -> None:
    """processHistoricalDataMsg (start/end dates until HISTORICAL_DATA_END, 196)."""
    r.take("reqId", "startDateStr", "endDateStr")
    for _ in range(r.count("itemCount")):
        r.take("date", "open", "high", "low", "close", "volume", "wap", "barCount")


def _sec_def_opt_params(r: Reader, v: int) -> None:
    r.take("reqId", "exchange", "underlyingConId", "tradingClass", "multiplier")
    for _ in range(r.count("expCount")):
        r.take("expiration")
    for _ in range(r.count("strikeCount")):
        r.take("strike")


def _fa_params(r: Reader, v: int) -> None:
    r.take("faGroup", "faMethod", "faPercentage")
    if v < MIN_SERVER_VER_FA_PROFILE_DESUPPORT:
        r.take("faProfile")


def _vol_params(r: Reader, open_order: bool) -> None:
    r.take("volatility", "volatilityType", "deltaNeutralOrderType", "deltaNeutralAuxPrice")
    if r.value("deltaNeutralOrderType"):
        r.take("deltaNeutralConId")
        if open_order:
            r.take("deltaNeutralSettlingFirm", "deltaNeutralClearingAccount")
            r.take("deltaNeutralClearingIntent", "deltaNeutralOpenClose")
        r.take("deltaNeutralShortSale", "deltaNeutralShortSaleSlot")
        r.take("deltaNeutralDesignatedLocation")
    r.take("continuousUpdate", "referencePriceType")


def _legs_params_scale_hedge(r: Reader) -> None:
    r.take("comboLegsDescrip")
    for _ in range(r.count("comboLegsCount")):
        r.take("legConId", "legRatio", "legAction", "legExchange", "legOpenClose")
        r.take("legShortSaleSlot", "legDesignatedLocation", "legExemptCode")
    for _ in range(r.count("orderComboLegsCount")):
        r.take("orderComboLegPrice")
    for _ in range(r.count("smartComboRoutingParamsCount")):
        r.take("smartComboTag", "smartComboValue")
    r.take("scaleInitLevelSize", "scaleSubsLevelSize", "scalePriceIncrement")
    increment = r.value("scalePriceIncrement")
    try:
        scaled = bool(increment) and 0 < float(increment) < 1.7e308
    except ValueError as e:
        raise LayoutError(f"scalePriceIncrement is not a number: {increment!r}") from e
    if scaled:
        r.take("scalePriceAdjustValue", "scalePriceAdjustInterval", "scaleProfitOffset")
        r.take("scaleAutoReset", "scaleInitPosition", "scaleInitFillQty", "scaleRandomPercent")
    r.take("hedgeType")
    if r.value("hedgeType"):
        r.take("hedgeParam")


def _dnc_algo(r: Reader) -> None:
    if r.count("deltaNeutralContractPresent"):
        r.take("dncConId", "dncDelta", "dncPrice")
    r.take("algoStrategy")
    if r.value("algoStrategy"):
        for _ in range(r.count("algoParamsCount")):
            r.take("algoTag", "algoValue")


def _peg_bench_conditions(r: Reader) -> None:
    if r.value("orderType") in ("PEG BENCH", "PEGBENCH"):
        r.take("referenceContractId", "isPeggedChangeAmountDecrease", "peggedChangeAmount")
        r.take("referenceChangeAmount", "referenceExchangeId")
    if r.count("conditionsSize"):
        raise LayoutError("order conditions are not described by this table")


def _peg_best_mid(r: Reader, v: int) -> None:
    if v >= MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS:
        r.take("minTradeQty", "minCompeteSize", "competeAgainstBestOffset")
        r.take("midOffsetAtWhole", "midOffsetAtHalf")


def _open_order(r: Reader, v: int) -> None:
    """processOpenOrder (no version field from ORDER_CONTAINER, 145)."""
    r.take("orderId", *CONTRACT, "action", "totalQuantity", "orderType", "lmtPrice")
    r.take("auxPrice", "tif", "ocaGroup", "account", "openClose", "origin", "orderRef")
    r.take("clientId", "permId", "outsideRth", "hidden", "discretionaryAmt", "goodAfterTime")
    r.take("sharesAllocation")
    _fa_params(r, v)
    r.take("modelCode", "goodTillDate", "rule80A", "percentOffset", "settlingFirm")
    r.take("shortSaleSlot", "designatedLocation", "exemptCode", "auctionStrategy")
    r.take("startingPrice", "stockRefPrice", "delta", "stockRangeLower", "stockRangeUpper")
    r.take("displaySize", "blockOrder", "sweepToFill", "allOrNone", "minQty", "ocaType")
    r.take("eTradeOnly", "firmQuoteOnly", "nbboPriceCap", "parentId", "triggerMethod")
    _vol_params(r, open_order=True)
    r.take("trailStopPrice", "trailingPercent", "basisPoints", "basisPointsType")
    _legs_params_scale_hedge(r)
    r.take("optOutSmartRouting", "clearingAccount", "clearingIntent", "notHeld")
    _dnc_algo(r)
    r.take("solicited", "whatIf", "status", "initMarginBefore", "maintMarginBefore")
    r.take("equityWithLoanBefore", "initMarginChange", "maintMarginChange")
    r.take("equityWithLoanChange", "initMarginAfter", "maintMarginAfter")
    r.take("equityWithLoanAfter", "commission", "minCommission", "maxCommission")
    r.take("commissionCurrency", "warningText", "randomizeSize", "randomizePrice")
    _peg_bench_conditions(r)
    r.take("adjustedOrderType", "triggerPrice", "trailStopPrice2", "lmtPriceOffset")
    r.take("adjustedStopPrice", "adjustedStopLimitPrice", "adjustedTrailingAmount")
    r.take("adjustableTrailingUnit", "softDollarTierName", "softDollarTierValue")
    r.take("softDollarTierDisplayName", "cashQty", "dontUseAutoPriceForHedge")
    r.take("isOmsContainer", "discretionaryUpToLimitPrice", "usePriceMgmtAlgo")
    if v >= MIN_SERVER_VER_DURATION:
        r.take("duration")
    if v >= MIN_SERVER_VER_POST_TO_ATS:
        r.take("postToAts")
    if v >= MIN_SERVER_VER_AUTO_CANCEL_PARENT:
        r.take("autoCancelParent")
    _peg_best_mid(r, v)


def _completed_order(r: Reader, v: int) -> None:
    """processCompletedOrderMsg."""
    r.take(*CONTRACT, "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif")
    r.take("ocaGroup", "account", "openClose", "origin", "orderRef", "permId", "outsideRth")
    r.take("hidden", "discretionaryAmt", "goodAfterTime")
    _fa_params(r, v)
    r.take("modelCode", "goodTillDate", "rule80A", "percentOffset", "settlingFirm")
    r.take("shortSaleSlot", "designatedLocation", "exemptCode", "startingPrice")
    r.take("stockRefPrice", "delta", "stockRangeLower", "stockRangeUpper", "displaySize")
    r.take("sweepToFill", "allOrNone", "minQty", "ocaType", "triggerMethod")
    _vol_params(r, open_order=False)
    r.take("trailStopPrice", "trailingPercent")
    _legs_params_scale_hedge(r)
    r.take("clearingAccount", "clearingIntent", "notHeld")
    _dnc_algo(r)
    r.take("solicited", "status", "randomizeSize", "randomizePrice")
    _peg_bench_conditions(r)
    r.take("trailStopPrice2", "lmtPriceOffset", "cashQty", "dontUseAutoPriceForHedge")
    r.take("isOmsContainer", "autoCancelDate", "filledQuantity", "refFuturesConId")
    r.take("autoCancelParent", "shareholder", "imbalanceOnly", "routeMarketableToBbo")
    r.take("parentPermId", "completedTime", "completedStatus")
    _peg_best_mid(r, v)


READERS: dict[int, Callable[[Reader, int], None]] = {
    4: _error,
    5: _open_order,
    10: _contract_details,
    11: _exec_details,
    17: _historical_data,
    75: _sec_def_opt_params,
    101: _completed_order,
}


def check(version: int, fields: list[str]) -> dict[str, str]:
    """Named fields of one message, or LayoutError when it breaks IB's layout for ``version``."""
    msg_id = int(fields[0])
    r = Reader(fields)
    if msg_id in FIXED:
        r.take(*FIXED[msg_id])
    elif msg_id in READERS:
        READERS[msg_id](r, version)
    else:
        raise LayoutError(f"message id {msg_id} is not described by the layout table")
    _check_values(r)
    if version < MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT:
        for name, value in r.read:
            if (msg_id, name) in WHOLE_BELOW_163 and not value.lstrip("-").isdigit():
                raise LayoutError(f"message {msg_id} {name}={value!r} is not a whole number")
    return r.done()


def _check_values(r: Reader) -> None:
    for name, value in r.read:
        if name in INTS and not value.lstrip("-").isdigit():
            raise LayoutError(f"message {r.fields[0]} {name}={value!r} is not an int")
        if name == "secType" and value not in SEC_TYPES:
            raise LayoutError(f"message {r.fields[0]} secType={value!r} is not a security type")
        if name == "status" and value not in ORDER_STATUSES:
            raise LayoutError(f"message {r.fields[0]} status={value!r} is not an order status")

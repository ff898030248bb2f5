"""Server versions the simulator speaks, and the IB gates that change a layout in that range.

TWS encodes every message for the version it negotiated with that client, so each
encoder takes the session's version. Names are IB's ``MIN_SERVER_VER_*`` (from
``server_versions.py`` of the official API) without the prefix, so a reader can
grep IB's decoder for the rule each field follows.

The minimum is 157, the lowest version ib_async negotiates (``Client.MinClientVersion``;
it drops a server below it). Below it layouts change in more places
(tickOptionComputation's version field before 156, whatIf margins and order-container
fields before 145), none of which a current client asks for, so such a client is
refused instead of half served.
"""

from __future__ import annotations

MIN_VERSION = 157
MAX_VERSION = 178

DURATION = 158  # openOrder: duration
POST_TO_ATS = 160  # openOrder: postToAts
AUTO_CANCEL_PARENT = 162  # openOrder: autoCancelParent
FRACTIONAL_SIZE_SUPPORT = 163  # contractDetails: sizeMinTick (163 only)
SIZE_RULES = 164  # contractDetails: no version, no mdSizeMultiplier; minSize..suggested
ADVANCED_ORDER_REJECT = 166  # error: advancedOrderRejectJson
PEGBEST_PEGMID_OFFSETS = 170  # openOrder, completedOrder: minTradeQty..midOffsetAtHalf
FA_PROFILE_DESUPPORT = 177  # openOrder, completedOrder: faProfile dropped
PENDING_PRICE_REVISION = 178  # execDetails: pendingPriceRevision

SUPPORTED = range(MIN_VERSION, MAX_VERSION + 1)


def negotiate(low: int, high: int) -> int | None:
    """The version to speak with a client offering ``low..high``; None when none fits."""
    if high < MIN_VERSION or low > MAX_VERSION or low > high:
        return None
    return min(high, MAX_VERSION)

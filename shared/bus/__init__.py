"""Redis Streams bus: batched publisher, consumer groups, dead letters, tail reads,
request/reply."""

from shared.bus.connection import connect_redis
from shared.bus.consumer import GroupConsumer, Handler, Refused
from shared.bus.dlq import DeadLetters
from shared.bus.publisher import Publisher
from shared.bus.request import GatewayDown, ReplyTimeout, RequestClient
from shared.bus.tail import TailReader

__all__ = [
    "DeadLetters",
    "GatewayDown",
    "GroupConsumer",
    "Handler",
    "Publisher",
    "Refused",
    "ReplyTimeout",
    "RequestClient",
    "TailReader",
    "connect_redis",
]

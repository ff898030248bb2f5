"""Redis Streams bus: batched publisher, consumer groups, dead letters, tail reads."""

from shared.bus.connection import connect_redis
from shared.bus.consumer import GroupConsumer, Handler
from shared.bus.dlq import DeadLetters
from shared.bus.publisher import Publisher
from shared.bus.tail import TailReader

__all__ = [
    "DeadLetters",
    "GroupConsumer",
    "Handler",
    "Publisher",
    "TailReader",
    "connect_redis",
]

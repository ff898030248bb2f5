"""IB Gateway stand-in speaking the TWS API wire protocol (server versions 157..178)."""

from .config import SimConfig
from .faults import send_fault
from .main import serve
from .regimes import Regime
from .server import Simulator

__all__ = ["Regime", "SimConfig", "Simulator", "send_fault", "serve"]

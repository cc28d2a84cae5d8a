from agents.ibc.ibc import IBC

__all__ = ["IBC"]

from agents.ibc.ibc import IBC, IBCObjective

__all__ = ["IBC", "IBCObjective"]

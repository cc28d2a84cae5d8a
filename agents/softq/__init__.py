from agents.softq.policies import MlpPolicy, SoftQPolicy
from agents.softq.softq import SoftQ

__all__ = ["MlpPolicy", "SoftQ", "SoftQPolicy"]

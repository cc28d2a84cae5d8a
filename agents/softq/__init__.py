from agents.softq.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SoftQPolicy
from agents.softq.softq import SoftQ

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SoftQ", "SoftQPolicy"]

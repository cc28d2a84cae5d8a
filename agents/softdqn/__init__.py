from agents.softdqn.policies import MlpPolicy, SoftDQNPolicy
from agents.softdqn.softdqn import SoftDQN

__all__ = ["MlpPolicy", "SoftDQN", "SoftDQNPolicy"]

from agents.softdqn.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SoftDQNPolicy
from agents.softdqn.softdqn import SoftDQN

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SoftDQN", "SoftDQNPolicy"]

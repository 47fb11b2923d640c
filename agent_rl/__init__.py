"""agent_rl: multi-turn LLM-agent RL with entropy methods, on verl as a library."""

__version__ = "0.1.0"

"""gasp-rl: guided asymmetric self-play for coding LLMs."""

__version__ = "0.1.0"

"""Data files shipped with gasp-rl (AZR seed programs)."""

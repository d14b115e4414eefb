"""tokenmux: a self-hosted LLM gateway and model router."""

__version__ = "0.1.0"

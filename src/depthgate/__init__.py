"""depthgate: review pull requests through an LLM gateway, each hunk at the depth it needs."""

__version__ = "0.1.0"

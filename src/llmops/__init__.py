"""llmops: plan, provision and run LLM-serving data centers."""

__version__ = "0.1.0"

"""Subcommands of the `llmops` CLI, one module each."""

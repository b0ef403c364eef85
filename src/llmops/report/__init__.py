"""The run report: what an Ansible run did, how long each phase took, the plan, the endpoints.

`RunRecorder` collects a run's events (fed by the `llmops.datacenter.run_report` callback);
`write_report` writes report.json, report.md and report.html; `python -m llmops.report FILE`
prints the short summary of a written report.
"""

from llmops.report.recorder import ENDPOINTS_KEY, SCHEMA, RunRecorder, result_message
from llmops.report.render import render_html, render_markdown, summary_lines, write_report

__all__ = [
    "ENDPOINTS_KEY",
    "SCHEMA",
    "RunRecorder",
    "render_html",
    "render_markdown",
    "result_message",
    "summary_lines",
    "write_report",
]

"""Render the run report document as its short text summary, Markdown and HTML, and write the files."""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

from llmops.report.timeline import HAS_MATPLOTLIB, MISSING_MATPLOTLIB, phase_outcome, timeline_svg

COUNT_COLUMNS = ("ok", "changed", "failed", "skipped", "unreachable", "ignored", "rescued")
FILE_NAMES = {"json": "report.json", "markdown": "report.md", "html": "report.html"}


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {seconds:02d} s"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_lines(report: dict) -> list[str]:
    """A few lines for the end of a terminal session: result, time, changes, failures, plan, where."""
    totals = report["totals"]
    hosts = report["hosts"]
    playbooks = ", ".join(os.path.basename(path) for path in report["playbooks"]) or "(no playbook)"
    run = "Check run" if report["check_mode"] else "Run"
    lines = [
        f"{run} {report['result'].upper()}: {playbooks} on inventory {report['inventory']}, "
        f"{_plural(len(report['phases']), 'phase')} on {_plural(len(hosts), 'host')} "
        f"in {format_duration(report['duration_seconds'])}"
    ]
    if totals["changed"] == 0:
        if report["check_mode"]:
            lines.append("No changes would be made (changed=0): every host is in the desired state.")
        else:
            lines.append("No changes (changed=0): every host was already in the desired state.")
    else:
        changed_hosts = sum(1 for counts in hosts.values() if counts["changed"])
        verb = "Would change" if report["check_mode"] else "Changed"
        lines.append(
            f"{verb}: changed={totals['changed']} on {changed_hosts} of {_plural(len(hosts), 'host')} "
            f"({_plural(len(report['changed_tasks']), 'changed task')} listed in the report)."
        )
    ignored = sum(1 for task in report["failed_tasks"] if task["outcome"].endswith("(ignored)"))
    ignored_note = f"; {_plural(ignored, 'failure')} ignored" if ignored else ""
    if totals["failed"] == 0 and totals["unreachable"] == 0:
        lines.append(f"Failed: none (failed=0, unreachable=0{ignored_note}).")
    else:
        failed_hosts = sum(1 for counts in hosts.values() if counts["failed"] or counts["unreachable"])
        line = (
            f"Failed: failed={totals['failed']}, unreachable={totals['unreachable']} "
            f"on {_plural(failed_hosts, 'host')}{ignored_note}."
        )
        first = next((task for task in report["failed_tasks"] if "(" not in task["outcome"]), None)
        if first:
            message = first["message"].splitlines()[0] if first["message"] else first["outcome"]
            line += f" First: {first['host']}: {first['task']}: {message[:160]}"
        lines.append(line)
    lines.append(plan_line(report["plan"]))
    if report["endpoints"]:
        lines.append(
            "Endpoints: " + ", ".join(f"{endpoint['name']} {endpoint['url']}" for endpoint in report["endpoints"])
        )
    if report.get("files"):
        lines.append(f"Report: {report['files']['html']} (also report.md, report.json)")
    return lines


def plan_line(plan: dict | None) -> str:
    if not plan:
        return "Plan: none computed in this run."
    summary = plan["summary"]
    placed = len(summary.get("models", {}))
    unplaced = len(summary.get("unplaced", {}))
    return (
        f"Plan: {summary.get('status')}, cost {summary.get('cost_per_hour', 0):.2f}/h, "
        f"lower bound {summary.get('lower_bound_per_hour', 0):.2f}/h, gap {summary.get('gap_percent', 0):.2f}%, "
        f"{_plural(placed, 'model')} placed, {unplaced} unplaced."
    )


# Markdown -------------------------------------------------------------------------------------


def _cell(value) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or " "


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def _phase_rows(report: dict) -> list[list]:
    return [
        [
            index,
            phase["name"],
            phase["playbook"],
            phase["started"],
            phase["ended"],
            format_duration(phase["duration_seconds"]),
            *(phase["totals"][column] for column in COUNT_COLUMNS[:5]),
        ]
        for index, phase in enumerate(report["phases"], start=1)
    ]


PHASE_HEADER = ["#", "phase", "playbook", "started", "ended", "duration", "ok", "changed", "failed", "skipped", "unreachable"]


def render_markdown(report: dict) -> str:
    playbooks = ", ".join(os.path.basename(path) for path in report["playbooks"])
    lines = [f"# Run report: {playbooks} on {report['inventory']}", ""]
    lines += ["```text", *report.get("summary", summary_lines(report)), "```", ""]
    lines += [f"Started {report['started']}, ended {report['ended']}.", ""]

    lines += ["## Phases", ""]
    lines += _md_table(PHASE_HEADER, _phase_rows(report)) if report["phases"] else ["No play ran."]
    lines += [""]

    lines += ["## Hosts", ""]
    host_rows = [[host, *(counts[column] for column in COUNT_COLUMNS)] for host, counts in report["hosts"].items()]
    lines += _md_table(["host", *COUNT_COLUMNS], host_rows) if host_rows else ["No host was reached."]
    lines += [""]

    lines += ["## Changed tasks", ""]
    if report["changed_tasks"]:
        rows = [[t["phase"], t["host"], t["task"], t["message"]] for t in report["changed_tasks"]]
        lines += _md_table(["phase", "host", "task", "message"], rows)
    else:
        lines += ["None: no task changed anything (changed=0)."]
    lines += [""]

    lines += ["## Failed tasks", ""]
    if report["failed_tasks"]:
        rows = [[t["phase"], t["host"], t["task"], t["outcome"], t["message"]] for t in report["failed_tasks"]]
        lines += _md_table(["phase", "host", "task", "outcome", "message"], rows)
    else:
        lines += ["None."]
    lines += [""]

    lines += ["## Placement plan", ""]
    plan = report["plan"]
    if plan:
        summary = plan["summary"]
        lines += [
            f"- status: {summary.get('status')}",
            f"- cost per hour: {summary.get('cost_per_hour')}",
            f"- lower bound per hour: {summary.get('lower_bound_per_hour')}",
            f"- gap: {summary.get('gap_percent')} %",
            "- nodes per pool: "
            + (", ".join(f"{pool} {count}" for pool, count in summary.get("nodes_per_pool", {}).items()) or "none"),
            "",
        ]
        placed = [[name, text] for name, text in summary.get("models", {}).items()]
        lines += _md_table(["placed model", "replicas"], placed) if placed else ["No model placed."]
        lines += [""]
        unplaced = [[name, reason] for name, reason in summary.get("unplaced", {}).items()]
        lines += _md_table(["unplaced model", "reason"], unplaced) if unplaced else ["Every model was placed."]
    else:
        lines += ["No placement plan was computed in this run."]
    lines += [""]

    lines += ["## Endpoints", ""]
    if report["endpoints"]:
        rows = [[e["name"], e["url"], e["host"], e["task"]] for e in report["endpoints"]]
        lines += _md_table(["name", "url", "published by host", "task"], rows)
    else:
        lines += ["No task published endpoints (llmops_endpoints)."]
    lines += [""]

    if report["notes"]:
        lines += ["## Notes", "", *(f"- {note}" for note in report["notes"]), ""]
    return "\n".join(lines)


# HTML -----------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
pre.summary { background: #f5f5f5; padding: 0.8rem 1rem; border-left: 4px solid #888; white-space: pre-wrap; }
pre.summary.ok { border-color: #27ae60; } pre.summary.failed { border-color: #c0392b; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.n { text-align: right; } tr.failed td { background: #fdecea; } tr.changed td { background: #fef5e7; }
figure { margin: 0 0 1.5rem; } figure svg { max-width: 100%; height: auto; }
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _html_table(header: list[str], rows: list[list], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_esc(name)}</th>" for name in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        cells = "".join(
            f'<td class="n">{value}</td>' if isinstance(value, int) else f"<td>{_esc(value)}</td>" for value in row
        )
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _link(url: str) -> str:
    # Only web addresses become links; anything else is shown as text.
    if url.startswith(("http://", "https://")):
        return f'<a href="{_esc(url)}">{_esc(url)}</a>'
    return _esc(url)


def render_html(report: dict, svg: str | None) -> str:
    playbooks = ", ".join(os.path.basename(path) for path in report["playbooks"])
    title = f"Run report: {playbooks} on {report['inventory']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<pre class="summary {_esc(report["result"])}">'
        + _esc("\n".join(report.get("summary", summary_lines(report))))
        + "</pre>",
        f"<p>Started {_esc(report['started'])}, ended {_esc(report['ended'])}.</p>",
        "<h2>Phase timeline</h2>",
    ]
    if svg:
        parts.append(f"<figure>{svg}<figcaption>Green: no change, orange: changed, red: failed.</figcaption></figure>")
    else:
        parts.append(f"<p>Timeline not drawn: {_esc(MISSING_MATPLOTLIB)}.</p>")

    parts.append("<h2>Phases</h2>")
    if report["phases"]:
        classes = [phase_outcome(phase) for phase in report["phases"]]
        parts.append(_html_table(PHASE_HEADER, _phase_rows(report), [c if c != "ok" else "" for c in classes]))
    else:
        parts.append("<p>No play ran.</p>")

    parts.append("<h2>Hosts</h2>")
    host_rows = [[host, *(counts[column] for column in COUNT_COLUMNS)] for host, counts in report["hosts"].items()]
    parts.append(_html_table(["host", *COUNT_COLUMNS], host_rows) if host_rows else "<p>No host was reached.</p>")

    parts.append("<h2>Changed tasks</h2>")
    if report["changed_tasks"]:
        rows = [[t["phase"], t["host"], t["task"], t["message"]] for t in report["changed_tasks"]]
        parts.append(_html_table(["phase", "host", "task", "message"], rows))
    else:
        parts.append("<p>None: no task changed anything (changed=0).</p>")

    parts.append("<h2>Failed tasks</h2>")
    if report["failed_tasks"]:
        rows = [[t["phase"], t["host"], t["task"], t["outcome"], t["message"]] for t in report["failed_tasks"]]
        classes = ["" if "(" in t["outcome"] else "failed" for t in report["failed_tasks"]]
        parts.append(_html_table(["phase", "host", "task", "outcome", "message"], rows, classes))
    else:
        parts.append("<p>None.</p>")

    parts.append("<h2>Placement plan</h2>")
    plan = report["plan"]
    if plan:
        summary = plan["summary"]
        parts.append(f"<p>{_esc(plan_line(plan))}</p>")
        pools = [[pool, count] for pool, count in summary.get("nodes_per_pool", {}).items()]
        if pools:
            parts.append(_html_table(["pool", "nodes"], pools))
        placed = [[name, text] for name, text in summary.get("models", {}).items()]
        parts.append(_html_table(["placed model", "replicas"], placed) if placed else "<p>No model placed.</p>")
        unplaced = [[name, reason] for name, reason in summary.get("unplaced", {}).items()]
        parts.append(
            _html_table(["unplaced model", "reason"], unplaced) if unplaced else "<p>Every model was placed.</p>"
        )
    else:
        parts.append("<p>No placement plan was computed in this run.</p>")

    parts.append("<h2>Endpoints</h2>")
    if report["endpoints"]:
        rows = "".join(
            f"<tr><td>{_esc(e['name'])}</td><td>{_link(e['url'])}</td><td>{_esc(e['host'])}</td>"
            f"<td>{_esc(e['task'])}</td></tr>"
            for e in report["endpoints"]
        )
        parts.append(
            "<table><thead><tr><th>name</th><th>url</th><th>published by host</th><th>task</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    else:
        parts.append("<p>No task published endpoints (llmops_endpoints).</p>")

    if report["notes"]:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_esc(note)}</li>" for note in report["notes"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# Files ----------------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    # A reader (lab.sh, a browser) never sees half a file, and two runs never interleave.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_report(report: dict, directory: str | os.PathLike) -> tuple[dict, list[str]]:
    """Write report.json, report.md and report.html into directory (created if missing).

    Returns the report as written (with `files` and `summary` filled in) and warnings (the timeline
    could not be drawn).
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    report = dict(report, files={kind: str(directory / name) for kind, name in FILE_NAMES.items()})
    report["summary"] = summary_lines(report)
    warnings: list[str] = []
    svg = None
    if HAS_MATPLOTLIB:
        svg = timeline_svg(report)
    else:
        warnings.append(f"run report written without its timeline: {MISSING_MATPLOTLIB}")
    _write_atomically(directory / FILE_NAMES["json"], json.dumps(report, indent=2, sort_keys=False) + "\n")
    _write_atomically(directory / FILE_NAMES["markdown"], render_markdown(report))
    _write_atomically(directory / FILE_NAMES["html"], render_html(report, svg))
    return report, warnings

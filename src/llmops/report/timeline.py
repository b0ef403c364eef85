"""The phase timeline of a run as an SVG drawing, made with matplotlib."""

from __future__ import annotations

import io

try:
    import matplotlib
    from matplotlib.figure import Figure

    HAS_MATPLOTLIB = True
except ImportError:
    HAS_MATPLOTLIB = False

MISSING_MATPLOTLIB = (
    "the phase timeline needs matplotlib on the controller: pip install 'matplotlib>=3.8' "
    "(in this project: scripts/setup.sh)"
)

# Bar colours by what happened in the phase.
COLOURS = {"failed": "#c0392b", "changed": "#e67e22", "ok": "#27ae60"}


def phase_outcome(phase: dict) -> str:
    totals = phase["totals"]
    if totals["failed"] or totals["unreachable"]:
        return "failed"
    return "changed" if totals["changed"] else "ok"


def _duration_label(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def timeline_svg(report: dict) -> str:
    """One horizontal bar per phase, from its start to its end in seconds since the run began.

    Returns an <svg> element without the XML prolog, ready to sit inside HTML. Raises RuntimeError
    naming the fix when matplotlib is missing.
    """
    if not HAS_MATPLOTLIB:
        raise RuntimeError(MISSING_MATPLOTLIB)
    phases = report["phases"]
    names = [f"{index}. {phase['name']}" for index, phase in enumerate(phases, start=1)]
    total = max(report["duration_seconds"], 0.001)
    # Text stays text (svg.fonttype none) and element ids are stable from run to run (hashsalt).
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "llmops-run-report"}):
        figure = Figure(figsize=(9, 0.8 + 0.45 * max(len(phases), 1)), layout="constrained")
        axes = figure.subplots()
        for row, phase in enumerate(phases):
            axes.barh(
                row,
                max(phase["duration_seconds"], total / 500),
                left=phase["offset_seconds"],
                height=0.6,
                color=COLOURS[phase_outcome(phase)],
            )
            axes.text(
                phase["offset_seconds"] + phase["duration_seconds"] + total / 100,
                row,
                _duration_label(phase["duration_seconds"]),
                va="center",
                fontsize=8,
            )
        axes.set_yticks(range(len(phases)), labels=names, fontsize=9)
        axes.invert_yaxis()
        axes.set_xlim(0, total * 1.18)
        axes.set_xlabel("seconds since the run started")
        axes.grid(axis="x", alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        if not phases:
            axes.text(0.5, 0.5, "no phases ran", transform=axes.transAxes, ha="center")
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :] if "<svg" in svg else svg


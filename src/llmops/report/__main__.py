"""Print the short summary of a written run report.

    python -m llmops.report out/lab/report.json     (or the folder that holds it)

Exit status: 0 when the run succeeded, 1 when it failed, 2 when the report cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmops.report.recorder import SCHEMA


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = Path(args[0])
    if path.is_dir():
        path = path / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read the run report {path}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        print(f"{path} is not a run report (schema {SCHEMA})", file=sys.stderr)
        return 2
    print("\n".join(report["summary"]))
    return 0 if report["result"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())

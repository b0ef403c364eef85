# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)


class ModuleDocFragment:
    # Options shared by the modules that write a promtool-validated Prometheus file.
    DOCUMENTATION = r"""
options:
  path:
    description:
      - The file to write. Its directory must exist.
      - A candidate is written next to it, checked with promtool, and only then moved over the live file,
        so a rejected file never replaces a working one.
    type: path
    required: true
  promtool:
    description:
      - The promtool binary that validates the candidate file.
    type: path
    default: promtool
  validate:
    description:
      - Check the candidate with promtool before it replaces the live file.
      - Turn off only where promtool is unavailable; the file is then written unchecked.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: The candidate is still rendered and checked with promtool; nothing replaces the live file.
  diff_mode:
    support: full
    details: The diff shows the file before and after.
"""

#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""A module of the run report tests: returns llmops_endpoints the way a serving module would."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: publish_endpoints
short_description: Return the given endpoints as llmops_endpoints (run report tests only)
description:
  - Returns O(endpoints) unchanged as RV(llmops_endpoints), the key the run_report callback collects.
author:
  - llmops contributors
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  endpoints:
    description: Endpoint name to URL.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Publish the API endpoint
  publish_endpoints:
    endpoints:
      api: http://127.0.0.1:8000/v1
"""

RETURN = r"""
llmops_endpoints:
  description: The endpoints, name to URL.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (documentation comes first)


def main() -> None:
    module = AnsibleModule(argument_spec={"endpoints": {"type": "dict", "required": True}}, supports_check_mode=True)
    module.exit_json(changed=False, llmops_endpoints=module.params["endpoints"])


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)

DOCUMENTATION = r"""
module: alertmanager_config
short_description: Write alertmanager.yml from structured routes, receivers and inhibition rules, checked by amtool first
version_added: 0.1.0
description:
  - Renders an Alertmanager configuration from a routing tree, webhook and email receivers, inhibition
    rules and global SMTP settings.
  - Structure is checked first and a bad input fails naming the field and the accepted values, for example
    C(route.routes[0].receiver) naming a receiver that is not defined.
  - The rendered file is then checked with C(amtool check-config) on a candidate copy next to the live file;
    only a file amtool accepts replaces the live one, so a rejected config changes nothing.
  - Secrets are never written into the file; passwords are referenced as C(*_file) paths.
  - Writes only when the content differs; reload Alertmanager from a handler when C(changed).
extends_documentation_fragment:
  - ansible.builtin.files
options:
  path:
    description:
      - The configuration file to write. Its directory must exist.
      - A candidate is written next to it, checked with amtool, and only then moved over the live file.
    type: path
    required: true
  amtool:
    description: The amtool binary that validates the candidate file.
    type: path
    default: amtool
  validate:
    description:
      - Check the candidate with C(amtool check-config) before it replaces the live file.
      - Turn off only where amtool is unavailable; the file is then written unchecked.
    type: bool
    default: true
  global_config:
    description: The C(global) section.
    type: dict
    default: {}
    suboptions:
      resolve_timeout:
        description: After how long an alert without updates is considered resolved.
        type: str
      smtp_smarthost:
        description: Default SMTP server for email receivers, C(host:port).
        type: str
      smtp_from:
        description: Default sender address for email receivers.
        type: str
      smtp_hello:
        description: Host name sent in the SMTP HELO.
        type: str
      smtp_auth_username:
        description: SMTP user name.
        type: str
      smtp_auth_identity:
        description: SMTP PLAIN auth identity.
        type: str
      smtp_auth_password_file:
        description: File holding the SMTP password, readable by Alertmanager's user.
        type: str
      smtp_require_tls:
        description: Require STARTTLS to the SMTP server.
        type: bool
  route:
    description:
      - The root of the routing tree. Its C(receiver) gets every alert no child route takes.
      - Keys C(receiver), C(group_by) (label names, or C(...) for every label), C(group_wait),
        C(group_interval), C(repeat_interval), and C(routes), child routes with the same keys plus
        C(matchers) (strings such as C(severity="critical")) and C(continue).
    type: dict
    required: true
  receivers:
    description:
      - Where notifications go. A receiver with no configs discards what is routed to it.
      - Route receivers must name one of these.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unique receiver name.
        type: str
        required: true
      webhook_configs:
        description: HTTP POST of the alert group as JSON.
        type: list
        elements: dict
        suboptions:
          url:
            description: Absolute C(http) or C(https) URL.
            type: str
            required: true
          send_resolved:
            description: Also notify when alerts resolve.
            type: bool
          max_alerts:
            description: Most alerts per message (0 is no limit).
            type: int
          http_config:
            description:
              - C({basic_auth, authorization, tls_config, proxy_url, follow_redirects, enable_http2}),
                secrets as C(password_file) or C(credentials_file).
            type: dict
      email_configs:
        description: Email notifications.
        type: list
        elements: dict
        suboptions:
          to:
            description: Recipient address(es).
            type: str
            required: true
          from:
            description: Sender address; default C(global_config.smtp_from).
            type: str
          smarthost:
            description: SMTP server C(host:port); default C(global_config.smtp_smarthost).
            type: str
          hello:
            description: Host name sent in the SMTP HELO.
            type: str
          auth_username:
            description: SMTP user name.
            type: str
          auth_identity:
            description: SMTP PLAIN auth identity.
            type: str
          auth_password_file:
            description: File holding the SMTP password.
            type: str
          require_tls:
            description: Require STARTTLS.
            type: bool
          send_resolved:
            description: Also notify when alerts resolve.
            type: bool
          headers:
            description: Further email headers.
            type: dict
          html:
            description: HTML body template.
            type: str
          text:
            description: Text body template.
            type: str
  inhibit_rules:
    description:
      - Mute alerts matching C(target_matchers) while an alert matching C(source_matchers) fires with the
        same values of the C(equal) labels.
    type: list
    elements: dict
    default: []
    suboptions:
      source_matchers:
        description: Matchers of the inhibiting alert.
        type: list
        elements: str
        required: true
      target_matchers:
        description: Matchers of the alerts to mute.
        type: list
        elements: str
        required: true
      equal:
        description: Labels that must have equal values in source and target.
        type: list
        elements: str
  templates:
    description: Notification template files (paths or globs).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: The candidate is still rendered and checked with amtool; nothing replaces the live file.
  diff_mode:
    support: full
    details: The diff shows the file before and after (it holds no secrets).
author:
  - llmops maintainers
"""

EXAMPLES = r"""
- name: Page the on-call webhook for critical alerts, mail the team for the rest
  llmops.datacenter.alertmanager_config:
    path: /etc/prometheus/alertmanager.yml
    amtool: /usr/bin/amtool
    owner: root
    group: prometheus
    mode: "0640"
    global_config:
      resolve_timeout: 5m
      smtp_smarthost: mail.example.net:587
      smtp_from: alertmanager@example.net
      smtp_auth_username: alertmanager
      smtp_auth_password_file: /etc/prometheus/alertmanager-smtp-password
    route:
      receiver: team-mail
      group_by: [alertname, instance]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      routes:
        - matchers: ['severity="critical"']
          receiver: on-call
    receivers:
      - name: team-mail
        email_configs:
          - to: llm-platform@example.net
      - name: on-call
        webhook_configs:
          - url: https://pager.example.net/hooks/alertmanager
            send_resolved: true
    inhibit_rules:
      - source_matchers: ['severity="critical"']
        target_matchers: ['severity="warning"']
        equal: [alertname, instance]
  notify: Reload alertmanager
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/prometheus/alertmanager.yml
diff:
  description: The file before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {before: "", after: "route:\n  receiver: \"discard\"\n"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.alertmanager_config import (
    AlertmanagerConfigError,
    apply_config,
    build_config,
)
from ansible_collections.llmops.datacenter.plugins.module_utils.file_module import exit_with_file_result

_STR = {"type": "str"}
_BOOL = {"type": "bool"}


def argument_spec():
    return {
        "path": {"type": "path", "required": True},
        "amtool": {"type": "path", "default": "amtool"},
        "validate": {"type": "bool", "default": True},
        "global_config": {
            "type": "dict",
            "default": {},
            "options": {
                "resolve_timeout": _STR,
                "smtp_smarthost": _STR,
                "smtp_from": _STR,
                "smtp_hello": _STR,
                "smtp_auth_username": _STR,
                "smtp_auth_identity": _STR,
                "smtp_auth_password_file": _STR,
                "smtp_require_tls": _BOOL,
            },
        },
        # The routing tree nests to any depth; alertmanager_config's module_utils checks it.
        "route": {"type": "dict", "required": True},
        "receivers": {
            "type": "list",
            "elements": "dict",
            "required": True,
            "options": {
                "name": {"type": "str", "required": True},
                "webhook_configs": {
                    "type": "list",
                    "elements": "dict",
                    "options": {
                        "url": {"type": "str", "required": True},
                        "send_resolved": _BOOL,
                        "max_alerts": {"type": "int"},
                        "http_config": {"type": "dict"},
                    },
                },
                "email_configs": {
                    "type": "list",
                    "elements": "dict",
                    "options": {
                        "to": {"type": "str", "required": True},
                        "from": _STR,
                        "smarthost": _STR,
                        "hello": _STR,
                        "auth_username": _STR,
                        "auth_identity": _STR,
                        "auth_password_file": _STR,
                        "require_tls": _BOOL,
                        "send_resolved": _BOOL,
                        "headers": {"type": "dict"},
                        "html": _STR,
                        "text": _STR,
                    },
                },
            },
        },
        "inhibit_rules": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "source_matchers": {"type": "list", "elements": "str", "required": True},
                "target_matchers": {"type": "list", "elements": "str", "required": True},
                "equal": {"type": "list", "elements": "str"},
            },
        },
        "templates": {"type": "list", "elements": "str", "default": []},
    }


def main():
    module = AnsibleModule(argument_spec=argument_spec(), add_file_common_args=True, supports_check_mode=True)
    params = module.params
    path = params["path"]
    amtool = module.get_bin_path(params["amtool"], required=True) if params["validate"] else None
    try:
        desired = build_config(
            params["global_config"], params["route"], params["receivers"], params["inhibit_rules"], params["templates"]
        )
        result = apply_config(path, desired, module.run_command, module.check_mode, amtool)
    except AlertmanagerConfigError as error:
        module.fail_json(msg=str(error), path=path, changed=False)
    exit_with_file_result(module, result)


if __name__ == "__main__":
    main()

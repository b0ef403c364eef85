# Sourced by every project script: one place for the environment the tools need.
# shellcheck shell=bash
LLMOPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LLMOPS_ROOT
# LLMOPS_CONTAINERS_CONF swaps in another podman configuration (the tests use it to prove the
# DNS check fails on a machine without the DNS plugin).
export CONTAINERS_CONF="${LLMOPS_CONTAINERS_CONF:-$LLMOPS_ROOT/lab/containers.conf}"
# Keep Ansible's and molecule's state inside the project, never in the user's home.
export ANSIBLE_HOME="$LLMOPS_ROOT/.ansible"
export ANSIBLE_CONFIG="$LLMOPS_ROOT/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$LLMOPS_ROOT/collections"
export PATH="$LLMOPS_ROOT/.venv/bin:$PATH"
# The locally built Debian 12 systemd image every lab host and molecule platform boots.
export LLMOPS_IMAGE="${LLMOPS_IMAGE:-localhost/llmops/debian12-systemd:latest}"
export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Model-server pods of a Kubernetes cluster as Prometheus file-discovery targets.

Prometheus as Debian packages it is built without Kubernetes service discovery (no
``kubernetes_sd_configs``), so a Prometheus host outside the cluster learns the pods from this
program instead: it lists the pods matching a label selector from the API server with a service
account token, keeps each serving pod's named container port, and writes the targets, labelled
from the pod, to a file that Prometheus' ``file_sd_configs`` watches. The file is rewritten only
when the targets change; when the API server does not answer, the last targets stay (Prometheus
then reports any pod that went away as down, rather than silently forgetting it).

Runs on the Prometheus host (the prometheus role installs this file as a systemd service):
standard library only, and importable without side effects for the unit tests.

    kubernetes_pod_targets.py --config FILE            poll every interval seconds, forever
    kubernetes_pod_targets.py --config FILE --once     one round; exit 1 if any job failed
    kubernetes_pod_targets.py --check-config FILE      validate a configuration and exit

The configuration is JSON: ``{"interval": 15, "jobs": [{job_name, api_server, ca_file,
token_file, namespaces, label_selector, port_name, targets_file}]}``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.parse
import urllib.request

# What the serving renderer (src/llmops/serving/kubernetes/render.py) puts on every model-server pod:
# pods of our rollouts, and of those only the ones that serve (a multi-node replica's workers do not).
DEFAULT_LABEL_SELECTOR = "app.kubernetes.io/managed-by=llmops,llmops.io/serves=true"
# The model server container's named port (render.PORT_NAME); vLLM serves /metrics on its API port.
DEFAULT_PORT_NAME = "http"
# Target labels from pod labels. "model" is what the built-in serving rules select on, as for host
# units; namespace and workload are what the renderer's KEDA queries select on.
POD_LABELS = (
    ("model", "llmops.io/model"),
    ("tenant", "llmops.io/tenant"),
    ("pool", "llmops.io/pool"),
    ("workload", "llmops.io/workload"),
    ("plan", "llmops.io/plan"),
)
SELECTOR_FORMAT = "comma-separated key=value, key==value or key!=value terms"
JOB_KEYS = (
    "job_name",
    "api_server",
    "ca_file",
    "token_file",
    "namespaces",
    "label_selector",
    "port_name",
    "targets_file",
)

_SELECTOR_TERM = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._/-]*)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


class PodTargetsError(ValueError):
    """A configuration that cannot work; the message names the field and what is accepted."""


def parse_selector(text, field="label_selector"):
    """[(key, operator, value)] from a Kubernetes equality-based label selector; '' selects every pod."""
    if not isinstance(text, str):
        raise PodTargetsError(f"{field}: expected a string of {SELECTOR_FORMAT}")
    terms = []
    for term in (part.strip() for part in text.split(",")):
        if not term:
            continue
        match = _SELECTOR_TERM.match(term)
        if not match:
            raise PodTargetsError(f"{field}: {term!r} is not a selector term; accepted: {SELECTOR_FORMAT}")
        key, operator, value = match.groups()
        terms.append((key, "!=" if operator == "!=" else "=", value))
    return terms


def selector_matches(terms, labels):
    return all((labels.get(key) == value) == (operator == "=") for key, operator, value in terms)


def validate_config(config):
    """Raise naming the bad field unless ``config`` is a usable configuration; returns it normalised."""
    if not isinstance(config, dict):
        raise PodTargetsError("configuration: expected a mapping with interval and jobs")
    interval = config.get("interval", 15)
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or not 1 <= interval <= 3600:
        raise PodTargetsError(f"interval: {interval!r} must be a number of seconds from 1 to 3600")
    jobs = config.get("jobs")
    if not isinstance(jobs, list):
        raise PodTargetsError("jobs: expected a list of jobs")
    normalised, names, files = [], set(), set()
    for index, job in enumerate(jobs):
        field = f"jobs[{index}]"
        if not isinstance(job, dict):
            raise PodTargetsError(f"{field}: expected a mapping with {', '.join(JOB_KEYS)}")
        unknown = sorted(set(job) - set(JOB_KEYS))
        if unknown:
            raise PodTargetsError(
                f"{field}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(JOB_KEYS)}"
            )
        name = job.get("job_name")
        if not isinstance(name, str) or not name or name in names:
            raise PodTargetsError(f"{field}.job_name: a non-empty name, unique among the jobs, is required")
        names.add(name)
        api_server = job.get("api_server")
        if not isinstance(api_server, str) or not re.match(r"^https://[^/\s]+/?$", api_server):
            raise PodTargetsError(
                f"{field}.api_server: {api_server!r} is not an API server URL; accepted format: https://host:port"
            )
        for key in ("ca_file", "token_file", "targets_file"):
            if not isinstance(job.get(key), str) or not job[key].startswith("/"):
                raise PodTargetsError(f"{field}.{key}: {job.get(key)!r} must be an absolute path")
        if job["targets_file"] in files:
            raise PodTargetsError(
                f"{field}.targets_file: {job['targets_file']} is already another job's targets file"
            )
        files.add(job["targets_file"])
        namespaces = job.get("namespaces") or []
        if not isinstance(namespaces, list) or not all(
            isinstance(ns, str) and _DNS_LABEL.match(ns) for ns in namespaces
        ):
            raise PodTargetsError(
                f"{field}.namespaces: expected a list of namespace names (DNS labels); empty watches all"
            )
        selector = job.get("label_selector", DEFAULT_LABEL_SELECTOR)
        parse_selector(selector, f"{field}.label_selector")
        port_name = job.get("port_name", DEFAULT_PORT_NAME)
        if not isinstance(port_name, str) or not _PORT_NAME.match(port_name):
            raise PodTargetsError(
                f"{field}.port_name: {port_name!r} is not a container port name (1-15 lowercase letters, digits and -)"
            )
        normalised.append(
            {
                **job,
                "api_server": api_server.rstrip("/"),
                "namespaces": list(namespaces),
                "label_selector": selector,
                "port_name": port_name,
            }
        )
    return {"interval": interval, "jobs": normalised}


def _address(ip, port):
    try:
        if ipaddress.ip_address(ip).version == 6:
            return f"[{ip}]:{port}"
    except ValueError:
        return None
    return f"{ip}:{port}"


def pod_target_groups(pods, port_name=DEFAULT_PORT_NAME, selector=DEFAULT_LABEL_SELECTOR):
    """File-discovery target groups for the pods that serve: one group per pod, sorted by address.

    A pod is a target when it matches the selector (checked here again: a broader selector on the
    API side never brings in foreign pods), has an IP, has not finished, and one of its (non-init)
    containers declares the named port.
    """
    terms = parse_selector(selector)
    groups = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        labels = metadata.get("labels") or {}
        status = pod.get("status") or {}
        spec = pod.get("spec") or {}
        if not selector_matches(terms, labels) or status.get("phase") in ("Succeeded", "Failed"):
            continue
        ports = [
            port.get("containerPort")
            for container in spec.get("containers") or []
            for port in container.get("ports") or []
            if port.get("name") == port_name and (port.get("protocol") or "TCP") == "TCP"
        ]
        address = _address(status.get("podIP") or "", ports[0]) if ports else None
        if not address:
            continue
        target_labels = {target: labels[source] for target, source in POD_LABELS if labels.get(source)}
        target_labels["namespace"] = metadata.get("namespace", "")
        target_labels["pod"] = metadata.get("name", "")
        if spec.get("nodeName"):
            target_labels["node"] = spec["nodeName"]
        groups.append({"targets": [address], "labels": target_labels})
    return sorted(groups, key=lambda group: group["targets"][0])


def list_pods(job, timeout=10.0):
    """Every pod the job's selector matches, from the API server (paged), as the API returns them."""
    context = ssl.create_default_context(cafile=job["ca_file"])
    # Read per round: a rotated token is picked up without a restart.
    with open(job["token_file"], encoding="utf-8") as handle:
        token = handle.read().strip()
    paths = [f"/api/v1/namespaces/{ns}/pods" for ns in job["namespaces"]] or ["/api/v1/pods"]
    pods = []
    for path in paths:
        continue_token = ""
        while True:
            query = {"labelSelector": job["label_selector"], "limit": "500"}
            if continue_token:
                query["continue"] = continue_token
            request = urllib.request.Request(f"{job['api_server']}{path}?{urllib.parse.urlencode(query)}")
            request.add_header("Authorization", f"Bearer {token}")
            request.add_header("Accept", "application/json")
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                page = json.load(response)
            pods.extend(page.get("items") or [])
            continue_token = (page.get("metadata") or {}).get("continue") or ""
            if not continue_token:
                break
    return pods


def write_if_changed(path, groups):
    """Replace ``path`` atomically with the groups as JSON; False when it already held them."""
    text = json.dumps(groups, indent=2, sort_keys=True) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path) or "."
    descriptor, candidate = tempfile.mkstemp(prefix=".targets-", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(candidate, 0o644)
        # Prometheus watches the directory: a rename never shows it a half-written file.
        os.replace(candidate, path)
    except BaseException:
        if os.path.exists(candidate):
            os.unlink(candidate)
        raise
    return True


def run_round(config, log=print):
    """One discovery round over every job; returns the names of the jobs that failed."""
    failed = []
    for job in config["jobs"]:
        try:
            groups = pod_target_groups(list_pods(job), job["port_name"], job["label_selector"])
        except (OSError, ValueError) as exc:
            # urllib's errors are OSErrors; keep the last targets and say why.
            log(
                f"{job['job_name']}: listing pods from {job['api_server']} failed, keeping the last targets: {exc}"
            )
            failed.append(job["job_name"])
            continue
        if write_if_changed(job["targets_file"], groups):
            log(f"{job['job_name']}: {len(groups)} pod target(s) written to {job['targets_file']}")
    return failed


def load_config(path):
    with open(path, encoding="utf-8") as handle:
        return validate_config(json.load(handle))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Kubernetes model-server pods as Prometheus file-discovery targets."
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--config", help="the JSON configuration to run")
    mode.add_argument("--check-config", metavar="FILE", help="validate a configuration and exit")
    parser.add_argument("--once", action="store_true", help="one round, then exit (1 if a job failed)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.check_config or args.config)
    except (OSError, ValueError) as exc:
        print(f"{args.check_config or args.config}: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"{args.check_config}: {len(config['jobs'])} job(s), valid")
        return 0

    def log(line):
        print(line, file=sys.stderr, flush=True)

    while True:
        failed = run_round(config, log)
        if args.once:
            return 1 if failed else 0
        time.sleep(config["interval"])


if __name__ == "__main__":
    sys.exit(main())

"""Host-mode renderer: one systemd unit per replica, from the serving spec (a pure function)."""

from __future__ import annotations

import shlex

from .spec import ReplicaSpec

UNIT_PREFIX = "llmops-vllm-"
# The first line of every unit we render: the model_serving role only ever removes units with it.
OWNER_MARKER = "# Managed by llmops.datacenter.model_serving: replica "


def unit_name(replica_id: str) -> str:
    return f"{UNIT_PREFIX}{replica_id}.service"


def _quote_env(value: str) -> str:
    # systemd's Environment= takes "KEY=VALUE" words with C-style escapes inside double quotes.
    return value.replace("\\", "\\\\").replace('"', '\\"')


def render_systemd_unit(
    replica: ReplicaSpec,
    *,
    python: str,
    user: str,
    group: str | None = None,
    memory_max: str | None = None,
    tasks_max: int | None = 4096,
    nofile: int = 65536,
    restart_sec: int = 5,
    stop_timeout_sec: int = 30,
    start_timeout_sec: int = 600,
) -> str:
    """The unit text for `replica`, run as `user` with the virtualenv's `python`.

    Restart=always: a replica killed by anyone (the OOM killer, a person) comes back. Memory and
    task limits bound what one replica can take from its neighbours on a shared node.
    """
    command = " ".join(shlex.quote(word) for word in replica.command(python))
    environment = "\n".join(
        f'Environment="{key}={_quote_env(value)}"' for key, value in sorted(replica.environment.items())
    )
    limits = [f"LimitNOFILE={nofile}"]
    if memory_max:
        limits.append(f"MemoryMax={memory_max}")
    if tasks_max:
        limits.append(f"TasksMax={tasks_max}")
    gpus = ",".join(str(i) for i in replica.gpu_indices)
    return "\n".join(
        [
            f"{OWNER_MARKER}{replica.id}",
            f"# model={replica.model} artifact={replica.artifact.name}/{replica.artifact.version} "
            f"node={replica.node} gpus={gpus} port={replica.port}",
            "[Unit]",
            f"Description=vLLM replica {replica.id} ({replica.model} on GPUs {gpus})",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"User={user}",
            f"Group={group or user}",
            f"WorkingDirectory={replica.state_dir}",
            environment,
            f"ExecStart={command}",
            "Restart=always",
            f"RestartSec={restart_sec}",
            f"TimeoutStartSec={start_timeout_sec}",
            f"TimeoutStopSec={stop_timeout_sec}",
            "KillSignal=SIGTERM",
            *limits,
            "NoNewPrivileges=true",
            "PrivateTmp=true",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )

"""The plan: the planner's only output, read by the CLI, the module, the serving renderers and pulumi/.

Field names are the published interface (docs/planner.md); do not rename them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanNode(_Out):
    name: str
    pool: str
    zone: str
    gpu_type: str
    gpus: int
    hourly_cost: float


class PlanReplica(_Out):
    model: str
    node: str
    gpu_indices: list[int]
    gpu_type: str
    precision: str
    tensor_parallel: int
    memory_per_gpu_gib: float
    capacity_requests_per_second: float
    traffic_weight: float | None = Field(
        default=None,
        description="This replica's share of its model's traffic (the model's weights sum to 1); the "
        "gateway and the per-pool workloads route by it. None in plans that predate weights.",
    )


class Autoscaling(_Out):
    """The replica range and per-replica target that HPA/KEDA objects use, from the performance model."""

    min_replicas: int = Field(description="What survivability needs at base demand.")
    max_replicas: int = Field(description="What the peak demand needs.")
    target_requests_per_second: float = Field(description="Requests/s one replica serves within the SLO.")
    target_requests_in_flight: float = Field(description="Concurrent requests one replica holds within the SLO.")


class PlanModel(_Out):
    name: str
    params_billion: float
    kv_bytes_per_token_bf16: int
    demand_requests_per_second: float
    capacity_requests_per_second: float
    ttft_ms: float | None = Field(
        description="Worst TTFT among the model's replica configs at their full capacity (the rate at which "
        "each still meets the SLO, so close to it by construction); None if unserved."
    )
    tpot_ms: float | None = Field(description="Worst TPOT among the model's replica configs; None if unserved.")
    replicas: int
    served: bool
    autoscaling: Autoscaling | None = Field(default=None, description="None in plans that predate it.")
    ttft_at_demand_ms: float | None = Field(
        default=None,
        description="Predicted 90th-percentile TTFT at the planned demand, each replica at its traffic_weight's "
        "share; the worst replica. None if unserved or in plans that predate it.",
    )


class Unplaced(_Out):
    model: str
    reason: str


class Plan(_Out):
    status: Literal["optimal", "feasible", "partial"]
    cost_per_hour: float
    lower_bound_per_hour: float
    solve_seconds: float
    nodes: list[PlanNode]
    replicas: list[PlanReplica]
    models: list[PlanModel]
    unplaced: list[Unplaced]

    @property
    def gap(self) -> float:
        """Relative distance from the lower bound: 0.0 means proven optimal."""
        if self.cost_per_hour <= 0:
            return 0.0
        return max(0.0, (self.cost_per_hour - self.lower_bound_per_hour) / self.cost_per_hour)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")

"""The llmops cloud layer: read the stack's settings and the placement plan, compose the components.

Node counts come from the same fleet.yml and models.yml the playbooks read, through the planner:
change the demand in models.yml and `pulumi preview` shows the node groups it needs. When the
models file names each model's artifact, the same plan's serving objects (Deployments, Services,
PodDisruptionBudgets, autoscalers) are applied too, with the image of `llmops:servingImage`.
"""

from pathlib import Path

import pulumi_kubernetes as k8s
from llmops_infra import (
    Cluster,
    ClusterAddons,
    ClusterAddonsArgs,
    ClusterArgs,
    GpuNodePool,
    GpuNodePoolArgs,
    ModelStore,
    ModelStoreArgs,
    Network,
    NetworkArgs,
)
from llmops_infra.addons import reader_service_accounts
from llmops_infra.config import ConfigError, load_settings
from llmops_infra.serving import ServingWorkloads, ServingWorkloadsArgs
from llmops_infra.sizing import size_pools

import pulumi
from llmops.planning import load_inputs, make_plan
from llmops.serving import serving_spec
from llmops.serving.kubernetes import RenderOptions, render_objects

settings = load_settings(Path(__file__).parent)
fleet, models = load_inputs(settings.fleet_file, settings.models_file)
plan = make_plan(fleet, models, time_limit_s=settings.plan_time_limit_s)
pool_sizes = size_pools(fleet, plan, settings.pool_overrides, settings.min_root_volume_gib)
outside_zones = sorted({f"{size.name} ({size.zone})" for size in pool_sizes if size.zone not in settings.zones})
if outside_zones:
    raise ConfigError([f"llmops:zones: {settings.zones} must include the zone of every cloud pool: {', '.join(outside_zones)}"])

cluster_name = f"{settings.project}-{settings.stack}"
kubernetes_labels = {key: value for key, value in settings.tags.items() if key.startswith("llmops.io/")}

network = Network(
    "llmops",
    NetworkArgs(
        region=settings.region,
        zones=settings.zones,
        cidr=settings.vpc_cidr,
        nat_mode=settings.nat_mode,
        flow_logs=settings.flow_logs,
        cluster_name=cluster_name,
        tags=settings.tags,
    ),
)
cluster = Cluster(
    "llmops",
    ClusterArgs(
        cluster_name=cluster_name,
        region=settings.region,
        subnet_ids=network.private_subnet_ids,
        version=settings.cluster_version,
        public_access_cidrs=settings.public_access_cidrs,
        private_access_cidrs=settings.private_access_cidrs,
        tags=settings.tags,
    ),
)
node_pools = {
    size.name: GpuNodePool(
        f"pool-{size.name}",
        GpuNodePoolArgs(
            cluster_name=cluster.cluster_name,
            node_role_arn=cluster.node_role_arn,
            subnet_ids=[network.private_subnet_ids_by_zone[size.zone]],
            size=size,
            tags=settings.tags,
        ),
        opts=pulumi.ResourceOptions(depends_on=cluster.node_role_attachments),
    )
    for size in pool_sizes
}
model_store = ModelStore(
    "models",
    ModelStoreArgs(
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        reader_service_accounts=reader_service_accounts(settings.tenants),
        noncurrent_version_days=settings.model_noncurrent_version_days,
        tags=settings.tags,
    ),
)
kubernetes = k8s.Provider("llmops", kubeconfig=cluster.kubeconfig)
addons = ClusterAddons(
    "llmops",
    ClusterAddonsArgs(
        provider=kubernetes,
        tenants=settings.tenants,
        device_plugin_image=settings.device_plugin_image,
        model_reader_role_arn=model_store.reader_role_arn,
        huggingface_token=settings.huggingface_token,
        labels=kubernetes_labels,
    ),
)

# Serving needs every placed model's artifact (the pods fetch it); a models file without any is
# sizing only. On EKS, ClusterAddons owns the namespaces and the model-server service account the
# store's read-only role trusts (IRSA), so no namespaces and no key Secret are rendered.
if any(model.artifact for model in models.models):
    serving_image = pulumi.Config().get("servingImage")
    tenant_names = {tenant.name for tenant in settings.tenants}
    serving_problems = [] if serving_image else [
        "llmops:servingImage: required when the models file names artifacts (the vLLM image, pinned)"
    ]
    serving_problems += [
        f"llmops:tenants: no tenant {model.tenant or 'llmops-serving'!r} for model {model.name!r} "
        "(its namespace and service account come from the stack's tenants)"
        for model in models.models
        if (model.tenant or "llmops-serving") not in tenant_names
    ]
    if serving_problems:
        raise ConfigError(serving_problems)
    serving_objects = render_objects(
        serving_spec(plan, models, None, device="cuda"),
        settings.cluster_version,
        RenderOptions(
            image=serving_image,
            plan_name=settings.stack,
            render_namespaces=False,
            service_account="model-server",
            model_store_secret=None,
        ),
    )
    ServingWorkloads(
        "serving",
        ServingWorkloadsArgs(provider=kubernetes, objects=serving_objects, depends_on=[addons, *node_pools.values()]),
    )

pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("cluster_name", cluster.cluster_name)
pulumi.export("cluster_endpoint", cluster.endpoint)
pulumi.export("region", settings.region)
pulumi.export("zones", settings.zones)
pulumi.export(
    "pools",
    {
        size.name: {**size.as_output(), "node_group_name": node_pools[size.name].node_group_name}
        for size in pool_sizes
    },
)
pulumi.export("model_bucket", model_store.bucket_name)
pulumi.export("model_reader_role_arn", model_store.reader_role_arn)
pulumi.export("node_role_arn", cluster.node_role_arn)
pulumi.export("cluster_role_arn", cluster.cluster_role_arn)
pulumi.export("tenant_namespaces", addons.namespaces)
pulumi.export(
    "plan",
    {
        "status": plan.status,
        "cost_per_hour": plan.cost_per_hour,
        "unplaced": [entry.model_dump(mode="json") for entry in plan.unplaced],
    },
)

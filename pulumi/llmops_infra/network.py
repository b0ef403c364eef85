"""Network: a VPC with private and public subnets in every zone, NAT, an S3 gateway endpoint, flow logs."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

import pulumi_aws as aws

import pulumi

NAT_SINGLE = "single"
NAT_PER_ZONE = "per-zone"


def subnet_cidrs(vpc_cidr: str, zone_count: int) -> tuple[list[str], list[str]]:
    """Large private subnets (GPU nodes and pods take VPC addresses) and small public ones (NAT, load balancers).

    The VPC splits into eighths: the first `zone_count` eighths are private subnets, the last
    eighth splits again into eighths for the public subnets, so up to 7 zones fit.
    """
    vpc = ipaddress.ip_network(vpc_cidr)
    eighths = list(vpc.subnets(prefixlen_diff=3))
    if zone_count > 7:
        raise ValueError(f"at most 7 zones fit the subnet layout, got {zone_count}")
    public = list(eighths[-1].subnets(prefixlen_diff=3))
    return [str(net) for net in eighths[:zone_count]], [str(net) for net in public[:zone_count]]


@dataclass
class NetworkArgs:
    region: str
    zones: list[str]
    cidr: str = "10.40.0.0/16"
    nat_mode: str = NAT_SINGLE
    flow_logs: bool = False
    # Subnets carry the cluster's discovery tag so the AWS load balancer controller finds them.
    cluster_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids_by_zone: dict[str, pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llmops:index:Network", name, None, opts)
        if args.nat_mode not in (NAT_SINGLE, NAT_PER_ZONE):
            raise ValueError(f"nat_mode must be one of {NAT_SINGLE}, {NAT_PER_ZONE}, got {args.nat_mode!r}")
        child = pulumi.ResourceOptions(parent=self)

        def tags(extra: dict[str, str]) -> dict[str, str]:
            return {**args.tags, **extra}

        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"} if args.cluster_name else {}
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags({"Name": f"{name}-vpc"}),
            opts=child,
        )
        internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tags({"Name": f"{name}-igw"}), opts=child
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=internet_gateway.id)],
            tags=tags({"Name": f"{name}-public"}),
            opts=child,
        )

        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, len(args.zones))
        public_subnets: dict[str, aws.ec2.Subnet] = {}
        private_subnets: dict[str, aws.ec2.Subnet] = {}
        for zone, private_cidr, public_cidr in zip(args.zones, private_cidrs, public_cidrs, strict=True):
            public_subnets[zone] = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=public_cidr,
                availability_zone=zone,
                # Nothing launched here gets a public address unless it asks: only NAT and load balancers live here.
                map_public_ip_on_launch=False,
                tags=tags({"Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1", **cluster_tag}),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}",
                subnet_id=public_subnets[zone].id,
                route_table_id=public_routes.id,
                opts=child,
            )
            private_subnets[zone] = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=private_cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=tags({"Name": f"{name}-private-{zone}", "kubernetes.io/role/internal-elb": "1", **cluster_tag}),
                opts=child,
            )

        # One NAT gateway is cheaper; one per zone keeps a zone's egress alive when another zone fails.
        nat_zones = args.zones if args.nat_mode == NAT_PER_ZONE else args.zones[:1]
        nat_gateways: dict[str, aws.ec2.NatGateway] = {}
        for zone in nat_zones:
            address = aws.ec2.Eip(
                f"{name}-nat-{zone}", domain="vpc", tags=tags({"Name": f"{name}-nat-{zone}"}), opts=child
            )
            nat_gateways[zone] = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=address.id,
                subnet_id=public_subnets[zone].id,
                tags=tags({"Name": f"{name}-nat-{zone}"}),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[internet_gateway]),
            )

        private_route_table_ids = []
        for zone in args.zones:
            nat = nat_gateways.get(zone, nat_gateways[nat_zones[0]])
            routes = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags=tags({"Name": f"{name}-private-{zone}"}),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private_subnets[zone].id, route_table_id=routes.id, opts=child
            )
            private_route_table_ids.append(routes.id)

        # Model weights come from S3: through the gateway endpoint they skip NAT (no per-GB NAT charge).
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=private_route_table_ids,
            tags=tags({"Name": f"{name}-s3"}),
            opts=child,
        )

        if args.flow_logs:
            self._flow_logs(name, vpc, tags, child)

        self.vpc_id = vpc.id
        self.private_subnet_ids_by_zone = {zone: subnet.id for zone, subnet in private_subnets.items()}
        self.private_subnet_ids = [private_subnets[zone].id for zone in args.zones]
        self.public_subnet_ids = [public_subnets[zone].id for zone in args.zones]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )

    def _flow_logs(self, name, vpc, tags, child) -> None:
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", retention_in_days=30, tags=tags({"Name": f"{name}-flow-logs"}), opts=child
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=tags({}),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "logs:CreateLogStream",
                                    "logs:PutLogEvents",
                                    "logs:DescribeLogStreams",
                                ],
                                "Resource": [arn, f"{arn}:*"],
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            tags=tags({"Name": f"{name}-flow-logs"}),
            opts=child,
        )

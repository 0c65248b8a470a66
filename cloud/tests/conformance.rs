//! The conformance suite, run against `SimCloud` and against `AwsCloud` on a
//! moto server.

mod support;

use std::time::Duration;

use aws_sdk_ec2::types::{
    Filter, IcmpTypeCode, IpPermission, IpRange, Ipv6Range, PortRange, PrefixListId, RuleAction,
    UserIdGroupPair,
};
use canon_cloud::sim::Faults;
use canon_cloud::{AwsCloud, AwsConfig, BoxFuture, RateLimits, RetryPolicy, SimCloud};
use canon_model::{AclAction, AclEntry, Action, CloudRef, IpCidr, Peer, Rule};
use support::conformance::{
    acl_suite, address_suite, demo_suite, egress_suite, endpoint_suite, error_suite,
    instance_route_suite, instance_suite, interface_endpoint_suite, interface_route_suite,
    ipv6_suite, nat_suite, peering_suite, rotation_suite, volume_suite, Operator, Probe,
};
use support::import::import_suite;
use support::moto::{moto, sdk_config};
use support::release::release_suite;
use support::*;

struct SimOperator<'a>(&'a SimCloud);

impl Operator for SimOperator<'_> {
    fn add_ingress<'a>(&'a self, group: &'a str, rule: Rule<String>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_authorize_ingress(&scope(), group, rule)
                .expect("rogue rule");
        })
    }

    fn release_address<'a>(&'a self, allocation: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_release_address(&scope(), allocation)
                .expect("rogue release");
        })
    }

    fn delete_route<'a>(&'a self, table: &'a str, destination: IpCidr) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_delete_route(&scope(), table, destination)
                .expect("rogue route delete");
        })
    }

    fn create_network_interface<'a>(
        &'a self,
        subnet: &'a str,
        instance: Option<&'a str>,
    ) -> BoxFuture<'a, String> {
        Box::pin(async move {
            self.0
                .rogue_create_network_interface(&scope(), subnet, instance)
                .expect("rogue network interface")
        })
    }

    fn delete_network_interface<'a>(&'a self, eni: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_delete_network_interface(&scope(), eni)
                .expect("rogue network interface delete");
        })
    }

    fn delete_nat_gateway<'a>(&'a self, nat: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_delete_nat_gateway(&scope(), nat)
                .expect("rogue NAT gateway delete");
        })
    }

    fn add_nacl_entry<'a>(&'a self, acl: &'a str, entry: AclEntry) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_add_nacl_entry(&scope(), acl, entry)
                .expect("rogue ACL entry");
        })
    }

    fn default_acl<'a>(&'a self, subnet: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_default_acl(&scope(), subnet)
                .expect("rogue ACL association");
        })
    }

    fn delete_egress_only_gateway<'a>(&'a self, gateway: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = canon_model::Action::DeleteEgressOnlyInternetGateway {
                egress_only_internet_gateway: canon_model::CloudRef::Id(gateway.to_string()),
            };
            self.0
                .rogue(&scope(), &action)
                .expect("rogue egress-only gateway delete");
        })
    }

    fn stop_instance<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_stop_instance(&scope(), instance)
                .expect("rogue stop");
        })
    }

    fn detach_volume<'a>(&'a self, volume: &'a str, instance: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = Action::DetachVolume {
                volume: CloudRef::Id(volume.into()),
                instance: CloudRef::Id(instance.into()),
            };
            self.0.rogue(&scope(), &action).expect("rogue detach");
        })
    }

    fn set_source_dest_check<'a>(&'a self, instance: &'a str, enabled: bool) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = Action::ModifyInstanceSourceDestCheck {
                instance: CloudRef::Id(instance.into()),
                enabled,
            };
            self.0
                .rogue(&scope(), &action)
                .expect("rogue source/dest check");
        })
    }

    fn delete_peering<'a>(&'a self, connection: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = Action::DeleteVpcPeeringConnection {
                vpc_peering_connection: CloudRef::Id(connection.into()),
            };
            self.0
                .rogue(&scope(), &action)
                .expect("rogue peering delete");
        })
    }

    fn remove_endpoint_table<'a>(&'a self, endpoint: &'a str, table: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = Action::ModifyVpcEndpoint {
                vpc_endpoint: CloudRef::Id(endpoint.into()),
                add_route_tables: Default::default(),
                remove_route_tables: [table.to_string()].into(),
                add_subnets: Default::default(),
                remove_subnets: Default::default(),
                add_security_groups: Default::default(),
                remove_security_groups: Default::default(),
                private_dns: None,
                policy: None,
                reset_policy: false,
            };
            self.0
                .rogue(&scope(), &action)
                .expect("rogue endpoint modify");
        })
    }

    fn remove_endpoint_members<'a>(
        &'a self,
        endpoint: &'a str,
        subnet: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = Action::ModifyVpcEndpoint {
                vpc_endpoint: CloudRef::Id(endpoint.into()),
                add_route_tables: Default::default(),
                remove_route_tables: Default::default(),
                add_subnets: Default::default(),
                remove_subnets: [subnet.to_string()].into(),
                add_security_groups: Default::default(),
                remove_security_groups: [group.to_string()].into(),
                private_dns: None,
                policy: None,
                reset_policy: false,
            };
            self.0
                .rogue(&scope(), &action)
                .expect("rogue endpoint modify");
        })
    }

    fn delete_endpoint<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = Action::DeleteVpcEndpoint {
                vpc_endpoint: CloudRef::Id(endpoint.into()),
            };
            self.0
                .rogue(&scope(), &action)
                .expect("rogue endpoint delete");
        })
    }

    fn disassociate_subnet_ipv6<'a>(&'a self, association_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = Action::DisassociateSubnetCidrBlock {
                association_id: association_id.into(),
            };
            self.0
                .rogue(&scope(), &action)
                .expect("rogue /64 disassociation");
        })
    }
}

struct AwsOperator(aws_sdk_ec2::Client);

impl Operator for AwsOperator {
    fn add_ingress<'a>(&'a self, group: &'a str, rule: Rule<String>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // As a console user would: one IpPermission with one peer.
            let mut p = IpPermission::builder().ip_protocol(rule.protocol.ec2_name());
            if rule.protocol.has_ports() {
                p = p.from_port(rule.from_port).to_port(rule.to_port);
            }
            p = match &rule.peer {
                Peer::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c.to_string()).build()),
                Peer::Ipv6Cidr(c) => {
                    p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c.to_string()).build())
                }
                Peer::PrefixList(l) => {
                    p.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).build())
                }
                Peer::Group(g) => {
                    p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build())
                }
            };
            self.0
                .authorize_security_group_ingress()
                .group_id(group)
                .ip_permissions(p.build())
                .send()
                .await
                .expect("rogue rule");
        })
    }

    fn release_address<'a>(&'a self, allocation: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .release_address()
                .allocation_id(allocation)
                .send()
                .await
                .expect("rogue release");
        })
    }

    fn delete_route<'a>(&'a self, table: &'a str, destination: IpCidr) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let c = self.0.delete_route().route_table_id(table);
            match destination {
                IpCidr::V4(d) => c.destination_cidr_block(d.to_string()),
                IpCidr::V6(d) => c.destination_ipv6_cidr_block(d.to_string()),
            }
            .send()
            .await
            .expect("rogue route delete");
        })
    }

    fn create_network_interface<'a>(
        &'a self,
        subnet: &'a str,
        instance: Option<&'a str>,
    ) -> BoxFuture<'a, String> {
        Box::pin(async move {
            let made = self
                .0
                .create_network_interface()
                .subnet_id(subnet)
                .send()
                .await
                .expect("rogue network interface");
            let eni = made
                .network_interface()
                .and_then(|n| n.network_interface_id())
                .expect("an interface id")
                .to_string();
            if let Some(i) = instance {
                self.0
                    .attach_network_interface()
                    .network_interface_id(&eni)
                    .instance_id(i)
                    .device_index(1)
                    .send()
                    .await
                    .expect("rogue attach");
            }
            eni
        })
    }

    fn delete_network_interface<'a>(&'a self, eni: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let seen = self
                .0
                .describe_network_interfaces()
                .network_interface_ids(eni)
                .send()
                .await
                .expect("describe the interface");
            let attachment = seen
                .network_interfaces()
                .first()
                .and_then(|n| n.attachment())
                .and_then(|a| a.attachment_id())
                .map(str::to_string);
            if let Some(a) = attachment {
                self.0
                    .detach_network_interface()
                    .attachment_id(a)
                    .force(true)
                    .send()
                    .await
                    .expect("rogue detach");
            }
            self.0
                .delete_network_interface()
                .network_interface_id(eni)
                .send()
                .await
                .expect("rogue network interface delete");
        })
    }

    fn delete_nat_gateway<'a>(&'a self, nat: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .delete_nat_gateway()
                .nat_gateway_id(nat)
                .send()
                .await
                .expect("rogue NAT gateway delete");
        })
    }

    fn add_nacl_entry<'a>(&'a self, acl: &'a str, entry: AclEntry) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // As a console user would: the ACL's entry form.
            let (v4, v6) = match entry.range {
                IpCidr::V4(c) => (Some(c.to_string()), None),
                IpCidr::V6(c) => (None, Some(c.to_string())),
            };
            let action = match entry.action {
                AclAction::Allow => RuleAction::Allow,
                AclAction::Deny => RuleAction::Deny,
            };
            self.0
                .create_network_acl_entry()
                .network_acl_id(acl)
                .rule_number(i32::from(entry.rule_number))
                .protocol(entry.protocol_number())
                .rule_action(action)
                .egress(entry.egress)
                .set_cidr_block(v4)
                .set_ipv6_cidr_block(v6)
                .set_port_range(
                    entry
                        .port_range()
                        .map(|(f, t)| PortRange::builder().from(f).to(t).build()),
                )
                .set_icmp_type_code(
                    entry
                        .icmp_type_code()
                        .map(|(t, c)| IcmpTypeCode::builder().r#type(t).code(c).build()),
                )
                .send()
                .await
                .expect("rogue ACL entry");
        })
    }

    fn default_acl<'a>(&'a self, subnet: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let filter = |k: &str, v: &str| Filter::builder().name(k).values(v).build();
            let held = self
                .0
                .describe_network_acls()
                .filters(filter("association.subnet-id", subnet))
                .send()
                .await
                .expect("describe the subnet's ACL");
            let acl = &held.network_acls()[0];
            let association = acl
                .associations()
                .iter()
                .find(|a| a.subnet_id() == Some(subnet))
                .and_then(|a| a.network_acl_association_id())
                .expect("association");
            let default = self
                .0
                .describe_network_acls()
                .filters(filter("vpc-id", acl.vpc_id().unwrap()))
                .filters(filter("default", "true"))
                .send()
                .await
                .expect("describe the default ACL");
            let default = default.network_acls()[0].network_acl_id().unwrap();
            self.0
                .replace_network_acl_association()
                .association_id(association)
                .network_acl_id(default)
                .send()
                .await
                .expect("rogue ACL association");
        })
    }

    fn delete_egress_only_gateway<'a>(&'a self, gateway: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .delete_egress_only_internet_gateway()
                .egress_only_internet_gateway_id(gateway)
                .send()
                .await
                .expect("rogue egress-only gateway delete");
        })
    }

    fn stop_instance<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .stop_instances()
                .instance_ids(instance)
                .send()
                .await
                .expect("rogue stop");
        })
    }

    fn detach_volume<'a>(&'a self, volume: &'a str, instance: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .detach_volume()
                .volume_id(volume)
                .instance_id(instance)
                .send()
                .await
                .expect("rogue detach");
        })
    }

    fn set_source_dest_check<'a>(&'a self, instance: &'a str, enabled: bool) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .modify_instance_attribute()
                .instance_id(instance)
                .source_dest_check(
                    aws_sdk_ec2::types::AttributeBooleanValue::builder()
                        .value(enabled)
                        .build(),
                )
                .send()
                .await
                .expect("rogue source/dest check");
        })
    }

    fn delete_peering<'a>(&'a self, connection: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .delete_vpc_peering_connection()
                .vpc_peering_connection_id(connection)
                .send()
                .await
                .expect("rogue peering delete");
        })
    }

    fn remove_endpoint_table<'a>(&'a self, endpoint: &'a str, table: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .modify_vpc_endpoint()
                .vpc_endpoint_id(endpoint)
                .remove_route_table_ids(table)
                .send()
                .await
                .expect("rogue endpoint modify");
        })
    }

    fn remove_endpoint_members<'a>(
        &'a self,
        endpoint: &'a str,
        subnet: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .modify_vpc_endpoint()
                .vpc_endpoint_id(endpoint)
                .remove_subnet_ids(subnet)
                .remove_security_group_ids(group)
                .send()
                .await
                .expect("rogue endpoint modify");
        })
    }

    fn delete_endpoint<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .delete_vpc_endpoints()
                .vpc_endpoint_ids(endpoint)
                .send()
                .await
                .expect("rogue endpoint delete");
        })
    }

    fn disassociate_subnet_ipv6<'a>(&'a self, association_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .disassociate_subnet_cidr_block()
                .association_id(association_id)
                .send()
                .await
                .expect("rogue /64 disassociation");
        })
    }
}

fn aws_config() -> AwsConfig {
    AwsConfig {
        rate_limits: RateLimits::unlimited(),
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        },
        vpc_attribute_ttl: Duration::ZERO,
        ..AwsConfig::default()
    }
}

#[tokio::test]
async fn sim_demo() {
    let sim = SimCloud::new(1);
    demo_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn sim_errors() {
    let sim = SimCloud::new(2);
    let broken = SimCloud::new(3);
    broken.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::none()
    });
    broken.set_retry(RetryPolicy::none());
    error_suite(&sim, &broken).await;
}

#[tokio::test]
async fn aws_demo_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    demo_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_release() {
    release_suite(&SimCloud::new(11)).await;
}

#[tokio::test]
async fn aws_release_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    release_suite(&AwsCloud::from_sdk_config(cfg, aws_config())).await;
}

#[tokio::test]
async fn sim_import() {
    import_suite(&SimCloud::new(12)).await;
}

#[tokio::test]
async fn aws_import_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    import_suite(&AwsCloud::from_sdk_config(cfg, aws_config())).await;
}

#[tokio::test]
async fn aws_errors_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg, aws_config());
    // Nothing listens on port 1: every call fails in transport.
    let dead = sdk_config("http://127.0.0.1:1").await;
    let broken = AwsCloud::from_sdk_config(
        dead,
        AwsConfig {
            retry: RetryPolicy::none(),
            ..aws_config()
        },
    );
    error_suite(&aws, &broken).await;
}

#[tokio::test]
async fn sim_addresses() {
    let sim = SimCloud::new(5);
    address_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_addresses_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    address_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_instances() {
    // SimCloud models a listener on every port of a running instance.
    let probe = Probe {
        address: false,
        reachable: Some(true),
    };
    instance_suite(&SimCloud::new(4), probe).await;
}

#[tokio::test]
async fn aws_instances_on_moto() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, aws_config());
    // A real connect to moto's made-up address: its outcome depends on
    // the test's network (a sandbox may accept any outbound connection).
    let probe = Probe {
        address: true,
        reachable: None,
    };
    instance_suite(&aws, probe).await;
}

#[tokio::test]
async fn sim_rotation() {
    let sim = SimCloud::new(11);
    rotation_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_rotation_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    rotation_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_volumes() {
    let sim = SimCloud::new(12);
    volume_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_volumes_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    volume_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_routes_through_an_instance() {
    let sim = SimCloud::new(12);
    instance_route_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn sim_routes_through_a_network_interface() {
    let sim = SimCloud::new(13);
    interface_route_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_routes_through_a_network_interface_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    interface_route_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn aws_routes_through_an_instance_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    instance_route_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_nat_gateways() {
    let sim = SimCloud::new(6);
    nat_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_nat_gateways_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    nat_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_network_acls() {
    let sim = SimCloud::new(9);
    acl_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_network_acls_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    acl_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_egress_only_gateways() {
    let sim = SimCloud::new(11);
    egress_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_egress_only_gateways_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    egress_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_vpc_ipv6() {
    let sim = SimCloud::new(17);
    ipv6_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_vpc_ipv6_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    ipv6_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_peering_connections() {
    let sim = SimCloud::new(12);
    peering_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_peering_connections_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    peering_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn sim_gateway_endpoints() {
    let sim = SimCloud::new(13);
    endpoint_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn sim_interface_endpoints() {
    let sim = SimCloud::new(14);
    interface_endpoint_suite(&sim, &SimOperator(&sim)).await;
}

#[tokio::test]
async fn aws_interface_endpoints_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    interface_endpoint_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

#[tokio::test]
async fn aws_gateway_endpoints_on_moto() {
    let m = moto();
    let cfg = sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(cfg.clone(), aws_config());
    endpoint_suite(&aws, &AwsOperator(aws_sdk_ec2::Client::new(&cfg))).await;
}

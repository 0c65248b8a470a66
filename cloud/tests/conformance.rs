//! The conformance suite, run against `SimCloud` and against `AwsCloud` on a
//! moto server.

mod support;

use std::time::Duration;

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, PrefixListId, UserIdGroupPair};
use canon_cloud::sim::Faults;
use canon_cloud::{AwsCloud, AwsConfig, BoxFuture, RateLimits, RetryPolicy, SimCloud};
use canon_model::{Ipv4Cidr, Peer, Rule};
use support::conformance::{
    address_suite, demo_suite, error_suite, instance_suite, nat_suite, Operator,
};
use support::moto::{moto, sdk_config};
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

    fn delete_route<'a>(&'a self, table: &'a str, destination: Ipv4Cidr) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_delete_route(&scope(), table, destination)
                .expect("rogue route delete");
        })
    }

    fn delete_nat_gateway<'a>(&'a self, nat: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .rogue_delete_nat_gateway(&scope(), nat)
                .expect("rogue NAT gateway delete");
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

    fn delete_route<'a>(&'a self, table: &'a str, destination: Ipv4Cidr) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .delete_route()
                .route_table_id(table)
                .destination_cidr_block(destination.to_string())
                .send()
                .await
                .expect("rogue route delete");
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
    instance_suite(&SimCloud::new(4)).await;
}

#[tokio::test]
async fn aws_instances_on_moto() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, aws_config());
    instance_suite(&aws).await;
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

//! The three-tier example (`examples/ThreeTier.lw`) on AWS's API, through
//! moto: `canon dev --cloud aws` builds all 19 resources (NAT gateways
//! with their Elastic IPs, a route table per zone), puts back an app
//! tier's route to its NAT gateway deleted behind its back, and `canon
//! kill` takes everything away again, leaving moto's EC2 as it found it.

use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{AwsCloud, AwsConfig, Cloud, Scope};
use canon_model::{Action, CloudRef, IpCidr, Region};

mod support;
use support::dev_cluster::{canon, canon_json, client_toml, dev_on_aws, on_moto, wait_until_async};
use support::rogue::rogue;
use support::story::{cloud_ids, example};

#[path = "../../cloud/tests/support/moto.rs"]
mod moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_tier_example_is_built_healed_and_killed_on_moto() {
    let m = moto::moto();
    let sdk = moto::sdk_config(on_moto(&m.endpoint)).await;
    let cloud: Arc<dyn Cloud> = Arc::new(AwsCloud::from_sdk_config(sdk, AwsConfig::default()));
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_on_aws(dir.path(), Duration::from_secs(2), None).await;
    let config = client_toml(&cluster, dir.path());
    let file = example("ThreeTier.lw");
    let (code, _, err) = canon(
        &config,
        &["run", file.to_str().unwrap(), "-a", "shop", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "{err}");

    let status = canon_json(&config, &["status", "shop"]).await;
    let ids = cloud_ids(&status);
    assert_eq!(ids.len(), 19, "{ids:?}");
    assert!(ids.values().all(|id| !id.is_empty()), "{ids:?}");
    let scope = Scope {
        account: status["account"].as_str().unwrap().to_string(),
        region: Region::new("us-west-2"),
    };
    let observed = cloud.observe(&scope).await.expect("observe");
    for (name, id) in &ids {
        assert!(observed.get(id).is_some(), "{name} ({id}) is not on moto");
    }

    // The zone-b app subnets' way out, deleted behind Canon's back.
    let table = ids["shop.network.privateRoutes[1]"].clone();
    let any: IpCidr = "0.0.0.0/0".parse().unwrap();
    let delete = Action::DeleteRoute {
        route_table: CloudRef::Id(table.clone()),
        destination: any,
    };
    rogue(cloud.as_ref(), &scope, delete).await;
    wait_until_async(
        "the NAT route to be put back",
        Duration::from_secs(60),
        || {
            let (cloud, scope, table) = (cloud.clone(), scope.clone(), table.clone());
            async move {
                let observed = cloud.observe(&scope).await.expect("observe");
                let spec =
                    serde_json::to_value(&observed.get(&table).expect("the table").spec).unwrap();
                spec["routes"].as_array().is_some_and(|r| !r.is_empty())
            }
        },
    )
    .await;
    let history = canon_json(&config, &["history", "shop"]).await;
    assert!(
        history["drift"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| !d["healed"].is_null())),
        "{history}"
    );

    let (code, _, err) = canon(&config, &["kill", "shop", "-y", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    let observed = cloud.observe(&scope).await.expect("observe");
    for (name, id) in &ids {
        assert!(observed.get(id).is_none(), "{name} ({id}) is left on moto");
    }
    cluster.shutdown().await;
}

//! `AwsCloud::new` configured only the standard way, through `AWS_*`
//! variables and `AWS_ENDPOINT_URL` (its own test binary, since it sets the
//! process's environment).

mod support;

use canon_cloud::{AwsCloud, AwsConfig, Cloud};
use support::moto::moto;
use support::scope;

#[tokio::test]
async fn standard_environment_and_endpoint_url() {
    let m = moto();
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
        ("AWS_ENDPOINT_URL", m.endpoint.as_str()),
    ] {
        std::env::set_var(k, v);
    }
    for k in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_EC2"] {
        std::env::remove_var(k);
    }
    let aws = AwsCloud::new(AwsConfig::default()).await;
    let obs = aws
        .observe(&scope())
        .await
        .expect("observe through AWS_ENDPOINT_URL");
    assert!(obs.is_empty());
    // One describe per kind.
    assert_eq!(
        aws.api_calls().describes(),
        canon_model::ResourceKind::ALL.len() as u64
    );
}

//! Instances through EC2. A launch takes the request's client token.
//! Describes do not return user data: it cannot change while an instance
//! runs, so it is read once per instance and remembered. Terminated and
//! shutting-down instances are gone as far as Canon is concerned. The
//! launch time and state come with the describe; the status checks of
//! the running ones from DescribeInstanceStatus, one call per hundred
//! running instances of a page (the most it takes by id).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, Instance, InstanceAttributeName, InstanceStateName,
    InstanceType, SummaryStatus,
};
use canon_model::{
    Action, CloudRef, Health, InstanceLife, InstanceSpec, InstanceState, ObservedResource,
    ResourceKind, Spec,
};

use super::{Call, Ec2};
use crate::aws::convert::{tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::Instance;

/// The cloud ids of resolved group references.
fn group_ids<'a>(
    groups: impl IntoIterator<Item = &'a CloudRef>,
) -> Result<Vec<String>, CloudError> {
    groups
        .into_iter()
        .map(|g| id(g).map(String::from))
        .collect()
}

/// Sends the call of one instance action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::RunInstances {
            image_id,
            instance_type,
            subnet,
            security_groups,
            key_name,
            user_data,
            tags,
        } => {
            let s = id(subnet)?;
            let groups = group_ids(security_groups)?;
            let user_data = user_data.as_ref().map(aws_smithy_types::base64::encode);
            let resp = call
                .send(|| {
                    client
                        .run_instances()
                        .image_id(image_id)
                        .instance_type(InstanceType::from(instance_type.as_str()))
                        .subnet_id(s)
                        .set_security_group_ids((!groups.is_empty()).then(|| groups.clone()))
                        .set_key_name(key_name.clone())
                        .set_user_data(user_data.clone())
                        .min_count(1)
                        .max_count(1)
                        .client_token(call.token)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let i = resp
                .instances()
                .first()
                .and_then(|i| i.instance_id())
                .ok_or_else(|| missing("InstanceId"))?;
            Ok(Outcome::created(i, "instance"))
        }
        Action::ModifyInstanceSecurityGroups {
            instance,
            security_groups,
        } => {
            let i = id(instance)?;
            let groups = group_ids(security_groups)?;
            call.send(|| {
                client
                    .modify_instance_attribute()
                    .instance_id(i)
                    .set_groups(Some(groups.clone()))
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("replaced the groups of {i}")]))
        }
        Action::ModifyInstanceSourceDestCheck { instance, enabled } => {
            let i = id(instance)?;
            let value = AttributeBooleanValue::builder().value(*enabled).build();
            call.send(|| {
                client
                    .modify_instance_attribute()
                    .instance_id(i)
                    .source_dest_check(value.clone())
                    .send()
            })
            .await?;
            let state = if *enabled { "on" } else { "off" };
            Ok(Outcome::changed([format!(
                "turned the source/destination check of {i} {state}"
            )]))
        }
        Action::TerminateInstances { instance } => {
            let i = id(instance)?;
            call.send(|| client.terminate_instances().instance_ids(i).send())
                .await?;
            Ok(Outcome::changed([format!("terminated {i}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// Every owned, live instance, page by page, with its user data, its
/// launch time, its state and its status checks.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(
            ec2,
            describe_instances,
            set_instance_ids,
            token,
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        )
        .await?;
        let live: Vec<(&Instance, InstanceState)> = resp
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| Some((i, state_of(i.state()?.name()?)?)))
            .collect();
        let running: Vec<String> = live
            .iter()
            .filter(|(_, state)| *state == InstanceState::Running)
            .filter_map(|(i, _)| i.instance_id().map(String::from))
            .collect();
        let health = statuses(ec2, &running).await?;
        for (i, state) in live {
            out.push(observed(ec2, i, state, &health).await?);
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// One described live instance, in `state`, as Canon sees it.
async fn observed(
    ec2: &Ec2<'_>,
    i: &Instance,
    state: InstanceState,
    health: &HashMap<String, Health>,
) -> Result<ObservedResource, CloudError> {
    let id = i.instance_id().ok_or_else(|| missing("InstanceId"))?;
    let user_data = user_data(ec2, id).await?;
    let life = InstanceLife {
        launched_at: i
            .launch_time()
            .and_then(|t| t.to_millis().ok())
            .and_then(|ms| u64::try_from(ms).ok())
            .unwrap_or(0),
        state,
        health: health.get(id).copied().unwrap_or(Health::Unknown),
        address: i
            .public_ip_address()
            .or(i.private_ip_address())
            .and_then(|a| a.parse().ok()),
    };
    Ok(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::Instance(InstanceSpec {
            image_id: i.image_id().unwrap_or("").to_string(),
            instance_type: i
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            subnet: i.subnet_id().unwrap_or("").to_string(),
            key_name: i.key_name().map(String::from),
            user_data,
            security_groups: i
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(String::from))
                .collect(),
            tags: tags_from(i.tags()),
            max_age_secs: None,
            fleet: None,
            // EC2 leaves it out only where it cannot apply: on, its default.
            source_dest_check: i.source_dest_check().unwrap_or(true),
        }),
        association_ids: BTreeMap::new(),
        pending: false,
        life: Some(life),
    })
}

/// A live state as the model names it (None for shutting-down and
/// terminated instances, which Canon treats as gone).
fn state_of(name: &InstanceStateName) -> Option<InstanceState> {
    match name {
        InstanceStateName::Pending => Some(InstanceState::Pending),
        InstanceStateName::Running => Some(InstanceState::Running),
        InstanceStateName::Stopping => Some(InstanceState::Stopping),
        InstanceStateName::Stopped => Some(InstanceState::Stopped),
        _ => None,
    }
}

/// The status checks of running instances `ids`, a hundred per call (the
/// most DescribeInstanceStatus takes by id).
async fn statuses(ec2: &Ec2<'_>, ids: &[String]) -> Result<HashMap<String, Health>, CloudError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(100) {
        let resp = ec2
            .call(
                "DescribeInstanceStatus",
                "aws.ec2.describe_instance_status",
                || {
                    ec2.client
                        .describe_instance_status()
                        .set_instance_ids(Some(chunk.to_vec()))
                        .send()
                },
            )
            .await?;
        for st in resp.instance_statuses() {
            let check = |s: Option<&SummaryStatus>| s.map_or("", |s| s.as_str()).to_string();
            let system = check(st.system_status().and_then(|s| s.status()));
            let instance = check(st.instance_status().and_then(|s| s.status()));
            if let Some(id) = st.instance_id() {
                out.insert(id.to_string(), Health::of_checks(&system, &instance));
            }
        }
    }
    Ok(out)
}

/// An instance's user data, read once per instance and remembered.
async fn user_data(ec2: &Ec2<'_>, instance: &str) -> Result<Option<String>, CloudError> {
    let key = (ec2.scope.clone(), instance.to_string());
    if let Some(known) = ec2
        .cloud
        .user_data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(known.clone());
    }
    let value = ec2
        .call(
            "DescribeInstanceAttribute",
            "aws.ec2.describe_instance_attribute",
            || {
                ec2.client
                    .describe_instance_attribute()
                    .instance_id(instance)
                    .attribute(InstanceAttributeName::UserData)
                    .send()
            },
        )
        .await?
        .user_data()
        .and_then(|u| u.value())
        .filter(|v| !v.is_empty())
        .map(|v| {
            aws_smithy_types::base64::decode(v)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_else(|| v.to_string())
        });
    ec2.cloud
        .user_data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, value.clone());
    Ok(value)
}

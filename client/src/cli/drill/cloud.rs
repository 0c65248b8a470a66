//! The cloud half of the steady state, on a deployment whose inventory
//! names its cloud (`[cloud]`: an EC2 endpoint and region; deploy/netns's
//! `--cloud moto` writes one). Before the fault the drill runs a process
//! of its own and waits until its VPC exists; while the fault is on it
//! deletes that VPC behind Canon's back (drift, injected when leaders may
//! be moving); after healing, the VPC must be back within the bound
//! (`--drift-heal-max`), and no two live VPCs may carry one logical id
//! (`canon:id`): a failover must not build a resource twice.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use serde::{Deserialize, Serialize};

use canon_client::Client;

/// The tag every resource Canon creates carries its logical id in
/// (`<fid>.<path id>`; canon_model's `OWNERSHIP_TAG`).
const OWNERSHIP_TAG: &str = "canon:id";
/// How long the drill's own process may take to build before the fault.
const BUILT_WITHIN: Duration = Duration::from_secs(30);
/// How often the cloud is looked at while waiting.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// The inventory's `[cloud]`: where the deployment's EC2 API is.
#[derive(Debug, Clone, Deserialize)]
pub struct CloudEntry {
    /// The EC2 endpoint (e.g. moto's `http://198.18.5.2:5000`); absent:
    /// the region's AWS endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub region: String,
    /// Static credentials (an emulator's); absent: the default chain.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// A file where the cloud records every request it serves (moto's
    /// recorder; deploy/netns writes it): with it, the drill checks that
    /// no mutation came from a deposed term (`fencing`).
    #[serde(default)]
    pub recording: Option<std::path::PathBuf>,
}

/// What the drill saw of the cloud.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CloudReport {
    /// The drill's own process, whose VPC it deleted.
    pub process: String,
    /// The VPC deleted while the fault was on.
    pub deleted: Option<String>,
    /// Its replacement, and how long after healing it existed.
    pub rebuilt: Option<String>,
    pub rebuilt_after_ms: Option<u64>,
    /// Logical ids carried by more than one live VPC, with those VPCs.
    pub duplicated: BTreeMap<String, Vec<String>>,
    /// Who made the cloud's mutations, judged against leadership (when
    /// the cloud records its requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing: Option<super::fencing::FencingReport>,
}

/// An EC2 client on the inventory's cloud.
#[derive(Clone)]
pub struct CloudProbe {
    ec2: aws_sdk_ec2::Client,
}

impl CloudProbe {
    pub async fn connect(c: &CloudEntry) -> CloudProbe {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(c.region.clone()));
        if let Some(e) = &c.endpoint {
            loader = loader.endpoint_url(e);
        }
        if let (Some(id), Some(secret)) = (&c.access_key_id, &c.secret_access_key) {
            loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
                id,
                secret,
                None,
                None,
                "inventory",
            ));
        }
        CloudProbe {
            ec2: aws_sdk_ec2::Client::new(&loader.load().await),
        }
    }

    /// Every live VPC Canon owns: its id and logical id.
    async fn owned_vpcs(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut pages = self
            .ec2
            .describe_vpcs()
            .filters(
                Filter::builder()
                    .name("tag-key")
                    .values(OWNERSHIP_TAG)
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("DescribeVpcs: {}", error_text(&e)))?;
            for v in page.vpcs() {
                let logical = v
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(OWNERSHIP_TAG))
                    .and_then(|t| t.value());
                if let (Some(id), Some(logical)) = (v.vpc_id(), logical) {
                    out.push((id.to_string(), logical.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// The live VPCs of process `fid`.
    async fn vpcs_of(&self, fid: &str) -> Result<Vec<String>, String> {
        let prefix = format!("{fid}.");
        Ok(self
            .owned_vpcs()
            .await?
            .into_iter()
            .filter(|(_, logical)| logical.starts_with(&prefix))
            .map(|(id, _)| id)
            .collect())
    }

    /// Waits (up to `within`) until process `fid` has a VPC other than
    /// `not`: its id.
    async fn wait_vpc(
        &self,
        fid: &str,
        not: Option<&str>,
        within: Duration,
    ) -> Result<String, String> {
        let started = tokio::time::Instant::now();
        loop {
            let last = match self.vpcs_of(fid).await {
                Ok(vpcs) => match vpcs.into_iter().find(|v| Some(v.as_str()) != not) {
                    Some(v) => return Ok(v),
                    None => "none yet".to_string(),
                },
                Err(e) => e,
            };
            if started.elapsed() > within {
                return Err(format!(
                    "no VPC of process {fid} within {within:?} ({last})"
                ));
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    /// Logical ids on more than one live VPC.
    pub async fn duplicated(&self) -> Result<BTreeMap<String, Vec<String>>, String> {
        let mut by_logical: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, logical) in self.owned_vpcs().await? {
            by_logical.entry(logical).or_default().push(id);
        }
        by_logical.retain(|_, ids| ids.len() > 1);
        Ok(by_logical)
    }
}

/// The drill's own process, built before the fault, and the drift done
/// to it.
pub struct Drift {
    cloud: CloudProbe,
    alias: String,
    fid: String,
    /// Its VPC before the fault (the one deleted).
    vpc: String,
    /// Watches for the VPC's return from the moment the fault is healed.
    rebuild: Option<tokio::task::JoinHandle<Result<(String, u64), String>>>,
}

impl Drift {
    /// Runs the drill's own process (`alias`, the load's composition) and
    /// waits until its VPC exists.
    pub async fn prepare(
        client: &Client,
        entry: &CloudEntry,
        alias: &str,
        composition: canon_client::pb::CompiledComposition,
    ) -> Result<Drift, String> {
        let cloud = CloudProbe::connect(entry).await;
        client
            .run(alias, composition, false)
            .await
            .map_err(|e| format!("cannot run the drill's process {alias}: {e}"))?;
        let status = client
            .status(alias, false)
            .await
            .map_err(|e| format!("no status of {alias}: {e}"))?;
        let fid = status
            .processes
            .first()
            .map(|p| p.fid.clone())
            .ok_or_else(|| format!("the cluster does not show {alias}"))?;
        let vpc = cloud
            .wait_vpc(&fid, None, BUILT_WITHIN)
            .await
            .map_err(|e| {
                format!("the drill's process {alias} was not built before the fault: {e}")
            })?;
        Ok(Drift {
            cloud,
            alias: alias.to_string(),
            fid,
            vpc,
            rebuild: None,
        })
    }

    /// The drill's own process.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// Deletes the process's VPC behind Canon's back.
    pub async fn inject(&self) -> Result<(), String> {
        self.cloud
            .ec2
            .delete_vpc()
            .vpc_id(&self.vpc)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot delete {} (the drift): {}", self.vpc, error_text(&e)))
    }

    /// At healing: watches (up to `within`) for the VPC to be back.
    pub fn watch_rebuild(&mut self, within: Duration) {
        let (cloud, fid, gone) = (self.cloud.clone(), self.fid.clone(), self.vpc.clone());
        let healed = tokio::time::Instant::now();
        self.rebuild = Some(tokio::spawn(async move {
            let v = cloud.wait_vpc(&fid, Some(&gone), within).await?;
            Ok((v, super::probe::ms(healed.elapsed())))
        }));
    }

    /// The report, and what broke the hypothesis: the VPC not back in
    /// time, or any logical id on two live VPCs.
    pub async fn finish(self) -> (CloudReport, Vec<String>) {
        let mut report = CloudReport {
            process: self.alias.clone(),
            deleted: Some(self.vpc.clone()),
            ..CloudReport::default()
        };
        let mut violations = Vec::new();
        let rebuilt = match self.rebuild {
            Some(watch) => watch
                .await
                .unwrap_or_else(|e| Err(format!("the watch failed: {e}"))),
            None => Err("the fault was never healed".into()),
        };
        match rebuilt {
            Ok((v, after_ms)) => {
                report.rebuilt = Some(v);
                report.rebuilt_after_ms = Some(after_ms);
            }
            Err(e) => violations.push(format!(
                "drift injected during the fault was not healed: {e}"
            )),
        }
        match self.cloud.duplicated().await {
            Ok(d) => {
                for (logical, ids) in &d {
                    violations.push(format!(
                        "resource {logical} exists {} times: {}",
                        ids.len(),
                        ids.join(", ")
                    ));
                }
                report.duplicated = d;
            }
            Err(e) => violations.push(format!("cannot look for duplicates: {e}")),
        }
        (report, violations)
    }
}

/// An SDK error with its service message (the Display of an SdkError is
/// only "service error").
fn error_text<E: std::error::Error + 'static>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

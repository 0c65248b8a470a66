//! An import's look at the cloud: each declaration of a process, in
//! dependency order, asked of the cloud where its kind is found
//! (`Cloud::candidates`) and matched by `canon_model::import`, so a subnet
//! is looked for inside the VPC its VPC declaration adopted. Reads only:
//! the adoption itself is the ownership tags the process's RUN job writes.

use std::collections::BTreeMap;

use canon_model::import::{self, Adoption, ImportError, ImportPlan};
use canon_model::{DesiredState, ObservedResource};

use crate::{Cloud, CloudError, Scope};

/// What an import found: the decision per declaration, and each adopted
/// resource as the cloud shows it (for a dry run's plan).
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub plan: ImportPlan,
    pub adopted: Vec<(Adoption, ObservedResource)>,
}

/// Why an import cannot go ahead.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImportFailure {
    /// Refused: every reason found, in dependency order.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<ImportError>),
    #[error("asking the cloud for candidates: {0}")]
    Cloud(#[from] CloudError),
}

/// Matches every declaration of `desired` in `account` against what the
/// cloud has. Every refusal is collected (a declaration that fails is
/// treated as created, so those inside it are not looked for).
pub async fn find(
    cloud: &dyn Cloud,
    account: &str,
    desired: &DesiredState,
) -> Result<Found, ImportFailure> {
    let mut found = Found::default();
    let mut adopted: BTreeMap<_, String> = BTreeMap::new();
    let mut refused = Vec::new();
    for d in import::in_order(desired) {
        let chosen = match import::lookup(desired, d, &adopted) {
            Err(e) => {
                refused.push(e);
                None
            }
            Ok(None) => None,
            Ok(Some(lookup)) => {
                let scope = Scope {
                    account: account.to_string(),
                    region: d.region.clone(),
                };
                let candidates = cloud.candidates(&scope, d.kind(), &lookup).await?;
                match import::choose(desired.fid, d, &lookup, &adopted, &candidates) {
                    Ok(c) => c.cloned(),
                    Err(e) => {
                        refused.push(e);
                        None
                    }
                }
            }
        };
        if let Err(e) = import::record(&mut found.plan, &mut adopted, d, chosen.as_ref()) {
            refused.push(e);
            continue;
        }
        if let (Some(o), Some(a)) = (chosen, found.plan.adopted.last()) {
            if a.resource == d.id {
                found.adopted.push((a.clone(), o));
            }
        }
    }
    if refused.is_empty() {
        Ok(found)
    } else {
        Err(ImportFailure::Refused(refused))
    }
}

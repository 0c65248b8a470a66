//! Drift labelled by the organisation's validations (issue #20 §4): when a
//! tick finds drift, each drifted resource is judged as the cloud now has
//! it, in the declared composition, against the validation modules the
//! meta group stores; the validations it breaks (and the declaration did
//! not) go into the drift record and its alert (`violates`). How to judge
//! is the node's to say ([`DriftLabeller`], built on the language crate,
//! which the scheduler does not depend on); without one, or without a
//! local replica of the meta group, drift is recorded unlabelled.

use std::collections::BTreeMap;
use std::sync::Arc;

use canon_model::{DesiredState, LogicalId, ObservedState};
use canon_raft::state::StoredValidation;
use canon_raft::{Command, Consistency, META_GROUP};

use crate::Shared;

/// The validations (`MODULE.validation`) that `resource` (bound to
/// `cloud_id`, if the cloud has it) breaks as `observed` shows it, given
/// the stored modules and the declaration.
pub type DriftLabeller = Arc<
    dyn Fn(
            &BTreeMap<String, StoredValidation>,
            &DesiredState,
            &ObservedState,
            LogicalId,
            Option<&str>,
        ) -> Vec<String>
        + Send
        + Sync
        + 'static,
>;

/// `commands` with each `DriftOpened` labelled. Evaluates once per
/// drifted resource, on this task: only ticks that found drift pay for it.
pub(crate) async fn label(
    shared: &Shared,
    mut commands: Vec<Command>,
    desired: &DesiredState,
    observed: &ObservedState,
) -> Vec<Command> {
    let Some(labeller) = &shared.labeller else {
        return commands;
    };
    if !commands
        .iter()
        .any(|c| matches!(c, Command::DriftOpened { .. }))
    {
        return commands;
    }
    let modules = match shared
        .node
        .read(META_GROUP, Consistency::Stale, |s| {
            s.meta.validations.clone()
        })
        .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "no validations to label drift with");
            return commands;
        }
    };
    if modules.is_empty() {
        return commands;
    }
    let mut by_resource: BTreeMap<LogicalId, Vec<String>> = BTreeMap::new();
    for c in &mut commands {
        if let Command::DriftOpened {
            resource,
            cloud_id,
            violates,
            ..
        } = c
        {
            let labels = by_resource.entry(*resource).or_insert_with(|| {
                labeller(&modules, desired, observed, *resource, cloud_id.as_deref())
            });
            violates.clone_from(labels);
        }
    }
    commands
}

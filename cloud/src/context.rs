//! Who is asking and where: the scope of an observation and the identity a
//! mutation is made under.
//!
//! The execution context carries the job id (so a re-run of the same job
//! derives the same idempotency tokens) and the node id and leader term (so the
//! simulated cloud's mutation log can prove that at most one conductor
//! mutated a process at a time).

use std::fmt;

use canon_model::{Region, Request};
use serde::{Deserialize, Serialize};

/// One account and region: the unit of observation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// The AWS account id (twelve digits), or any stable name for one.
    pub account: String,
    pub region: Region,
}

impl Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Scope {
            account: account.into(),
            region: Region::new(region),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// The identity a request is executed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecContext {
    /// The account to act in; the region is the request's.
    pub account: String,
    /// The job the request belongs to; idempotency tokens derive from it.
    pub job_id: String,
    /// The conductor node executing it.
    pub node_id: u64,
    /// The leader term that node was elected in.
    pub term: u64,
    /// What a look-up before this pass's creates found
    /// ([`crate::Cloud::look_up_owned`]): the creates it covers skip a
    /// look-up of their own.
    #[serde(skip)]
    pub looked_up: Option<std::sync::Arc<crate::idempotency::OwnedLookups>>,
    /// No earlier attempt of this request can have reached the cloud: the
    /// caller made every attempt ever made of it and had a clean answer to
    /// each (issue #19; the scheduler's `create_ledger` says when). A
    /// create of a kind without client tokens then makes no look-up by
    /// ownership tag: nothing can carry its tag but what it makes. False
    /// unless the caller knows: the look-up stays.
    #[serde(default)]
    pub never_sent: bool,
}

impl ExecContext {
    pub fn new(
        account: impl Into<String>,
        job_id: impl Into<String>,
        node_id: u64,
        term: u64,
    ) -> Self {
        ExecContext {
            account: account.into(),
            job_id: job_id.into(),
            node_id,
            term,
            looked_up: None,
            never_sent: false,
        }
    }

    /// The scope `request` acts in.
    pub fn scope(&self, request: &Request) -> Scope {
        Scope {
            account: self.account.clone(),
            region: request.region.clone(),
        }
    }
}

//! Identity: process FIDs and the stable logical ids of declared resources.
//!
//! A logical id is `<fid>.<uuid-v5 of the resource's path in the composition>`:
//! recompiling the same source yields the same ids, so an update can tell a
//! changed resource from a new one. Cloud resources carry their logical id in
//! the ownership tag [`OWNERSHIP_TAG`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tag key under which every cloud resource Canon creates carries its
/// logical id.
pub const OWNERSHIP_TAG: &str = "canon:id";

/// Namespace for the v5 uuids of composition paths. Fixed forever: changing it
/// would change every logical id of every running process.
const PATH_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_5e0b_3f7d_4c1e_9b2a_c0ff_ee15_ca70);

/// A process's identity (a "FID"): a random uuid chosen when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fid(pub Uuid);

impl Fid {
    /// A fresh random FID.
    pub fn random() -> Self {
        Fid(Uuid::new_v4())
    }
}

impl fmt::Display for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for Fid {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Fid)
            .map_err(|_| IdError::BadFid(s.to_string()))
    }
}

/// The identity of one declared resource: its process and the v5 uuid of its
/// path in the composition (e.g. `dev-network.publicSubnets[0]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalId {
    pub fid: Fid,
    pub path: Uuid,
}

impl LogicalId {
    /// The logical id of the resource at `path` in process `fid`.
    pub fn new(fid: Fid, path: &str) -> Self {
        LogicalId {
            fid,
            path: Uuid::new_v5(&PATH_NAMESPACE, path.as_bytes()),
        }
    }
}

impl fmt::Display for LogicalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.fid, self.path.hyphenated())
    }
}

impl FromStr for LogicalId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IdError::BadLogicalId(s.to_string());
        let (fid, path) = s.split_once('.').ok_or_else(bad)?;
        Ok(LogicalId {
            fid: Uuid::parse_str(fid).map(Fid).map_err(|_| bad())?,
            path: Uuid::parse_str(path).map_err(|_| bad())?,
        })
    }
}

impl Serialize for LogicalId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LogicalId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A malformed identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a FID (expected a uuid): {0:?}")]
    BadFid(String),
    #[error("not a logical id (expected <fid>.<uuid>): {0:?}")]
    BadLogicalId(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_stable_and_round_trip() {
        let fid: Fid = "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().unwrap();
        let a = LogicalId::new(fid, "dev-sam-sg");
        let b = LogicalId::new(fid, "dev-sam-sg");
        assert_eq!(a, b);
        assert_ne!(a, LogicalId::new(fid, "web-app-tag"));
        let text = a.to_string();
        assert!(text.starts_with("03ac9846-a3ad-4378-ab0e-3ad578dee1b7."));
        assert_eq!(text.parse::<LogicalId>().unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<LogicalId>(&json).unwrap(), a);
    }

    #[test]
    fn malformed_ids_are_errors() {
        assert!("nope".parse::<LogicalId>().is_err());
        assert!("03ac9846-a3ad-4378-ab0e-3ad578dee1b7"
            .parse::<LogicalId>()
            .is_err());
        assert!("x.y".parse::<LogicalId>().is_err());
        assert!("zzz".parse::<Fid>().is_err());
    }
}

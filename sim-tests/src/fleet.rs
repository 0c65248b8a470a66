//! Fleets among the simulation's processes: the fleet a composition adds
//! (two instances behind no security group, replaced two at a time when
//! an update changes their image) and the watch of its capacity floor
//! while faults are in force. Once a fleet process has had its `count`
//! instances serving, it never has fewer than `count - maxUnavailable`
//! serving, whatever the faults, until it is killed; after convergence the
//! checker's duplicate, unbound and convergence checks say that no
//! instance is orphaned or doubled.

use std::collections::BTreeSet;

use canon_cloud::SimCloud;
use canon_model::{Fid, ResourceKind};

use crate::cluster::scope;

/// The fleet's `count`.
pub const COUNT: usize = 2;

/// `count - maxUnavailable`: the fewest instances a built fleet serves.
pub const FLOOR: usize = COUNT;

/// The imports and declarations a fleet composition adds to the plain
/// one's VPC `vpc`: a subnet and a fleet of [`COUNT`] instances of an
/// image that SSH (what an update flips) selects, so an update rolls it.
pub fn declarations(ssh: bool) -> (&'static str, String) {
    let image = if ssh {
        "ami-0123456789abcdef1"
    } else {
        "ami-0123456789abcdef0"
    };
    let import = "import Canon.AWS.Pattern.Fleet as Fleet\n";
    let body = format!(
        "subnet: EC2.Subnet.new {{vpc: vpc, cidrBlock: \"10.0.1.0/24\", availabilityZone: AWS.A}}\n\
         web: Fleet.new {{\n  name: \"web\",\n  image: \"{image}\",\n  subnets: [subnet],\n  \
         count: {COUNT},\n  maxAge: \"6h\",\n  maxSurge: {COUNT},\n  maxUnavailable: {},\n}}\n",
        COUNT - FLOOR
    );
    (import, body)
}

/// Which fleet processes were seen built, and which may be going (a kill
/// was sent, whatever its answer): the floor holds for the first but not
/// the second.
#[derive(Debug, Default)]
pub struct FloorWatch {
    built: BTreeSet<Fid>,
    going: BTreeSet<Fid>,
}

impl FloorWatch {
    /// The process `fid` may be killed from now on.
    pub fn going(&mut self, fid: Fid) {
        self.going.insert(fid);
    }

    /// One look at the cloud: a violation for each built fleet process
    /// of `fleets` (alias, fid) serving fewer than [`FLOOR`] instances.
    pub fn look<'a>(
        &mut self,
        cloud: &SimCloud,
        fleets: impl Iterator<Item = (&'a str, Fid)>,
    ) -> Vec<String> {
        let owned = cloud.all_owned(&scope());
        let mut out = Vec::new();
        for (alias, fid) in fleets {
            if self.going.contains(&fid) {
                continue;
            }
            let serving = owned
                .iter()
                .filter(|r| {
                    r.kind() == ResourceKind::Instance
                        && r.owner().is_some_and(|o| o.fid == fid)
                        && r.life.is_some_and(|l| l.serving())
                })
                .count();
            if serving >= FLOOR {
                self.built.insert(fid);
            } else if self.built.contains(&fid) {
                out.push(format!(
                    "fleet {alias} serves {serving} instance(s), under its floor of {FLOOR}"
                ));
            }
        }
        out
    }
}

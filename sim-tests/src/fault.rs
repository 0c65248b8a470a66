//! The kinds of fault a workload round can inject, as a type: `inject`
//! matches on every kind, so a kind added here without its injection does
//! not compile, no kind can fall through to another kind's fault, and a
//! name that is no fault's is an error listing the valid ones.

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// One node cut off from every other host.
    Partition,
    /// The leader of the first live process's shard cut off.
    LeaderIsolated,
    /// One node can hear but not speak, or speak but not hear.
    OneWay,
    /// A minority of the nodes cut off together.
    MinorityIsland,
    /// One host crashes and restarts (its disk survives).
    CrashRestart,
    /// Messages between two nodes held, then released together.
    Hold,
    /// The network's latency bound raised.
    LatencySpike,
    /// Links dropped at random.
    MessageLoss,
    /// Every cloud call delayed.
    SlowCloud,
    /// Cloud calls throttled and failed at random.
    ThrottlingCloud,
}

impl Fault {
    /// Every kind, in the order a seed picks from.
    pub const ALL: [Fault; 10] = [
        Fault::Partition,
        Fault::LeaderIsolated,
        Fault::OneWay,
        Fault::MinorityIsland,
        Fault::CrashRestart,
        Fault::Hold,
        Fault::LatencySpike,
        Fault::MessageLoss,
        Fault::SlowCloud,
        Fault::ThrottlingCloud,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::LeaderIsolated => "leader-isolated",
            Fault::OneWay => "one-way",
            Fault::MinorityIsland => "minority-island",
            Fault::CrashRestart => "crash-restart",
            Fault::Hold => "hold",
            Fault::LatencySpike => "latency-spike",
            Fault::MessageLoss => "message-loss",
            Fault::SlowCloud => "slow-cloud",
            Fault::ThrottlingCloud => "throttling-cloud",
        }
    }
}

/// A name that is not a fault's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {given:?}; the faults are: {}", valid_names())]
pub struct UnknownFault {
    pub given: String,
}

fn valid_names() -> String {
    Fault::ALL.map(Fault::name).join(", ")
}

impl std::str::FromStr for Fault {
    type Err = UnknownFault;

    /// The fault named `s` (as [`Fault::name`] writes it); any other name
    /// is an error that lists the valid ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFault {
                given: s.to_string(),
            })
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_kind_is_listed_once_with_its_own_name() {
        let kinds: BTreeSet<Fault> = Fault::ALL.into_iter().collect();
        let names: BTreeSet<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(kinds.len(), Fault::ALL.len());
        assert_eq!(names.len(), Fault::ALL.len());
    }

    #[test]
    fn every_name_parses_back_to_its_kind() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
        }
    }

    #[test]
    fn a_misspelled_fault_is_an_error_naming_the_valid_ones() {
        let e = "throttle-cloud".parse::<Fault>().expect_err("not a fault");
        let message = e.to_string();
        assert!(message.contains("\"throttle-cloud\""), "{message}");
        for f in Fault::ALL {
            assert!(message.contains(f.name()), "{message} lacks {f}");
        }
    }
}

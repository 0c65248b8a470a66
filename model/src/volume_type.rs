//! EC2's bounds for each EBS volume type: the sizes it comes in and the
//! IOPS it takes. One table, read by the language (which refuses a volume
//! EC2 would refuse, naming the value) and by the simulated cloud (which
//! refuses it as EC2 does).

/// What EC2 allows a volume of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeShape {
    /// EC2's name for the type (`gp3`).
    pub name: &'static str,
    pub size_gib_min: u32,
    pub size_gib_max: u32,
    /// The provisioned IOPS it takes, if it takes any.
    pub iops: Option<IopsRange>,
}

/// The IOPS a type takes, and its default (`None`: they must be given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IopsRange {
    pub min: u32,
    pub max: u32,
    pub default: Option<u32>,
}

/// Every volume type EC2 offers.
pub const VOLUME_SHAPES: [VolumeShape; 7] = [
    shape("gp3", 1, 16_384, Some((3_000, 16_000, Some(3_000)))),
    shape("gp2", 1, 16_384, None),
    shape("io1", 4, 16_384, Some((100, 64_000, None))),
    shape("io2", 4, 65_536, Some((100, 256_000, None))),
    shape("st1", 125, 16_384, None),
    shape("sc1", 125, 16_384, None),
    shape("standard", 1, 1_024, None),
];

const fn shape(
    name: &'static str,
    size_gib_min: u32,
    size_gib_max: u32,
    iops: Option<(u32, u32, Option<u32>)>,
) -> VolumeShape {
    VolumeShape {
        name,
        size_gib_min,
        size_gib_max,
        iops: match iops {
            Some((min, max, default)) => Some(IopsRange { min, max, default }),
            None => None,
        },
    }
}

/// The bounds of volume type `name`, if EC2 has such a type.
pub fn volume_shape(name: &str) -> Option<VolumeShape> {
    VOLUME_SHAPES.iter().copied().find(|s| s.name == name)
}

/// A gp2 volume's IOPS, which EC2 derives from its size: 3 per GiB, within
/// 100 and 16,000.
pub fn gp2_iops(size_gib: u32) -> u32 {
    size_gib.saturating_mul(3).clamp(100, 16_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_size_range_and_sane_iops() {
        for s in VOLUME_SHAPES {
            assert!(
                s.size_gib_min >= 1 && s.size_gib_min < s.size_gib_max,
                "{s:?}"
            );
            if let Some(i) = s.iops {
                assert!(i.min < i.max, "{s:?}");
                assert!(
                    i.default.is_none_or(|d| (i.min..=i.max).contains(&d)),
                    "{s:?}"
                );
            }
        }
        assert_eq!(
            volume_shape("gp3").and_then(|s| s.iops?.default),
            Some(3_000)
        );
        assert!(volume_shape("gp4").is_none());
        assert_eq!(
            (gp2_iops(8), gp2_iops(1_000), gp2_iops(10_000)),
            (100, 3_000, 16_000)
        );
    }
}

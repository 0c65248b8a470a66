//! CIDR blocks: parsing, canonical form and the containment and overlap
//! tests the compiler, the planner and the simulated cloud all need. IPv4
//! blocks are declared (VPCs, subnets, rules); IPv6 blocks appear in
//! security-group rules, where a rogue `::/0` is as dangerous as `0.0.0.0/0`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 CIDR block with no host bits set (`10.0.1.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    addr: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// A block from its network address and prefix length. Fails if the
    /// prefix is over 32 or host bits are set.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, CidrError> {
        if prefix > 32 {
            return Err(CidrError::Prefix(prefix));
        }
        let addr = u32::from(addr);
        if addr & !mask(prefix) != 0 {
            return Err(CidrError::HostBits {
                given: format!("{}/{}", Ipv4Addr::from(addr), prefix),
                network: format!("{}/{}", Ipv4Addr::from(addr & mask(prefix)), prefix),
            });
        }
        Ok(Ipv4Cidr { addr, prefix })
    }

    /// The whole IPv4 space, `0.0.0.0/0`.
    pub const ANY: Ipv4Cidr = Ipv4Cidr { addr: 0, prefix: 0 };

    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Number of addresses in the block.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// True if `other` lies entirely inside this block.
    pub fn contains(self, other: Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && other.addr & mask(self.prefix) == self.addr
    }

    /// True if the two blocks share any address.
    pub fn overlaps(self, other: Ipv4Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::Syntax(s.to_string()))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::Syntax(s.to_string()))?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrError::Syntax(s.to_string()));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| CidrError::Syntax(s.to_string()))?;
        Ipv4Cidr::new(addr, prefix)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv6 CIDR block with no host bits set (`2001:db8::/32`), printed in
/// the canonical compressed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv6Cidr {
    addr: u128,
    prefix: u8,
}

impl Ipv6Cidr {
    /// A block from its network address and prefix length. Fails if the
    /// prefix is over 128 or host bits are set.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Self, CidrError> {
        if prefix > 128 {
            return Err(CidrError::Ipv6Prefix(prefix));
        }
        let addr = u128::from(addr);
        if addr & !mask6(prefix) != 0 {
            return Err(CidrError::HostBits {
                given: format!("{}/{}", Ipv6Addr::from(addr), prefix),
                network: format!("{}/{}", Ipv6Addr::from(addr & mask6(prefix)), prefix),
            });
        }
        Ok(Ipv6Cidr { addr, prefix })
    }

    /// The whole IPv6 space, `::/0`.
    pub const ANY: Ipv6Cidr = Ipv6Cidr { addr: 0, prefix: 0 };

    pub fn network(self) -> Ipv6Addr {
        Ipv6Addr::from(self.addr)
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Whether `other` lies wholly inside this block.
    pub fn contains(self, other: Ipv6Cidr) -> bool {
        other.prefix >= self.prefix && other.addr & mask6(self.prefix) == self.addr
    }

    /// The `/64` number `index` of this `/56` (a VPC's Amazon-provided
    /// block); `None` if this is not a `/56`.
    pub fn subnet64(self, index: u8) -> Option<Ipv6Cidr> {
        (self.prefix == 56).then(|| Ipv6Cidr {
            addr: self.addr | (u128::from(index) << 64),
            prefix: 64,
        })
    }

    /// Which `/64` of the `/56` `vpc` this block is (the inverse of
    /// [`Ipv6Cidr::subnet64`]); `None` if it is not a `/64` inside it.
    pub fn index_in(self, vpc: Ipv6Cidr) -> Option<u8> {
        if self.prefix != 64 || vpc.prefix != 56 || !vpc.contains(self) {
            return None;
        }
        u8::try_from((self.addr >> 64) & 0xff).ok()
    }
}

fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv6Addr::from(self.addr), self.prefix)
    }
}

impl FromStr for Ipv6Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError::Ipv6Syntax(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Ipv6Cidr::new(addr, prefix)
    }
}

impl Serialize for Ipv6Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A block of either family: what a network ACL entry matches, or where a
/// route goes. Written, and serialized, as the block itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpCidr {
    V4(Ipv4Cidr),
    V6(Ipv6Cidr),
}

impl IpCidr {
    /// A range as a message spells it (a rogue request, a compiled
    /// composition), refused with what to write instead.
    pub fn parse_range(s: &str) -> Result<IpCidr, String> {
        s.parse().map_err(|_| {
            format!(
                "bad CIDR {s:?}: use an IPv4 range such as 0.0.0.0/0 or an IPv6 range such as ::/0"
            )
        })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpCidr::V4(c) => c.fmt(f),
            IpCidr::V6(c) => c.fmt(f),
        }
    }
}

impl FromStr for IpCidr {
    type Err = CidrError;
    /// An IPv6 block if it has a colon, else an IPv4 one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse().map(IpCidr::V6)
        } else {
            s.parse().map(IpCidr::V4)
        }
    }
}

impl Serialize for IpCidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpCidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a string is not a valid CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IPv4 CIDR block (expected a.b.c.d/n)")]
    Syntax(String),
    #[error("prefix length /{0} is out of range (0 to 32)")]
    Prefix(u8),
    #[error("{0:?} is not an IPv6 CIDR block (expected e.g. 2001:db8::/32)")]
    Ipv6Syntax(String),
    #[error("prefix length /{0} is out of range (0 to 128)")]
    Ipv6Prefix(u8),
    #[error("{given} has host bits set; the network address is {network}")]
    HostBits { given: String, network: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let c: Ipv4Cidr = "10.0.1.0/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.1.0/24");
        assert_eq!(c.size(), 256);
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap(), Ipv4Cidr::ANY);
    }

    #[test]
    fn ipv6_blocks_parse_print_canonically_and_refuse_host_bits() {
        let c: Ipv6Cidr = "2001:0db8:0000::/32".parse().unwrap();
        assert_eq!(c.to_string(), "2001:db8::/32");
        assert_eq!("::/0".parse::<Ipv6Cidr>().unwrap(), Ipv6Cidr::ANY);
        assert_eq!(Ipv6Cidr::ANY.to_string(), "::/0");
        assert!(matches!(
            "2001:db8::1/32".parse::<Ipv6Cidr>(),
            Err(CidrError::HostBits { .. })
        ));
        assert!(matches!(
            "::/129".parse::<Ipv6Cidr>(),
            Err(CidrError::Ipv6Prefix(129))
        ));
        for bad in ["", "::", "::/", "10.0.0.0/8", "::/+1", "::/1000", "zz::/8"] {
            assert!(bad.parse::<Ipv6Cidr>().is_err(), "{bad:?} parsed");
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"2001:db8::/32\"");
        assert_eq!(serde_json::from_str::<Ipv6Cidr>(&json).unwrap(), c);
    }

    #[test]
    fn rejects_bad_blocks() {
        assert!(matches!(
            "10.0.1.5/24".parse::<Ipv4Cidr>(),
            Err(CidrError::HostBits { .. })
        ));
        assert!("10.0.1.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.1.0".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.1/24".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.1.0/+4".parse::<Ipv4Cidr>().is_err());
        assert!("300.0.0.0/8".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn containment_and_overlap() {
        let vpc: Ipv4Cidr = "10.0.0.0/16".parse().unwrap();
        let a: Ipv4Cidr = "10.0.1.0/24".parse().unwrap();
        let b: Ipv4Cidr = "10.0.2.0/24".parse().unwrap();
        let wide: Ipv4Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(vpc.contains(a) && vpc.contains(b));
        assert!(!a.overlaps(b));
        assert!(wide.overlaps(a) && a.overlaps(wide));
        assert!(!a.contains(vpc));
        assert!(Ipv4Cidr::ANY.contains(a));
    }

    #[test]
    fn a_vpc_56_numbers_its_subnet_64s() {
        let vpc: Ipv6Cidr = "2600:1f14:abc:de00::/56".parse().unwrap();
        let s = vpc.subnet64(0x2a).unwrap();
        assert_eq!(s.to_string(), "2600:1f14:abc:de2a::/64");
        assert_eq!(s.index_in(vpc), Some(0x2a));
        assert_eq!(vpc.subnet64(255).unwrap().index_in(vpc), Some(255));
        assert!(vpc.contains(s) && !s.contains(vpc));
        let elsewhere: Ipv6Cidr = "2600:1f14:abc:df00::/64".parse().unwrap();
        assert_eq!(elsewhere.index_in(vpc), None);
        assert_eq!(s.subnet64(1), None, "only a /56 numbers /64s");
    }
}

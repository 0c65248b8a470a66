//! The protobuf form of a compiled composition is canonical and lossless.

use std::path::Path;

use canon_lang::{compile_file, Compiled, Options};

fn compile(name: &str) -> Compiled {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compositions")
        .join(name);
    compile_file(&p, Options::default())
        .expect("read")
        .compiled
        .expect("compiles")
}

#[test]
fn encoding_round_trips_and_is_deterministic() {
    for name in ["VPC-sam.lw", "VPC-sam-ssh.lw", "Staging.lw"] {
        let c = compile(name);
        let bytes = c.encode();
        assert_eq!(
            bytes,
            compile(name).encode(),
            "{name}: same sources, same bytes"
        );
        let back = Compiled::decode(&bytes).expect("decodes");
        assert_eq!(back, c, "{name}");
        assert_eq!(back.encode(), bytes);
    }
}

#[test]
fn different_sources_encode_differently() {
    assert_ne!(
        compile("VPC-sam.lw").encode(),
        compile("VPC-sam-ssh.lw").encode()
    );
}

#[test]
fn garbage_is_a_decode_error_not_a_panic() {
    assert!(Compiled::decode(&[0xff, 0xff, 0xff]).is_err());
    let mut m = compile("VPC-sam.lw").to_proto();
    m.format_version = 99;
    assert!(Compiled::from_proto(m).is_err());
    let mut m = compile("VPC-sam.lw").to_proto();
    let mut changed = false;
    for r in &mut m.resources {
        if let Some(canon_proto::canon::composition::v1::resource::Spec::Vpc(v)) = r.spec.as_mut() {
            v.cidr_block = "nope".into();
            changed = true;
        }
    }
    assert!(changed);
    assert!(Compiled::from_proto(m).is_err());
}

#[test]
fn ipv6_and_prefix_list_peers_round_trip_and_bad_ranges_are_refused() {
    use canon_proto::canon::composition::v1::{resource::Spec, rule::Peer, Rule};
    let with_peer = |peer: Peer| {
        let mut m = compile("VPC-sam.lw").to_proto();
        let mut changed = false;
        for r in &mut m.resources {
            if let Some(Spec::SecurityGroup(g)) = r.spec.as_mut() {
                g.ingress.push(Rule {
                    protocol: "tcp".into(),
                    from_port: 22,
                    to_port: 22,
                    peer: Some(peer.clone()),
                });
                changed = true;
            }
        }
        assert!(changed);
        m
    };
    for peer in [
        Peer::Ipv6Cidr("2001:db8::/32".into()),
        Peer::PrefixList("pl-0123".into()),
    ] {
        let c = Compiled::from_proto(with_peer(peer.clone())).expect("decodes");
        assert_ne!(c, compile("VPC-sam.lw"), "{peer:?} kept");
        let back = Compiled::decode(&c.encode()).expect("round trip");
        assert_eq!(back, c, "{peer:?}");
    }
    let bad = Compiled::from_proto(with_peer(Peer::Ipv6Cidr("2001:db8::1/32".into())));
    assert!(bad.is_err());
}

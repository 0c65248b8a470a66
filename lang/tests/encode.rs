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

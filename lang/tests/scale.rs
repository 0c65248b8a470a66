//! A generated 10,000-resource composition compiles to exactly 10,000
//! resources with unique paths (the benchmark measures how fast).

use std::collections::BTreeSet;

use canon_lang::{compile_str, MapLoader, Options};

include!("../benches/generate.rs");

#[test]
fn ten_thousand_resources() {
    let src = generate(1000);
    let out = compile_str("bench.lw", &src, &MapLoader::default(), Options::default());
    assert!(out.diagnostics.is_empty(), "{}", out.render());
    let c = out.compiled.expect("compiles");
    assert_eq!(c.resources.len(), 10_000);
    let paths: BTreeSet<&str> = c.resources.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths.len(), 10_000);
    assert!(paths.contains("net-999.privateSubnets[2]"));
    assert!(paths.contains("sg-0"));
}

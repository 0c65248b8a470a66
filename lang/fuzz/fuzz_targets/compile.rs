//! Any bytes, as a composition: the parser, checker, evaluator and lowering
//! must never panic or hang, never report an internal error, and rendering
//! the diagnostics must not panic either.
#![no_main]

use canon_lang::{compile_str, MapLoader, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let loader = MapLoader::default();
    let out = compile_str("fuzz.lw", &text, &loader, Options::default());
    for d in &out.diagnostics {
        assert!(!d.message.contains("internal"), "{}", out.render());
    }
    let _ = out.render();
    let _ = out.to_json();
    if let Some(c) = &out.compiled {
        let bytes = c.encode();
        assert_eq!(canon_lang::Compiled::decode(&bytes).as_ref(), Ok(c));
    }
});

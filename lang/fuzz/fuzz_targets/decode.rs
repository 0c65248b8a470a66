//! Any bytes, as a compiled composition: decoding never panics, and what
//! decodes re-encodes to a stable form.
#![no_main]

use canon_lang::Compiled;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Compiled::decode(data) {
        let again = Compiled::decode(&c.encode());
        assert_eq!(again.as_ref(), Ok(&c));
    }
});

//! libFuzzer's driver of [`canon_fuzz::entry`]: the body says what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = canon_fuzz::entry(data);
});

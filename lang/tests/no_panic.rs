//! Robustness: no input makes the compiler panic, hang or report an internal
//! error — arbitrary text, token soup, and mutations of real compositions.
//! (The libFuzzer target in `lang/fuzz` explores the same property further.)

use canon_lang::{compile_str, MapLoader, Options};
use proptest::prelude::*;

const DEMO: &str = include_str!("compositions/VPC-sam.lw");
const STAGING: &str = include_str!("compositions/Staging.lw");

const TOKENS: &[&str] = &[
    "composition",
    "import",
    "Fugue.AWS.EC2",
    "Canon.Core.AWS.Common",
    "as",
    "EC2",
    "AWS",
    "Network",
    "export",
    "type",
    "resource",
    "fun",
    "native",
    "let",
    "if",
    "then",
    "else",
    "case",
    "of",
    "with",
    "True",
    "False",
    "None",
    "Some",
    "x",
    "dev-network",
    "Vpc",
    "new",
    "tag",
    "error",
    "map",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ".",
    "|",
    "->",
    "++",
    "+",
    "-",
    "*",
    "/",
    "==",
    "!=",
    "<",
    ">",
    "=",
    "&&",
    "||",
    "0",
    "-1",
    "65536",
    "9223372036854775807",
    "\"10.0.0.0/8\"",
    "'s'",
    "\n",
    "\n  ",
    "#c\n",
    "_",
    "A",
    "Us-west-2",
    "Optional<Int>",
    "List<T>",
];

fn assert_sane(src: &str) {
    let out = compile_str("fuzz.lw", src, &MapLoader::default(), Options::default());
    for d in &out.diagnostics {
        assert!(
            !d.message.contains("internal"),
            "internal error for input {src:?}: {}",
            out.render()
        );
    }
    // Rendering every diagnostic must not panic either.
    let _ = out.render();
    let _ = out.to_json();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(src in "\\PC{0,200}") {
        assert_sane(&src);
    }

    #[test]
    fn token_soup(toks in proptest::collection::vec(proptest::sample::select(TOKENS), 0..80)) {
        assert_sane(&toks.join(" "));
    }

    #[test]
    fn mutated_compositions(
        which in 0usize..2,
        start in 0usize..2000,
        len in 0usize..40,
        insert in proptest::sample::select(TOKENS),
    ) {
        let base = if which == 0 { DEMO } else { STAGING };
        let mut chars: Vec<char> = base.chars().collect();
        let s = start.min(chars.len());
        let e = (s + len).min(chars.len());
        chars.splice(s..e, insert.chars());
        let src: String = chars.into_iter().collect();
        assert_sane(&src);
    }
}

#[test]
fn pathological_inputs() {
    let deep = format!("x: {}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert_sane(&deep);
    let long_chain = format!("x: 1{}", " + 1".repeat(50_000));
    assert_sane(&long_chain);
    let concat = format!("x: \"a\"{}", " ++ \"a\"".repeat(1999));
    assert_sane(&concat);
    assert_sane("fun f(n: Int) -> Int: f(n + 1)\nx: f(0)");
    assert_sane("fun f(n: Int) -> List<Int>: f(n) ++ f(n)\nx: f(0)");
    assert_sane("x: range(0, 9223372036854775807)");
    assert_sane("x: 9223372036854775807 + 1");
    assert_sane("x: -9223372036854775807 - 2");
    assert_sane("x: length(map(fun(i): range(0, 100000), range(0, 1000)))");
    assert_sane("a: b\nb: c\nc: a");
    assert_sane("import A.B as A\nimport A.B as A");
    assert_sane("\u{feff}x: 'é' ++ \"\\u\"");
    assert_sane("type T: {a: T}\nx: T({a: x})");
}

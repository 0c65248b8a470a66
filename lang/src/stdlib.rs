//! The standard library, written in the language itself and shipped inside
//! the crate. `Fugue.*` module paths are aliases of the `Canon.*` ones.

/// Every bundled module: canonical name and source.
pub const MODULES: &[(&str, &str)] = &[
    (
        "Canon.Core.Prelude",
        include_str!("../stdlib/Canon/Core/Prelude.lw"),
    ),
    (
        "Canon.Core.Cidr",
        include_str!("../stdlib/Canon/Core/Cidr.lw"),
    ),
    (
        "Canon.Core.AWS.Common",
        include_str!("../stdlib/Canon/Core/AWS/Common.lw"),
    ),
    ("Canon.AWS.EC2", include_str!("../stdlib/Canon/AWS/EC2.lw")),
    (
        "Canon.AWS.Pattern.Network",
        include_str!("../stdlib/Canon/AWS/Pattern/Network.lw"),
    ),
    (
        "Canon.AWS.Pattern.ThreeTier",
        include_str!("../stdlib/Canon/AWS/Pattern/ThreeTier.lw"),
    ),
    (
        "Canon.AWS.Pattern.Fleet",
        include_str!("../stdlib/Canon/AWS/Pattern/Fleet.lw"),
    ),
    (
        "Canon.Validation",
        include_str!("../stdlib/Canon/Validation.lw"),
    ),
    (
        "Canon.Validation.Network",
        include_str!("../stdlib/Canon/Validation/Network.lw"),
    ),
    (
        "Canon.Validation.Tags",
        include_str!("../stdlib/Canon/Validation/Tags.lw"),
    ),
    (
        "Canon.Validation.Instances",
        include_str!("../stdlib/Canon/Validation/Instances.lw"),
    ),
];

/// The module every module sees unqualified.
pub const PRELUDE: &str = "Canon.Core.Prelude";

/// The canonical name of a module path: `Fugue.X` is `Canon.X`.
pub fn canonical(path: &[String]) -> String {
    let joined = path.join(".");
    match joined.strip_prefix("Fugue.") {
        Some(rest) => format!("Canon.{rest}"),
        None => joined,
    }
}

/// The bundled source of a module, if it is part of the standard library.
pub fn source(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The file name shown in diagnostics for a bundled module.
pub fn file_name(name: &str) -> String {
    format!("<canon>/{}.lw", name.replace('.', "/"))
}

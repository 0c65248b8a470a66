//! Which of a validation module's exports are validations: functions and
//! bindings whose checked type is `(Canon.Validation.Resources) ->
//! Canon.Validation.Outcome`. A name the module exports by an `export`
//! line must be one; a module with none is refused.

use crate::ast::Decl;
use crate::diag::Diagnostic;
use crate::program::Program;
use crate::span::Span;
use crate::types::{self, Type};

/// The module that declares what validations see and answer.
const LIBRARY: &str = "Canon.Validation";

/// A validation of the module: its name, declaration index and the span
/// of its name.
pub(super) struct Found {
    pub name: String,
    pub decl: usize,
    pub span: Span,
}

/// The module's validations in declaration order; what is wrong with its
/// exports goes to `diags`.
pub(super) fn validations(prog: &Program, diags: &mut Vec<Diagnostic>) -> Vec<Found> {
    let root = prog.root;
    let Some(module) = prog.modules.get(root) else {
        return Vec::new();
    };
    let whole = Span::new(module.file, 0, 0);
    let Some(wanted) = validation_type(prog) else {
        diags.push(none_declared(whole));
        return Vec::new();
    };
    let scope = &prog.scopes[root];
    let mut found = Vec::new();
    for (i, d) in module.decls.iter().enumerate() {
        if matches!(d, Decl::Type(_)) || !scope.exported(d.name()) {
            continue;
        }
        let ty = prog.root_types.get(&i);
        if ty == Some(&wanted) {
            found.push(Found {
                name: d.name().to_string(),
                decl: i,
                span: d.name_span(),
            });
        } else if let Some(listed) = module.exports.iter().flatten().find(|(n, _)| n == d.name()) {
            let shown = ty.map(|t| types::show(t, &prog.types)).unwrap_or_default();
            diags.push(
                Diagnostic::type_error(
                    listed.1,
                    format!(
                        "`{}` is exported but is not a validation: its type is {shown}",
                        d.name()
                    ),
                )
                .with_title("Not a validation:")
                .with_label("exported here")
                .with_hint(
                    "a validation module exports only validations, functions of type (Validation.Resources) -> Validation.Outcome",
                ),
            );
        }
    }
    if found.is_empty() && !diags.iter().any(|d| d.is_error()) {
        diags.push(none_declared(whole));
    }
    found
}

fn none_declared(span: Span) -> Diagnostic {
    Diagnostic::type_error(span, "this module declares no validation")
        .with_title("No validation:")
        .with_hint(
            "export functions of type (Validation.Resources) -> Validation.Outcome, e.g.\n  import Canon.Validation.Network as Network\n  no-admin-ports: Network.noOpenAdminPorts",
        )
}

/// `(Resources) -> Outcome` of the library, if the module loaded it.
fn validation_type(prog: &Program) -> Option<Type> {
    let id = |name: &str| {
        prog.types.iter().position(|t| {
            t.name == name
                && prog
                    .modules
                    .get(t.module)
                    .is_some_and(|m| m.name == LIBRARY)
        })
    };
    Some(Type::Fun(
        vec![Type::Named(id("Resources")?)],
        Box::new(Type::Named(id("Outcome")?)),
    ))
}

//! The composition language: lexer, parser, type checker, evaluator, standard
//! library and diagnostics. Turns `.lw` sources into a `canon_model::DesiredState`.

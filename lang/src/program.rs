//! A whole program: the composition, every module it imports (standard
//! library and the user's own files, resolved by module path relative to the
//! composition's directory), and the scopes and types the checker builds.

use std::collections::{HashMap, HashSet};

use crate::ast::{Module, ModuleId};
use crate::diag::{closest, Diagnostic};
use crate::parser::parse;
use crate::span::{Origin, SourceFile, SourceMap, Span};
use crate::stdlib;
use crate::types::{TypeDef, TypeId};

/// Loads the user's own modules: `rel` is a path like `Lib/Tags.lw`,
/// relative to the composition's directory.
pub trait SourceLoader: Sync {
    /// The file's display name and text, or `None` if there is none.
    fn load(&self, rel: &str) -> Option<(String, String)>;
}

/// Loads modules from a directory on disk.
pub struct DirLoader(pub std::path::PathBuf);

impl SourceLoader for DirLoader {
    fn load(&self, rel: &str) -> Option<(String, String)> {
        let path = self.0.join(rel);
        let text = std::fs::read_to_string(&path).ok()?;
        Some((path.display().to_string(), text))
    }
}

/// Loads modules from memory (tests, tools).
#[derive(Default)]
pub struct MapLoader(pub HashMap<String, String>);

impl SourceLoader for MapLoader {
    fn load(&self, rel: &str) -> Option<(String, String)> {
        self.0.get(rel).map(|t| (rel.to_string(), t.clone()))
    }
}

/// What a module-level value name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueItem {
    /// A top-level binding (index into the module's decls).
    Binding(usize),
    /// A function (index into the module's decls).
    Fun(usize),
    /// A sum-type constructor: type and constructor index.
    Ctor(TypeId, usize),
    /// The constructor of a record type, named like the type.
    RecordCtor(TypeId),
}

/// The names a module defines and the modules it imports.
#[derive(Debug, Default)]
pub struct Scope {
    pub values: HashMap<String, ValueItem>,
    pub types: HashMap<String, TypeId>,
    /// Import alias → module and the alias's span.
    pub aliases: HashMap<String, (ModuleId, Span)>,
    /// `None`: everything is exported.
    pub exports: Option<HashSet<String>>,
}

impl Scope {
    /// Whether `name` (possibly dotted) is visible to other modules.
    pub fn exported(&self, name: &str) -> bool {
        match &self.exports {
            None => true,
            Some(set) => {
                set.contains(name)
                    || name
                        .split_once('.')
                        .is_some_and(|(head, _)| set.contains(head))
            }
        }
    }
}

pub struct Program {
    pub sources: SourceMap,
    pub modules: Vec<Module>,
    pub scopes: Vec<Scope>,
    pub types: Vec<TypeDef>,
    pub root: ModuleId,
    pub prelude: Option<ModuleId>,
    /// Modules in dependency order (imports before importers).
    pub order: Vec<ModuleId>,
    /// The checked type of each function and binding of the root module, by
    /// declaration index (filled by the checker; what a validation module's
    /// exports are recognised by).
    pub root_types: HashMap<usize, crate::types::Type>,
}

impl Program {
    pub fn is_library(&self, m: ModuleId) -> bool {
        self.modules
            .get(m)
            .and_then(|md| self.sources.get(md.file))
            .is_some_and(|f| f.origin == Origin::Library)
    }
}

/// Parses the composition and loads every module it needs. Returns the
/// program (possibly partial) and the syntax and module-resolution errors.
pub fn load(name: &str, text: &str, loader: &dyn SourceLoader) -> (Program, Vec<Diagnostic>) {
    let mut sources = SourceMap::new();
    let mut modules: Vec<Module> = Vec::new();
    let mut diags = Vec::new();
    let mut by_name: HashMap<String, ModuleId> = HashMap::new();
    let mut import_targets: Vec<Vec<Option<ModuleId>>> = Vec::new();

    let root_file = sources.add(SourceFile::new(
        name.to_string(),
        text.to_string(),
        Origin::User,
    ));
    let (root, errs) = parse(root_file, "<composition>", text, true);
    diags.extend(errs);
    modules.push(root);
    by_name.insert("<composition>".into(), 0);

    // The prelude is always loaded.
    let prelude = load_module(
        stdlib::PRELUDE,
        loader,
        &mut sources,
        &mut modules,
        &mut diags,
    );
    if let Some(p) = prelude {
        by_name.insert(stdlib::PRELUDE.into(), p);
    }

    let mut next = 0;
    while next < modules.len() {
        let mut targets = Vec::new();
        let imports = modules[next].imports.clone();
        for imp in &imports {
            let canon = stdlib::canonical(&imp.path);
            let target = match by_name.get(&canon) {
                Some(id) => Some(*id),
                None => {
                    let id = load_module(&canon, loader, &mut sources, &mut modules, &mut diags);
                    match id {
                        Some(id) => {
                            by_name.insert(canon.clone(), id);
                            Some(id)
                        }
                        None => {
                            let mut d = Diagnostic::scope(
                                imp.path_span,
                                format!("Module not found: {}", imp.path.join(".")),
                            )
                            .with_title("Unknown module:")
                            .with_label("no such module");
                            let names = stdlib::MODULES.iter().map(|(n, _)| *n);
                            let near = closest(&canon, names);
                            if !near.is_empty() {
                                d = d.with_hint(format!(
                                    "perhaps you mean one of:\n{}",
                                    near.iter()
                                        .map(|n| format!("  {n}"))
                                        .collect::<Vec<_>>()
                                        .join("\n")
                                ));
                            } else {
                                d = d.with_hint(format!(
                                    "user modules are looked up as {}.lw next to the composition",
                                    imp.path.join("/")
                                ));
                            }
                            diags.push(d);
                            None
                        }
                    }
                }
            };
            targets.push(target);
        }
        import_targets.push(targets);
        next += 1;
    }

    let mut scopes: Vec<Scope> = (0..modules.len()).map(|_| Scope::default()).collect();
    for (m, targets) in import_targets.iter().enumerate() {
        for (imp, t) in modules[m].imports.iter().zip(targets) {
            if let Some(t) = t {
                scopes[m]
                    .aliases
                    .insert(imp.alias.clone(), (*t, imp.alias_span));
            }
        }
    }
    let order = dependency_order(&import_targets, prelude, &modules, &mut diags);
    (
        Program {
            sources,
            modules,
            scopes,
            types: Vec::new(),
            root: 0,
            prelude,
            order,
            root_types: HashMap::new(),
        },
        diags,
    )
}

fn load_module(
    canon: &str,
    loader: &dyn SourceLoader,
    sources: &mut SourceMap,
    modules: &mut Vec<Module>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ModuleId> {
    let (fname, text, origin) = match stdlib::source(canon) {
        Some(t) => (stdlib::file_name(canon), t.to_string(), Origin::Library),
        None => {
            let rel = format!("{}.lw", canon.replace('.', "/"));
            let (n, t) = loader.load(&rel)?;
            (n, t, Origin::User)
        }
    };
    let file = sources.add(SourceFile::new(fname, text.clone(), origin));
    let (m, errs) = parse(file, canon, &text, false);
    diags.extend(errs);
    modules.push(m);
    Some(modules.len() - 1)
}

/// Orders modules so that each comes after what it imports (prelude first);
/// reports import cycles.
fn dependency_order(
    targets: &[Vec<Option<ModuleId>>],
    prelude: Option<ModuleId>,
    modules: &[Module],
    diags: &mut Vec<Diagnostic>,
) -> Vec<ModuleId> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        New,
        Active,
        Done,
    }
    let n = targets.len();
    let mut st = vec![St::New; n];
    let mut order = Vec::new();
    if let Some(p) = prelude {
        st[p] = St::Done;
        order.push(p);
    }
    // Iterative DFS (module graphs can be deep).
    for start in 0..n {
        if st[start] != St::New {
            continue;
        }
        let mut stack: Vec<(ModuleId, usize)> = vec![(start, 0)];
        st[start] = St::Active;
        while let Some((m, i)) = stack.pop() {
            let deps = &targets[m];
            if i < deps.len() {
                stack.push((m, i + 1));
                if let Some(d) = deps[i] {
                    match st[d] {
                        St::New => {
                            st[d] = St::Active;
                            stack.push((d, 0));
                        }
                        St::Active => {
                            if let Some(imp) = modules[m].imports.get(i) {
                                diags.push(
                                    Diagnostic::scope(
                                        imp.path_span,
                                        format!(
                                            "Import cycle: {} imports itself through {}",
                                            modules[d].name, modules[m].name
                                        ),
                                    )
                                    .with_title("Import cycle:")
                                    .with_label("cyclic import"),
                                );
                            }
                        }
                        St::Done => {}
                    }
                }
            } else {
                st[m] = St::Done;
                order.push(m);
            }
        }
    }
    order
}

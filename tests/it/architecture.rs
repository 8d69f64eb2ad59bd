//! ARCHITECTURE.md is the map of the code, and a map that leaves out a module misleads. Every
//! module under `src/` and `crates/*/src/` — a `.rs` file, or a folder — must be named in it
//! (the rule is written at the top of ARCHITECTURE.md). And the outcome model depends on
//! nothing: `src/finding.rs` imports no other module of the crate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files that are not modules of their own: a crate's root, a folder's `mod.rs`, and unit tests
/// (`tests.rs`, their parent's).
const NOT_MODULES: [&str; 3] = ["lib.rs", "mod.rs", "tests.rs"];

/// Every module below `dir`, as a path from the source root prefixed with `label` (`ci/`,
/// `apply/phases.rs`, `crates/registry/engine.rs`).
fn modules(dir: &Path, label: &str, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            let label = format!("{label}{name}/");
            out.insert(label.clone());
            modules(&path, &label, out);
        } else if name.ends_with(".rs") && !NOT_MODULES.contains(&name.as_str()) {
            out.insert(format!("{label}{name}"));
        }
    }
}

fn all_modules() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    modules(&root().join("src"), "", &mut out);
    if let Ok(crates) = std::fs::read_dir(root().join("crates")) {
        for krate in crates {
            let krate = krate.unwrap().path();
            let label = format!("crates/{}/", krate.file_name().unwrap().to_str().unwrap());
            out.insert(label.clone());
            modules(&krate.join("src"), &label, &mut out);
        }
    }
    out
}

/// The entries of a markdown text: each table row, each list item (with its continuation
/// lines), each other paragraph; fenced blocks left out.
fn entries(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut fenced = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let starts_entry = trimmed.is_empty()
            || trimmed.starts_with('|')
            || trimmed.starts_with("- ")
            || trimmed.starts_with('#');
        if fenced || starts_entry {
            out.push(std::mem::take(&mut current));
        }
        if !fenced && !trimmed.is_empty() {
            current.push_str(line);
            current.push('\n');
        }
    }
    out.push(current);
    out.retain(|e| !e.trim().is_empty());
    out
}

/// The code spans of an entry as paths: `src/` dropped wherever it stands (a crate's modules
/// are named `crates/<name>/…`), a trailing `::item` dropped.
fn spans(entry: &str) -> Vec<String> {
    entry
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|s| {
            let s = s.strip_prefix("src/").unwrap_or(s).replace("/src/", "/");
            s.split("::").next().unwrap_or_default().to_owned()
        })
        .collect()
}

/// What the document names: every span; a folder span joined with every other span of the
/// same entry (`apply/` … `phases.rs` names `apply/phases.rs`); and every folder on the way to
/// a named path.
fn named(doc: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for entry in entries(doc) {
        let spans = spans(&entry);
        for folder in spans.iter().filter(|s| s.ends_with('/')) {
            for span in &spans {
                named.insert(format!("{folder}{span}"));
            }
        }
        named.extend(spans);
    }
    let prefixes: Vec<String> = named
        .iter()
        .flat_map(|path| {
            path.match_indices('/')
                .map(|(i, _)| path[..=i].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    named.extend(prefixes);
    named
}

#[test]
fn every_module_is_named_in_architecture_md() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let named = named(&doc);
    let modules = all_modules();
    assert!(modules.contains("apply/phases.rs") && modules.contains("ci/"));
    assert!(modules.contains("crates/registry/engine.rs"));
    assert!(modules.contains("crates/testkit/fault_proxy.rs"));
    let missing: Vec<_> = modules.iter().filter(|m| !named.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these modules (give each its one job there): {missing:#?}"
    );
}

/// The rule itself: a folder's file counts in the entry that names the folder, not elsewhere.
#[test]
fn a_module_counts_as_named_only_with_its_folder() {
    let found = named(
        "| `apply/` | `phases.rs`, `verify.rs` |\n\n- `plan/` — `decide.rs`\n\nAlso `forward.rs`.\n",
    );
    assert!(found.contains("apply/phases.rs") && found.contains("plan/decide.rs"));
    assert!(!found.contains("apply/forward.rs") && !found.contains("plan/phases.rs"));
    assert!(
        found.contains("forward.rs"),
        "a top-level name stands alone"
    );
    let crate_named = named("- `crates/registry/` — `engine.rs`; `crates/registry/src/tags.rs`\n");
    assert!(crate_named.contains("crates/registry/engine.rs"));
    assert!(crate_named.contains("crates/registry/tags.rs"));
}

#[test]
fn the_outcome_model_imports_nothing_of_the_crate() {
    let source = std::fs::read_to_string(root().join("src/finding.rs")).unwrap();
    let imports: Vec<_> = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| l.contains("crate::") || l.contains("super::"))
        .collect();
    assert!(
        imports.is_empty(),
        "src/finding.rs must stay a leaf: {imports:#?}"
    );
}

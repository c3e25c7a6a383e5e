//! The module table of docs/architecture.md is the law of `src/`: every `crate::` path a
//! module's code names must be allowed by its row, every module must have a row, and no
//! command imports another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Each module of the table and what its row says it may use.
fn table() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md"))
        .expect("docs/architecture.md");
    let mut allowed = BTreeMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let (modules, may_use) = (cells[0], cells[cells.len() - 1]);
        let uses: BTreeSet<String> = may_use
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        for module in modules.split(',') {
            allowed.insert(module.trim().trim_matches('`').to_string(), uses.clone());
        }
    }
    allowed
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to.
fn module_of(file: &Path) -> String {
    let rel = file
        .strip_prefix(Path::new(ROOT).join("src"))
        .expect("in src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// The top-level modules named by `crate::x` paths in code (comments left out), with the
/// line each was seen on.
fn uses_of(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`
                let end = list.find('}').unwrap_or(list.len());
                for item in list[..end].split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        found.push((name.to_string(), line.to_string()));
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((name, line.to_string()));
        }
    }
    found
}

#[test]
fn every_crate_path_follows_the_module_table() {
    let allowed = table();
    assert!(allowed.len() > 15, "the table was not read: {allowed:?}");
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(file);
        let Some(may_use) = allowed.get(&module) else {
            wrong.push(format!(
                "{}: module {module} has no row in docs/architecture.md",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for (used, line) in uses_of(&text) {
            if used != module && !may_use.contains(&used) {
                wrong.push(format!(
                    "{}: {module} uses {used}: {}",
                    file.display(),
                    line.trim()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows the table does not allow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_command_imports_another() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src/commands"), &mut files);
    rust_files(&Path::new(ROOT).join("src/cli"), &mut files);
    for file in files {
        if file.ends_with("commands/mod.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for (used, line) in uses_of(&text) {
            assert_ne!(used, "commands", "{}: {}", file.display(), line.trim());
        }
    }
}

#[test]
fn the_reader_finds_paths_in_code_and_not_in_comments() {
    let text = "use crate::db::{self, Db};\n// crate::backup in a comment\nlet x = crate::storage::at(p);\nuse crate::{error::Exit, output};\n";
    let names: Vec<String> = uses_of(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["db", "storage", "error", "output"]);
}

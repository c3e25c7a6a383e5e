//! The checked-in man pages and completions must match what the binary generates now.
//! Regenerate with `scripts/regen-docs`.

mod common;

use std::path::Path;
use std::process::Command;

fn generated(args: &[&str]) -> Vec<u8> {
    let out = Command::new(common::BIN)
        .args(args)
        .output()
        .expect("run jobdbctl");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in [
        ("bash", "jobdbctl.bash"),
        ("zsh", "_jobdbctl"),
        ("fish", "jobdbctl.fish"),
    ] {
        let checked_in = std::fs::read(root.join(file)).unwrap_or_default();
        assert!(
            checked_in == generated(&["completions", shell]),
            "completions/{file} is stale; run scripts/regen-docs"
        );
    }
}

#[test]
fn man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let dir = common::temp_dir("jm");
    generated(&["man", "--out-dir", dir.path().to_str().expect("utf-8 path")]);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read generated")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut checked_in: Vec<String> = std::fs::read_dir(&root)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    checked_in.sort();
    assert_eq!(
        names, checked_in,
        "man/ has other pages than generated; run scripts/regen-docs"
    );
    for name in names {
        let now = std::fs::read(dir.path().join(&name)).expect("generated page");
        let old = std::fs::read(root.join(&name)).unwrap_or_default();
        assert!(now == old, "man/{name} is stale; run scripts/regen-docs");
    }
    let main = std::fs::read_to_string(root.join("jobdbctl.1")).expect("main page");
    assert!(
        main.contains("EXIT STATUS"),
        "the main page documents exit codes"
    );
}

/// `--help` piped (no terminal) and the man pages read as an operator reads them: no
/// example broken mid-argument, no true/false offered for a switch, `restore latest`
/// shown, every cause of backup's exit 3 named.
#[test]
fn help_and_man_pages_read_whole() {
    let main = String::from_utf8(generated(&["--help"])).expect("utf-8");
    let commands: Vec<String> = main
        .split("Commands:")
        .nth(1)
        .unwrap_or_default()
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(commands.iter().any(|c| c == "restore"), "{commands:?}");
    for command in commands.iter().filter(|c| *c != "help") {
        let help = String::from_utf8(generated(&[command, "--help"])).expect("utf-8");
        let examples = help.split("Examples:").nth(1).unwrap_or_default();
        let examples = examples.split("Exit status:").next().unwrap_or_default();
        for line in examples
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
        {
            assert!(
                line.chars().count() <= 78,
                "`{command} --help` example: {line}"
            );
        }
    }
    let restore = String::from_utf8(generated(&["restore", "--help"])).expect("utf-8");
    assert!(restore.contains("jobdbctl restore latest"), "{restore}");
    let backup = String::from_utf8(generated(&["backup", "--help"])).expect("utf-8");
    assert!(backup.contains("a link or another user's file"), "{backup}");
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for page in std::fs::read_dir(&man).expect("man").flatten() {
        let text = std::fs::read_to_string(page.path()).expect("page");
        assert!(
            !text.contains("Values: true, false"),
            "{}: a switch offered true/false",
            page.path().display()
        );
    }
}

//! Help, man pages and completions: generated from the clap definitions, checked in and
//! installed where man and bash look; the SQL the docs show runs.

mod common;
use common::Exec;

use common::Victim;

use common::path_str;

use common::assert_has;

use common::is_root;
use common::run;
use common::scalar_i64;
use common::TestDb;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

fn generated(args: &[&str]) -> Vec<u8> {
    let out = Command::new(common::BIN)
        .args(args)
        .output()
        .expect("run jobdbctl");
    common::assert_success(&out, &format!("{args:?}"));
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
    assert_has(&restore, "jobdbctl restore latest");
    let backup = String::from_utf8(generated(&["backup", "--help"])).expect("utf-8");
    assert_has(&backup, "a link or another user's file");
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

/// The binary copied into `prefix/bin`, as an install puts it there.
fn installed_binary(prefix: &Path) -> PathBuf {
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).expect("create bin");
    let exe = bin.join("jobdbctl");
    std::fs::copy(common::BIN, &exe).expect("copy binary");
    exe
}

fn sh(script: &str, envs: &[(&str, &str)]) -> common::Run {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", script]).env_remove("MANPATH");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run(cmd)
}

const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

/// What bash completes after `jobdbctl WORD`, with the completion found the way
/// bash-completion finds it on demand (or, without bash-completion, sourced from `file`).
fn bash_completes(word: &str, file: &Path, envs: &[(&str, &str)]) -> Vec<String> {
    let load = if Path::new(BASH_COMPLETION).is_file() {
        format!(
            "source {BASH_COMPLETION}; \
             if declare -F _comp_load >/dev/null; then _comp_load jobdbctl; else __load_completion jobdbctl; fi || exit 3"
        )
    } else {
        eprintln!("bash-completion is not installed: sourcing the file directly");
        format!("source {}", file.display())
    };
    let script = format!(
        "{load}; f=$(complete -p jobdbctl | sed -E 's/.*-F ([^ ]+).*/\\1/'); \
         COMP_WORDS=(jobdbctl {word}); COMP_CWORD=1; COMP_LINE=\"jobdbctl {word}\"; \
         COMP_POINT=${{#COMP_LINE}}; \"$f\" jobdbctl {word} jobdbctl; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let r = sh(&script, envs);
    r.expect(0);
    r.stdout.lines().map(str::to_string).collect()
}

#[test]
fn install_puts_man_pages_and_completions_where_man_and_bash_complete_look() {
    let dir = common::temp_dir("ji");
    let prefix = dir.path().join("usr-local");
    let exe = installed_binary(&prefix);
    // Without --prefix: the prefix the binary is installed in.
    let mut cmd = Command::new(&exe);
    cmd.args(["man", "--install"]);
    let man = run(cmd);
    man.expect(0).stdout_has("share/man/man1");
    let mut cmd = Command::new(&exe);
    cmd.args(["completions", "--install"]);
    run(cmd).expect(0);

    let man_dir = prefix.join("share/man");
    let man_path = man_dir.to_str().expect("utf-8 path");
    for page in ["jobdbctl", "jobdbctl-destroy", "jobdbctl-restart"] {
        let found = sh(&format!("man -w {page}"), &[("MANPATH", man_path)]);
        found.expect(0);
        assert_eq!(
            found.stdout.trim(),
            man_dir.join(format!("man1/{page}.1")).display().to_string()
        );
    }
    // man also derives the path from PATH (PREFIX/bin → PREFIX/share/man), so no MANPATH is
    // needed once the binary is on PATH.
    let path = format!("{}:/usr/bin:/bin", prefix.join("bin").display());
    let found = sh("man -w jobdbctl", &[("PATH", &path)]);
    found.expect(0);
    assert_eq!(
        found.stdout.trim(),
        man_dir.join("man1/jobdbctl.1").display().to_string()
    );
    let shown = sh(
        "man jobdbctl-destroy",
        &[
            ("MANPATH", man_path),
            ("MANPAGER", "cat"),
            ("MANWIDTH", "80"),
        ],
    );
    shown
        .expect(0)
        .stdout_has("jobdbctl [GLOBAL OPTIONS] destroy");
    let mode = std::fs::metadata(man_dir.join("man1/jobdbctl.1"))
        .expect("page")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "pages readable by every user");

    let share = prefix.join("share");
    let bash_file = share.join("bash-completion/completions/jobdbctl");
    assert!(share.join("zsh/site-functions/_jobdbctl").is_file());
    assert!(share
        .join("fish/vendor_completions.d/jobdbctl.fish")
        .is_file());
    let words = bash_completes(
        "res",
        &bash_file,
        &[("XDG_DATA_DIRS", share.to_str().expect("utf-8 path"))],
    );
    assert_eq!(words, ["restart", "restore"]);

    // A personal install: PREFIX ~/.local, where bash-completion looks for a user's own.
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("create home");
    let local = home.join(".local");
    let mut cmd = Command::new(&exe);
    cmd.args(["completions", "bash", "--install", "--prefix"])
        .arg(&local);
    run(cmd).expect(0);
    let words = bash_completes(
        "show",
        &local.join("share/bash-completion/completions/jobdbctl"),
        &[
            ("HOME", home.to_str().expect("utf-8 path")),
            ("XDG_DATA_DIRS", "/nonexistent"),
        ],
    );
    assert_eq!(words, ["show-params"]);
    // A shell without a standard place is a usage error that says what to do instead.
    let mut cmd = Command::new(&exe);
    cmd.args(["completions", "elvish", "--install", "--prefix"])
        .arg(&local);
    let r = run(cmd);
    r.expect(2);
    assert!(r.one_line_error().contains("completions elvish >"));
}

/// Every checked-in page rendered by man at 80 columns, with groff's warnings on stderr.
fn rendered(page: &str) -> common::Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(page);
    sh(
        &format!("man --warnings -l {}", path.display()),
        &[("MANPAGER", "cat"), ("MANWIDTH", "80")],
    )
}

fn subcommands() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut names: Vec<String> = std::fs::read_dir(root)
        .expect("read man/")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some(
                name.strip_prefix("jobdbctl-")?
                    .strip_suffix(".1")?
                    .to_string(),
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_command_page_has_synopsis_description_examples_and_exit_status() {
    let names = subcommands();
    assert!(names.len() >= 17, "{names:?}");
    for name in &names {
        let r = rendered(&format!("jobdbctl-{name}.1"));
        r.expect(0);
        assert!(r.stderr.trim().is_empty(), "{name}: groff: {}", r.stderr);
        let text = &r.stdout;
        for heading in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "GLOBAL OPTIONS",
            "EXAMPLES",
            "EXIT STATUS",
            "SEE ALSO",
        ] {
            assert!(
                text.lines().any(|l| l == heading),
                "{name}: no {heading} section:\n{text}"
            );
        }
        // The synopsis shows the command as it is typed.
        assert!(
            text.contains(&format!("jobdbctl [GLOBAL OPTIONS] {name}")),
            "{name}: {text}"
        );
        let exits = section(text, "EXIT STATUS");
        assert!(exits.contains("       0      Success."), "{name}: {exits}");
        // Each example runs this command.
        let examples = section(text, "EXAMPLES");
        assert!(
            examples.contains(&format!("jobdbctl {name}")) || examples.contains("jobdbctl --"),
            "{name}: {examples}"
        );
    }
    let destroy = rendered("jobdbctl-destroy.1").stdout;
    let synopsis = section(&destroy, "SYNOPSIS");
    assert!(
        synopsis.contains("[--backup-first PATH]") && synopsis.contains("[-y|--yes]"),
        "{synopsis}"
    );
    assert!(section(&destroy, "EXIT STATUS").contains("live workers"));
    let verify = section(&rendered("jobdbctl-verify.1").stdout, "SYNOPSIS");
    assert_has(&verify, "verify [--identity FILE...]");
    assert_has(&verify, "ARCHIVE");
}

/// The lines of a rendered page's section, up to the next heading.
fn section(text: &str, heading: &str) -> String {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_main_page_lists_exit_codes_once_and_wraps_them() {
    let r = rendered("jobdbctl.1");
    r.expect(0);
    assert!(r.stderr.trim().is_empty(), "groff: {}", r.stderr);
    let text = &r.stdout;
    assert_eq!(
        text.matches("holds the lock for this operation").count(),
        1,
        "{text}"
    );
    let exits = section(text, "EXIT STATUS");
    for code in 0..=7 {
        assert!(
            exits
                .lines()
                .any(|l| l.starts_with(&format!("       {code}      "))),
            "exit {code}: {exits}"
        );
    }
    // Continuation lines hang under the meaning, not under the code.
    for line in exits.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.chars().count() <= 80, "{line}");
        assert!(
            line.starts_with("       ") && !line.starts_with("        ")
                || line.starts_with("              "),
            "{line:?}"
        );
    }
    // Every command is listed with a pointer to its page.
    for name in subcommands() {
        assert!(
            text.contains(&format!("jobdbctl-{name}(1)")),
            "{name} not listed"
        );
    }
}

#[test]
fn help_shows_examples_and_global_options_apart() {
    for name in subcommands() {
        let mut cmd = Command::new(common::BIN);
        cmd.args([name.as_str(), "--help"]);
        let r = run(cmd);
        r.expect(0);
        let text = &r.stdout;
        let own = text.find("\nOptions:").unwrap_or(0);
        let global = text
            .find("\nGlobal options:")
            .unwrap_or_else(|| panic!("{name}: no global options heading:\n{text}"));
        let examples = text
            .find("\nExamples:")
            .unwrap_or_else(|| panic!("{name}: no examples:\n{text}"));
        assert!(own < global && global < examples, "{name}: order:\n{text}");
        // Global flags only under their heading, the command's own only above it.
        assert!(!text[..global].contains("--database-url"), "{name}: {text}");
        assert!(text[global..].contains("--data-dir"), "{name}: {text}");
        assert!(
            text.contains("Exit status:"),
            "{name}: long help lists exit codes"
        );
        let short = {
            let mut cmd = Command::new(common::BIN);
            cmd.args([name.as_str(), "-h"]);
            run(cmd)
        };
        short.expect(0);
        assert!(
            short.stdout.contains("Examples:"),
            "{name}: -h shows examples"
        );
    }
    let mut cmd = Command::new(common::BIN);
    cmd.args(["destroy", "--help"]);
    let r = run(cmd);
    r.stdout_has("jobdbctl destroy --dry-run");
}

/// docs/schema.md's enqueue example runs as written on a fresh schema, and does what it says.
#[test]
fn the_documented_enqueue_statements_run_on_a_fresh_schema() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md"))
        .expect("docs/schema.md");
    let sql = doc
        .split("```sql\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an sql block in docs/schema.md");
    let db = TestDb::initialized();
    let mut client = db.client();
    client.exec(sql);
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        2
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE state = 'succeeded' AND queue_name = 'renders'"
        ),
        1
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE state = 'queued' AND job_queue_id IS NULL"
        ),
        1
    );
    // A writer of the old contract (queue_name only) is refused, as the page says.
    let old = client.batch_execute(
        "INSERT INTO jobdb.jobs (queue_name, task_identifier) VALUES ('renders', 'old_engine')",
    );
    assert!(old.is_err(), "a queue_name-only insert was accepted");
}

#[test]
fn man_and_completions_install_refuse_links_planted_in_the_prefix() {
    let dir = common::temp_dir("tr");
    let victim = Victim::new(dir.path());
    let etc = dir.path().join("etc");
    fs::create_dir(&etc).expect("configdir");
    let install = |what: &str, prefix: &Path| {
        let mut cmd = common::jobdbctl(&etc);
        match what {
            "man" => cmd.args(["man", "--install", "--prefix", path_str(prefix)]),
            _ => cmd.args([
                "completions",
                "bash",
                "--install",
                "--prefix",
                path_str(prefix),
            ]),
        };
        common::run(cmd)
    };
    let cases: [(&str, &str, &str); 2] = [
        ("man", "share/man/man1", "jobdbctl.1"),
        (
            "completions",
            "share/bash-completion/completions",
            "jobdbctl",
        ),
    ];
    for (what, sub, name) in cases {
        // A link at the fixed temporary name that earlier versions wrote through.
        let prefix = dir.path().join(format!("{what}-partial"));
        fs::create_dir_all(prefix.join(sub)).expect("mkdir");
        symlink(
            &victim.path,
            prefix.join(sub).join(format!(".{name}.partial")),
        )
        .expect("plant");
        install(what, &prefix).expect(0);
        victim.untouched(&format!("{what}: link at the temporary name"));
        let meta = fs::symlink_metadata(prefix.join(sub).join(name)).expect("installed");
        assert!(
            meta.is_file() && meta.mode() & 0o777 == 0o644,
            "{what}: {meta:?}"
        );

        // A link at the final name: refused, exit 3, naming it.
        let prefix = dir.path().join(format!("{what}-final"));
        fs::create_dir_all(prefix.join(sub)).expect("mkdir");
        symlink(&victim.path, prefix.join(sub).join(name)).expect("plant");
        let run = install(what, &prefix);
        run.expect(3);
        assert!(run.one_line_error().contains(name), "{}", run.stderr);
        victim.untouched(&format!("{what}: link at the final name"));
        assert!(fs::symlink_metadata(prefix.join(sub).join(name))
            .expect("link")
            .file_type()
            .is_symlink());

        // A linked directory inside the prefix: refused, nothing written where it points.
        let prefix = dir.path().join(format!("{what}-dir"));
        let elsewhere = dir.path().join(format!("{what}-elsewhere"));
        fs::create_dir_all(&elsewhere).expect("mkdir");
        fs::create_dir_all(&prefix).expect("mkdir");
        symlink(&elsewhere, prefix.join("share")).expect("plant dir");
        install(what, &prefix).expect(3);
        assert_eq!(
            fs::read_dir(&elsewhere).expect("list").count(),
            0,
            "{what}: wrote through a linked directory"
        );

        if is_root() {
            // Another user's file at the final name.
            let prefix = dir.path().join(format!("{what}-foreign"));
            fs::create_dir_all(prefix.join(sub)).expect("mkdir");
            let foreign = prefix.join(sub).join(name);
            fs::write(&foreign, "theirs").expect("write");
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).expect("chown");
            install(what, &prefix).expect(3);
            assert_eq!(fs::read_to_string(&foreign).expect("read"), "theirs");
            assert_eq!(fs::metadata(&foreign).expect("stat").uid(), 65534);
        }
    }
}

//! An operator's first hour: installing, reading the manual, running as the wrong user,
//! typing the render-farm tool's flags, starting/stopping/restarting with bounded waits, and
//! reading `status` — each against real servers where one is involved.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{insert_job, run, scalar_i64, schema_exists, TestCluster, TestDb};

#[test]
fn tractor_dbctl_flags_name_the_subcommand_and_change_nothing() {
    let db = TestDb::initialized();
    let mut client = db.client();
    client
        .batch_execute("SELECT setval('jobdb.jobs_id_seq', 41)")
        .expect("set counter");
    let cases: [(&[&str], &str); 13] = [
        (&["--status"], "jobdbctl status"),
        (&["--start"], "jobdbctl start"),
        (&["--start-for-engine"], "jobdbctl start"),
        (&["--stop"], "jobdbctl stop"),
        (
            &["--backup", "/srv/jobs.tar.gz"],
            "jobdbctl backup --output /srv/jobs.tar.gz",
        ),
        (&["--backup"], "jobdbctl backup --output FILE"),
        (
            &["--restore", "my jobs.tar.gz"],
            "jobdbctl restore 'my jobs.tar.gz'",
        ),
        (&["--destroy"], "jobdbctl destroy"),
        (&["--set-job-counter", "7"], "jobdbctl set-job-counter 7"),
        (&["--set-job-counter=9"], "jobdbctl set-job-counter 9"),
        (&["--show-params"], "jobdbctl show-params"),
        (&["--purge-jobs"], "purge-jobs"),
        (&["--vacuum"], "vacuum"),
    ];
    for (args, want) in cases {
        let run = db.run(args);
        run.expect(2);
        let line = run.one_line_error();
        assert!(line.contains(want), "{args:?}: {line}");
        assert!(
            line.contains(args[0].split('=').next().expect("flag")),
            "{args:?}: names the flag: {line}"
        );
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    assert!(schema_exists(&mut client, "jobdb"), "--destroy destroyed");
    assert_eq!(
        scalar_i64(&mut client, "SELECT last_value FROM jobdb.jobs_id_seq"),
        41,
        "--set-job-counter changed the counter"
    );
    // Another unknown flag keeps clap's own message and its suggestion.
    let typo = db.run(&["--stale-afte", "4m", "status"]);
    typo.expect(2);
    assert!(typo.stderr.contains("--stale-after"), "{}", typo.stderr);
}

fn pid_of(c: &TestCluster) -> i32 {
    std::fs::read_to_string(c.pgdata().join("postmaster.pid"))
        .expect("postmaster.pid")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid in postmaster.pid")
}

/// Whether `pid` runs (a zombie that nobody reaped yet has exited).
fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// A file in the cluster the server must be able to read (it runs as `postgres` under root).
fn write_server_file(c: &TestCluster, name: &str, text: &str) {
    let path = c.pgdata().join(name);
    std::fs::write(&path, text).expect("write server file");
    common::chown_to_server_user(&path);
}

#[test]
fn start_refuses_an_explicit_data_dir_without_a_cluster() {
    let c = TestCluster::new();
    let typo = c.dir.path().join("dtaa");
    // From the flag, the environment and the config file alike.
    let flag = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("--data-dir").arg(&typo).arg("start");
        cmd
    });
    let env = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.env("JOBDBCTL_DATA_DIR", &typo).arg("start");
        cmd
    });
    c.write_config(&format!("data_dir = '{}'\n", typo.display()));
    let file = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("start");
        cmd
    });
    for (origin, r) in [
        ("--data-dir", &flag),
        ("JOBDBCTL_DATA_DIR", &env),
        ("data_dir in", &file),
    ] {
        r.expect(3);
        let line = r.one_line_error();
        assert!(
            line.contains(origin) && line.contains("jobdbctl init") && line.contains("--create"),
            "{origin}: {line}"
        );
        assert!(
            !r.stderr.contains("creating embedded cluster"),
            "{}",
            r.stderr
        );
        assert!(!typo.exists(), "{origin}: created {}", typo.display());
    }
    // restart never creates either.
    let restart = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("restart");
        cmd
    });
    restart.expect(3);
    assert!(restart.one_line_error().contains("jobdbctl init"));
    assert!(!typo.exists());

    // Asked to create: a fresh cluster with the job schema, job IDs from 1.
    std::fs::remove_file(c.configdir.join("jobdbctl.toml")).expect("remove config");
    c.run(&["start", "--create"]).expect(0);
    assert_eq!(insert_job(&mut c.client()), 1);
    // From then on a plain start is fine.
    c.run(&["stop"]).expect(0);
    c.run(&["start"]).expect(0);
    assert_eq!(insert_job(&mut c.client()), 2);
}

#[test]
fn restart_gives_a_new_server_process_and_keeps_the_data() {
    let c = TestCluster::started();
    let id = insert_job(&mut c.client());
    let before = pid_of(&c);
    let r = c.run(&["restart"]);
    r.expect(0);
    assert!(r.stdout.contains("restarted"), "{}", r.stdout);
    let after = pid_of(&c);
    assert_ne!(before, after);
    assert!(
        !process_alive(before),
        "old postmaster {before} still alive"
    );
    assert_eq!(
        scalar_i64(&mut c.client(), "SELECT max(id) FROM jobdb.jobs"),
        id
    );

    c.run(&["stop"]).expect(0);
    let r = c.run(&["--json", "restart"]);
    r.expect(0);
    let report = r.json();
    assert_eq!(report["was_running"], false);
    assert_eq!(report["server"], "running");
    assert_eq!(report["pid"], pid_of(&c));
    assert_eq!(
        scalar_i64(&mut c.client(), "SELECT max(id) FROM jobdb.jobs"),
        id
    );
}

#[test]
fn stop_timeout_gives_up_with_a_clear_exit_and_the_server_keeps_running() {
    let c = TestCluster::started();
    let pid = pid_of(&c);
    // A smart shutdown waits for this session to end, which it never does by itself.
    let mut held = c.client();
    let r = c.run(&["stop", "--mode", "smart", "--timeout", "1s"]);
    r.expect(1);
    let line = r.one_line_error();
    assert!(
        line.contains("still running after 1s") && line.contains("--mode fast"),
        "{line}"
    );
    assert!(process_alive(pid), "server exited");
    assert_eq!(
        scalar_i64(&mut held, "SELECT 1::int8"),
        1,
        "session was cut"
    );
    // The fast stop ends it: the waiting session is rolled back and the server exits.
    c.run(&["stop", "--timeout", "30s"]).expect(0);
    assert!(
        !process_alive(pid),
        "stop returned before the server exited"
    );
    assert!(held.simple_query("SELECT 1").is_err(), "session survived");

    let bad = c.run(&["stop", "--timeout", "0s"]);
    bad.expect(2);
    assert!(bad.stderr.contains("at least 1s"), "{}", bad.stderr);
}

#[test]
fn start_timeout_gives_up_with_a_clear_exit_while_the_server_recovers() {
    let c = TestCluster::started();
    c.run(&["stop"]).expect(0);
    // Archive recovery whose restore_command takes longer than the wait: the server cannot
    // accept connections before its first call returns.
    write_server_file(&c, "recovery.signal", "");
    let conf = c.pgdata().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("read conf");
    text.push_str("\nrestore_command = 'sleep 60; false'\n");
    std::fs::write(&conf, text).expect("write conf");

    let r = c.run(&["start", "--timeout", "1s"]);
    r.expect(6);
    let line = r.one_line_error();
    assert!(
        line.contains("within 1s") && line.contains("still starting"),
        "{line}"
    );
    let pid = pid_of(&c);
    assert!(process_alive(pid), "the server should go on starting");
    c.run(&["stop", "--mode", "immediate"]).expect(0);
    assert!(!process_alive(pid));
}

/// `jobdbctl ARGS` as the unprivileged `nobody`, with a home of its own and nothing from our
/// environment.
fn as_nobody(home: &Path, args: &[&str]) -> common::Run {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--", "env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME={}", home.display()))
        .arg(common::bin_for_other_users())
        .args(args)
        .stdin(std::process::Stdio::null());
    run(cmd)
}

/// A home directory `nobody` owns, inside a temp dir that is removed after the test.
fn nobody_home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir(&home).expect("create home");
    let ok = Command::new("chown")
        .args(["nobody:nogroup"])
        .arg(&home)
        .status()
        .expect("chown")
        .success();
    assert!(ok, "chown home");
    home
}

#[test]
fn a_normal_user_pointed_at_roots_cluster_is_told_whose_it_is() {
    if !common::is_root() {
        eprintln!("skipped: needs root to run as another user");
        return;
    }
    let c = TestCluster::started();
    let id = insert_job(&mut c.client());
    let pid = pid_of(&c);
    let home = nobody_home(c.dir.path());
    let data_dir = c.data_dir();
    let data_dir = data_dir.to_str().expect("utf-8 path");
    for args in [
        &["status"][..],
        &["status", "--check"],
        &["start"],
        &["start", "--create"],
        &["stop"],
        &["restart"],
        &["init"],
        &["show-params"],
    ] {
        let mut full = vec!["--data-dir", data_dir];
        full.extend_from_slice(args);
        let r = as_nobody(&home, &full);
        r.expect(2);
        let line = r.one_line_error();
        assert!(
            line.contains("belongs to postgres")
                && line.contains("run jobdbctl as root (or as postgres)"),
            "{args:?}: {line}"
        );
        assert!(!r.stdout.contains("down"), "{args:?}: {}", r.stdout);
        assert!(
            !r.stderr.contains("creating embedded cluster"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Nothing was touched: same server, same data.
    assert_eq!(pid_of(&c), pid);
    assert!(process_alive(pid));
    assert_eq!(
        scalar_i64(&mut c.client(), "SELECT max(id) FROM jobdb.jobs"),
        id
    );

    // A data dir closed to others names its owner instead.
    let mode = |m: u32| {
        std::fs::set_permissions(c.data_dir(), std::fs::Permissions::from_mode(m))
            .expect("chmod data dir")
    };
    mode(0o700);
    let r = as_nobody(&home, &["--data-dir", data_dir, "status"]);
    mode(0o711);
    r.expect(2);
    let line = r.one_line_error();
    assert!(
        line.contains("belongs to root") && line.contains("run jobdbctl as root"),
        "{line}"
    );
    assert!(!r.stdout.contains("down"), "{}", r.stdout);
}

#[test]
fn a_normal_user_gets_a_cluster_of_its_own_in_the_default_data_dir() {
    if !common::is_root() {
        eprintln!("skipped: needs root to run as another user");
        return;
    }
    let dir = common::temp_dir("jn");
    let home = nobody_home(dir.path());
    let pgdata = home.join(".local/share/jobdbctl/psql");
    nobody_watchdog(&pgdata);
    // The README's first command, on a machine with no configuration at all.
    let r = as_nobody(&home, &["start"]);
    r.expect(0);
    assert!(
        r.stderr.contains("creating embedded cluster"),
        "{}",
        r.stderr
    );
    assert!(pgdata.join("PG_VERSION").is_file());
    let status = as_nobody(&home, &["--json", "status"]);
    status.expect(0);
    assert_eq!(status.json()["schema_version"], 3);
    assert_eq!(status.json()["jobs"]["total"], 0);
    as_nobody(&home, &["stop"]).expect(0);
    assert!(!pgdata.join("postmaster.pid").exists());
}

/// Stops `nobody`'s server in `pgdata` once this test process is gone, whatever happened.
fn nobody_watchdog(pgdata: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         runuser -u nobody -- {pg_ctl} -D {pgdata} -m immediate stop >/dev/null 2>&1",
        pid = std::process::id(),
        pg_ctl = common::pg_bindir().join("pg_ctl").display(),
        pgdata = pgdata.display()
    );
    Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("start watchdog");
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
    man.expect(0);
    assert!(man.stdout.contains("share/man/man1"), "{}", man.stdout);
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
    shown.expect(0);
    assert!(
        shown.stdout.contains("jobdbctl [GLOBAL OPTIONS] destroy"),
        "{}",
        shown.stdout
    );
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
    assert!(verify.contains("verify ARCHIVE"), "{verify}");
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
    assert!(
        r.stdout.contains("jobdbctl destroy --dry-run"),
        "{}",
        r.stdout
    );
}

/// `YYYY-MM-DD HH:MM:SS UTC` somewhere in `text`.
fn has_human_time(text: &str) -> bool {
    text.as_bytes().windows(23).any(|w| {
        let s = String::from_utf8_lossy(w);
        let b = s.as_bytes();
        s.len() == 23
            && s.ends_with(" UTC")
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b' '
            && b[13] == b':'
            && b[16] == b':'
            && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
                .iter()
                .all(|&i| b[i].is_ascii_digit())
    })
}

#[test]
fn status_shows_locks_by_holder_grouped_by_process_in_the_human_output() {
    let db = TestDb::initialized();
    let mut client = db.client();
    client
        .batch_execute(
            "INSERT INTO jobdb.workers (worker_id, hostname, pid, version, schema_version, last_heartbeat_at) VALUES
                ('w-a', 'render1', 4711, '3.0', 3, now()),
                ('w-b', 'render1', 4711, '3.0', 3, now()),
                ('w-c', 'render2', 99, '3.0', 3, now() - interval '1 hour');
             INSERT INTO jobdb.jobs (task_identifier, state, locked_by, locked_at)
               SELECT 't', 'running', holder, now() - interval '10 minutes'
                 FROM unnest(ARRAY['w-a', 'w-a', 'w-b', 'w-c', 'w-c', 'w-c', 'ghost']) AS holder;
             INSERT INTO jobdb.jobs (task_identifier) SELECT 't' FROM generate_series(1, 5);
             INSERT INTO jobdb.job_queues (queue_name, locked_by, locked_at) VALUES ('q1', 'ghost', now());",
        )
        .expect("fill");
    let json = db.run(&["--json", "status"]);
    json.expect(0);
    let report = json.json();
    let process: BTreeMap<String, serde_json::Value> = report["lock_holders"]
        .as_array()
        .expect("lock_holders")
        .iter()
        .map(|h| {
            (
                h["locked_by"].as_str().expect("id").to_string(),
                h["process"].clone(),
            )
        })
        .collect();
    assert_eq!(process["w-a"], "render1:4711");
    assert_eq!(process["w-b"], "render1:4711");
    assert_eq!(process["w-c"], "render2:99");
    assert_eq!(process["ghost"], serde_json::Value::Null);
    assert_eq!(report["locked_jobs"], 7);
    assert_eq!(report["jobs"]["by_state"]["queued"], 5);
    assert_eq!(report["jobs"]["by_state"]["running"], 7);
    assert_eq!(report["jobs"]["total"], 12);

    let human = db.run(&["status"]);
    human.expect(0);
    let text = &human.stdout;
    let row = |needle: &str| -> String {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}:\n{text}"))
            .to_string()
    };
    let cells = |line: String| -> Vec<String> {
        line.split(['│', '┆'])
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let render1 = cells(row("render1:4711 (2 workers: w-a, w-b)"));
    assert_eq!(render1[1..3], ["3", "0"], "{render1:?}");
    assert_eq!(render1.last().map(String::as_str), Some("live"));
    let render2 = cells(row("render2:99 (1 worker: w-c)"));
    assert_eq!(render2[1..3], ["3", "0"], "{render2:?}");
    assert_eq!(render2.last().map(String::as_str), Some("stale"));
    let ghost = cells(row("│ ghost"));
    assert_eq!(ghost[1..3], ["1", "1"], "{ghost:?}");
    assert_eq!(
        ghost.last().map(String::as_str),
        Some("stale (not registered)")
    );
    assert!(
        text.contains("7 jobs and 1 queue locked; stale: 4 jobs, 1 queue"),
        "{text}"
    );
    assert!(has_human_time(&row("render1:4711")), "oldest lock: {text}");
    assert!(!text.contains("+00:00"), "RFC 3339 for people: {text}");
    // Stale holders come first.
    assert!(
        text.find("render2:99").expect("render2") < text.find("render1:4711").expect("render1")
    );
    let not_ready = db.run(&["status", "--check"]);
    not_ready.expect(4);
    assert!(
        not_ready
            .stdout
            .contains("not ready: 4 jobs and 1 queue are locked by workers that are not live"),
        "{}",
        not_ready.stdout
    );
}

#[test]
fn status_counts_graphile_worker_jobs_by_what_happens_next() {
    for version in ["0.16.6", "0.18.0"] {
        let engine = common::graphile_npm::engine(version);
        let db = TestDb::empty();
        engine.populate(&db);
        let mut client = db.client();
        // One due now, one out of attempts, on top of what the engine left.
        client
            .batch_execute(
                "SELECT graphile_worker.add_job('due');
                 UPDATE graphile_worker._private_jobs SET attempts = max_attempts
                  WHERE id = (SELECT min(id) FROM graphile_worker._private_jobs
                               WHERE attempts > 0 AND locked_by IS NULL);",
            )
            .expect("adjust");
        // Classified here, independently, row by row.
        let mut want: BTreeMap<&str, i64> = BTreeMap::new();
        for row in client
            .query(
                "SELECT locked_by IS NOT NULL, attempts, max_attempts, run_at <= now()
                   FROM graphile_worker._private_jobs",
                &[],
            )
            .expect("jobs")
        {
            let (locked, attempts, max, due): (bool, i16, i16, bool) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let bucket = if locked {
                "locked"
            } else if attempts >= max {
                "failed"
            } else if attempts > 0 {
                "retrying"
            } else if due {
                "due_now"
            } else {
                "scheduled"
            };
            *want.entry(bucket).or_default() += 1;
        }
        for bucket in ["locked", "failed", "retrying", "due_now", "scheduled"] {
            assert!(
                want.get(bucket).copied().unwrap_or(0) > 0,
                "{version}: no {bucket} job: {want:?}"
            );
        }
        let r = db.run(&["--json", "status"]);
        r.expect(0);
        let report = r.json();
        for (bucket, n) in &want {
            assert_eq!(
                report["jobs"]["by_state"][bucket], *n,
                "{version}: {bucket}"
            );
        }
        assert_eq!(report["jobs"]["total"], want.values().sum::<i64>());
        assert_eq!(report["jobs"]["estimated"], serde_json::json!([]));
        let holder = report["lock_holders"][0].clone();
        let id = holder["locked_by"].as_str().expect("holder").to_string();
        assert_eq!(holder["jobs"], 1, "{version}");
        assert_eq!(holder["queues"], 1, "{version}");
        if version == "0.18.0" {
            // v0.17+ locks in the pool's name: the holder is the process.
            assert!(id.starts_with("pool-"), "{id}");
            assert_eq!(holder["process"], id.as_str());
        } else {
            assert!(id.starts_with("worker-"), "{id}");
            assert_eq!(holder["process"], serde_json::Value::Null);
        }

        let human = db.run(&["status"]);
        human.expect(0);
        let text = &human.stdout;
        let line = format!(
            "{} in all: {} locked, {} failed (out of attempts), {} retrying (attempts > 0), {} due now, {} scheduled later",
            want.values().sum::<i64>(),
            want["locked"],
            want["failed"],
            want["retrying"],
            want["due_now"],
            want["scheduled"]
        );
        // The table may wrap long cells; compare the words in order.
        let words = |s: &str| -> String {
            s.split(|c: char| c.is_whitespace() || c == '│' || c == '┆')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(
            words(text).contains(&words(&line)),
            "{version}: {line}\n{text}"
        );
        assert!(words(text).contains("1 job and 1 queue locked"), "{text}");
        assert!(text.contains(&id), "{version}: holder listed: {text}");
        assert!(
            words(text).contains("locked less than 4h ago"),
            "{version}: no Pro, so age is what counts: {text}"
        );
    }
}

#[test]
fn messages_read_as_english_with_plain_ranges_and_plurals() {
    let db = TestDb::initialized();
    let mut client = db.client();
    for _ in 0..10 {
        insert_job(&mut client);
    }
    let many = db.run(&["set-job-counter", "5"]);
    many.expect(3);
    let line = many.one_line_error();
    assert!(line.contains("IDs 6 to 10 would be reused"), "{line}");
    let one = db.run(&["set-job-counter", "9"]);
    one.expect(3);
    assert!(
        one.one_line_error().contains("ID 10 would be reused"),
        "{}",
        one.stderr
    );
    db.run(&["set-job-counter", "500"]).expect(0);
    let lower = db.run(&["set-job-counter", "400"]);
    lower.expect(3);
    assert!(
        lower
            .one_line_error()
            .contains("IDs 401 to 500 would be reused"),
        "{}",
        lower.stderr
    );
    for r in [&many, &one, &lower] {
        assert!(!r.stderr.contains("..="), "{}", r.stderr);
    }
    assert_eq!(
        scalar_i64(&mut client, "SELECT last_value FROM jobdb.jobs_id_seq"),
        500
    );

    // One stale lock: singular nouns, and a time people read.
    client
        .batch_execute(
            "INSERT INTO jobdb.workers (worker_id, hostname, pid, last_heartbeat_at)
                  VALUES ('gone', 'render9', 1, now() - interval '2 hours');
             UPDATE jobdb.jobs SET state = 'running', locked_by = 'gone', locked_at = now() WHERE id = 1;",
        )
        .expect("lock");
    let dry = db.run(&["unlock-stale-jobs", "--dry-run"]);
    dry.expect(0);
    assert!(
        dry.stdout.contains("1 job lock and 0 queue locks"),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains("(s)"), "{}", dry.stdout);
    assert!(has_human_time(&dry.stdout), "{}", dry.stdout);
    let check = db.run(&["status", "--check"]);
    check.expect(4);
    assert!(
        check.stdout.contains("1 job and 0 queues are locked"),
        "{}",
        check.stdout
    );
}

/// The connection strings `conninfo` prints work as printed: the socket's with a client
/// library and its psql command in a shell, and, with listen_addresses set, the TCP URL once
/// a password is set as it says.
#[test]
fn conninfo_prints_connection_strings_that_connect() {
    let c = TestCluster::new();
    let port = common::free_port();
    c.write_config(&format!("listen_addresses = '127.0.0.1'\nport = {port}\n"));
    c.run(&["start", "--create"]).expect(0);
    let info = c.run(&["conninfo", "--json"]);
    info.expect(0);
    let info = info.json();
    let mut client = postgres::Client::connect(
        info["socket_conninfo"].as_str().expect("conninfo"),
        postgres::NoTls,
    )
    .expect("connect with socket_conninfo");
    let one: i32 = client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
    assert_eq!(
        common::scalar_i64(&mut client, "SELECT count(*) FROM jobdb.schema_migrations"),
        3
    );
    let url_client =
        postgres::Client::connect(info["socket_url"].as_str().expect("url"), postgres::NoTls);
    assert!(url_client.is_ok(), "socket_url: {:?}", url_client.err());

    let psql = info["psql"].as_str().expect("psql");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{psql} -Atc 'SELECT 40 + 2'"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                common::pg_bindir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .current_dir("/")
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{psql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");

    let tcp = info["tcp_url"].as_str().expect("tcp_url");
    assert_eq!(tcp, format!("postgresql://postgres@127.0.0.1:{port}/jobdb"));
    assert!(
        postgres::Client::connect(tcp, postgres::NoTls).is_err(),
        "TCP without a password"
    );
    client
        .batch_execute("ALTER ROLE postgres PASSWORD 'conninfo-test-pw'")
        .expect("set password");
    let mut config: postgres::Config = tcp.parse().expect("url");
    config.password("conninfo-test-pw");
    let mut tcp_client = config.connect(postgres::NoTls).expect("connect over TCP");
    let one: i32 = tcp_client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
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
    client
        .batch_execute(sql)
        .expect("the documented statements");
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

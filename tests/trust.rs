//! Trust boundaries of the file system: root never writes, chmods, chowns or reads through a
//! link (or a hard link) that another user planted — in an install prefix, in the embedded
//! cluster's data directory owned by the server user — and removing a job-log tree does not
//! need a descriptor per level.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{is_root, TestCluster};

/// A file only its owner may read, with content and metadata to compare afterwards.
struct Victim {
    path: PathBuf,
    body: &'static str,
}

impl Victim {
    fn new(dir: &Path) -> Victim {
        let path = dir.join("root-only-secret");
        let body = "secret: do not overwrite, chmod, chown or print me\n";
        fs::write(&path, body).expect("write victim");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod victim");
        Victim { path, body }
    }

    #[track_caller]
    fn untouched(&self, what: &str) {
        let meta = fs::symlink_metadata(&self.path).expect("victim still there");
        assert_eq!(
            fs::read_to_string(&self.path).expect("read victim"),
            self.body,
            "{what}: the file behind the link was overwritten"
        );
        assert_eq!(
            meta.mode() & 0o7777,
            0o600,
            "{what}: the file behind the link was chmod'ed"
        );
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(
            meta.uid(),
            me,
            "{what}: the file behind the link was chown'ed"
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
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

/// The data directory's files that root reads or writes on `start`, each replaced by a
/// link (and a hard link) to a root-only file as the server user could: `start` refuses
/// or fails, and the file behind it keeps its content, mode and owner.
#[test]
fn root_start_never_writes_reads_or_chowns_through_the_server_users_links() {
    if !is_root() {
        eprintln!("skipped: the server user is another user only when root runs jobdbctl");
        return;
    }
    let cluster = TestCluster::started();
    cluster.run(&["stop"]).expect(0);
    let pgdata = cluster.pgdata();
    let victim = Victim::new(cluster.dir.path());
    for name in [
        "jobdbctl.conf",
        "postgresql.conf",
        "postmaster.pid",
        "jobdbctl-server.log",
    ] {
        let at = pgdata.join(name);
        let aside = pgdata.join(format!("{name}.aside"));
        let existed = at.exists();
        if existed {
            fs::rename(&at, &aside).expect("move aside");
        }
        for kind in ["symlink", "hard link"] {
            match kind {
                "symlink" => symlink(&victim.path, &at).expect("plant link"),
                _ => fs::hard_link(&victim.path, &at).expect("plant hard link"),
            }
            let run = cluster.run(&["start"]);
            assert_ne!(
                run.code, 0,
                "{name} ({kind}): start went ahead: {}",
                run.stderr
            );
            victim.untouched(&format!("{name} ({kind})"));
            fs::remove_file(&at).expect("remove planted link");
            // A server that started anyway would be stopped here; none may have.
            assert!(!pgdata.join("postmaster.pid").exists() || name == "postmaster.pid");
        }
        if existed {
            fs::rename(&aside, &at).expect("move back");
        }
    }
    // With every file back, the cluster starts as before.
    cluster.run(&["start"]).expect(0);

    // A link planted among the server's log files is not read (or printed) by `logs`.
    let log_link = pgdata.join("log/postgresql-2000-01-01_000000.log");
    symlink(&victim.path, &log_link).expect("plant log link");
    let run = cluster.run(&["logs", "--tail", "0"]);
    assert!(
        !run.stdout.contains("secret") && !run.stderr.contains("secret: do not"),
        "{run:?}"
    );
    run.expect(3);
    assert!(
        run.one_line_error()
            .contains("postgresql-2000-01-01_000000.log"),
        "{}",
        run.stderr
    );
    let purge = cluster.run(&["logs", "--purge", "--older-than", "1d"]);
    assert_ne!(purge.code, 0);
    victim.untouched("log link");
    fs::remove_file(&log_link).expect("remove");
    cluster.run(&["logs", "--tail", "5"]).expect(0);
}

#[test]
fn a_job_log_tree_thousands_deep_is_removed_with_few_descriptors() {
    let dir = common::temp_dir("tr");
    let logs = dir.path().join("logs");
    let job = logs.join("alice/J2000");
    // 3000 levels: more than the 64 descriptors the run may open. Made level by level
    // from an open descriptor (a path this long is too long for one call, and the working
    // directory is shared by the tests running alongside).
    fs::create_dir_all(&job).expect("mkdir job");
    let mut level = fs::File::open(&job).expect("open job");
    for i in 0..3000 {
        let name = if i % 2 == 0 { "d" } else { "e" };
        let here = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&level));
        fs::create_dir(format!("{here}/{name}")).expect("mkdir level");
        fs::write(format!("{here}/{name}.log"), "x").expect("write log");
        level = fs::File::open(format!("{here}/{name}")).expect("open level");
    }
    let here = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&level));
    fs::write(format!("{here}/T1.log"), "deepest").expect("write deepest");
    drop(level);
    fs::create_dir_all(logs.join("alice/J5")).expect("keep");
    let etc = dir.path().join("etc");
    fs::create_dir(&etc).expect("configdir");
    let run = common::run({
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"ulimit -n 64 && exec "$@""#)
            .arg("sh")
            .arg(common::BIN)
            .args([
                "--configdir",
                path_str(&etc),
                "--data-dir",
                "/nonexistent/jd",
            ])
            .args([
                "--json",
                "job-logs",
                "--dir",
                path_str(&logs),
                "--above",
                "1000",
                "--delete",
                "--yes",
            ]);
        cmd
    });
    run.expect(0);
    assert!(
        !job.exists(),
        "the deep job directory is still there: {}",
        run.stdout
    );
    assert!(
        logs.join("alice/J5").exists(),
        "a job at or below --above was removed"
    );
}

/// A cold archive whose server configuration sets commands, libraries, outside files and
/// includes: verify reports each, restore comments each out and reports it, and the
/// restored server starts without any of them.
#[test]
fn a_cold_archive_cannot_make_the_server_run_a_command_or_load_code() {
    let cluster = TestCluster::started();
    cluster.run(&["stop"]).expect(0);
    let pgdata = cluster.pgdata();
    let dir = common::temp_dir("tr");
    let marker = dir.path().join("ran");
    let evil_conf = dir.path().join("evil.conf");
    fs::write(
        &evil_conf,
        format!("archive_command = 'touch {}'\n", marker.display()),
    )
    .expect("evil include");
    let auto = pgdata.join("postgresql.auto.conf");
    let original = fs::read_to_string(&auto).expect("auto.conf");
    let touch = format!("'touch {}'", marker.display());
    let settings: Vec<(&str, String)> = vec![
        ("archive_mode", "on".into()),
        ("archive_command", touch.clone()),
        ("archive_cleanup_command", touch.clone()),
        ("recovery_end_command", touch.clone()),
        ("restore_command", touch.clone()),
        ("ssl_passphrase_command", touch.clone()),
        ("archive_library", "'evil_archiver'".into()),
        ("shared_preload_libraries", "'evil_preload'".into()),
        ("session_preload_libraries", "'evil_session'".into()),
        ("local_preload_libraries", "'evil_local'".into()),
        (
            "dynamic_library_path",
            format!("'{}'", dir.path().display()),
        ),
        ("jit_provider", "'evil_jit'".into()),
        ("data_directory", format!("'{}'", dir.path().display())),
        ("config_file", format!("'{}'", evil_conf.display())),
        ("hba_file", format!("'{}'", evil_conf.display())),
        ("ident_file", format!("'{}'", evil_conf.display())),
        (
            "external_pid_file",
            format!("'{}/pid'", dir.path().display()),
        ),
    ];
    let mut hostile = original.clone();
    for (name, value) in &settings {
        hostile.push_str(&format!("{name} = {value}\n"));
    }
    hostile.push_str(&format!("include '{}'\n", evil_conf.display()));
    fs::write(&auto, &hostile).expect("write hostile auto.conf");
    let conf = pgdata.join("postgresql.conf");
    let mut main_conf = fs::read_to_string(&conf).expect("postgresql.conf");
    main_conf.push_str(&format!(
        "include_dir '{}'\nSHARED_PRELOAD_LIBRARIES='evil_upper'\n",
        dir.path().display()
    ));
    fs::write(&conf, main_conf).expect("write postgresql.conf");

    let archive = dir.path().join("cold.tar.gz");
    cluster
        .run(&["backup", "--mode", "cold", "--output", path_str(&archive)])
        .expect(0);
    fs::write(&auto, &original).expect("put back auto.conf");

    let mut expected: Vec<String> = settings
        .iter()
        .map(|(name, _)| format!("postgresql.auto.conf: {name}"))
        .collect();
    expected.push("postgresql.auto.conf: include".into());
    expected.push("postgresql.conf: include_dir".into());
    expected.push("postgresql.conf: shared_preload_libraries".into());
    expected.sort();
    let listed = |json: &serde_json::Value| {
        let mut v: Vec<String> = json["config_left_out"]
            .as_array()
            .expect("config_left_out")
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect();
        v.sort();
        v
    };
    let verify = cluster.run(&["verify", path_str(&archive), "--json"]);
    verify.expect(0);
    assert_eq!(listed(&verify.json()), expected);
    let human = cluster.run(&["verify", path_str(&archive)]);
    assert!(
        human.expect(0).stdout.contains("restore leaves out"),
        "{}",
        human.stdout
    );

    // A dry run of the cold restore checks, says what it would replace, and changes nothing.
    let dry = cluster.run(&[
        "restore",
        path_str(&archive),
        "--dry-run",
        "--force",
        "--json",
    ]);
    dry.expect(0);
    assert!(
        dry.json()["would_replace"]
            .as_str()
            .is_some_and(|w| w.contains("the embedded cluster at")),
        "{}",
        dry.stdout
    );
    assert_eq!(fs::read_to_string(&auto).expect("auto.conf"), original);
    assert!(
        !pgdata.join("postmaster.pid").exists(),
        "the dry run started the server"
    );
    assert!(!cluster.data_dir().join("psql.restoring").exists());

    let restore = cluster.run(&["restore", path_str(&archive), "--yes", "--force", "--json"]);
    restore.expect(0);
    assert_eq!(listed(&restore.json()), expected);
    for file in ["postgresql.auto.conf", "postgresql.conf"] {
        let text = fs::read_to_string(pgdata.join(file)).expect("restored conf");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let lower = line.to_lowercase();
            assert!(
                !settings
                    .iter()
                    .any(|(name, _)| lower.trim_start().starts_with(name))
                    && !lower.starts_with("include ")
                    && !lower.starts_with("include_dir"),
                "{file} still sets: {line}"
            );
        }
    }
    // The restored server starts (it would not with the archive's libraries) and runs with
    // this host's settings.
    cluster.run(&["start"]).expect(0);
    let mut client = cluster.client();
    for name in [
        "archive_command",
        "shared_preload_libraries",
        "restore_command",
        "archive_mode",
    ] {
        let value: String = client
            .query_one(&format!("SHOW {name}"), &[])
            .expect("show")
            .get(0);
        assert!(
            value.is_empty() || value == "off" || value == "(disabled)",
            "{name} = {value}"
        );
    }
    client
        .batch_execute("SELECT pg_switch_wal(); CHECKPOINT")
        .expect("switch wal");
    assert!(!marker.exists(), "a command from the archive ran");
}

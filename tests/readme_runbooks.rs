//! The README's runbooks, pasted as written. Each block under a `<!-- runbook: NAME -->`
//! marker is taken from README.md and run by bash, the way an operator pastes it: only the
//! variables the block asks to set are set, `jobdbctl` is found on PATH, and the defaults
//! come from a config file (the tests cannot use `/etc/jobdbctl` and `/var/lib/jobdbctl`).
//! The cron line and the systemd unit's command are taken from docs/backups.md the same way
//! and run under cron's bare environment. What each block did is then checked in the
//! database and on disk, not in what it printed.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::generate::{populate, Spec};
use common::{insert_job, scalar_i64, Run, TestCluster, BIN, SCRUBBED_ENV};

/// The README and the reference page that holds the cron line and the systemd unit.
const README: &str = concat!(
    include_str!("../README.md"),
    include_str!("../docs/backups.md")
);

/// The first fenced block of `lang` after `<!-- runbook: NAME -->` (or, with `name` empty,
/// the first block of `lang` in the README).
fn block(name: &str, lang: &str) -> String {
    let from = if name.is_empty() {
        0
    } else {
        README
            .find(&format!("<!-- runbook: {name} -->"))
            .unwrap_or_else(|| panic!("README has no runbook {name:?}"))
    };
    let fence = format!("```{lang}\n");
    let start = from
        + README[from..]
            .find(&fence)
            .unwrap_or_else(|| panic!("no ```{lang} block after runbook {name:?}"))
        + fence.len();
    let len = README[start..].find("\n```").expect("block ends");
    README[start..start + len + 1].to_string()
}

/// The block with the variables it asks the operator to set given these values; every one
/// must be there, as a `NAME=` line of its own.
fn with_vars(script: &str, vars: &[(&str, &Path)]) -> String {
    let mut out = String::new();
    let mut set = Vec::new();
    for line in script.lines() {
        match vars
            .iter()
            .find(|(name, _)| line.starts_with(&format!("{name}=")))
        {
            Some((name, value)) => {
                out.push_str(&format!("{name}='{}'\n", value.display()));
                set.push(*name);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (name, _) in vars {
        assert!(set.contains(name), "the runbook sets no {name}:\n{script}");
    }
    out
}

/// A machine with jobdbctl on PATH and a config file that puts its data directory in a
/// temporary place: what root's `/etc/jobdbctl/jobdbctl.toml` and `/var/lib/jobdbctl` are
/// on a real one.
struct Machine {
    cluster: TestCluster,
    bin_dir: PathBuf,
    logs: PathBuf,
}

impl Machine {
    fn new() -> Machine {
        let cluster = TestCluster::new();
        cluster.write_config(&format!("data_dir = '{}'\n", cluster.data_dir().display()));
        let bin_dir = cluster.dir.path().join("bin");
        std::fs::create_dir(&bin_dir).expect("mkdir bin");
        // A copy the server user can run: with wal_archive, the server runs jobdbctl itself.
        symlink(common::bin_for_other_users(), bin_dir.join("jobdbctl")).expect("link jobdbctl");
        let logs = cluster.dir.path().join("cmd-logs");
        Machine {
            cluster,
            bin_dir,
            logs,
        }
    }

    /// Pastes `script` into bash.
    fn paste(&self, script: &str) -> Run {
        let mut cmd = Command::new("bash");
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", self.bin_dir.display()))
            .env("JOBDBCTL_CONFIGDIR", &self.cluster.configdir)
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null());
        common::run(cmd)
    }

    fn run(&self, args: &[&str]) -> Run {
        common::run_with(self.cluster.cmd_for_server_user(), args)
    }

    fn client(&self) -> postgres::Client {
        self.cluster.client()
    }

    /// What the engine writes for a job: `LOGS/<user>/J<jid>/T1.log`.
    fn write_log(&self, job_id: i64) {
        let dir = self.logs.join("alice").join(format!("J{job_id}"));
        std::fs::create_dir_all(&dir).expect("mkdir job log");
        std::fs::write(dir.join("T1.log"), b"rendered\n").expect("write job log");
    }

    fn has_log(&self, job_id: i64) -> bool {
        self.logs
            .join("alice")
            .join(format!("J{job_id}"))
            .join("T1.log")
            .exists()
    }

    /// 300 jobs, each with its log, some held by `dead_workers` workers that died; returns
    /// the highest job ID.
    fn populate(&self, dead_workers: i32) -> i64 {
        let mut client = self.client();
        let spec = Spec {
            jobs: 300,
            live_workers: 0,
            dead_workers,
            migrations: false,
        };
        populate(&mut client, "jobdb", &spec);
        for row in client.query("SELECT id FROM jobdb.jobs", &[]).expect("ids") {
            self.write_log(row.get(0));
        }
        max_job_id(&mut client)
    }

    /// Jobs submitted by the engine, each with its log.
    fn submit(&self, n: usize) -> Vec<i64> {
        let mut client = self.client();
        (0..n)
            .map(|_| {
                let id = insert_job(&mut client);
                self.write_log(id);
                id
            })
            .collect()
    }
}

fn counter(client: &mut postgres::Client) -> i64 {
    scalar_i64(
        client,
        "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM jobdb.jobs_id_seq",
    )
}

fn schema_version(client: &mut postgres::Client) -> i64 {
    scalar_i64(
        client,
        "SELECT max(version)::bigint FROM jobdb.schema_migrations",
    )
}

fn max_job_id(client: &mut postgres::Client) -> i64 {
    scalar_i64(client, "SELECT coalesce(max(id), 0) FROM jobdb.jobs")
}

/// An old engine's database: schema version 1 with jobs, migrated to 2 (which queues a
/// background migration over every existing job), and workers that died holding jobs.
fn old_engine_database(m: &Machine) -> i64 {
    m.run(&["init", "--schema-version", "1"]).expect(0);
    let last = m.populate(2);
    m.run(&["migrate", "--to", "2"]).expect(0);
    last
}

#[test]
fn the_five_minute_tour_runs_as_written() {
    let m = Machine::new();
    // The tour's machine has its cluster already (a configured data directory is created only
    // by init, never by a bare start).
    m.run(&["init"]).expect(0);
    m.paste(&format!("set -eu\n{}", block("tour", "sh")))
        .expect(0);
    assert!(
        !m.cluster.pgdata().join("postmaster.pid").exists(),
        "the tour ends with the server stopped"
    );
    let archives: Vec<_> = std::fs::read_dir(m.cluster.data_dir().join("backups"))
        .expect("backups directory")
        .collect();
    assert_eq!(archives.len(), 1, "the tour's backup: {archives:?}");
    m.run(&["start"]).expect(0);
    assert_eq!(counter(&mut m.client()), 5000);
}

#[test]
fn upgrade_then_downgrade_runbooks_run_as_written() {
    let m = Machine::new();
    let before = old_engine_database(&m);
    let mut client = m.client();
    let unfinished = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.batched_background_migrations WHERE status NOT IN (3, 6)",
    );
    assert!(
        unfinished > 0,
        "the old version must leave a background migration to finalize"
    );
    let stale_locks = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.jobs WHERE locked_by IS NOT NULL",
    );
    assert!(stale_locks > 0, "dead workers must hold jobs");
    let jobs_before = scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs");

    let upgrade = m.paste(&block("upgrade", "sh"));
    upgrade.expect(0);
    assert_eq!(schema_version(&mut client), 3);
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.batched_background_migrations WHERE status NOT IN (3, 6)"
        ),
        0,
        "finalize-migration --all left a migration unfinished"
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE locked_by IS NOT NULL"
        ),
        0,
        "unlock-stale-jobs left jobs locked by dead workers"
    );
    let backup = m
        .cluster
        .data_dir()
        .join("backups")
        .join("before-upgrade.tar.gz");
    m.run(&["verify", backup.to_str().expect("utf-8")])
        .expect(0);

    // The new engine runs for a while.
    let newer = m.submit(25);
    let last = *newer.last().expect("jobs");
    assert!(last > before);
    drop(client);

    let downgrade = with_vars(&block("downgrade", "sh"), &[("LOGS", &m.logs)]);
    m.paste(&downgrade).expect(0);
    let mut client = m.client();
    // The backup's schema and jobs are back...
    assert_eq!(schema_version(&mut client), 2);
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        jobs_before
    );
    assert_eq!(max_job_id(&mut client), before);
    // ... and the counter continues above every ID the new engine handed out.
    assert_eq!(counter(&mut client), last);
    assert_eq!(insert_job(&mut client), last + 1);
    // Nothing above the counter, so no log was removed: no ID is handed out twice.
    for id in newer {
        assert!(m.has_log(id), "the log of job {id} was removed");
    }
    assert!(m.has_log(before));
}

#[test]
fn downgrade_to_the_point_before_an_upgrade_runs_as_written() {
    let m = Machine::new();
    let wal = m.cluster.dir.path().join("wal");
    m.cluster.write_config(&format!(
        "data_dir = '{}'\nwal_archive = '{}'\n",
        m.cluster.data_dir().display(),
        wal.display()
    ));
    m.run(&["init", "--schema-version", "1"]).expect(0);
    m.populate(2);
    m.run(&["backup", "--mode", "physical"]).expect(0);
    m.run(&["migrate", "--to", "2"]).expect(0);
    let mut client = m.client();
    let jobs_before = scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs");
    m.paste(&block("upgrade", "sh")).expect(0);
    assert_eq!(schema_version(&mut client), 3);
    let newer = m.submit(25);
    let last = *newer.last().expect("jobs");
    drop(client);

    let point = std::path::PathBuf::from("before-migrate-3");
    let runbook = with_vars(&block("downgrade-to-point", "sh"), &[("POINT", &point)]);
    m.paste(&runbook).expect(0);
    let mut client = m.client();
    assert_eq!(
        schema_version(&mut client),
        2,
        "the schema before the upgrade"
    );
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        jobs_before,
        "every job committed before the upgrade, none after"
    );
    assert!(counter(&mut client) >= last, "no job ID handed out twice");
    assert!(insert_job(&mut client) > last);
}

#[test]
fn disaster_recovery_runbook_runs_as_written() {
    let m = Machine::new();
    m.run(&["init"]).expect(0);
    let in_backup = m.populate(1);
    m.run(&["backup"]).expect(0);
    // Jobs after the nightly backup: some seen by a later jobdbctl run (the mark has them),
    // the newest by none.
    let seen = m.submit(10);
    m.run(&["status"]).expect(0);
    let unseen = m.submit(5);

    // The disaster: the server dies and its control file is gone.
    let pid_file =
        std::fs::read_to_string(m.cluster.pgdata().join("postmaster.pid")).expect("postmaster.pid");
    let pid: i32 = pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill -9");
    common::wait_until(
        "the killed server is gone",
        std::time::Duration::from_secs(30),
        || unsafe { libc::kill(pid, 0) } != 0,
    );
    std::fs::remove_file(m.cluster.pgdata().join("global/pg_control")).expect("damage");
    m.run(&["start"]).expect(6);

    let recovery = with_vars(&block("disaster-recovery", "sh"), &[("LOGS", &m.logs)]);
    m.paste(&recovery).expect(0);
    let mut client = m.client();
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        300
    );
    assert_eq!(max_job_id(&mut client), in_backup);
    let mark = *seen.last().expect("seen");
    assert_eq!(counter(&mut client), mark, "IDs continue above the mark");
    for id in seen {
        assert!(m.has_log(id), "job {id} is below the mark: its log stays");
    }
    for id in unseen {
        assert!(
            !m.has_log(id),
            "job {id} will be handed out again: its old log must go"
        );
    }
    assert!(m.has_log(in_backup));
    let kept: Vec<String> = std::fs::read_dir(m.cluster.data_dir())
        .expect("read data dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("psql.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged cluster is kept aside: {kept:?}");
}

/// A cron line's command run as cron runs it: a bare environment with this `home`, this
/// machine's binary and log file, and its config dir standing in for /etc/jobdbctl
/// (jobdbctl's default as root).
fn under_cron(m: &Machine, home: &Path, command: &str, log: &Path) -> Run {
    let here = command
        .replace("/usr/local/bin/jobdbctl", BIN)
        .replace("/var/log/jobdbctl-backup.log", log.to_str().expect("utf-8"));
    let mut cmd = Command::new("/usr/bin/env");
    cmd.arg("-i")
        .arg(format!("HOME={}", home.display()))
        .arg("LOGNAME=root")
        .arg("SHELL=/bin/sh")
        .arg("PATH=/usr/bin:/bin")
        .arg(format!(
            "JOBDBCTL_CONFIGDIR={}",
            m.cluster.configdir.display()
        ))
        .args(["/bin/sh", "-c", &here]);
    common::run(cmd)
}

/// The command of the README's cron line: its schedule and user fields checked, and its
/// binary and log file paths pointed at this machine's.
fn cron_commands() -> Vec<String> {
    block("cron", "cron")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields.len() > 6, "cron.d line: {line}");
            assert_eq!(fields[5], "root", "cron.d lines name the user: {line}");
            fields[6..].join(" ")
        })
        .collect()
}

#[test]
fn the_cron_lines_and_the_systemd_unit_run_as_written_under_crons_environment() {
    let m = Machine::new();
    m.run(&["init"]).expect(0);
    let mut client = m.client();
    insert_job(&mut client);
    let log = m.cluster.dir.path().join("jobdbctl-backup.log");

    let commands = cron_commands();
    assert_eq!(commands.len(), 2, "a backup line and a verify line");
    let service = block("", "ini");
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert_eq!(exec, commands[0], "the timer runs what cron runs");

    for (i, command) in [&commands[0], &commands[0], &commands[1]]
        .iter()
        .enumerate()
    {
        assert!(command.starts_with("/usr/local/bin/jobdbctl "), "{command}");
        let run = under_cron(&m, Path::new("/root"), command, &log);
        run.expect(0);
        assert_eq!(
            (run.stdout.as_str(), run.stderr.as_str()),
            ("", ""),
            "a quiet cron run mails nothing"
        );
        let lines = std::fs::read_to_string(&log).expect("log file");
        assert_eq!(lines.lines().count(), i + 1, "{lines}");
        // A backup's line also names what it wrote.
        assert!(
            lines
                .lines()
                .last()
                .is_some_and(|l| l.ends_with(": exit 0") || l.contains(": exit 0: wrote /")),
            "{lines}"
        );
    }
    let archives: Vec<_> = std::fs::read_dir(m.cluster.data_dir().join("backups"))
        .expect("backup dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 2, "two nightly runs, both kept");
    let listed = m.run(&["--json", "backups"]);
    listed.expect(0);
    let entries = listed.json();
    assert!(
        entries
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|e| e["jobs"] == 1)),
        "{entries}"
    );
}

#[test]
fn the_off_host_cron_lines_back_up_to_a_bucket_and_check_it_as_written() {
    let m = Machine::new();
    m.run(&["init"]).expect(0);
    insert_job(&mut m.client());
    let store = common::seaweed::server();
    let prefix = store.prefix();
    // The README's jobdbctl.toml lines, pointed at the test store.
    let toml = block("", "toml");
    assert!(
        toml.contains("backup_dir = \"s3://backups/jobdb/\""),
        "{toml}"
    );
    let toml = toml
        .replace("s3://backups/jobdb/", &prefix)
        .lines()
        .map(|l| match l.strip_prefix("s3_endpoint = ") {
            Some(_) => format!("s3_endpoint = \"{}\"", store.endpoint()),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    m.cluster.write_config(&format!(
        "data_dir = '{}'\n{toml}\n",
        m.cluster.data_dir().display()
    ));
    // Root's ~/.aws/credentials, as the AWS CLI keeps it.
    let home = m.cluster.dir.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).expect("mkdir ~/.aws");
    std::fs::write(
        home.join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            common::seaweed::ACCESS_KEY,
            common::seaweed::SECRET_KEY
        ),
    )
    .expect("write credentials");
    let log = m.cluster.dir.path().join("jobdbctl-backup.log");
    let lines: Vec<String> = block("off-host-cron", "cron")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().skip(6).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines.len(), 2, "a backup line and a check line");
    for command in [&lines[0], &lines[1]] {
        let run = under_cron(&m, &home, command, &log);
        run.expect(0);
        assert_eq!(
            (run.stdout.as_str(), run.stderr.as_str()),
            ("", ""),
            "quiet"
        );
    }
    let names = common::seaweed::direct::names(&common::seaweed::direct::key_prefix(&prefix));
    assert_eq!(
        names.len(),
        1,
        "the nightly archive is in the bucket: {names:?}"
    );
    // The check fails (exit 4) when the bucket has nothing of this database.
    let mut cmd = Command::new("/usr/bin/env");
    cmd.arg("-i")
        .arg(format!("HOME={}", home.display()))
        .arg(format!(
            "JOBDBCTL_CONFIGDIR={}",
            m.cluster.configdir.display()
        ))
        .arg(BIN)
        .args(["--quiet", "backups", "check", "--max-age", "26h", "--dir"])
        .arg(store.prefix());
    common::run(cmd).expect(4);
}

//! Off-host backups on a real S3-compatible store (SeaweedFS, `common::seaweed`), with a
//! fault-injecting proxy in front of it for the retry, abort and "nothing visible" paths.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::s3_proxy::{Action, Kind, Proxy, Rule};
use common::seaweed::{self, direct};
use common::{graphile_npm, Run, TestDb};

fn jobs_in(db: &TestDb) -> i64 {
    common::scalar_i64(&mut db.client(), "SELECT count(*) FROM jobdb.jobs")
}

/// `args` and what a restore over a database with jobs (and a stale engine) needs.
fn over<'a>(args: &[&'a str]) -> Vec<&'a str> {
    [args, &["--yes", "--force", "--stale-after", "0s"]].concat()
}

/// `jobdbctl ARGS` for `db` with the store's settings in the environment.
fn s3_cmd(db: &TestDb) -> Command {
    let mut cmd = db.cmd();
    seaweed::server().env(&mut cmd);
    cmd
}

fn s3_run(db: &TestDb, args: &[&str]) -> Run {
    common::run_with(s3_cmd(db), args)
}

/// `db`'s commands sent through `proxy`.
fn via(db: &TestDb, proxy: &Proxy, args: &[&str]) -> Run {
    let mut cmd = db.cmd();
    seaweed::server().env_to(&mut cmd, &proxy.endpoint());
    common::run_with(cmd, args)
}

fn proxy() -> Proxy {
    Proxy::start(seaweed::server().s3_port)
}

/// A fresh prefix and a proxy that breaks requests as `rules` say.
fn faulty<const N: usize>(rules: [Rule; N]) -> (String, Proxy) {
    let p = proxy();
    for rule in rules {
        p.add(rule);
    }
    (seaweed::server().prefix(), p)
}

/// Backs `db` up to `output` and returns the archive's URL.
fn backup_to(db: &TestDb, output: &str, extra: &[&str]) -> String {
    let mut args = vec!["backup", "--output", output, "--json"];
    args.extend_from_slice(extra);
    written(&s3_run(db, &args))
}

/// The archive a successful `backup --json` wrote.
fn written(run: &Run) -> String {
    run.expect(0);
    run.json()["archive"]
        .as_str()
        .expect("archive URL")
        .to_string()
}

fn names(prefix_url: &str) -> Vec<String> {
    direct::names(&direct::key_prefix(prefix_url))
}

#[test]
fn a_native_database_round_trips_through_a_bucket() {
    let db = TestDb::with_jobs(120);
    let prefix = seaweed::server().prefix();
    let archive = backup_to(&db, &prefix, &["--compression", "zstd"]);
    assert!(archive.starts_with(&prefix), "{archive} is under {prefix}");
    let name = archive.trim_start_matches(&prefix);
    assert_eq!(names(&prefix), [name], "one object, under the chosen name");

    // The catalog, verify and the freshness check read the bucket.
    let listed = s3_run(&db, &["backups", "--dir", &prefix, "--verify", "--json"]);
    listed.expect(0);
    let rows = listed.json();
    assert_eq!(rows[0]["state"], "complete", "{rows}");
    assert_eq!(rows[0]["jobs"], 120, "{rows}");
    s3_run(&db, &["verify", &archive]).expect(0);
    let check = s3_run(
        &db,
        &[
            "backups",
            "check",
            "--dir",
            &prefix,
            "--max-age",
            "1h",
            "--verify",
            "--json",
        ],
    );
    check.expect(0);
    assert_eq!(
        check.json()["archive"],
        archive.as_str(),
        "{}",
        check.stdout
    );

    // Restore by URL and by `latest`, into a database that lost jobs meanwhile.
    db.client()
        .batch_execute("DELETE FROM jobdb.jobs WHERE id > 20")
        .expect("delete");
    s3_run(&db, &over(&["restore", &archive])).expect(0);
    assert_eq!(jobs_in(&db), 120, "every job is back from the bucket");
    db.client()
        .batch_execute("DELETE FROM jobdb.jobs")
        .expect("delete");
    s3_run(&db, &over(&["restore", "latest", "--dir", &prefix])).expect(0);
    assert_eq!(
        jobs_in(&db),
        120,
        "restore latest chose the bucket's archive"
    );
}

#[test]
fn backup_dir_in_the_config_file_is_a_bucket_for_every_command() {
    let db = TestDb::with_jobs(30);
    let prefix = seaweed::server().prefix();
    db.write_config(&format!("backup_dir = \"{prefix}\"\n"));
    s3_run(&db, &["backup", "-q"]).expect(0);
    s3_run(&db, &["backup", "-q", "--keep", "1"]).expect(0);
    assert_eq!(names(&prefix).len(), 1, "--keep 1 pruned in the bucket");
    let status = s3_run(&db, &["status", "--json"]);
    status.expect(0);
    let newest = &status.json()["newest_backup"];
    assert!(
        newest["archive"]
            .as_str()
            .is_some_and(|a| a.starts_with(&prefix)),
        "status shows the bucket's newest archive: {newest}"
    );
    s3_run(&db, &["backups", "check", "--max-age", "1h"]).expect(0);
    // No archive of this database under another prefix: exit 4, as `status --check`.
    let empty = seaweed::server().prefix();
    s3_run(
        &db,
        &["backups", "check", "--dir", &empty, "--max-age", "1h"],
    )
    .expect(4);
}

#[test]
fn a_graphile_worker_database_round_trips_through_a_bucket() {
    let engine = graphile_npm::engine("0.18.0");
    let source = TestDb::empty();
    engine.populate(&source);
    let count = |db: &TestDb| {
        common::scalar_i64(
            &mut db.client(),
            "SELECT count(*) * 1000000 + max(id) FROM graphile_worker._private_jobs",
        )
    };
    let before = count(&source);
    let prefix = seaweed::server().prefix();
    let archive = backup_to(&source, &prefix, &[]);
    let target = TestDb::empty();
    s3_run(&target, &["restore", &archive, "--yes"]).expect(0);
    assert_eq!(count(&target), before, "jobs and their IDs came back");
    let status = target.run(&["status", "--json"]).expect(0).json();
    assert_eq!(status["profile"], "graphile-worker", "{status}");
}

#[test]
fn an_existing_object_is_never_overwritten() {
    let db = TestDb::with_jobs(5);
    let prefix = seaweed::server().prefix();
    let pinned = format!("{prefix}before-upgrade.tar.gz");
    backup_to(&db, &pinned, &[]);
    let key = format!("{}before-upgrade.tar.gz", direct::key_prefix(&prefix));
    let first = direct::get(&key).expect("the archive");
    common::insert_jobs(&mut db.client(), 3);
    s3_run(&db, &["backup", "--output", &pinned])
        .expect(3)
        .error_has("already there");
    assert_eq!(direct::get(&key).expect("still there"), first, "untouched");
    assert_eq!(
        direct::incomplete_uploads(&direct::key_prefix(&prefix)),
        0,
        "the refusal came before any upload started"
    );
    // A name given is pinned: pruning never counts or deletes it.
    s3_run(&db, &["backup", "--output", &prefix, "-q"]).expect(0);
    s3_run(
        &db,
        &["backups", "prune", "--dir", &prefix, "--keep", "1", "--yes"],
    )
    .expect(0);
    assert!(names(&prefix).contains(&"before-upgrade.tar.gz".to_string()));
}

#[test]
fn credentials_come_from_the_shared_file_and_bad_ones_fail_before_the_database_is_read() {
    let db = TestDb::with_jobs(5);
    let server = seaweed::server();
    let prefix = server.prefix();
    let dir = common::temp_dir("aws");
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[profile backup]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            seaweed::ACCESS_KEY,
            seaweed::SECRET_KEY
        ),
    )
    .expect("write credentials");
    let with_file = |profile: &str, args: &[&str]| {
        let mut cmd = db.cmd();
        cmd.env("AWS_ENDPOINT_URL", server.endpoint())
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .env("AWS_PROFILE", profile);
        common::run_with(cmd, args)
    };
    with_file("backup", &["backup", "--output", &prefix, "-q"]).expect(0);
    assert_eq!(names(&prefix).len(), 1);
    let params = with_file("backup", &["show-params", "--json"]);
    params.expect(0);
    assert!(
        !params.stdout.contains(seaweed::SECRET_KEY),
        "{}",
        params.stdout
    );
    assert!(params.stdout.contains("********"), "{}", params.stdout);

    // The default profile's keys are wrong: refused (exit 6) before the backup reads the
    // database: no backup lock taken, no schema read, one line.
    let refused = with_file("default", &["backup", "--output", &prefix, "-v"]);
    refused.expect(6).error_has("refused the credentials");
    assert!(
        !refused.stderr.contains("sql "),
        "no SQL ran before the refusal: {}",
        refused.stderr
    );
    assert_eq!(names(&prefix).len(), 1, "nothing written");

    // A missing bucket is a usage error naming it.
    s3_run(&db, &["backup", "--output", "s3://no-such-bucket-here/x/"])
        .expect(2)
        .error_has("bucket does not exist");
}

#[test]
fn secrets_never_appear_in_output_logs_or_errors() {
    let db = TestDb::with_jobs(5);
    let prefix = seaweed::server().prefix();
    let token = "SESSION-TOKEN-do-not-print-7c1e";
    let p = proxy();
    // A failing run with -v: retries logged, the error printed.
    p.add(Rule::always(Kind::UploadPart, Action::SlowDown));
    db.write_config("s3_retry_for = \"2s\"\n");
    let mut cmd = db.cmd();
    seaweed::server().env_to(&mut cmd, &p.endpoint());
    cmd.env("AWS_SESSION_TOKEN", token);
    let run = common::run_with(cmd, &["backup", "--output", &prefix, "-v", "--json"]);
    // SeaweedFS does not know the token; whichever way the run fails, nothing leaks.
    assert_ne!(run.code, 0);
    for secret in [
        seaweed::SECRET_KEY,
        token,
        "X-Amz-Signature",
        "X-Amz-Credential",
    ] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} in stdout: {}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(secret),
            "{secret} in stderr: {}",
            run.stderr
        );
    }
}

#[test]
fn throttling_and_dropped_connections_are_retried_and_reported_with_v() {
    let db = TestDb::with_jobs(200);
    let (prefix, p) = faulty([
        Rule::nth(Kind::UploadPart, 0, 2, Action::SlowDown),
        Rule::once(Kind::Complete, Action::DropMidRequest),
    ]);
    let run = via(&db, &p, &["backup", "--output", &prefix, "-v", "--json"]);
    let archive = written(&run);
    let retries = run.stderr.matches("s3 retry:").count();
    assert_eq!(retries, 3, "each retry is reported: {}", run.stderr);
    assert!(run.stderr.contains("SlowDown"), "{}", run.stderr);
    s3_run(&db, &["verify", &archive]).expect(0);
}

#[test]
fn a_complete_answered_200_with_an_error_body_is_a_failure_and_leaves_nothing() {
    let db = TestDb::with_jobs(20);
    let (prefix, p) = faulty([Rule::once(Kind::Complete, Action::ErrorBody200)]);
    let run = via(&db, &p, &["backup", "--output", &prefix]);
    assert_ne!(run.code, 0, "{run:?}");
    run.error_has("InternalError");
    assert!(names(&prefix).is_empty(), "nothing at any key");
    assert_eq!(
        direct::incomplete_uploads(&direct::key_prefix(&prefix)),
        0,
        "the upload was aborted"
    );
}

#[test]
fn a_stalled_store_is_given_up_on_within_the_retry_budget_with_exit_6() {
    let db = TestDb::with_jobs(20);
    let (prefix, p) = faulty([Rule::always(Kind::UploadPart, Action::Stall)]);
    db.write_config("s3_retry_for = \"3s\"\n");
    let run = via(&db, &p, &["backup", "--output", &prefix]);
    run.expect(6)
        .error_has(&p.endpoint())
        .error_has("timed out");
    assert!(
        names(&prefix).is_empty(),
        "nothing visible at the final key"
    );
    assert_eq!(direct::incomplete_uploads(&direct::key_prefix(&prefix)), 0);
}

#[test]
fn a_read_that_breaks_resumes_at_its_chunk_and_a_replaced_object_is_exit_5() {
    // Over one 8 MiB chunk of incompressible payload, so the restore reads several ranges.
    let db = TestDb::with_jobs(20);
    db.client()
        .batch_execute(
            "UPDATE jobdb.jobs SET payload = (SELECT jsonb_agg(md5(random()::text || g::text)) \
             FROM generate_series(1, 40000) g)",
        )
        .expect("payload");
    let prefix = seaweed::server().prefix();
    let archive = backup_to(&db, &prefix, &["--compression", "zstd"]);
    let p = proxy();
    p.add(Rule::nth(Kind::Get, 1, 1, Action::DropMidAnswer));
    via(&db, &p, &["verify", &archive]).expect(0);
    let ranges: Vec<String> = p
        .seen()
        .iter()
        .filter(|s| s.kind == Kind::Get)
        .filter_map(|s| s.range.clone())
        .collect();
    assert!(ranges.len() >= 3, "{ranges:?}");
    assert_ne!(
        ranges[1], "bytes=0-8388607",
        "the broken read was not the first: {ranges:?}"
    );
    assert_eq!(
        ranges[1], ranges[2],
        "the broken range was asked again, not from zero: {ranges:?}"
    );

    // The object replaced between restore's check and its load: exit 5, nothing changed.
    let key = format!(
        "{}{}",
        direct::key_prefix(&prefix),
        archive.trim_start_matches(&prefix)
    );
    let other = backup_to(&db, &prefix, &[]);
    let other_key = format!(
        "{}{}",
        direct::key_prefix(&prefix),
        other.trim_start_matches(&prefix)
    );
    let replacement = direct::get(&other_key).expect("other");
    p.clear();
    let chunks = ranges.len() - 1;
    p.add(Rule::nth(
        Kind::Get,
        chunks,
        1,
        Action::Before(Arc::new(move || direct::put(&key, &replacement))),
    ));
    db.client()
        .batch_execute("DELETE FROM jobdb.jobs WHERE id > 5")
        .expect("delete");
    via(&db, &p, &over(&["restore", &archive]))
        .expect(5)
        .error_has("changed while it was read");
    assert_eq!(jobs_in(&db), 5, "nothing changed");
}

/// The archive `restore latest --dir` would choose, by a dry run.
fn latest_choice(db: &TestDb, prefix: &str) -> String {
    let run = s3_run(
        db,
        &[
            "restore",
            "latest",
            "--dir",
            prefix,
            "--dry-run",
            "--json",
            "--stale-after",
            "0s",
            "--force",
        ],
    );
    run.expect(0);
    run.json()["latest_archive"]
        .as_str()
        .expect("latest_archive")
        .to_string()
}

#[test]
fn an_upload_in_progress_is_never_pruned_or_chosen_and_a_killed_one_is_cleaned_after_a_day() {
    let db = TestDb::with_jobs(40);
    let prefix = seaweed::server().prefix();
    let kept = backup_to(&db, &prefix, &[]);
    // A second backup, from "another host", hangs at its completion: all its parts are
    // stored, its object does not exist yet.
    let p = proxy();
    p.add(Rule::once(Kind::Complete, Action::Stall));
    let mut cmd = db.cmd();
    seaweed::server().env_to(&mut cmd, &p.endpoint());
    cmd.args(["backup", "--output", &prefix]);
    let mut writing = common::spawn(cmd);
    common::wait_until(
        "the second backup reaches its completion",
        Duration::from_secs(60),
        || p.seen().iter().any(|s| s.kind == Kind::Complete),
    );
    let key_prefix = direct::key_prefix(&prefix);
    assert_eq!(direct::incomplete_uploads(&key_prefix), 1);
    // The catalog that `restore latest` chooses from shows only the complete one (the
    // writer holds this database's backup lock, so restore itself waits; it runs below).
    let listed = s3_run(&db, &["backups", "--dir", &prefix, "--json"]);
    listed.expect(0);
    assert_eq!(
        listed.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.stdout
    );
    s3_run(
        &db,
        &["backups", "prune", "--dir", &prefix, "--keep", "1", "--yes"],
    )
    .expect(0);
    assert_eq!(
        direct::incomplete_uploads(&key_prefix),
        1,
        "a young upload is left alone"
    );

    // kill -9 mid-upload: nothing at any new key, no data lost, the upload abandoned.
    writing.kill().expect("kill -9");
    let _ = writing.wait();
    assert_eq!(
        names(&prefix),
        [kept.trim_start_matches(&prefix)],
        "only the first"
    );
    s3_run(&db, &["verify", &kept]).expect(0);
    assert_eq!(
        latest_choice(&db, &prefix),
        kept,
        "restore latest takes the complete one"
    );

    // A day later (the proxy ages the listing's start times), prune removes it.
    let aged = proxy();
    aged.add(Rule::always(Kind::ListUploads, Action::AgeUploads));
    // A dry run says what it would remove and removes nothing; then the real one.
    for (how, left) in [("--dry-run", 1), ("--yes", 0)] {
        let args = [
            "backups", "prune", "--dir", &prefix, "--keep", "1", how, "--json",
        ];
        let run = via(&db, &aged, &args);
        run.expect(0);
        let abandoned = run.json()["abandoned_uploads"].as_array().map(Vec::len);
        assert_eq!(abandoned, Some(1), "{how}: {}", run.stdout);
        assert_eq!(direct::incomplete_uploads(&key_prefix), left, "{how}");
    }
    assert_eq!(names(&prefix).len(), 1, "the archive stays");
}

#[test]
fn two_prunes_racing_on_one_prefix_delete_no_more_than_the_rule_says() {
    let db = TestDb::with_jobs(5);
    let prefix = seaweed::server().prefix();
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(backup_to(&db, &prefix, &[]));
    }
    let prune = || {
        let mut cmd = s3_cmd(&db);
        cmd.args(["backups", "prune", "--dir", &prefix, "--keep", "2", "--yes"]);
        common::spawn(cmd)
    };
    let (a, b) = (prune(), prune());
    common::finish(a).expect(0);
    common::finish(b).expect(0);
    let newest: Vec<String> = made[3..]
        .iter()
        .map(|u| u.trim_start_matches(&prefix).to_string())
        .collect();
    assert_eq!(
        names(&prefix),
        newest,
        "the two newest are kept, nothing more went"
    );
}

#[test]
fn a_damaged_archive_in_a_bucket_neither_counts_nor_is_deleted() {
    let db = TestDb::with_jobs(5);
    let prefix = seaweed::server().prefix();
    let older = backup_to(&db, &prefix, &[]);
    let newer = backup_to(&db, &prefix, &[]);
    // A cut-off copy of the newest under a newer name of jobdbctl's own form.
    let key_prefix = direct::key_prefix(&prefix);
    let whole = direct::get(&format!(
        "{key_prefix}{}",
        newer.trim_start_matches(&prefix)
    ))
    .expect("newer");
    let stem = newer.trim_start_matches(&prefix);
    let stem = &stem[..stem.len() - "20240131T235959.123Z.tar.gz".len()];
    let damaged = format!("{stem}{}.tar.gz", "29990101T000000.000Z");
    direct::put(&format!("{key_prefix}{damaged}"), &whole[..whole.len() / 2]);
    assert_eq!(
        latest_choice(&db, &prefix),
        newer,
        "the damaged one is skipped"
    );
    let run = s3_run(
        &db,
        &[
            "backups", "prune", "--dir", &prefix, "--keep", "1", "--yes", "--json",
        ],
    );
    run.expect(0);
    let removed = run.json()["removed"].clone();
    assert_eq!(removed, serde_json::json!([older]), "{}", run.stdout);
    let left = names(&prefix);
    assert!(left.contains(&damaged), "the damaged one is kept: {left:?}");
    assert!(left.contains(&stem_name(&newer, &prefix)), "{left:?}");
}

fn stem_name(url: &str, prefix: &str) -> String {
    url.trim_start_matches(prefix).to_string()
}

#[test]
fn a_prune_that_fails_after_a_backup_is_a_warning_and_backups_prune_alone_fails() {
    let db = TestDb::with_jobs(5);
    let prefix = seaweed::server().prefix();
    backup_to(&db, &prefix, &[]);
    backup_to(&db, &prefix, &[]);
    let p = proxy();
    p.add(Rule::always(Kind::Delete, Action::SlowDown));
    db.write_config("s3_retry_for = \"2s\"\n");
    let run = via(
        &db,
        &p,
        &["backup", "--output", &prefix, "--keep", "1", "--json"],
    );
    run.expect(0);
    let json = run.json();
    assert!(
        json["prune_error"]
            .as_str()
            .is_some_and(|e| e.contains("SlowDown")),
        "{json}"
    );
    run.stderr_has("could not be pruned");
    assert_eq!(
        names(&prefix).len(),
        3,
        "the new archive is there, nothing was deleted"
    );
    via(
        &db,
        &p,
        &["backups", "prune", "--dir", &prefix, "--keep", "1", "--yes"],
    )
    .expect(6)
    .error_has(&p.endpoint());
    assert_eq!(names(&prefix).len(), 3);
}

#[test]
fn keys_that_may_not_write_are_refused_before_any_row_is_read() {
    let db = TestDb::with_jobs(5);
    let prefix = seaweed::server().prefix();
    let mut cmd = db.cmd();
    seaweed::server().env(&mut cmd);
    cmd.env("AWS_ACCESS_KEY_ID", seaweed::READER_KEY)
        .env("AWS_SECRET_ACCESS_KEY", seaweed::READER_SECRET);
    let run = common::run_with(cmd, &["backup", "--output", &prefix, "-v"]);
    run.expect(6).error_has("access denied");
    assert!(
        !run.stderr.contains("COPY"),
        "no rows were read: {}",
        run.stderr
    );
    assert!(names(&prefix).is_empty());
}

#[test]
fn a_private_endpoint_is_trusted_through_its_ca_file_only() {
    let db = TestDb::with_jobs(5);
    let server = seaweed::server();
    let dir = common::temp_dir("s3tls");
    let certs = common::tls::make_certs(&dir.path().join("certs"));
    let port = server.tls_gateway(&certs);
    let prefix = server.prefix();
    let with_ca = |ca: Option<&std::path::Path>| {
        let mut cmd = db.cmd();
        server.env_to(&mut cmd, &format!("https://localhost:{port}"));
        if let Some(ca) = ca {
            cmd.env("AWS_CA_BUNDLE", ca);
        }
        common::run_with(cmd, &["backup", "--output", &prefix, "--json"])
    };
    with_ca(None).expect(6).error_has("TLS");
    with_ca(Some(&certs.other_ca)).expect(6).error_has("TLS");
    db.write_config(&format!("s3_ca_file = \"{}\"\n", certs.ca.display()));
    let archive = written(&with_ca(None));
    s3_run(&db, &["verify", &archive]).expect(0);
}

#[test]
fn listings_page_through_more_than_a_thousand_objects() {
    let db = TestDb::with_jobs(5);
    let prefix = seaweed::server().prefix();
    let archive = backup_to(&db, &prefix, &[]);
    // 1,100 other objects that sort before the archive: it is on the listing's second page.
    let key_prefix = direct::key_prefix(&prefix);
    std::thread::scope(|s| {
        for part in 0..4 {
            let key_prefix = &key_prefix;
            s.spawn(move || {
                for i in (part..1100).step_by(4) {
                    direct::put(&format!("{key_prefix}a-{i:04}.txt"), b"not an archive");
                }
            });
        }
    });
    let listed = s3_run(&db, &["backups", "--dir", &prefix, "--json"]);
    listed.expect(0);
    let rows = listed.json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["path"], archive.as_str());
    assert_eq!(latest_choice(&db, &prefix), archive);
}

#[test]
fn a_completion_whose_answer_was_lost_is_recognised_as_done() {
    let db = TestDb::with_jobs(20);
    // The store completes the upload; its answer is cut off; the retry finds no such upload.
    let (prefix, p) = faulty([Rule::once(Kind::Complete, Action::DropMidAnswer)]);
    let archive = written(&via(&db, &p, &["backup", "--output", &prefix, "--json"]));
    let completes = p.seen().iter().filter(|s| s.kind == Kind::Complete).count();
    assert_eq!(completes, 2, "the completion was retried");
    assert_eq!(names(&prefix).len(), 1);
    s3_run(&db, &["verify", &archive]).expect(0);
}

#[test]
fn a_store_that_stops_answering_mid_listing_is_exit_6_not_damaged_archives() {
    let db = TestDb::with_jobs(5);
    // The listing answers; every read of an archive is throttled until the budget is spent.
    let (prefix, p) = faulty([Rule::always(Kind::Get, Action::SlowDown)]);
    backup_to(&db, &prefix, &[]);
    db.write_config("s3_retry_for = \"2s\"\n");
    via(&db, &p, &["backups", "--dir", &prefix, "--json"])
        .expect(6)
        .error_has("SlowDown");
}

//! Every option and setting that takes a duration, given an absurd one: exit 2 with one line
//! before any SQL or file change, never a panic or a raw `timestamp out of range`; and
//! retention windows that would mean "delete everything" are refused.

mod common;

use common::{scalar_i64, TestCluster, TestDb};

const ABSURD: [&str; 3] = ["300000y", "1000000000y", "18446744073709551615s"];

#[track_caller]
fn refused_as_usage(run: &common::Run, what: &str) {
    run.expect(2);
    // Flags are checked by clap ("error: invalid value …" and a usage hint), settings and
    // free-form values by jobdbctl (its one "jobdbctl: error:" line).
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("error:"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "{what}: expected one error line: {}",
        run.stderr
    );
    let line = errors[0];
    assert!(
        line.contains("too long")
            || line.contains("invalid duration")
            || line.contains("retention window"),
        "{what}: the error does not say what is wrong with the duration: {line}"
    );
    assert!(
        !line.contains("out of range"),
        "{what}: raw SQL error: {line}"
    );
}

#[test]
fn absurd_durations_are_usage_errors_and_change_nothing() {
    let db = TestDb::populated_unlocked(300);
    let mut client = db.client();
    let jobs_before = scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs");
    let cluster = TestCluster::new();
    for value in ABSURD {
        let with_db: Vec<Vec<&str>> = vec![
            vec!["purge-jobs", "--older-than", value],
            vec!["unlock-stale-jobs", "--older-than", value],
            vec!["--stale-after", value, "unlock-stale-jobs", "--dry-run"],
            vec!["--stale-after", value, "status"],
            vec!["finalize-migration", "--all", "--statement-timeout", value],
            vec!["migrate", "--max-wait", value, "--dry-run"],
            vec!["backups", "prune", "--keep-within", value, "--yes"],
            vec![
                "backup",
                "--keep-within",
                value,
                "--output",
                "/nonexistent/x.tar.gz",
            ],
        ];
        for args in with_db {
            refused_as_usage(&db.run(&args), &args.join(" "));
        }
        let embedded: Vec<Vec<&str>> = vec![
            vec!["logs", "--since", value],
            vec!["logs", "--purge", "--older-than", value],
            vec!["start", "--timeout", value],
            vec!["stop", "--timeout", value],
        ];
        for args in embedded {
            refused_as_usage(&cluster.run(&args), &args.join(" "));
        }
        db.write_config(&format!("stale_after = \"{value}\"\n"));
        refused_as_usage(&db.run(&["status"]), "stale_after in jobdbctl.toml");
        db.remove_config();
    }
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        jobs_before,
        "a refused purge removed jobs"
    );
    assert!(
        !cluster.pgdata().exists(),
        "a refused start created a cluster"
    );
}

#[test]
fn a_retention_window_shorter_than_a_minute_is_refused() {
    let db = TestDb::populated_unlocked(10);
    let dir = common::temp_dir("jdkeep");
    let out = dir.path().join("backups");
    std::fs::create_dir(&out).expect("mkdir");
    let out_arg = format!("{}/", out.display());
    for _ in 0..2 {
        db.run(&["backup", "--quiet", "--output", &out_arg])
            .expect(0);
    }
    let before = std::fs::read_dir(&out).expect("list").count();
    assert_eq!(before, 2);
    for window in ["0", "0s", "1ns", "59s"] {
        let run = db.run(&[
            "backups",
            "prune",
            "--dir",
            out.to_str().unwrap(),
            "--keep-within",
            window,
            "--yes",
        ]);
        refused_as_usage(&run, window);
        let run = db.run(&[
            "backup",
            "--quiet",
            "--output",
            &out_arg,
            "--keep-within",
            window,
        ]);
        refused_as_usage(&run, window);
    }
    assert_eq!(
        std::fs::read_dir(&out).expect("list").count(),
        before,
        "a refused window deleted or wrote archives"
    );
    // The smallest window allowed keeps what is younger than it.
    db.run(&[
        "backups",
        "prune",
        "--dir",
        out.to_str().unwrap(),
        "--keep-within",
        "1m",
        "--yes",
    ])
    .expect(0);
    assert_eq!(std::fs::read_dir(&out).expect("list").count(), before);
}

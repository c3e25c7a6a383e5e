//! An operator's first hour: installing, reading the manual, running as the wrong user,
//! typing the render-farm tool's flags, starting/stopping/restarting with bounded waits, and
//! reading `status` — each against real servers where one is involved.

mod common;

use common::{scalar_i64, schema_exists, TestDb};

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

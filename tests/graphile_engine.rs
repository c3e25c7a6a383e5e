//! backup, verify, restore and destroy --backup-first against schemas made by the real
//! Graphile Worker (installed from npm at pinned versions of each generation jobdbctl
//! supports), filled through the engine's own API, and used by the engine again after the
//! restore. Every table Graphile Worker creates has row-level security enabled (migration
//! 000001 on), so these databases are what online backup must handle.

mod common;
use common::Exec;

use common::path_str;

use common::assert_has;

use std::path::PathBuf;

use common::graphile_npm::{self, Engine};
use common::{scalar_i64, schema_exists, TestCluster, TestDb};

const SCHEMA: &str = "graphile_worker";

struct Version {
    npm: &'static str,
    generation: &'static str,
    /// `max(id)` of `graphile_worker.migrations` this version installs.
    migrations: i64,
    jobs: &'static str,
    queues: &'static str,
}

const V015: Version = Version {
    npm: "0.15.1",
    generation: "before v0.16",
    migrations: 14,
    jobs: "graphile_worker.jobs",
    queues: "graphile_worker.job_queues",
};
const V016: Version = Version {
    npm: "0.16.6",
    generation: "v0.16.x",
    migrations: 18,
    jobs: "graphile_worker._private_jobs",
    queues: "graphile_worker._private_job_queues",
};
const V018: Version = Version {
    npm: "0.18.0",
    generation: "v0.17+",
    migrations: 20,
    jobs: "graphile_worker._private_jobs",
    queues: "graphile_worker._private_job_queues",
};

/// Every row of every table of the schema as JSON, sorted per table. Lock columns (and
/// `is_available`, computed from them) are left out: restore releases the locks of jobs and
/// queues that were held when the backup was taken, which [`locks`] checks separately.
fn rows(client: &mut postgres::Client) -> Vec<(String, Vec<String>)> {
    common::table_names(client, SCHEMA)
        .into_iter()
        .map(|t| {
            let sql = format!(
                "SELECT (to_jsonb(t) - 'locked_at' - 'locked_by' - 'is_available')::text FROM {SCHEMA}.\"{t}\" t ORDER BY 1"
            );
            let rows = client
                .query(&sql, &[])
                .expect("read rows")
                .iter()
                .map(|r| r.get(0))
                .collect();
            (t, rows)
        })
        .collect()
}

/// Locked jobs and locked queues.
fn locks(client: &mut postgres::Client, v: &Version) -> (i64, i64) {
    (
        scalar_i64(
            client,
            &format!(
                "SELECT count(*) FROM {} WHERE locked_by IS NOT NULL OR locked_at IS NOT NULL",
                v.jobs
            ),
        ),
        scalar_i64(
            client,
            &format!(
                "SELECT count(*) FROM {} WHERE locked_by IS NOT NULL OR locked_at IS NOT NULL",
                v.queues
            ),
        ),
    )
}

/// Tables with row-level security enabled, and forced.
fn row_security(client: &mut postgres::Client) -> Vec<(String, bool, bool)> {
    client
        .query(
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
            &[&SCHEMA],
        )
        .expect("catalog")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn leftover_schemas(client: &mut postgres::Client) -> i64 {
    scalar_i64(
        client,
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'jobdbctl\\_%'",
    )
}

#[track_caller]
fn assert_same_lines(what: &str, before: &[String], after: &[String]) {
    if before != after {
        let missing: Vec<_> = before
            .iter()
            .filter(|l| !after.contains(l))
            .take(8)
            .collect();
        let extra: Vec<_> = after
            .iter()
            .filter(|l| !before.contains(l))
            .take(8)
            .collect();
        panic!("{what} differs\nmissing after: {missing:#?}\nextra after: {extra:#?}");
    }
}

/// What a database looked like, for comparison after a restore.
struct Picture {
    schema: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
    row_security: Vec<(String, bool, bool)>,
}

impl Picture {
    fn of(db: &TestDb) -> Picture {
        let mut client = db.client();
        Picture {
            schema: common::pg_dump_sorted(db, SCHEMA, "--schema-only"),
            rows: rows(&mut client),
            row_security: row_security(&mut client),
        }
    }

    #[track_caller]
    fn assert_restored_in(&self, db: &TestDb, v: &Version) {
        let after = Picture::of(db);
        assert_same_lines("pg_dump --schema-only", &self.schema, &after.schema);
        assert_eq!(self.row_security, after.row_security, "row-level security");
        assert_eq!(self.rows.len(), after.rows.len(), "tables");
        for ((table, b), (_, a)) in self.rows.iter().zip(&after.rows) {
            assert_same_lines(&format!("rows of {table}"), b, a);
        }
        let mut client = db.client();
        assert_eq!(locks(&mut client, v), (0, 0), "locks released by restore");
        assert_eq!(leftover_schemas(&mut client), 0, "no staging schema left");
    }
}

/// A database the real worker of version `v` has created its schema and jobs in.
fn populated(v: &Version) -> (Engine, TestDb) {
    let engine = graphile_npm::engine(v.npm);
    let db = TestDb::empty();
    engine.populate(&db);
    (engine, db)
}

/// The whole life of an archive on one Graphile Worker version.
fn round_trip(v: &Version) {
    let (engine, source) = populated(v);
    let mut src = source.client();

    // Detection.
    let status = source.run(&["status", "--json"]).expect(0).json();
    assert_eq!(status["profile"], "graphile-worker", "{status}");
    assert_eq!(status["graphile_generation"], v.generation, "{status}");
    assert_eq!(status["schema_version"], v.migrations, "{status}");

    // The data is what a deployment has: row-level security on every engine table, jobs
    // done, failed, waiting in the future, and one held by a worker that died.
    let before = Picture::of(&source);
    let secured = before.row_security.iter().filter(|(_, on, _)| *on).count();
    assert_eq!(
        secured,
        before.row_security.len() - 1,
        "every table but migrations has row-level security: {:?}",
        before.row_security
    );
    assert_eq!(locks(&mut src, v), (1, 1), "one job and its queue locked");
    let jobs = scalar_i64(&mut src, &format!("SELECT count(*) FROM {}", v.jobs));
    assert_eq!(jobs, 25, "jobs left after the worker ran");
    assert_eq!(
        scalar_i64(
            &mut src,
            &format!(
                "SELECT count(*) FROM {} WHERE attempts = 1 AND last_error IS NOT NULL",
                v.jobs
            )
        ),
        3,
        "failed once"
    );
    let last_used = status["last_used_job_id"]
        .as_i64()
        .expect("last used job id");

    let dir = common::temp_dir("gwe");
    let archive = dir.path().join("gw.tar.gz");
    source
        .run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let verified = source
        .run(&["verify", "--json", path_str(&archive)])
        .expect(0)
        .json();
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["profile"], "graphile-worker");
    assert_eq!(verified["schema_version"], v.migrations);
    let archived: i64 = verified["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter(|t| t["name"] == v.jobs.trim_start_matches("graphile_worker."))
        .map(|t| t["rows"].as_i64().expect("rows"))
        .sum();
    assert_eq!(archived, jobs, "jobs in the archive");

    // Into an empty database on the same server.
    let target = TestDb::empty();
    target.run(&["restore", path_str(&archive)]).expect(0);
    before.assert_restored_in(&target, v);
    let mut tgt = target.client();
    let status = target.run(&["status", "--json"]).expect(0).json();
    assert_eq!(status["graphile_generation"], v.generation, "{status}");
    assert_eq!(status["last_used_job_id"], last_used, "{status}");
    // The engine runs on the restored schema: nothing to migrate, ids continue, a worker
    // takes and completes the new job.
    let used = engine.exercise(&target);
    assert_eq!(used["added_job_id"], last_used + 1, "{used}");
    assert_eq!(used["ran"], 1, "{used}");
    assert_eq!(
        scalar_i64(
            &mut tgt,
            &format!(
                "SELECT count(*) FROM {} WHERE id = {}",
                v.jobs,
                last_used + 1
            )
        ),
        0,
        "completed jobs are deleted"
    );

    // Over the old schema, which has gained a job: refused without --force, then replaced.
    src.exec("SELECT graphile_worker.add_job('extra')");
    let refused = source.run(&["restore", path_str(&archive), "--yes"]);
    refused.expect(3);
    assert_eq!(
        scalar_i64(&mut src, &format!("SELECT count(*) FROM {}", v.jobs)),
        jobs + 1,
        "refused restore changed nothing"
    );
    source
        .run(&["restore", path_str(&archive), "--force", "--yes"])
        .expect(0);
    before.assert_restored_in(&source, v);

    // destroy --backup-first writes an archive that restores the same schema and rows.
    let pre_destroy = dir.path().join("pre-destroy.tar.gz");
    source
        .run(&[
            "destroy",
            "--yes",
            "--force",
            "--backup-first",
            path_str(&pre_destroy),
        ])
        .expect(0);
    assert!(!schema_exists(&mut src, SCHEMA));
    source.run(&["verify", path_str(&pre_destroy)]).expect(0);
    source.run(&["restore", path_str(&pre_destroy)]).expect(0);
    before.assert_restored_in(&source, v);
}

#[test]
fn graphile_worker_0_15_round_trips() {
    round_trip(&V015);
}

#[test]
fn graphile_worker_0_16_round_trips() {
    round_trip(&V016);
}

#[test]
fn graphile_worker_0_18_round_trips() {
    round_trip(&V018);
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn drop_database(db: &TestDb) {
    common::shared()
        .admin()
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", db.name))
        .expect("drop database");
}

/// Policies of every kind on the real schema; restore recreates them, and refuses before it
/// creates anything when a role they name does not exist.
#[test]
fn policies_round_trip_and_a_missing_role_is_refused_before_anything_changes() {
    let (_, source) = populated(&V018);
    let app = unique("gw_app");
    // A name that needs quoting.
    let reader = format!("GW Reader {}", unique("r"));
    let mut src = source.client();
    src.batch_execute(&format!(
        "CREATE ROLE {app}; CREATE ROLE \"{reader}\";
         CREATE POLICY \"app sees its tasks\" ON graphile_worker._private_jobs AS PERMISSIVE FOR SELECT
           TO {app}, \"{reader}\"
           USING (task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier <> 'send_email'));
         CREATE POLICY no_low_priority ON graphile_worker._private_jobs AS RESTRICTIVE FOR INSERT
           WITH CHECK (priority >= -10);
         CREATE POLICY unlocked_only ON graphile_worker._private_job_queues FOR UPDATE TO {app}
           USING (locked_by IS NULL) WITH CHECK (queue_name <> '');
         CREATE POLICY everyone ON graphile_worker._private_tasks FOR ALL USING (true);
         COMMENT ON POLICY unlocked_only ON graphile_worker._private_job_queues IS 'workers update free queues';
         ALTER TABLE graphile_worker._private_tasks FORCE ROW LEVEL SECURITY;"
    ))
    .expect("add policies");
    let before = Picture::of(&source);
    assert!(before.schema.iter().any(|l| l.contains("CREATE POLICY")));
    assert!(before
        .schema
        .iter()
        .any(|l| l.contains("FORCE ROW LEVEL SECURITY")));
    let dir = common::temp_dir("gwp");
    let archive = dir.path().join("policies.tar.gz");
    source
        .run(&["backup", "--output", path_str(&archive)])
        .expect(0);

    let target = TestDb::empty();
    target.run(&["restore", path_str(&archive)]).expect(0);
    before.assert_restored_in(&target, &V018);
    let policies = |client: &mut postgres::Client| {
        scalar_i64(
            client,
            "SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'graphile_worker'",
        )
    };
    assert_eq!(policies(&mut target.client()), 4);
    // The policies apply to the restored tables: the reader role sees only what they allow.
    let mut tgt = target.client();
    tgt.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA graphile_worker TO \"{reader}\";
         GRANT SELECT ON graphile_worker._private_jobs, graphile_worker._private_tasks TO \"{reader}\";"
    ))
    .expect("grant");
    let mut tx = tgt.transaction().expect("begin");
    tx.exec(&format!("SET LOCAL ROLE \"{reader}\""));
    let count = tx.query_one("SELECT count(*) FROM graphile_worker._private_jobs", &[]);
    let visible: i64 = count.expect("select as reader").get(0);
    drop(tx);
    let allowed = scalar_i64(
        &mut tgt,
        "SELECT count(*) FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
          WHERE t.identifier <> 'send_email'",
    );
    assert!(allowed > 0 && allowed < 25, "{allowed}");
    assert_eq!(
        visible, allowed,
        "the reader sees the jobs its policy allows"
    );
    drop(tgt);

    // The role disappears from the server; a restore into an empty database is refused by
    // name, and leaves that database empty.
    drop(src);
    drop_database(&source);
    drop_database(&target);
    common::shared()
        .admin()
        .batch_execute(&format!("DROP ROLE \"{reader}\""))
        .expect("drop role");
    let third = TestDb::empty();
    let refused = third.run(&["restore", path_str(&archive)]);
    refused.expect(3);
    let line = refused.one_line_error();
    assert_has(line, &format!("{reader:?}"));
    assert!(!line.contains(&app), "{app} exists: {line}");
    assert_has(line, "CREATE ROLE");
    let mut c = third.client();
    assert!(!schema_exists(&mut c, SCHEMA));
    assert_eq!(leftover_schemas(&mut c), 0);
    // Once the role exists again, the same archive restores.
    c.batch_execute(&format!("CREATE ROLE \"{reader}\""))
        .expect("create role");
    third.run(&["restore", path_str(&archive)]).expect(0);
    assert_eq!(policies(&mut c), 4);
    let roles: Vec<String> = common::column(
        &mut c,
        "SELECT r.rolname::text FROM pg_policy p JOIN pg_roles r ON r.oid = ANY (p.polroles)
              WHERE p.polname = 'app sees its tasks' ORDER BY 1",
    );
    assert_eq!(roles, {
        let mut r = vec![reader.clone(), app.clone()];
        r.sort();
        r
    });
}

/// A role that only has SELECT on Graphile Worker's tables sees none of their rows (row-level
/// security with no policies): its backup would be empty, so it is refused.
#[test]
fn backup_by_a_role_that_row_level_security_hides_rows_from_is_refused() {
    let (_, source) = populated(&V018);
    let role = unique("gw_backup");
    source
        .client()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN;
             GRANT USAGE ON SCHEMA graphile_worker TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA graphile_worker TO {role};
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA graphile_worker TO {role};"
        ))
        .expect("create backup role");
    let s = common::shared();
    let url = format!(
        "postgresql://{role}@localhost/{}?host={}&port={}",
        source.name,
        s.socket_dir().display(),
        s.tcp_port
    );
    let dir = common::temp_dir("gwh");
    let archive: PathBuf = dir.path().join("hidden.tar.gz");
    let mut cmd = common::jobdbctl(source.configdir.path());
    cmd.args([
        "--database-url",
        &url,
        "backup",
        "--output",
        path_str(&archive),
    ]);
    let run = common::run(cmd);
    run.expect(3);
    let line = run.one_line_error();
    assert_has(line, "_private_jobs");
    assert_has(line, "BYPASSRLS");
    assert!(!archive.exists());
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none());
}

/// What online backup still does not archive is refused by name, with advice for the target:
/// pg_dump for another server, `--mode cold` only for the embedded cluster.
#[test]
fn unsupported_objects_are_refused_with_advice_that_fits_the_server() {
    let engine = graphile_npm::engine(V018.npm);
    let remote = TestDb::empty();
    engine.populate(&remote);
    remote
        .client()
        .exec("CREATE MATERIALIZED VIEW graphile_worker.queue_sizes AS SELECT 1 AS n");
    let dir = common::temp_dir("gwu");
    let archive = dir.path().join("x.tar.gz");
    let run = remote.run(&["backup", "--output", path_str(&archive)]);
    run.expect(1);
    let line = run.one_line_error();
    assert_has(line, "materialized view queue_sizes");
    assert_has(line, "pg_dump");
    assert!(!line.contains("--mode cold"), "{line}");
    assert!(!archive.exists());

    let cluster = TestCluster::started();
    cluster
        .client()
        .exec("CREATE MATERIALIZED VIEW jobdb.queue_sizes AS SELECT 1 AS n");
    let run = cluster.run(&["backup", "--output", path_str(&archive)]);
    run.expect(1);
    let line = run.one_line_error();
    assert_has(line, "materialized view queue_sizes");
    assert_has(line, "--mode cold");
    assert!(!archive.exists());
}

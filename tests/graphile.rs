//! The graphile-worker profile against fixtures of Graphile Worker's three schema generations,
//! built from DDL matching its published migrations. The command's effect is compared, table
//! by table, with the Worker Pro runbook's SQL (or Graphile's own lock reset) run on an
//! identical copy.

mod common;
use common::Exec;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use common::{locks_by_holder, released_by_worker, table_names, TestDb};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Generation {
    /// v0.14/v0.15: migrations 1..=15, tables `jobs`, `job_queues`.
    V015,
    /// v0.16.x: migration 000016 renamed the tables to `_private_*`, 000017 added the `jobs` view.
    V016,
    /// v0.17+: migration 000019 marks the jump to pool-held locks.
    V017,
}

const ALL: [Generation; 3] = [Generation::V015, Generation::V016, Generation::V017];

impl Generation {
    fn label(self) -> &'static str {
        match self {
            Generation::V015 => "before v0.16",
            Generation::V016 => "v0.16.x",
            Generation::V017 => "v0.17+",
        }
    }

    fn migrations(self) -> i32 {
        match self {
            Generation::V015 => 15,
            Generation::V016 => 18,
            Generation::V017 => 19,
        }
    }

    fn jobs(self) -> &'static str {
        match self {
            Generation::V015 => "graphile_worker.jobs",
            _ => "graphile_worker._private_jobs",
        }
    }

    fn queues(self) -> &'static str {
        match self {
            Generation::V015 => "graphile_worker.job_queues",
            _ => "graphile_worker._private_job_queues",
        }
    }

    /// The Worker Pro runbook's SQL for this generation, verbatim.
    fn runbook(self) -> &'static str {
        match self {
            Generation::V015 => {
                "begin;
                 update graphile_worker.jobs
                 set locked_at = null, locked_by = null
                 where locked_by is not null and locked_by not in (
                   select worker_id from graphile_worker._private_pro_workers
                 );
                 update graphile_worker.job_queues
                 set locked_at = null, locked_by = null
                 where locked_by is not null and locked_by not in (
                   select worker_id from graphile_worker._private_pro_workers
                 );
                 commit;"
            }
            Generation::V016 => {
                "begin;
                 update graphile_worker._private_jobs as jobs
                 set locked_at = null, locked_by = null
                 where locked_by is not null and locked_by not in (
                   select worker_id from graphile_worker._private_pro_workers
                 );
                 update graphile_worker._private_job_queues as job_queues
                 set locked_at = null, locked_by = null
                 where locked_by is not null and locked_by not in (
                   select worker_id from graphile_worker._private_pro_workers
                 );
                 commit;"
            }
            Generation::V017 => {
                "begin;
                 update graphile_worker._private_jobs as jobs
                 set locked_at = null, locked_by = null
                 where locked_by is not null and locked_by not in (
                   select pool_id from graphile_worker._private_pro_pools
                 );
                 update graphile_worker._private_job_queues as job_queues
                 set locked_at = null, locked_by = null
                 where locked_by is not null and locked_by not in (
                   select pool_id from graphile_worker._private_pro_pools
                 );
                 commit;"
            }
        }
    }

    /// Graphile Worker's own lock reset (what a worker does at startup), for this generation.
    fn lock_reset(self) -> String {
        format!(
            "begin;
             update {jobs} as jobs set locked_at = null, locked_by = null, run_at = greatest(run_at, now())
              where locked_at < now() - interval '4 hours';
             update {queues} as job_queues set locked_at = null, locked_by = null
              where locked_at < now() - interval '4 hours';
             commit;",
            jobs = self.jobs(),
            queues = self.queues()
        )
    }

    /// What Graphile's `force_unlock_workers(worker_ids)` does.
    fn force_unlock(self, client: &mut postgres::Client, ids: &[&str]) {
        let mut tx = client.transaction().expect("begin");
        for table in [self.jobs(), self.queues()] {
            tx.execute(
                &format!("update {table} set locked_at = null, locked_by = null where locked_by = any($1)"),
                &[&ids],
            )
            .expect("force unlock");
        }
        tx.commit().expect("commit");
    }
}

/// Tables as Graphile Worker's migrations leave them after `000015` (v0.14/v0.15): the
/// tables `000011` created (identity `id`, hence the sequence `jobs_id_seq1`, since the old
/// table still owned `jobs_id_seq` then), `known_crontabs` from `000008`, and the
/// `migrations` table with the `breaking` column newer versions add.
const V015_DDL: &str = "
create schema graphile_worker;
create table graphile_worker.migrations (
  id int primary key,
  ts timestamptz default now() not null,
  breaking boolean not null default false
);
create table graphile_worker.known_crontabs (
  identifier text not null primary key,
  known_since timestamptz not null default now(),
  last_execution timestamptz
);
alter table graphile_worker.known_crontabs enable row level security;
create table graphile_worker.job_queues (
  id int primary key generated always as identity,
  queue_name text not null unique check (length(queue_name) <= 128),
  locked_at timestamptz,
  locked_by text,
  is_available boolean generated always as ((locked_at is null)) stored not null
);
alter table graphile_worker.job_queues enable row level security;
create table graphile_worker.tasks (
  id int primary key generated always as identity,
  identifier text not null unique check (length(identifier) <= 128)
);
alter table graphile_worker.tasks enable row level security;
create table graphile_worker.jobs (
  id bigint primary key generated always as identity (sequence name graphile_worker.jobs_id_seq1),
  job_queue_id int null,
  task_id int not null,
  payload json default '{}'::json not null,
  priority smallint default 0 not null,
  run_at timestamptz default now() not null,
  attempts smallint default 0 not null,
  max_attempts smallint default 25 not null constraint jobs_max_attempts_check check (max_attempts >= 1),
  last_error text,
  created_at timestamptz default now() not null,
  updated_at timestamptz default now() not null,
  key text unique constraint jobs_key_check check (length(key) > 0 and length(key) <= 512),
  locked_at timestamptz,
  locked_by text,
  revision integer default 0 not null,
  flags jsonb,
  is_available boolean generated always as (((locked_at is null) and (attempts < max_attempts))) stored not null
);
alter table graphile_worker.jobs enable row level security;
create index jobs_main_index on graphile_worker.jobs using btree (priority, run_at)
  include (id, task_id, job_queue_id) where (is_available = true);
create index jobs_no_queue_index on graphile_worker.jobs using btree (priority, run_at)
  include (id, task_id) where (is_available = true and job_queue_id is null);
";

/// `000016` (v0.16) renames the tables; `000017` puts a `jobs` view in their place.
const V016_DDL: &str = "
alter table graphile_worker.jobs rename to _private_jobs;
alter table graphile_worker.job_queues rename to _private_job_queues;
alter table graphile_worker.tasks rename to _private_tasks;
alter table graphile_worker.known_crontabs rename to _private_known_crontabs;
create view graphile_worker.jobs as (
  select jobs.id, job_queues.queue_name, tasks.identifier as task_identifier, jobs.priority,
         jobs.run_at, jobs.attempts, jobs.max_attempts, jobs.last_error, jobs.created_at,
         jobs.updated_at, jobs.key, jobs.locked_at, jobs.locked_by, jobs.revision, jobs.flags
    from graphile_worker._private_jobs as jobs
   inner join graphile_worker._private_tasks as tasks on tasks.id = jobs.task_id
    left join graphile_worker._private_job_queues as job_queues on job_queues.id = jobs.job_queue_id
);
";

/// Worker Pro's tables are not published; the runbook relies on their id columns only, so
/// that is all the fixture has.
fn pro_ddl(generation: Generation) -> &'static str {
    match generation {
        Generation::V017 => "create table graphile_worker._private_pro_pools (pool_id text primary key);
                             insert into graphile_worker._private_pro_pools values ('live-1'), ('live-2'), ('idle-3');",
        _ => "create table graphile_worker._private_pro_workers (worker_id text primary key);
              insert into graphile_worker._private_pro_workers values ('live-1'), ('live-2'), ('idle-3');",
    }
}

const LIVE: [&str; 2] = ["live-1", "live-2"];

/// Builds the fixture; `base` stands in for "now" so two copies are identical.
fn build(client: &mut postgres::Client, generation: Generation, pro: bool, base: DateTime<Utc>) {
    let mut tx = client.transaction().expect("begin");
    tx.exec(V015_DDL);
    if generation != Generation::V015 {
        tx.exec(V016_DDL);
    }
    if pro {
        tx.exec(pro_ddl(generation));
    }
    tx.execute(
        "insert into graphile_worker.migrations (id, ts, breaking)
         select g, $1::timestamptz - (40 - g) * interval '1 day', g in (11, 14, 19)
           from generate_series(1, $2::int) g",
        &[&base, &generation.migrations()],
    )
    .expect("migrations");
    let tasks = if generation == Generation::V015 {
        "graphile_worker.tasks"
    } else {
        "graphile_worker._private_tasks"
    };
    tx.batch_execute(&format!(
        "insert into {tasks} (identifier) values ('send_email'), ('render'), ('cleanup');"
    ))
    .expect("tasks");
    tx.execute(
        &format!(
            "insert into {} (queue_name, locked_at, locked_by) values
               ('q-live', $1::timestamptz - interval '1 minute', 'live-1'),
               ('q-dead', $1::timestamptz - interval '2 hours', 'dead-a'),
               ('q-old', $1::timestamptz - interval '5 hours', 'dead-b'),
               ('q-free', null, null),
               ('q-live-old', $1::timestamptz - interval '6 hours', 'live-2')",
            generation.queues()
        ),
        &[&base],
    )
    .expect("queues");
    // Jobs held by live and dead ids, some for longer than Graphile's 4 hours, some with
    // run_at in the future; a third of them unlocked.
    tx.execute(
        &format!(
            "insert into {} (job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts,
                             last_error, created_at, updated_at, key, locked_at, locked_by, revision)
             select case when g % 4 = 0 then 1 + g % 5 end, 1 + g % 3, json_build_object('n', g), g % 3,
                    case when g % 7 = 0 then $1::timestamptz + interval '2 hours'
                         else $1::timestamptz - g * interval '1 minute' end,
                    1 + g % 2, 25, case when g % 9 = 0 then 'boom' end,
                    $1::timestamptz - interval '1 day', $1::timestamptz - interval '1 day' + g * interval '1 second',
                    case when g % 10 = 0 then 'key-' || g end,
                    case when h is not null then $1::timestamptz - case when g % 4 = 0 then interval '5 hours'
                                                                        else interval '30 minutes' end end,
                    h, g % 4
               from generate_series(1, 60) g,
                    lateral (select (array['live-1', 'live-2', 'dead-a', 'dead-b', null, null])[1 + g % 6] as h) x",
            generation.jobs()
        ),
        &[&base],
    )
    .expect("jobs");
    tx.commit().expect("commit fixture");
}

/// Every row of every table in the schema, plus the job-ID sequence. A `run_at` just after
/// `base` is a clamp to the run's own `now()` and reads as "now", so copies changed moments
/// apart compare equal.
fn snapshot(client: &mut postgres::Client, base: DateTime<Utc>) -> Vec<String> {
    let tables = table_names(client, "graphile_worker");
    let clamped = |value: &serde_json::Value| {
        value
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t > base && t < base + chrono::Duration::minutes(10))
    };
    let mut rows = Vec::new();
    for table in tables {
        let sql = format!("select to_jsonb(t) from graphile_worker.{table} t");
        for r in client.query(&sql, &[]).expect("read table") {
            let mut row: serde_json::Value = r.get(0);
            if row.get("run_at").is_some_and(clamped) {
                row["run_at"] = "now".into();
            }
            rows.push(format!("{table}: {row}"));
        }
    }
    let seq = client
        .query_one(
            "select last_value, is_called from graphile_worker.jobs_id_seq1",
            &[],
        )
        .expect("sequence");
    rows.push(format!(
        "jobs_id_seq1: {} {}",
        seq.get::<_, i64>(0),
        seq.get::<_, bool>(1)
    ));
    rows.sort();
    rows
}

struct Pair {
    /// The copy jobdbctl works on.
    db: TestDb,
    a: postgres::Client,
    /// The copy the reference SQL runs on.
    b: postgres::Client,
    base: DateTime<Utc>,
    _b_db: TestDb,
}

/// Two identical fixtures: one for jobdbctl, one for the reference SQL.
fn pair(generation: Generation, pro: bool) -> Pair {
    let db = TestDb::empty();
    let b_db = TestDb::empty();
    let mut a = db.client();
    let mut b = b_db.client();
    let base: DateTime<Utc> = a.query_one("select now()", &[]).expect("now").get(0);
    build(&mut a, generation, pro, base);
    build(&mut b, generation, pro, base);
    assert_eq!(
        snapshot(&mut a, base),
        snapshot(&mut b, base),
        "copies differ"
    );
    Pair {
        db,
        a,
        b,
        base,
        _b_db: b_db,
    }
}

/// What the database held for these holders, as (jobs, queues).
fn held(
    client: &mut postgres::Client,
    generation: Generation,
    holders: &[&str],
) -> BTreeMap<String, (i64, i64)> {
    let jobs = locks_by_holder(client, generation.jobs());
    let queues = locks_by_holder(client, generation.queues());
    holders
        .iter()
        .map(|h| {
            (
                h.to_string(),
                (
                    jobs.get(*h).copied().unwrap_or(0),
                    queues.get(*h).copied().unwrap_or(0),
                ),
            )
        })
        .filter(|(_, (j, q))| j + q > 0)
        .collect()
}

#[test]
fn with_pro_tables_the_effect_equals_the_runbook_sql_for_each_generation() {
    for generation in ALL {
        let Pair {
            db,
            mut a,
            mut b,
            base,
            ..
        } = pair(generation, true);
        let expected = held(&mut a, generation, &["dead-a", "dead-b"]);
        assert!(!expected.is_empty());

        let dry = db.run(&["--json", "unlock-stale-jobs", "--dry-run"]);
        dry.expect(0);
        assert_eq!(
            snapshot(&mut a, base),
            snapshot(&mut b, base),
            "{generation:?}: --dry-run changed data"
        );

        let out = db.run(&["--json", "unlock-stale-jobs"]);
        out.expect(0);
        let json = out.json();
        assert_eq!(json["profile"], "graphile-worker");
        assert_eq!(json["graphile_generation"], generation.label());
        b.exec(generation.runbook());
        assert_eq!(
            snapshot(&mut a, base),
            snapshot(&mut b, base),
            "{generation:?}: effect differs from the runbook's SQL"
        );
        assert_eq!(released_by_worker(&json), expected, "{generation:?}");
        assert_eq!(
            released_by_worker(&dry.json()),
            expected,
            "{generation:?}: dry run"
        );
        assert!(json["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .all(|w| w["registered"] == false));

        let again = db.run(&["--json", "unlock-stale-jobs"]);
        again.expect(0);
        assert_eq!(
            again.json()["jobs_released"],
            0,
            "{generation:?}: not idempotent"
        );
        assert_eq!(snapshot(&mut a, base), snapshot(&mut b, base));
    }
}

#[test]
fn status_show_params_and_set_job_counter_work_on_each_generation() {
    for generation in ALL {
        let Pair { db, mut a, .. } = pair(generation, true);
        let locked: i64 = locks_by_holder(&mut a, generation.jobs()).values().sum();
        let stale = held(&mut a, generation, &["dead-a", "dead-b"]);
        let stale_jobs: i64 = stale.values().map(|v| v.0).sum();
        let stale_queues: i64 = stale.values().map(|v| v.1).sum();

        let status = db.run(&["--json", "status"]);
        status.expect(0);
        let s = status.json();
        assert_eq!(s["profile"], "graphile-worker");
        assert_eq!(s["graphile_generation"], generation.label());
        assert_eq!(s["schema"], "graphile_worker");
        assert_eq!(s["schema_version"], generation.migrations());
        assert_eq!(s["job_id_sequence"], "graphile_worker.jobs_id_seq1");
        assert_eq!(s["last_used_job_id"], 60);
        assert_eq!(s["jobs"]["total"], 60);
        assert_eq!(s["locked_jobs"], locked);
        assert_eq!(s["stale_locked_jobs"], stale_jobs, "{generation:?}");
        assert_eq!(s["stale_locked_queues"], stale_queues, "{generation:?}");
        let workers: Vec<&str> = s["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .map(|w| w["worker_id"].as_str().expect("id"))
            .collect();
        assert_eq!(workers, ["idle-3", "live-1", "live-2"]);
        db.run(&["status", "--check"]).expect(4);
        let human = db.run(&["status"]);
        human.expect(0).stdout_has(generation.label());

        let params = db.run(&["--json", "show-params"]);
        params.expect(0);
        let by_name: BTreeMap<String, String> = params.json()["params"]
            .as_array()
            .expect("params")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().expect("name").to_string(),
                    match &p["value"] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect();
        assert_eq!(by_name["profile (detected)"], "graphile-worker");
        assert_eq!(
            by_name["schema_version"],
            generation.migrations().to_string()
        );
        assert_eq!(by_name["job_id_sequence"], "graphile_worker.jobs_id_seq1");
        assert_eq!(by_name["last_used_job_id"], "60");

        db.run(&["set-job-counter", "5"]).expect(3);
        let set = db.run(&["--json", "set-job-counter", "1000"]);
        set.expect(0);
        assert_eq!(set.json()["old_last_used_job_id"], 60);
        assert_eq!(set.json()["new_last_used_job_id"], 1000);
        let next: i64 = a
            .query_one(
                &format!(
                    "insert into {} (task_id) values (1) returning id",
                    generation.jobs()
                ),
                &[],
            )
            .expect("insert job")
            .get(0);
        assert_eq!(next, 1001, "{generation:?}: next job id");
        db.run(&["unlock-stale-jobs"]).expect(0);
        db.run(&["status", "--check"]).expect(0);
    }
}

#[test]
fn without_pro_tables_only_older_than_or_named_workers_release() {
    for generation in ALL {
        let Pair {
            db,
            mut a,
            mut b,
            base,
            ..
        } = pair(generation, false);
        let before = snapshot(&mut a, base);

        let refused = db.run(&["unlock-stale-jobs"]);
        refused.expect(3);
        let line = refused.one_line_error();
        assert!(
            line.contains("--older-than") && line.contains("Pro"),
            "{line}"
        );
        db.run(&["unlock-stale-jobs", "--prune-workers", "--older-than", "4h"])
            .expect(2);
        assert_eq!(
            snapshot(&mut a, base),
            before,
            "{generation:?}: a refused run changed data"
        );

        // Stale here means older than Graphile's 4 hours.
        let status = db.run(&["--json", "status"]);
        status.expect(0);
        let old_jobs: i64 = a
            .query_one(
                &format!(
                    "select count(*) from {} where locked_by is not null and locked_at < now() - interval '4 hours'",
                    generation.jobs()
                ),
                &[],
            )
            .expect("old locks")
            .get(0);
        assert!(old_jobs > 0);
        assert_eq!(status.json()["stale_locked_jobs"], old_jobs);
        assert_eq!(status.json()["stale_locked_queues"], 2);
        assert!(db.run(&["status"]).stdout.contains("--older-than 4h"));

        let aged = db.run(&["--json", "unlock-stale-jobs", "--older-than", "4h"]);
        aged.expect(0);
        assert_eq!(aged.json()["jobs_released"], old_jobs);
        b.batch_execute(&generation.lock_reset())
            .expect("lock reset");
        assert_eq!(
            snapshot(&mut a, base),
            snapshot(&mut b, base),
            "{generation:?}: --older-than differs from Graphile's lock reset"
        );

        let named = db.run(&[
            "--json",
            "unlock-stale-jobs",
            "--worker",
            "dead-a",
            "--worker",
            "live-1",
        ]);
        named.expect(0);
        generation.force_unlock(&mut b, &["dead-a", "live-1"]);
        assert_eq!(
            snapshot(&mut a, base),
            snapshot(&mut b, base),
            "{generation:?}: --worker differs from force_unlock_workers"
        );
        assert!(released_by_worker(&named.json()).contains_key("live-1"));
    }
}

#[test]
fn with_pro_tables_worker_and_older_than_follow_the_live_set() {
    let generation = Generation::V016;
    let Pair {
        db,
        mut a,
        mut b,
        base,
        ..
    } = pair(generation, true);
    let before = snapshot(&mut a, base);
    let live = db.run(&["unlock-stale-jobs", "--worker", "live-1"]);
    live.expect(3);
    assert!(live.one_line_error().contains("live-1"));
    let unknown = db.run(&["unlock-stale-jobs", "--worker", "nosuch"]);
    unknown.expect(2);
    assert!(unknown.one_line_error().contains("nosuch"));
    let bad = db.run(&["unlock-stale-jobs", "--older-than", "4 fortnights"]);
    bad.expect(2);
    assert!(bad.one_line_error().contains("--older-than"));
    db.run(&["unlock-stale-jobs", "--prune-workers"]).expect(2);
    assert_eq!(snapshot(&mut a, base), before, "refused runs changed data");

    // Every id in Worker Pro's table is live, whether it holds anything or not.
    db.run(&["unlock-stale-jobs", "--worker", "idle-3"])
        .expect(3);

    db.run(&["unlock-stale-jobs", "--worker", "dead-a"])
        .expect(0);
    generation.force_unlock(&mut b, &["dead-a"]);
    assert_eq!(snapshot(&mut a, base), snapshot(&mut b, base));
    db.run(&["unlock-stale-jobs", "--worker", "live-1", "--force"])
        .expect(0);
    generation.force_unlock(&mut b, &["live-1"]);
    assert_eq!(snapshot(&mut a, base), snapshot(&mut b, base));

    // Old locks of live ids go too, with Graphile's reset treatment; dead ids' by the runbook.
    let both = db.run(&["--json", "unlock-stale-jobs", "--older-than", "4h"]);
    both.expect(0);
    b.batch_execute(&generation.lock_reset())
        .expect("lock reset");
    b.exec(generation.runbook());
    assert_eq!(snapshot(&mut a, base), snapshot(&mut b, base));
    assert!(LIVE
        .iter()
        .any(|id| released_by_worker(&both.json()).contains_key(*id)));
}

#[test]
fn unknown_profile_is_a_usage_error() {
    let Pair {
        db, mut a, base, ..
    } = pair(Generation::V017, true);
    let before = snapshot(&mut a, base);
    let flag = db.run(&["--profile", "nosuch", "unlock-stale-jobs"]);
    flag.expect(2);
    assert!(flag.stderr.contains("nosuch"));
    db.write_config("profile = \"graphile\"\n");
    let configured = db.run(&["unlock-stale-jobs"]);
    configured.expect(2);
    assert!(configured.one_line_error().contains("graphile-worker"));
    // The native profile asked for explicitly is not there.
    db.remove_config();
    db.run(&["--profile", "jobdb", "unlock-stale-jobs"])
        .expect(1);
    assert_eq!(snapshot(&mut a, base), before);
}

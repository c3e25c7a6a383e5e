//! Where a database keeps its jobs, locks, worker registry and job-ID sequence (docs/unlock-stale-jobs.md,
//! the `graphile-worker` profile).

use crate::db::schema::{self, DEFAULT_SCHEMA};
use crate::db::{qualified, Sql};
use crate::error::{failure, Exit};

pub const GRAPHILE_DEFAULT_SCHEMA: &str = "graphile_worker";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphileGeneration {
    /// Before v0.16: `jobs`, `job_queues`.
    PreV016,
    /// v0.16.x: `_private_jobs`, `_private_job_queues`; Pro live set `_private_pro_workers.worker_id`.
    V016,
    /// v0.17+: the same tables; Pro locks held by pool ids, live set `_private_pro_pools.pool_id`.
    V017Plus,
}

/// Graphile Worker's migration `000019`: the v0.17 marker of the worker-to-pool lock change.
const FIRST_POOL_MIGRATION: i32 = 19;

impl GraphileGeneration {
    /// The Pro table and column holding the ids that may hold locks, as the Pro runbook names
    /// them for this generation.
    fn pro_live_set(self) -> (&'static str, &'static str) {
        match self {
            GraphileGeneration::PreV016 | GraphileGeneration::V016 => {
                ("_private_pro_workers", "worker_id")
            }
            GraphileGeneration::V017Plus => ("_private_pro_pools", "pool_id"),
        }
    }
}

/// What says whether a lock holder is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveSet {
    /// The native `workers` registry: live while the last heartbeat is within `stale_after`.
    Heartbeats,
    /// Graphile Worker Pro: an id is live while it is in `table.column` (Pro's own sweeper
    /// removes workers that stop checking in).
    Pro {
        table: &'static str,
        column: &'static str,
    },
    /// Graphile Worker without Pro: nothing records which workers are alive.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    Jobdb,
    GraphileWorker(GraphileGeneration),
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub kind: ProfileKind,
    pub schema: String,
    pub live_set: LiveSet,
}

impl Profile {
    pub fn name(&self) -> &'static str {
        match self.kind {
            ProfileKind::Jobdb => "jobdb",
            ProfileKind::GraphileWorker(_) => "graphile-worker",
        }
    }

    pub fn generation_label(&self) -> Option<&'static str> {
        match self.kind {
            ProfileKind::Jobdb => None,
            ProfileKind::GraphileWorker(GraphileGeneration::PreV016) => Some("before v0.16"),
            ProfileKind::GraphileWorker(GraphileGeneration::V016) => Some("v0.16.x"),
            ProfileKind::GraphileWorker(GraphileGeneration::V017Plus) => Some("v0.17+"),
        }
    }

    /// The quoted, schema-qualified jobs table.
    pub fn jobs_table(&self) -> String {
        match self.kind {
            ProfileKind::Jobdb | ProfileKind::GraphileWorker(GraphileGeneration::PreV016) => {
                qualified(&self.schema, "jobs")
            }
            ProfileKind::GraphileWorker(_) => qualified(&self.schema, "_private_jobs"),
        }
    }

    pub fn queues_table(&self) -> String {
        match self.kind {
            ProfileKind::Jobdb | ProfileKind::GraphileWorker(GraphileGeneration::PreV016) => {
                qualified(&self.schema, "job_queues")
            }
            ProfileKind::GraphileWorker(_) => qualified(&self.schema, "_private_job_queues"),
        }
    }

    /// The quoted, schema-qualified table behind a `LiveSet::Pro`, and its id column.
    pub fn pro_table(&self) -> Option<(String, &'static str)> {
        match self.live_set {
            LiveSet::Pro { table, column } => Some((qualified(&self.schema, table), column)),
            _ => None,
        }
    }

    pub fn is_native(&self) -> bool {
        self.kind == ProfileKind::Jobdb
    }

    /// Fails with a clear message for commands that need the native schema's tables.
    pub fn require_native(&self, command: &str) -> anyhow::Result<()> {
        if self.is_native() {
            return Ok(());
        }
        Err(failure(
            Exit::Usage,
            format!(
                "{command} needs the native jobdb schema; the {} profile (schema {:?}) has no such tables",
                self.name(),
                self.schema
            ),
        ))
    }
}

/// Which profile the user asked for, if any (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChoice {
    Jobdb,
    GraphileWorker,
}

impl ProfileChoice {
    /// The name `--profile` and `profile` in jobdbctl.toml take.
    pub fn name(self) -> &'static str {
        match self {
            ProfileChoice::Jobdb => "jobdb",
            ProfileChoice::GraphileWorker => "graphile-worker",
        }
    }

    pub fn parse(name: &str) -> anyhow::Result<ProfileChoice> {
        match name {
            "jobdb" => Ok(ProfileChoice::Jobdb),
            "graphile-worker" => Ok(ProfileChoice::GraphileWorker),
            other => Err(failure(
                Exit::Usage,
                format!("unknown profile {other:?}; known profiles: jobdb, graphile-worker"),
            )),
        }
    }

    pub fn default_schema(self) -> &'static str {
        match self {
            ProfileChoice::Jobdb => DEFAULT_SCHEMA,
            ProfileChoice::GraphileWorker => GRAPHILE_DEFAULT_SCHEMA,
        }
    }
}

/// Finds the job schema from the catalog. `Ok(None)`: nothing is there yet (run `init`).
pub fn detect(
    db: &mut impl Sql,
    choice: Option<ProfileChoice>,
    schema: Option<&str>,
) -> anyhow::Result<Option<Profile>> {
    let candidates: Vec<ProfileChoice> = match choice {
        Some(c) => vec![c],
        None => vec![ProfileChoice::Jobdb, ProfileChoice::GraphileWorker],
    };
    for c in candidates {
        let schema_name = schema.unwrap_or(c.default_schema());
        let found = match c {
            ProfileChoice::Jobdb => schema::is_native(db, schema_name)?
                .then_some((ProfileKind::Jobdb, LiveSet::Heartbeats)),
            ProfileChoice::GraphileWorker => graphile_generation(db, schema_name)?
                .map(|(generation, live)| (ProfileKind::GraphileWorker(generation), live)),
        };
        if let Some((kind, live_set)) = found {
            return Ok(Some(Profile {
                kind,
                schema: schema_name.to_string(),
                live_set,
            }));
        }
    }
    Ok(None)
}

/// The Graphile Worker generation and Pro live set from the catalog, as the Pro runbook tells
/// them apart. Facts from Graphile Worker's published migrations: `000016` (v0.16) renamed
/// `jobs`/`job_queues` to `_private_jobs`/`_private_job_queues` (and `000017` made `jobs` a
/// view); `000019` (v0.17) is the breaking marker of the jump from worker-held to pool-held
/// locks. The `migrations` table is what Graphile itself reads its version from.
pub fn graphile_generation(
    db: &mut impl Sql,
    schema: &str,
) -> anyhow::Result<Option<(GraphileGeneration, LiveSet)>> {
    let tables: Vec<String> = db
        .query(
            "graphile_tables",
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
                AND c.relname IN ('migrations', 'jobs', '_private_jobs',
                                  '_private_pro_workers', '_private_pro_pools')",
            &[&schema],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let has = |name: &str| tables.iter().any(|t| t == name);
    if !has("migrations") {
        return Ok(None);
    }
    let generation = if has("_private_jobs") {
        let version: Option<i32> = db
            .query_one(
                "graphile_schema_version",
                &format!(
                    "SELECT max(id)::int4 FROM {}",
                    qualified(schema, "migrations")
                ),
                &[],
            )?
            .get(0);
        if version.unwrap_or(0) >= FIRST_POOL_MIGRATION {
            GraphileGeneration::V017Plus
        } else {
            GraphileGeneration::V016
        }
    } else if has("jobs") {
        GraphileGeneration::PreV016
    } else {
        return Ok(None);
    };
    let (table, column) = generation.pro_live_set();
    let live_set = if has(table) {
        LiveSet::Pro { table, column }
    } else {
        LiveSet::Unknown
    };
    Ok(Some((generation, live_set)))
}

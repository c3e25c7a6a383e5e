//! Where a database keeps its jobs, locks, worker registry and job-ID sequence (SPEC §2).

use crate::db::schema::{self, SchemaState, DEFAULT_SCHEMA};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    Jobdb,
    GraphileWorker(GraphileGeneration),
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub kind: ProfileKind,
    pub schema: String,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileChoice {
    Jobdb,
    GraphileWorker,
}

impl ProfileChoice {
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
            ProfileChoice::Jobdb => match schema::inspect(db, schema_name)? {
                SchemaState::Native(_) => Some(ProfileKind::Jobdb),
                _ => None,
            },
            ProfileChoice::GraphileWorker => {
                graphile_generation(db, schema_name)?.map(ProfileKind::GraphileWorker)
            }
        };
        if let Some(kind) = found {
            return Ok(Some(Profile {
                kind,
                schema: schema_name.to_string(),
            }));
        }
    }
    Ok(None)
}

/// The Graphile Worker generation from the catalog, as the Pro runbook tells them apart.
pub fn graphile_generation(
    db: &mut impl Sql,
    schema: &str,
) -> anyhow::Result<Option<GraphileGeneration>> {
    let row = db.query_one(
        "graphile_tables",
        "SELECT to_regclass(quote_ident($1) || '.migrations') IS NOT NULL,
                to_regclass(quote_ident($1) || '._private_jobs') IS NOT NULL,
                EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = $1 AND c.relname = 'jobs' AND c.relkind IN ('r', 'p')),
                to_regclass(quote_ident($1) || '._private_pro_pools') IS NOT NULL",
        &[&schema],
    )?;
    let (has_migrations, private_jobs, plain_jobs, pro_pools): (bool, bool, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if !has_migrations {
        return Ok(None);
    }
    Ok(match (private_jobs, plain_jobs) {
        (true, _) if pro_pools => Some(GraphileGeneration::V017Plus),
        (true, _) => {
            // Without Pro tables, v0.17 is told from v0.16 by its migrations (v0.17 ships 000019+).
            let max: Option<i32> = db
                .query_one(
                    "graphile_schema_version",
                    &format!("SELECT max(id) FROM {}", qualified(schema, "migrations")),
                    &[],
                )?
                .get(0);
            if max.unwrap_or(0) >= 19 && !has_pro_workers(db, schema)? {
                Some(GraphileGeneration::V017Plus)
            } else {
                Some(GraphileGeneration::V016)
            }
        }
        (false, true) => Some(GraphileGeneration::PreV016),
        (false, false) => None,
    })
}

fn has_pro_workers(db: &mut impl Sql, schema: &str) -> anyhow::Result<bool> {
    Ok(db
        .query_one(
            "graphile_has_pro_workers",
            "SELECT to_regclass(quote_ident($1) || '._private_pro_workers') IS NOT NULL",
            &[&schema],
        )?
        .get(0))
}

//! Online restore: the archive's DDL builds a staging schema, loader threads COPY its
//! chunks in as they are read, indexes and constraints are built in parallel phases, and one
//! transaction swaps the staging schema for the live one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _};
use indicatif::ProgressBar;

use super::{live_workers_refusal, Request, Restored};
use crate::archive::{self, Manifest, Mode, SchemaDdl};
use crate::context::Ctx;
use crate::db::profile::{self, ProfileChoice};
use crate::db::{counter, load, workers, Db, Profile};
use crate::error::{exit_code_of, failure, Exit};
use crate::highwater;
use crate::output::confirm;

/// Chunks in flight between the reader and the loaders.
const LOADERS: usize = 2;

/// An online restore in progress: the main connection holds the lock and owns the staging
/// schema; loader threads COPY chunks into it.
pub struct Online {
    db: Db,
    schema: String,
    staging: String,
    replaced: String,
    header: Manifest,
    /// The live schema's profile, when there is one to replace.
    old: Option<Profile>,
    old_exists: bool,
    ddl: Option<SchemaDdl>,
    staged: bool,
    chunk: Vec<u8>,
    loaders: Option<Loaders>,
    bar: ProgressBar,
}

struct Loaders {
    send: SyncSender<(usize, Vec<u8>)>,
    handles: Vec<JoinHandle<anyhow::Result<Db>>>,
    rows: Arc<Vec<AtomicU64>>,
    failed: Arc<AtomicBool>,
}

impl Online {
    /// Everything that can refuse the restore happens here, before the staging schema exists.
    pub fn prepare(
        ctx: &Ctx,
        request: &Request,
        header: &Manifest,
        bar: ProgressBar,
    ) -> anyhow::Result<Online> {
        let schema = header
            .schema
            .clone()
            .ok_or_else(|| failure(Exit::BadArchive, "online archive header names no schema"))?;
        if let Some(wanted) = ctx.schema_override() {
            if wanted != schema {
                return Err(failure(
                    Exit::Usage,
                    format!(
                        "the archive holds schema {schema:?}, not {wanted:?}; restore puts it back under its own name (drop --schema)"
                    ),
                ));
            }
        }
        let choice = header
            .profile
            .as_deref()
            .map(ProfileChoice::parse)
            .transpose()
            .map_err(|e| failure(Exit::BadArchive, format!("archive header: {e}")))?;
        let mut db = ctx.connect()?;
        db.try_operation_lock("backup", "backup or restore")?;
        let (staging, replaced) = load::work_schemas(&schema);
        for name in load::drop_leftovers(&mut db, &schema)? {
            ctx.out.info(format!(
                "dropped {name:?}, left behind by an interrupted restore"
            ));
        }
        let old_exists = load::schema_exists(&mut db, &schema)?;
        let old = if old_exists {
            profile::detect(&mut db, choice, Some(&schema))?
        } else {
            None
        };
        let stale_after = ctx.config.stale_after.value;
        match &old {
            Some(p) => {
                let live = workers::live(&mut db, p, stale_after)?;
                if !live.is_empty() {
                    return Err(live_workers_refusal(&live, stale_after));
                }
                if load::has_jobs(&mut db, p)? && !request.force {
                    return Err(failure(
                        Exit::Refused,
                        format!(
                            "refusing to restore over schema {schema:?}: it has jobs, which would be lost (jobs created after the backup are gone); pass --force to replace it"
                        ),
                    ));
                }
            }
            None if old_exists && !request.force => {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "refusing to restore over schema {schema:?}: it exists but is not a job schema of the archive's profile; pass --force to replace it"
                    ),
                ))
            }
            None => {}
        }
        if old_exists {
            let outside = load::outside_dependents(&mut db, &schema)?;
            if !outside.is_empty() {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "refusing to restore over schema {schema:?}: objects outside it depend on it and would be dropped with it ({}); drop them first and recreate them after the restore",
                        outside.join(", ")
                    ),
                ));
            }
            // What would be lost, counted only when someone is asked.
            let stake = match (&old, request.yes) {
                (Some(p), false) => format!(" ({})", highwater::at_stake(&mut db, p)?),
                (None, false) => " (not a job schema)".to_string(),
                (_, true) => String::new(),
            };
            confirm(
                &format!(
                    "replace schema {schema:?}{stake} with the backup taken {}",
                    header.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                request.yes,
            )?;
        }
        Ok(Online {
            db,
            schema,
            staging,
            replaced,
            header: header.clone(),
            old,
            old_exists,
            ddl: None,
            staged: false,
            chunk: Vec::new(),
            loaders: None,
            bar,
        })
    }

    pub fn file(
        &mut self,
        ctx: &Ctx,
        name: &str,
        piece: Vec<u8>,
        last: bool,
    ) -> anyhow::Result<()> {
        if name == archive::SCHEMA {
            self.chunk.extend_from_slice(&piece);
            if last {
                let ddl: SchemaDdl = serde_json::from_slice(&std::mem::take(&mut self.chunk))
                    .map_err(|e| {
                        failure(
                            Exit::BadArchive,
                            format!("{} is not valid: {e}", archive::SCHEMA),
                        )
                    })?;
                self.stage(ctx, &ddl)?;
                self.ddl = Some(ddl);
            }
            return Ok(());
        }
        let Some(table) = archive::parse_data_entry_name(name) else {
            return Ok(());
        };
        let loaders = self.loaders.as_ref().ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!("data entry {name:?} comes before {}", archive::SCHEMA),
            )
        })?;
        let data = if self.chunk.is_empty() && last {
            piece
        } else {
            self.chunk.extend_from_slice(&piece);
            if !last {
                return Ok(());
            }
            std::mem::take(&mut self.chunk)
        };
        if loaders.send.send((table, data)).is_err() || loaders.failed.load(Ordering::Relaxed) {
            return Err(self.loader_error());
        }
        Ok(())
    }

    /// Creates the staging schema and starts the loaders.
    fn stage(&mut self, ctx: &Ctx, ddl: &SchemaDdl) -> anyhow::Result<()> {
        self.staged = true;
        load::create_staging(&mut self.db, &self.staging, ddl)?;
        let (send, recv) = sync_channel::<(usize, Vec<u8>)>(LOADERS * 2);
        let recv = Arc::new(Mutex::new(recv));
        let rows: Arc<Vec<AtomicU64>> = Arc::new(
            self.header
                .tables
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
        );
        let failed = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for _ in 0..LOADERS {
            let mut db = ctx.connect()?;
            load::prepare_worker_session(&mut db, &self.staging)?;
            let (recv, rows, failed, bar) = (
                Arc::clone(&recv),
                Arc::clone(&rows),
                Arc::clone(&failed),
                self.bar.clone(),
            );
            let tables = self.header.tables.clone();
            let staging = self.staging.clone();
            handles.push(std::thread::spawn(move || -> anyhow::Result<Db> {
                let result = (|| loop {
                    let next = recv
                        .lock()
                        .map_err(|_| anyhow!("loader queue poisoned"))?
                        .recv();
                    let Ok((t, data)) = next else { return Ok(()) };
                    let table = &tables[t];
                    let n = load::copy_in(&mut db, &staging, &table.name, &table.columns, &data)
                        .with_context(|| format!("loading table {:?} failed", table.name))?;
                    let total: u64 = rows[t].fetch_add(n, Ordering::Relaxed) + n;
                    bar.set_message(format!("{total} rows into {:?}", table.name));
                })();
                if let Err(e) = result {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                Ok(db)
            }));
        }
        self.loaders = Some(Loaders {
            send,
            handles,
            rows,
            failed,
        });
        Ok(())
    }

    /// Stops the loaders and returns the first loader's error.
    fn loader_error(&mut self) -> anyhow::Error {
        match self.stop_loaders() {
            Ok(_) => anyhow!("a loader connection stopped"),
            Err(e) => e,
        }
    }

    fn stop_loaders(&mut self) -> anyhow::Result<Vec<Db>> {
        let Some(loaders) = self.loaders.take() else {
            return Ok(Vec::new());
        };
        drop(loaders.send);
        let mut dbs = Vec::new();
        let mut first_error = None;
        for h in loaders.handles {
            match h.join() {
                Ok(Ok(db)) => dbs.push(db),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow!("a loader thread panicked"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(dbs),
        }
    }

    /// After the archive checked out whole: indexes, constraints, triggers, then the swap.
    pub fn finish(
        mut self: Box<Self>,
        ctx: &Ctx,
        request: &Request,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        match self.complete(ctx, request, manifest) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.abandon(e)),
        }
    }

    fn complete(
        &mut self,
        ctx: &Ctx,
        request: &Request,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        let ddl = self.ddl.take().ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!("archive has no {}", archive::SCHEMA),
            )
        })?;
        let loaders_rows = self.loaders.as_ref().map(|l| Arc::clone(&l.rows));
        let mut dbs = self.stop_loaders()?;
        let mut rows = 0;
        for (i, t) in manifest.tables.iter().enumerate() {
            let loaded = loaders_rows
                .as_ref()
                .and_then(|r| r.get(i))
                .map_or(0, |n| n.load(Ordering::Relaxed));
            if Some(loaded) != t.rows {
                return Err(failure(
                    Exit::BadArchive,
                    format!(
                        "table {:?}: loaded {loaded} rows but the manifest declares {:?}",
                        t.name, t.rows
                    ),
                ));
            }
            rows += loaded;
        }
        let choice = manifest
            .profile
            .as_deref()
            .map(ProfileChoice::parse)
            .transpose()?;
        let staged = profile::detect(&mut self.db, choice, Some(&self.staging))?;
        let rescheduled = match &staged {
            Some(p) => load::reschedule_locked_jobs(&mut self.db, p)?,
            None => 0,
        };
        self.bar.set_message("building indexes and constraints");
        run_phases(&mut dbs, &ddl.post_data)?;
        drop(dbs);
        let (last_used, archived, high_water) = self.swap(ctx, request)?;
        Ok(Restored {
            mode: Mode::Online,
            schema: Some(self.schema.clone()),
            created_at: manifest.created_at.to_rfc3339(),
            last_used_job_id: last_used,
            archived_last_used_job_id: archived,
            high_water,
            rescheduled,
            rows,
            seconds: 0.0,
        })
    }

    /// One transaction: re-check, record the replaced counter in the high-water mark, swap,
    /// set the counter. Killed before COMMIT, nothing of it happened (but a mark kept in a
    /// file may already be raised, which only ever records a counter that was real).
    /// Returns the last used job ID, the archive's, and the high-water mark.
    #[allow(clippy::type_complexity)]
    fn swap(
        &mut self,
        ctx: &Ctx,
        request: &Request,
    ) -> anyhow::Result<(Option<i64>, Option<i64>, Option<i64>)> {
        let (schema, staging, replaced, old_exists) = (
            self.schema.clone(),
            self.staging.clone(),
            self.replaced.clone(),
            self.old_exists,
        );
        let old = self.old.clone();
        let choice = self
            .header
            .profile
            .as_deref()
            .map(ProfileChoice::parse)
            .transpose()?;
        let mut tx = self.db.transaction()?;
        let mut old_counter = None;
        if let Some(p) = &old {
            // Workers or jobs may have appeared while the archive loaded.
            load::lock_live_jobs(&mut tx, p)?;
            let live = workers::live(&mut tx, p, ctx.config.stale_after.value)?;
            if !live.is_empty() {
                return Err(live_workers_refusal(&live, ctx.config.stale_after.value));
            }
            if load::has_jobs(&mut tx, p)? && !request.force {
                return Err(failure(
                    Exit::Refused,
                    format!("refusing to restore over schema {schema:?}: jobs were added while the archive loaded; pass --force to replace it"),
                ));
            }
            if let Ok(seq) = counter::sequence_name(&mut tx, p) {
                old_counter = Some(counter::last_used(&mut tx, &seq)?);
            }
        }
        let high_water = match old_counter {
            Some(current) => Some(highwater::raise(ctx, &mut tx, &schema, current)?),
            None => highwater::read(ctx, Some(&mut tx), &schema)?,
        };
        load::swap(&mut tx, &schema, &staging, &replaced, old_exists)?;
        let (mut last_used, mut archived) = (None, None);
        if let Some(p) = profile::detect(&mut tx, choice, Some(&schema))? {
            if let Ok(seq) = counter::sequence_name(&mut tx, &p) {
                let mut last = counter::last_used(&mut tx, &seq)?;
                archived = Some(last);
                if let (true, Some(mark)) = (request.avoid_id_reuse, high_water) {
                    if mark > last {
                        counter::set_last_used(&mut tx, &seq, mark)?;
                        last = counter::last_used(&mut tx, &seq)?;
                    }
                }
                last_used = Some(last);
            }
        }
        tx.commit()?;
        self.staged = false;
        Ok((last_used, archived, high_water))
    }

    /// Cleans up after a failure: the live schema was never touched; the staging schema goes.
    pub fn abandon(mut self: Box<Self>, err: anyhow::Error) -> anyhow::Error {
        let loader_err = self.stop_loaders().err();
        // A loader error (e.g. a COPY rejecting a row) explains more than "stopped", unless
        // the archive itself was found bad.
        let err = match loader_err {
            Some(le) if exit_code_of(&err) != Exit::BadArchive => le,
            _ => err,
        };
        if self.staged {
            let _ = load::drop_leftovers(&mut self.db, &self.schema);
        }
        err
    }
}

/// Runs each phase's statements spread over the connections; a phase starts when the one
/// before has finished.
fn run_phases(dbs: &mut [Db], phases: &[Vec<String>]) -> anyhow::Result<()> {
    if dbs.is_empty() {
        return Err(anyhow!("no connection to build the schema with"));
    }
    for phase in phases {
        let queue = Mutex::new(phase.iter().collect::<VecDeque<_>>());
        let failed = AtomicBool::new(false);
        let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = dbs
                .iter_mut()
                .map(|db| {
                    let (queue, failed) = (&queue, &failed);
                    s.spawn(move || -> anyhow::Result<()> {
                        loop {
                            if failed.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            let next = queue
                                .lock()
                                .map_err(|_| anyhow!("statement queue poisoned"))?
                                .pop_front();
                            let Some(stmt) = next else { return Ok(()) };
                            if let Err(e) = load::run_statement(db, stmt) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a schema thread panicked")))
                })
                .collect()
        });
        for r in results {
            r?;
        }
    }
    Ok(())
}

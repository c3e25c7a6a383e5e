//! Finalizing one batched background migration: every remaining batch runs now, in batch
//! transactions sized to a target duration, until the migration is finished (see the
//! module comment of `crate::background_migrations` for what a kill leaves).

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::context::Ctx;
use crate::db::backfill::{self, BatchTarget, JobClass, SubRange};
use crate::db::batched_migrations::{
    self as bm, status, BackgroundMigration, BatchJob, NewJob, RunStats, Tables,
};
use crate::db::status::migration_status_name;
use crate::db::{health, sql_state, workers, Db, Profile};
use crate::error::{failure, Exit};
use crate::output::human_range;
use crate::shared::batch_sizer::BatchSizer;

/// A batch is tried at most this often per finalize run before the migration fails.
pub const MAX_ATTEMPTS: i16 = 3;
/// Bounds of the adaptive batch size (GitLab's optimizer uses the same).
const MIN_BATCH_SIZE: i64 = 1_000;
const MAX_BATCH_SIZE: i64 = 2_000_000;

/// How a finalize run batches and paces its work. `None` takes the migration's own value.
#[derive(Debug, Clone)]
pub struct FinalizeOptions {
    /// Values of the batching column per batch transaction, to start with.
    pub batch_size: Option<i32>,
    /// Rows per UPDATE statement inside a batch.
    pub sub_batch_size: Option<i32>,
    /// Pause between sub-batches in milliseconds. Given, it always applies; the migration's
    /// own pause applies only while a live worker exists (it protects a running engine).
    pub pause_ms: Option<u32>,
    /// The batch size adapts so a batch transaction takes about this long; zero keeps it
    /// fixed.
    pub target_batch_time: Duration,
    /// Longest any statement of a batch may run; a batch that hits it is halved and retried.
    pub statement_timeout: Duration,
    /// Longest a batch waits for a lock held by the engine; then it is halved and retried.
    pub lock_timeout: Duration,
    /// Batches wait while a standby replays more than this far behind.
    pub max_replication_lag: Duration,
}

/// The defaults of `finalize-migration`'s flags; `migrate --finalize` runs with these.
impl Default for FinalizeOptions {
    fn default() -> Self {
        FinalizeOptions {
            batch_size: None,
            sub_batch_size: None,
            pause_ms: None,
            target_batch_time: Duration::from_millis(300),
            statement_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(2),
            max_replication_lag: Duration::from_secs(30),
        }
    }
}

/// What a finalize run did, with its figures read back from the batch jobs it ran.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub id: i64,
    pub job_class_name: String,
    pub table: String,
    pub column_name: String,
    pub job_arguments: serde_json::Value,
    pub status: &'static str,
    pub already_finished: bool,
    #[serde(flatten)]
    pub stats: RunStats,
    /// Batch attempts that failed and were retried.
    pub failed_attempts: i64,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
    pub final_batch_size: Option<i64>,
    /// Seconds spent in the pauses between sub-batches.
    pub paused_s: f64,
}

impl Summary {
    fn already_finished(m: &BackgroundMigration) -> Summary {
        Summary {
            id: m.id,
            job_class_name: m.job_class_name.clone(),
            table: m.table_name.clone(),
            column_name: m.column_name.clone(),
            job_arguments: m.job_arguments.clone(),
            status: m.status_name,
            already_finished: true,
            stats: RunStats {
                batches: 0,
                rows: 0,
                rows_updated: 0,
                batch_ms_p50: None,
                batch_ms_p99: None,
                batch_ms_max: None,
            },
            failed_attempts: 0,
            elapsed_s: 0.0,
            rows_per_s: 0.0,
            final_batch_size: None,
            paused_s: 0.0,
        }
    }
}

/// GitLab's lookup by class, table, column and arguments; a miss names the likely ones.
pub fn find_by_configuration(
    db: &mut Db,
    tables: &Tables,
    class: &str,
    table: &str,
    column: &str,
    arguments: &serde_json::Value,
) -> anyhow::Result<i64> {
    if let Some(m) = bm::by_configuration(db, tables, class, table, column, arguments)? {
        return Ok(m.id);
    }
    let close = bm::close_matches(db, tables, class, table, column)?;
    let hint = if close.is_empty() {
        "there are no candidates; see `jobdbctl background-migrations list`".to_string()
    } else {
        let names: Vec<String> = close
            .iter()
            .take(5)
            .map(|m| {
                format!(
                    "--id {} {} {} {} '{}' ({})",
                    m.id,
                    m.job_class_name,
                    m.table_name,
                    m.column_name,
                    m.job_arguments,
                    m.status_name
                )
            })
            .collect();
        format!("close matches: {}", names.join("; "))
    };
    Err(failure(
        Exit::Usage,
        format!("no background migration {class} {table} {column} '{arguments}'; {hint}"),
    ))
}

/// Finalizes migration `id` on `db`'s job schema: validates it, takes the per-migration
/// lock (exit 7 when another finalizer holds it), runs every remaining batch, and returns
/// the summary. A failed migration is an error (exit 1) naming the batch and its error.
pub fn finalize_by_id(
    ctx: &Ctx,
    db: &mut Db,
    id: i64,
    opts: &FinalizeOptions,
) -> anyhow::Result<Summary> {
    let profile = ctx.writable_profile(db)?;
    profile.require_native("finalize-migration")?;
    let tables = Tables::new(&profile.schema);
    let m = super::find(db, &tables, id)?;
    if bm::is_finished(m.status) {
        return Ok(Summary::already_finished(&m));
    }
    let context = || format!("background migration {id} ({})", m.job_class_name);
    let class =
        JobClass::parse(&m.job_class_name, &m.job_arguments).map_err(|e| e.context(context()))?;
    let target = backfill::resolve(
        db,
        &profile.schema,
        &m.table_name,
        &m.column_name,
        &class,
        opts.lock_timeout,
    )
    .map_err(|e| e.context(context()))?;
    if !target.indexed {
        ctx.out.warn(format!(
            "no index leads with {}.{}; every batch will scan the table",
            target.display, m.column_name
        ));
    }
    let lock = format!("finalize-migration:{}:{id}", profile.schema);
    db.try_operation_lock(
        &lock,
        &format!("finalize-migration of background migration {id}"),
    )?;
    let result = Finalizer {
        ctx,
        profile: &profile,
        tables: &tables,
        migration: &m,
        target: &target,
        opts,
        paused: Cell::new(Duration::ZERO),
    }
    .run(db);
    let released = db.release_operation_lock(&lock);
    let summary = result?;
    released?;
    Ok(summary)
}

struct Finalizer<'a> {
    ctx: &'a Ctx,
    profile: &'a Profile,
    tables: &'a Tables,
    migration: &'a BackgroundMigration,
    target: &'a BatchTarget,
    opts: &'a FinalizeOptions,
    /// Time spent in pauses so far, for the progress line and the summary.
    paused: Cell<Duration>,
}

enum Outcome {
    Succeeded { rows: i64, took: Duration },
    Failed { attempts: i16, error: anyhow::Error },
}

const PROGRESS_TEMPLATE: &str =
    "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, ETA {eta}, {msg}";

impl Finalizer<'_> {
    fn run(&self, db: &mut Db) -> anyhow::Result<Summary> {
        let (m, t) = (self.migration, self.tables);
        let began = Instant::now();
        // Another finalizer may have finished it between the lookup and the lock.
        match bm::status_of(db, t, m.id)? {
            Some(s) if bm::is_finished(s) => {
                let now = bm::by_id(db, t, m.id)?.unwrap_or_else(|| m.clone());
                return Ok(Summary::already_finished(&now));
            }
            Some(_) => {}
            None => {
                return Err(failure(
                    Exit::Runtime,
                    format!("background migration {} was deleted", m.id),
                ))
            }
        }
        bm::transition(
            db,
            t,
            m.id,
            &[
                status::PAUSED,
                status::ACTIVE,
                status::FAILED,
                status::FINALIZING,
            ],
            status::FINALIZING,
        )?;
        bm::reset_exhausted_jobs(db, t, m.id, MAX_ATTEMPTS)?;

        let initial = i64::from(self.opts.batch_size.unwrap_or(m.batch_size)).max(1);
        let max = m
            .max_batch_size
            .map_or(MAX_BATCH_SIZE.max(initial), i64::from)
            .max(1);
        if initial > max {
            self.ctx.out.info(format!(
                "batch size {initial} exceeds the migration's max_batch_size {max}; using {max}"
            ));
        }
        let mut sizer = BatchSizer::new(
            initial.min(max),
            MIN_BATCH_SIZE.min(initial).min(max),
            max,
            (!self.opts.target_batch_time.is_zero()).then_some(self.opts.target_batch_time),
        );
        let pause_ms = self.opts.pause_ms.map_or(m.pause_ms.max(0), |p| p as i32);

        let (done, pending) = bm::rows_done_and_pending(db, t, m.id)?;
        let from = self.next_uncovered(db)?;
        let remaining = match from {
            Some(from) => backfill::estimate_rows(db, self.target, from, m.max_value)?,
            None => 0,
        };
        let bar = self.ctx.out.progress(
            (done + pending + remaining).max(1) as u64,
            PROGRESS_TEMPLATE,
        );
        bar.set_position(done.max(0) as u64);
        bar.reset_eta();

        let mut ran = Vec::new();
        let mut failed_attempts = 0;
        loop {
            self.check_still_finalizing(db)?;
            self.wait_until_healthy(db, &bar)?;
            // Each attempt is recorded and committed before the batch's transaction, so a
            // run killed mid-batch leaves a visible `running` job whose attempt counts.
            // A new job comes with its sub-ranges, read while finding its end; a job left
            // over (pending, failed, killed) reads them inside its own transaction.
            let (job, attempts, ranges) = match bm::next_unfinished_job(db, t, m.id)? {
                Some(job) => {
                    let attempts = bm::start_job(db, t, job.id)?;
                    (job, attempts, None)
                }
                None => match self.create_next_job(db, sizer.size(), pause_ms)? {
                    Some((job, ranges)) => (job, 1, Some(ranges)),
                    None => break,
                },
            };
            // The migration's pause protects a running engine: with no live worker (the
            // engine stopped for an upgrade) there is nothing to protect. Asked each batch,
            // so a worker that comes back is paused for again.
            let pausing = self.opts.pause_ms.is_some()
                || !workers::live(db, self.profile, self.ctx.config.stale_after.value)?.is_empty();
            let share = self.paused.get().as_secs_f64() / began.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "batch size {}, {}",
                job.batch_size,
                if pausing {
                    format!("pauses {:.0}% of the time", 100.0 * share)
                } else {
                    "no pauses (no live worker)".to_string()
                }
            ));
            match self.run_job(db, &job, attempts, ranges, pausing)? {
                Outcome::Succeeded { rows, took } => {
                    ran.push(job.id);
                    sizer.record(rows, took);
                    let pos = bar.position() + rows.max(0) as u64;
                    if pos > bar.length().unwrap_or(0) {
                        bar.set_length(pos);
                    }
                    bar.set_position(pos);
                }
                Outcome::Failed { attempts, error } => {
                    failed_attempts += 1;
                    let timed_out = is_timeout(&error);
                    if timed_out {
                        sizer.on_timeout();
                        if let Some((mid, first, second)) =
                            backfill::split_point(db, self.target, job.min_value, job.max_value)?
                        {
                            bm::split_job(
                                db,
                                t,
                                m.id,
                                &job,
                                mid,
                                clamp_i32(first),
                                clamp_i32(second),
                            )?;
                        }
                    }
                    let what = format!(
                        "batch job {} ({} {}, attempt {attempts} of {MAX_ATTEMPTS})",
                        job.id,
                        self.target.display,
                        human_range(job.min_value, job.max_value)
                    );
                    if attempts >= MAX_ATTEMPTS {
                        bm::transition(db, t, m.id, &[status::FINALIZING], status::FAILED)?;
                        bar.abandon();
                        return Err(failure(
                            Exit::Runtime,
                            format!(
                                "background migration {} failed: {what} failed: {error:#}; fix the cause, \
                                 then run `jobdbctl background-migrations retry {}` and finalize again",
                                m.id, m.id
                            ),
                        ));
                    }
                    let retry = if timed_out {
                        "halved and retried"
                    } else {
                        "retried"
                    };
                    bar.suspend(|| {
                        self.ctx
                            .out
                            .warn(format!("{what} failed ({retry}): {error:#}"))
                    });
                }
            }
        }
        bar.finish_and_clear();
        if bm::transition(db, t, m.id, &[status::FINALIZING], status::FINISHED)?.is_none() {
            self.check_still_finalizing(db)?;
        }
        let stats = bm::run_stats(db, t, &ran)?;
        let status = bm::status_of(db, t, m.id)?.unwrap_or(status::FINISHED);
        let elapsed = began.elapsed().as_secs_f64();
        Ok(Summary {
            id: m.id,
            job_class_name: m.job_class_name.clone(),
            table: self.target.display.clone(),
            column_name: m.column_name.clone(),
            job_arguments: m.job_arguments.clone(),
            status: migration_status_name(status),
            already_finished: false,
            rows_per_s: if elapsed > 0.0 {
                stats.rows as f64 / elapsed
            } else {
                0.0
            },
            stats,
            failed_attempts,
            elapsed_s: elapsed,
            final_batch_size: Some(sizer.size()),
            paused_s: self.paused.get().as_secs_f64(),
        })
    }

    /// Stops when an operator paused the migration, or marked it finished, meanwhile.
    /// Holds the next batch while the database is unhealthy for it, saying so on the
    /// progress line (and once on stderr when there is no terminal).
    fn wait_until_healthy(&self, db: &mut Db, bar: &indicatif::ProgressBar) -> anyhow::Result<()> {
        let mut announced = false;
        while let Some(reason) =
            health::reason_to_wait(db, self.target.table_sql(), self.opts.max_replication_lag)?
        {
            if !announced {
                self.ctx.out.info(format!("paused: {reason}"));
                announced = true;
            }
            bar.set_message(format!("paused: {reason}"));
            bar.tick();
            // Lag and vacuums end on their own; nothing signals it, so check again shortly.
            std::thread::sleep(Duration::from_millis(500));
            self.check_still_finalizing(db)?;
        }
        if announced {
            self.ctx.out.info("resumed");
        }
        Ok(())
    }

    fn check_still_finalizing(&self, db: &mut Db) -> anyhow::Result<()> {
        let id = self.migration.id;
        match bm::status_of(db, self.tables, id)? {
            Some(status::FINALIZING) => Ok(()),
            Some(status::PAUSED) => Err(failure(
                Exit::Runtime,
                format!("background migration {id} was paused while finalizing; run finalize-migration again to continue"),
            )),
            Some(s) => Err(failure(
                Exit::Runtime,
                format!(
                    "background migration {id} became {} while finalizing (changed by another session); check it with `jobdbctl background-migrations show {id}`",
                    migration_status_name(s)
                ),
            )),
            None => Err(failure(Exit::Runtime, format!("background migration {id} was deleted while finalizing"))),
        }
    }

    /// The first value no batch job covers yet; `None` when the whole range is covered.
    fn next_uncovered(&self, db: &mut Db) -> anyhow::Result<Option<i64>> {
        let m = self.migration;
        let from = match bm::last_covered_value(db, self.tables, m.id)? {
            Some(last) if last >= m.max_value => return Ok(None),
            Some(last) => (last + 1).max(m.min_value),
            None => m.min_value,
        };
        Ok((from <= m.max_value).then_some(from))
    }

    /// Primary-key batching: the next `size` values of the column after the last covered
    /// one; the last batch reaches the migration's max_value. The job starts as running, and
    /// comes with its sub-ranges.
    fn create_next_job(
        &self,
        db: &mut Db,
        size: i64,
        pause_ms: i32,
    ) -> anyhow::Result<Option<(BatchJob, Vec<SubRange>)>> {
        let m = self.migration;
        let Some(from) = self.next_uncovered(db)? else {
            return Ok(None);
        };
        let sub = i64::from(self.opts.sub_batch_size.unwrap_or(m.sub_batch_size)).clamp(1, size);
        let ranges = backfill::plan_batch(db, self.target, from, m.max_value, size, sub)?;
        let Some(to) = ranges.last().map(|r| r.to) else {
            return Ok(None);
        };
        let job = bm::insert_started_job(
            db,
            self.tables,
            m.id,
            &NewJob {
                min_value: from,
                max_value: to,
                batch_size: clamp_i32(size),
                sub_batch_size: clamp_i32(sub),
                pause_ms,
            },
        )?;
        Ok(Some((job, ranges)))
    }

    /// One attempt at a batch job already marked running; success commits with the data.
    fn run_job(
        &self,
        db: &mut Db,
        job: &BatchJob,
        attempts: i16,
        ranges: Option<Vec<SubRange>>,
        pausing: bool,
    ) -> anyhow::Result<Outcome> {
        let began = Instant::now();
        match self.run_batch(db, job, ranges, began, pausing) {
            Ok((rows, took)) => Ok(Outcome::Succeeded { rows, took }),
            Err(error) => {
                let metrics = json!({
                    "error": format!("{error:#}"),
                    "duration_ms": millis(began.elapsed()),
                });
                bm::job_failed(db, self.tables, job.id, &metrics)?;
                Ok(Outcome::Failed { attempts, error })
            }
        }
    }

    /// The batch's transaction: its sub-batches, then its own success record.
    fn run_batch(
        &self,
        db: &mut Db,
        job: &BatchJob,
        ranges: Option<Vec<SubRange>>,
        began: Instant,
        pausing: bool,
    ) -> anyhow::Result<(i64, Duration)> {
        let pause = Duration::from_millis(
            self.opts
                .pause_ms
                .map_or(job.pause_ms.max(0) as u64, u64::from),
        );
        let pause = if pausing { pause } else { Duration::ZERO };
        let limit = i64::from(
            self.opts
                .sub_batch_size
                .unwrap_or(job.sub_batch_size)
                .min(job.batch_size)
                .max(1),
        );
        let mut tx = db.transaction()?;
        // A finalizer stopped (^Z) mid-batch must not hold its row locks for long.
        let idle_limit = pause + Duration::from_secs(10);
        backfill::limit_batch_transaction(
            &mut tx,
            self.opts.statement_timeout,
            self.opts.lock_timeout,
            idle_limit,
        )?;
        bm::without_flush_wait(&mut tx)?;
        let ranges = match ranges {
            Some(ranges) => ranges,
            None => backfill::plan_batch(
                &mut tx,
                self.target,
                job.min_value,
                job.max_value,
                i64::MAX,
                limit,
            )?,
        };
        let (mut rows, mut updated) = (0i64, 0i64);
        for (i, range) in ranges.iter().enumerate() {
            if i > 0 && !pause.is_zero() {
                std::thread::sleep(pause);
                self.paused.set(self.paused.get() + pause);
            }
            updated += backfill::update_range(&mut tx, self.target, range)? as i64;
            rows += range.rows;
        }
        let statements = ranges.len();
        let took = began.elapsed();
        let metrics = json!({
            "rows": rows,
            "rows_updated": updated,
            "sub_batches": statements,
            "duration_ms": millis(took),
        });
        bm::job_succeeded(&mut tx, self.tables, job.id, &metrics)?;
        tx.commit()?;
        Ok((rows, took))
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn clamp_i32(n: i64) -> i32 {
    n.clamp(1, i64::from(i32::MAX)) as i32
}

/// statement_timeout and lock_timeout: the batch was too big (or waited too long) for now.
fn is_timeout(err: &anyhow::Error) -> bool {
    use postgres::error::SqlState;
    sql_state(err)
        .is_some_and(|s| *s == SqlState::QUERY_CANCELED || *s == SqlState::LOCK_NOT_AVAILABLE)
}

//! Online backup: one exported snapshot read by parallel COPY streams, cut into chunks on
//! row boundaries and written to the archive as they come; binary COPY where the table's
//! column types allow it (see `archive::CopyFormat`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Context as _};

use super::destination::Destination;
use super::{header, threads, Done, Request};
use crate::archive::chunker::{Chunk, Chunker};
use crate::archive::writer::{ArchiveWriter, Sink};
use crate::archive::{self, Manifest, Mode, Table};
use crate::context::Ctx;
use crate::db::dump::{self, TableDef};
use crate::db::{self, counter, snapshot, status, Profile};

/// Table data goes through this many COPY streams at once (each its own connection in the
/// same snapshot); see docs/backups.md for the measurements behind it.
const COPY_STREAMS: usize = 2;
/// Tables smaller than this are copied whole by one stream.
const SPLIT_PAGES: i64 = 1024;
/// Compressed size as a fraction of the heap, for the free-space estimate. Job tables
/// compress to about an eighth; a quarter leaves room for less compressible payloads.
const ESTIMATE_RATIO: f64 = 0.25;

struct Work {
    table: usize,
    pages: Option<(i64, Option<i64>)>,
}

fn plan(tables: &[TableDef], split: bool) -> VecDeque<Work> {
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tables[i].pages));
    let mut work = VecDeque::new();
    for i in order {
        let pages = tables[i].pages;
        let parts = (pages / SPLIT_PAGES).min(COPY_STREAMS as i64 * 2);
        if !split || parts < 2 {
            work.push_back(Work {
                table: i,
                pages: None,
            });
            continue;
        }
        for range in db::page_ranges(pages, parts) {
            work.push_back(Work {
                table: i,
                pages: Some(range),
            });
        }
    }
    work
}

pub fn backup(ctx: &Ctx, request: &Request) -> anyhow::Result<Done> {
    let mut db = ctx.connect()?;
    let profile = ctx.profile(&mut db)?;
    db.try_operation_lock("backup", "backup or restore")?;
    let mut head = header(ctx, Mode::Online, db.database_name()?);
    head.server_version = Some(db.server_version()?);
    let split = snapshot::server_version_num(&mut db)? >= 140000;
    let (mut tx, snapshot_id) = snapshot::begin(&mut db)?;
    snapshot::lock_relations(&mut tx, &profile.schema)?;
    dump::set_search_path(&mut tx, &profile.schema)?;
    let schema = dump::read_schema(&mut tx, &profile.schema, ctx.target.cluster().is_some())?;
    head.profile = Some(profile.name().to_string());
    head.schema = Some(profile.schema.clone());
    head.schema_version = status::schema_version(&mut tx, &profile)?;
    head.last_used_job_id = match counter::sequence_name(&mut tx, &profile) {
        Ok(seq) => Some(counter::last_used(&mut tx, &seq)?),
        Err(_) => None,
    };
    // A chunk ends at the first row end past CHUNK_SIZE; one row can be up to 1 GB.
    head.max_entry_bytes = (archive::CHUNK_SIZE as u64) + (1 << 30);
    head.tables = schema
        .tables
        .iter()
        .map(|t| Table {
            name: t.name.clone(),
            columns: t.columns.clone(),
            rows: None,
            format: t.format,
        })
        .collect();

    let heap: i64 = schema.tables.iter().map(|t| t.bytes).sum();
    let stem = format!("{}-{}", head.database, profile.schema);
    let dest = Destination::choose(
        ctx,
        request.output.as_deref(),
        &stem,
        request.pinned,
        request.codec,
        request.seal.is_some(),
    )?;
    head.retention = Some(dest.retention());
    dest.check_space((heap as f64 * ESTIMATE_RATIO) as u64, request.space_check)?;
    let out = dest.open()?;
    let writer = ArchiveWriter::new(
        Sink::new(out, request.seal, &head)?,
        request.codec,
        threads(),
    );
    let result = write_online(
        ctx,
        &writer,
        &head,
        &Source {
            schema: &schema,
            profile: &profile,
            snapshot_id: &snapshot_id,
            split,
            heap,
        },
    );
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            let e = writer.abandon(e);
            dest.discard();
            return Err(e);
        }
    };
    let mut manifest = head.clone();
    for (t, n) in manifest.tables.iter_mut().zip(&rows) {
        t.rows = Some(n.load(Ordering::Relaxed));
    }
    let finished = writer.finish(|entries| {
        let mut m = manifest.clone();
        m.entries = entries;
        let bytes = serde_json::to_vec_pretty(&m).context("cannot encode the manifest")?;
        Ok((archive::MANIFEST.to_string(), bytes))
    });
    let (_, bytes) = match finished {
        Ok(done) => done,
        Err(e) => {
            dest.discard();
            return Err(e);
        }
    };
    tx.commit()?;
    let path = match dest.complete() {
        Ok(p) => p,
        Err(e) => {
            dest.discard();
            return Err(e);
        }
    };
    Ok(Done {
        path,
        bytes,
        manifest,
        pruned: Vec::new(),
        damaged: Vec::new(),
        prune_error: None,
        seconds: 0.0,
    })
}

/// What the COPY streams read: the schema in the exported snapshot.
struct Source<'a> {
    schema: &'a dump::SchemaDump,
    profile: &'a Profile,
    snapshot_id: &'a str,
    /// Whether big tables may be split into page ranges (TID range scans).
    split: bool,
    /// Heap bytes of all tables, for the progress bar.
    heap: i64,
}

fn write_online(
    ctx: &Ctx,
    writer: &ArchiveWriter,
    head: &Manifest,
    source: &Source<'_>,
) -> anyhow::Result<Vec<AtomicU64>> {
    let Source {
        schema,
        profile,
        snapshot_id,
        split,
        heap,
    } = *source;
    writer.add_entry(
        archive::HEADER,
        serde_json::to_vec_pretty(head).context("cannot encode the header")?,
    )?;
    writer.add_entry(
        archive::SCHEMA,
        serde_json::to_vec_pretty(&schema.ddl).context("cannot encode the schema")?,
    )?;
    let work = Mutex::new(plan(&schema.tables, split));
    let rows: Vec<AtomicU64> = schema.tables.iter().map(|_| AtomicU64::new(0)).collect();
    let chunks: Vec<AtomicU32> = schema.tables.iter().map(|_| AtomicU32::new(0)).collect();
    let failed = AtomicBool::new(false);
    let bar = ctx.out.progress(
        heap.max(0) as u64,
        "{spinner} backup {bytes} of ~{total_bytes} read ({binary_bytes_per_sec}), {msg}",
    );
    let total_rows = AtomicU64::new(0);
    // Connect every stream before the first COPY: the snapshot must be imported while the
    // exporting transaction is still open, which it is for the whole backup.
    let mut conns = Vec::new();
    for _ in 0..COPY_STREAMS {
        conns.push(ctx.connect_stream()?);
    }
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .iter_mut()
            .map(|conn| {
                let (work, rows, chunks, failed, bar, total_rows) =
                    (&work, &rows, &chunks, &failed, &bar, &total_rows);
                s.spawn(move || -> anyhow::Result<()> {
                    let result = (|| {
                        conn.import(snapshot_id)?;
                        loop {
                            if failed.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            let next = work
                                .lock()
                                .map_err(|_| anyhow!("work queue poisoned"))?
                                .pop_front();
                            let Some(item) = next else { break };
                            let table = &schema.tables[item.table];
                            let format = head.tables[item.table].format;
                            let mut chunker = Chunker::new(format, table.columns.len())
                                .map_err(|m| anyhow!("table {:?}: {m}", table.name))?;
                            let emit = |(data, lines): Chunk| -> anyhow::Result<()> {
                                // Per entry, not per row: the bar reads the clock on every update.
                                bar.inc(data.len() as u64);
                                rows[item.table].fetch_add(lines, Ordering::Relaxed);
                                let n = total_rows.fetch_add(lines, Ordering::Relaxed) + lines;
                                bar.set_message(format!("{n} rows"));
                                let seq = chunks[item.table].fetch_add(1, Ordering::Relaxed);
                                writer.add_entry(&archive::data_entry_name(item.table, seq), data)
                            };
                            let unexpected =
                                |m: String| anyhow!("COPY of table {:?} sent {m}", table.name);
                            conn.copy_out(&profile.schema, table, item.pages, |data| match chunker
                                .push(data)
                                .map_err(unexpected)?
                            {
                                Some(full) => emit(full),
                                None => Ok(()),
                            })
                            .with_context(|| format!("COPY of table {:?} failed", table.name))?;
                            if let Some(last) = chunker.finish().map_err(unexpected)? {
                                emit(last)?;
                            }
                        }
                        conn.commit()
                    })();
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a COPY thread panicked")))
            })
            .collect()
    });
    bar.finish_and_clear();
    for r in results {
        r?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::CopyFormat;

    fn table(pages: i64) -> TableDef {
        TableDef {
            name: "t".into(),
            columns: vec!["a".into()],
            pages,
            bytes: pages * 8192,
            format: CopyFormat::Text,
        }
    }

    #[test]
    fn big_tables_split_into_page_ranges_that_cover_everything() {
        let work = plan(&[table(10), table(100_000)], true);
        let ranges: Vec<_> = work
            .iter()
            .filter(|w| w.table == 1)
            .map(|w| w.pages)
            .collect();
        assert_eq!(ranges.len(), COPY_STREAMS * 2);
        assert_eq!(ranges[0].map(|r| r.0), Some(0));
        assert_eq!(ranges.last().and_then(|r| r.map(|r| r.1)), Some(None));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].and_then(|r| r.1), pair[1].map(|r| r.0));
        }
        assert!(work.iter().any(|w| w.table == 0 && w.pages.is_none()));
        assert!(plan(&[table(100_000)], false)
            .iter()
            .all(|w| w.pages.is_none()));
    }
}

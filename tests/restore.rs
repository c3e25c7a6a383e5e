//! Restore from hostile or broken archives: what is refused before anything changes, what a
//! killed or failed restore leaves, and what a cold archive may not bring along.

mod common;
use common::Exec;

use common::path_str;

use common::assert_has;

use common::generate;
use common::generate::Spec;
use common::scalar_i64;
use common::schema_exists;
use common::TestCluster;
use common::TestDb;
use serde_json::json;
use serde_json::Value;
use sha2::Digest;
use sha2::Sha256;
use std::fs;
use std::fs::File;
use std::io::BufWriter;
use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

/// Restore's memory bound (the issue's: 256 MiB whatever the archive declares), in KiB.
const BOUND_KIB: u64 = 256 << 10;

fn populated(jobs: i64) -> TestDb {
    let db = TestDb::with_jobs(jobs);
    // Workers stop heartbeating: restore refuses while any is live.
    db.client()
        .exec("UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour'");
    db
}

/// Every row of a table as text, in order, to compare before and after.
fn rows_of(client: &mut postgres::Client, table: &str) -> Vec<String> {
    client
        .query(
            &format!("SELECT t::text FROM {table} t ORDER BY t::text"),
            &[],
        )
        .expect(table)
        .iter()
        .map(|r| r.get(0))
        .collect()
}

// ---- archives built by hand: header, manifest and checksums consistent ------------------
/// A ustar header block, as jobdbctl writes them.
fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).expect("tar path");
    h.set_size(size);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    h.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(h.as_bytes());
    out
}

fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// Writes a `.tar.gz` as a series of gzip members (as jobdbctl does), so an entry of
/// gigabytes made of one repeated block costs one compressed block, repeated.
struct Builder {
    out: BufWriter<File>,
    written: u64,
    entries: Vec<Value>,
}

impl Builder {
    fn create(path: &Path) -> Builder {
        Builder {
            out: BufWriter::new(File::create(path).expect("create archive")),
            written: 0,
            entries: Vec::new(),
        }
    }

    fn member(&mut self, data: &[u8]) {
        let gz = gzip_member(data);
        self.out.write_all(&gz).expect("write archive");
        self.written += gz.len() as u64;
    }

    /// A whole entry held in memory.
    fn entry(&mut self, name: &str, data: &[u8]) {
        let mut raw = tar_header(name, data.len() as u64).to_vec();
        raw.extend_from_slice(data);
        raw.resize(raw.len() + padding(data.len() as u64), 0);
        self.member(&raw);
        self.entries.push(json!({
            "name": name,
            "size": data.len(),
            "sha256": hex::encode(Sha256::digest(data)),
        }));
    }

    /// An entry of `block` repeated `times` times. `sha256`: the entry's checksum when known
    /// (hashing gigabytes in a test costs more than the test); otherwise computed. Returns
    /// the compressed offset after each repetition.
    fn repeated(&mut self, name: &str, block: &[u8], times: u64, sha256: Option<&str>) -> Vec<u64> {
        let size = block.len() as u64 * times;
        self.member(&tar_header(name, size));
        let gz = gzip_member(block);
        let mut hasher = sha256.is_none().then(Sha256::new);
        let mut offsets = Vec::new();
        for _ in 0..times {
            self.out.write_all(&gz).expect("write archive");
            self.written += gz.len() as u64;
            offsets.push(self.written);
            if let Some(h) = hasher.as_mut() {
                h.update(block);
            }
        }
        let sha = match hasher {
            Some(h) => hex::encode(h.finalize()),
            None => sha256.unwrap_or_default().to_string(),
        };
        let pad = vec![0u8; padding(size)];
        if !pad.is_empty() {
            self.member(&pad);
        }
        self.entries
            .push(json!({"name": name, "size": size, "sha256": sha}));
        offsets
    }

    /// `manifest.json` (the header plus row counts and the entries) and the end of the
    /// archive.
    fn finish(mut self, header: &Value, rows: &[u64]) {
        let mut manifest = header.clone();
        for (t, n) in manifest["tables"]
            .as_array_mut()
            .expect("tables")
            .iter_mut()
            .zip(rows)
        {
            t["rows"] = json!(n);
        }
        manifest["entries"] = Value::Array(std::mem::take(&mut self.entries));
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let mut raw = tar_header("manifest.json", bytes.len() as u64).to_vec();
        raw.extend_from_slice(&bytes);
        raw.resize(raw.len() + padding(bytes.len() as u64), 0);
        raw.extend_from_slice(&[0u8; 1024]);
        self.member(&raw);
        self.out.flush().expect("flush archive");
    }
}

/// The header of an online archive of schema `bulk` with one table `blob (id, body)`.
fn bulk_header() -> Value {
    json!({
        "format_version": 1,
        "jobdbctl_version": "0.1.0",
        "mode": "online",
        "created_at": "2024-01-01T00:00:00Z",
        "server_version": "15",
        "server": "test",
        "database": "test",
        "profile": "jobdb",
        "schema": "bulk",
        "schema_version": null,
        "last_used_job_id": null,
        "max_entry_bytes": 8u64 << 30,
        "tables": [{"name": "blob", "columns": ["id", "body"]}],
    })
}

fn bulk_schema() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "pre_data": ["CREATE TABLE blob (\n    id integer,\n    body text\n)"],
        "post_data": [],
    }))
    .expect("json")
}

/// An archive of schema `bulk` whose one data entry is `block` repeated `times` times;
/// returns the compressed offset after each repetition.
fn bulk_archive(path: &Path, block: &[u8], times: u64, sha256: Option<&str>) -> Vec<u64> {
    let header = bulk_header();
    let mut b = Builder::create(path);
    b.entry("header.json", &serde_json::to_vec(&header).expect("json"));
    b.entry("schema.json", &bulk_schema());
    let offsets = b.repeated("data/0000/000000.copy", block, times, sha256);
    let rows = block.iter().filter(|c| **c == b'\n').count() as u64 * times;
    b.finish(&header, &[rows]);
    offsets
}

/// About 1 MiB of valid COPY rows for `blob`: 1000 rows of a kilobyte each.
fn row_block() -> Vec<u8> {
    let mut block = Vec::new();
    for i in 0..1000 {
        block.extend_from_slice(format!("{i}\t{}\n", "x".repeat(1000)).as_bytes());
    }
    block
}

// ---- peak memory of a jobdbctl run -----------------------------------------------------
struct Measured {
    code: i32,
    stderr: String,
    peak_kib: u64,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd` and records its peak resident memory: VmHWM from /proc while it runs, and the
/// kernel's own maximum when it is reaped. A run that passes the bound is killed there (so
/// the code before streaming fails fast instead of filling the machine's memory).
fn run_measured(mut cmd: Command, dir: &Path) -> Measured {
    let err_path = dir.join("stderr.txt");
    cmd.stdout(Stdio::null())
        .stderr(File::create(&err_path).expect("stderr file"));
    let child = cmd.spawn().expect("spawn jobdbctl");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut peak = 0;
    let mut killed = false;
    let code = loop {
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak = peak.max(hwm);
        }
        if peak > BOUND_KIB && !killed {
            // SAFETY: pid is our unreaped child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            killed = true;
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 fills it in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child; status and usage are valid for writes.
        let reaped = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid as i32 {
            peak = peak.max(usage.ru_maxrss as u64);
            break if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
        }
        assert!(reaped == 0, "wait4 failed");
        assert!(Instant::now() < deadline, "jobdbctl did not finish");
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(child);
    Measured {
        code,
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        peak_kib: peak,
    }
}

#[track_caller]
fn assert_bounded(what: &str, m: &Measured) {
    assert!(
        m.peak_kib <= BOUND_KIB,
        "{what}: peak RSS {} MiB is over the {} MiB bound (stderr: {})",
        m.peak_kib >> 10,
        BOUND_KIB >> 10,
        m.stderr
    );
}

/// The three ways an archive is read: verify, restore of a file, restore from stdin.
fn measured_runs(db: &TestDb, archive: &Path, dir: &Path) -> Vec<(&'static str, Measured)> {
    let mut out = Vec::new();
    let mut verify = db.cmd();
    verify.args(["verify", path_str(archive)]);
    out.push(("verify", run_measured(verify, dir)));
    let mut file = db.cmd();
    // The bulk archives hold schema "bulk": only a restore that names it may replace it.
    file.args([
        "restore",
        path_str(archive),
        "--yes",
        "--force",
        "--schema",
        "bulk",
    ]);
    out.push(("restore FILE", run_measured(file, dir)));
    let mut stdin = db.cmd();
    stdin
        .args(["restore", "-", "--yes", "--force", "--schema", "bulk"])
        .stdin(File::open(archive).expect("open archive"));
    out.push(("restore -", run_measured(stdin, dir)));
    out
}

/// SHA-256 of 3 GiB of zero bytes (`head -c 3221225472 /dev/zero | sha256sum`).
const ZEROS_3GIB_SHA256: &str = "305b66a59d15b252092fbda9d09711230c429f351897cbd430e7b55a35fd3b97";

#[test]
fn a_multi_gib_entry_is_refused_at_its_first_piece_within_the_memory_bound() {
    let db = TestDb::empty();
    let dir = common::temp_dir("rt");
    let archive = dir.path().join("zeros.tar.gz");
    // 3 GiB of zeros in one entry, declared honestly: the manifest's size and checksum match,
    // and the header allows entries of 8 GiB. It is not COPY text (which never holds a NUL).
    bulk_archive(
        &archive,
        &vec![0u8; 1 << 20],
        3 << 10,
        Some(ZEROS_3GIB_SHA256),
    );
    for (what, m) in measured_runs(&db, &archive, dir.path()) {
        assert_bounded(what, &m);
        assert_eq!(m.code, 5, "{what}: {}", m.stderr);
        assert!(m.stderr.contains("NUL"), "{what}: {}", m.stderr);
        let mut client = db.client();
        assert!(common::leftover_schemas(&mut client).is_empty(), "{what}");
        assert!(!schema_exists(&mut client, "bulk"), "{what}");
    }
}

#[test]
fn an_entry_larger_than_the_memory_bound_streams_through_copy() {
    let db = TestDb::empty();
    let dir = common::temp_dir("rt");
    let archive = dir.path().join("rows.tar.gz");
    // 320 MiB of valid rows in one entry: more than the bound, so holding it whole fails.
    let block = row_block();
    let times = 320;
    bulk_archive(&archive, &block, times, None);
    let rows = 1000 * times as i64;
    for (what, m) in measured_runs(&db, &archive, dir.path()) {
        assert_bounded(what, &m);
        assert_eq!(m.code, 0, "{what}: {}", m.stderr);
        if what != "verify" {
            let mut client = db.client();
            assert_eq!(
                scalar_i64(&mut client, "SELECT count(*) FROM bulk.blob"),
                rows,
                "{what}"
            );
            assert_eq!(
                scalar_i64(&mut client, "SELECT sum(length(body))::int8 FROM bulk.blob"),
                rows * 1000,
                "{what}"
            );
            assert!(common::leftover_schemas(&mut client).is_empty(), "{what}");
        }
    }
}

// ---- verify accepts only what restore accepts ------------------------------------------
/// The entries of an archive, in order.
fn entries_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let file = File::open(path).expect("open archive");
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read entry");
            (name, data)
        })
        .collect()
}

/// A copy of a real archive with `edit` applied to both header.json and manifest.json (as a
/// consistent archive has them), with the manifest's checksum of header.json updated.
fn edited_archive(good: &Path, out: &Path, edit: &dyn Fn(&mut Value)) {
    let mut entries = entries_of(good);
    let mut header: Value = serde_json::from_slice(&entries[0].1).expect("header");
    edit(&mut header);
    entries[0].1 = serde_json::to_vec(&header).expect("json");
    let last = entries.len() - 1;
    let mut manifest: Value = serde_json::from_slice(&entries[last].1).expect("manifest");
    let rows: Vec<Value> = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| t["rows"].clone())
        .collect();
    let listed = manifest["entries"].take();
    let mut new_manifest = header.clone();
    for (i, t) in new_manifest["tables"]
        .as_array_mut()
        .expect("tables")
        .iter_mut()
        .enumerate()
    {
        t["rows"] = rows.get(i).cloned().unwrap_or(json!(0));
    }
    let mut listed = listed.as_array().expect("entries").clone();
    for e in &mut listed {
        if e["name"] == "header.json" {
            e["size"] = json!(entries[0].1.len());
            e["sha256"] = json!(hex::encode(Sha256::digest(&entries[0].1)));
        }
    }
    new_manifest["entries"] = Value::Array(listed);
    manifest = new_manifest;
    entries[last].1 = serde_json::to_vec(&manifest).expect("json");
    let mut b = Builder::create(out);
    for (name, data) in &entries[..last] {
        b.entry(name, data);
    }
    // The manifest goes last, with the end of the archive.
    let mut raw = tar_header("manifest.json", entries[last].1.len() as u64).to_vec();
    raw.extend_from_slice(&entries[last].1);
    raw.resize(raw.len() + padding(entries[last].1.len() as u64), 0);
    raw.extend_from_slice(&[0u8; 1024]);
    b.member(&raw);
    b.out.flush().expect("flush");
}

fn table_index(header: &Value, name: &str) -> usize {
    header["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .position(|t| t["name"] == name)
        .expect("table in header")
}

#[test]
fn verify_refuses_what_restore_would_refuse_and_restore_creates_nothing() {
    let db = populated(500);
    let dir = common::temp_dir("rt");
    let good = dir.path().join("good.tar.gz");
    db.run(&["backup", "--output", path_str(&good)]).expect(0);
    // The edited archives must still be consistent: the unedited copy verifies.
    let copy = dir.path().join("copy.tar.gz");
    edited_archive(&good, &copy, &|_| {});
    db.run(&["verify", path_str(&copy)]).expect(0);

    let mut client = db.client();
    client.exec("INSERT INTO jobdb.jobs (task_identifier) VALUES ('since-backup')");
    let before = rows_of(&mut client, "jobdb.jobs");
    type Edit = Box<dyn Fn(&mut Value)>;
    let variants: Vec<(&str, &str, Edit)> = vec![
        (
            "unknown profile",
            "profile",
            Box::new(|h| h["profile"] = json!("sidekiq")),
        ),
        (
            "a header column schema.json does not create",
            "no column",
            Box::new(|h| {
                let i = table_index(h, "jobs");
                h["tables"][i]["columns"][1] = json!("not_a_column");
            }),
        ),
        (
            "a header table schema.json does not create",
            "does not create table",
            Box::new(|h| {
                h["tables"]
                    .as_array_mut()
                    .expect("tables")
                    .push(json!({"name": "ghost", "columns": ["id"]}));
            }),
        ),
        (
            "a schema name PostgreSQL would truncate",
            "at most 63",
            Box::new(|h| h["schema"] = json!("s".repeat(64))),
        ),
        (
            "an empty column name",
            "empty name",
            Box::new(|h| {
                let i = table_index(h, "jobs");
                h["tables"][i]["columns"][0] = json!("");
            }),
        ),
        (
            "a table listed twice",
            "twice",
            Box::new(|h| {
                let tables = h["tables"].as_array_mut().expect("tables");
                let first = tables[0].clone();
                tables.push(first);
            }),
        ),
    ];
    for (what, says, edit) in variants {
        let bad = dir.path().join("bad.tar.gz");
        edited_archive(&good, &bad, &*edit);
        let verify = db.run(&["verify", path_str(&bad)]);
        assert_eq!(
            verify.code, 5,
            "{what}: verify must refuse: {}",
            verify.stderr
        );
        let line = verify.one_line_error().to_string();
        assert!(line.contains(says), "{what}: {line}");
        let restore = db.run(&["restore", path_str(&bad), "--yes", "--force"]);
        assert_eq!(restore.code, 5, "{what}: restore: {}", restore.stderr);
        assert!(restore.one_line_error().contains(says), "{what}");
        let streamed = common::run({
            let mut cmd = db.cmd();
            cmd.args(["restore", "-", "--yes", "--force"])
                .stdin(File::open(&bad).expect("open"));
            cmd
        });
        assert_eq!(streamed.code, 5, "{what}: restore -: {}", streamed.stderr);
        assert!(streamed.one_line_error().contains(says), "{what}");
        assert!(
            common::leftover_schemas(&mut client).is_empty(),
            "{what}: staging created"
        );
        assert_eq!(rows_of(&mut client, "jobdb.jobs"), before, "{what}");
    }
    // What the tests above changed was only the archive: the original restores.
    db.run(&["restore", path_str(&good), "--yes", "--force"])
        .expect(0);
}

// ---- the job counter -------------------------------------------------------------------
#[test]
fn restore_resumes_job_ids_after_the_header_s_last_used_id() {
    let db = populated(300);
    let dir = common::temp_dir("rt");
    let good = dir.path().join("good.tar.gz");
    db.run(&["backup", "--output", path_str(&good)]).expect(0);
    let mut client = db.client();
    // Nothing wrote while the backup ran, so the header's value is the archived sequence's.
    let header: Value = serde_json::from_slice(&entries_of(&good)[0].1).expect("header");
    let archived = header["last_used_job_id"]
        .as_i64()
        .expect("last used job id");
    assert!(archived >= 300);
    // A backup taken while writers insert can record a counter past the archived sequence:
    // the header says 100 more than the sequence in schema.json.
    let claimed = archived + 100;
    let ahead = dir.path().join("ahead.tar.gz");
    edited_archive(&good, &ahead, &|h| h["last_used_job_id"] = json!(claimed));
    let restored = db.run(&["--json", "restore", path_str(&ahead), "--yes", "--force"]);
    restored.expect(0);
    assert_eq!(restored.json()["last_used_job_id"], json!(claimed));
    let id = scalar_i64(
        &mut client,
        "INSERT INTO jobdb.jobs (task_identifier) VALUES ('after-restore') RETURNING id",
    );
    assert!(id > claimed, "new job got id {id}, not above {claimed}");

    // A header below the archived sequence does not lower it.
    let behind = dir.path().join("behind.tar.gz");
    edited_archive(&good, &behind, &|h| h["last_used_job_id"] = json!(1));
    db.run(&["restore", path_str(&behind), "--yes", "--force"])
        .expect(0);
    let id = scalar_i64(
        &mut client,
        "INSERT INTO jobdb.jobs (task_identifier) VALUES ('after-restore') RETURNING id",
    );
    assert_eq!(id, archived + 1);
}

// ---- every wait ends -------------------------------------------------------------------
fn jobdbctl_copy_pids(admin: &mut postgres::Client, db: &TestDb) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'jobdbctl'
                AND state = 'active' AND query LIKE 'COPY %FROM STDIN'",
            &[&db.name],
        )
        .expect("pg_stat_activity")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_loader_whose_session_ends_ends_the_restore_with_exit_6_and_changes_nothing() {
    let db = TestDb::empty();
    let dir = common::temp_dir("rt");
    let archive = dir.path().join("rows.tar.gz");
    // One 64 MiB entry: its COPY stays open while the rest of the entry has not arrived.
    let offsets = bulk_archive(&archive, &row_block(), 64, None);
    let bytes = std::fs::read(&archive).expect("read archive");
    let mut client = db.client();
    client.exec(
        "CREATE SCHEMA bulk; CREATE TABLE bulk.blob (id integer, body text);
             INSERT INTO bulk.blob VALUES (1, 'live'), (2, 'live'), (3, 'live');",
    );
    let live = rows_of(&mut client, "bulk.blob");

    let mut child = db
        .cmd()
        .args(["restore", "-", "--yes", "--force", "--schema", "bulk"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restore");
    let mut stdin = child.stdin.take().expect("stdin");
    // Header, schema and the first 8 MiB of the entry: two pieces, so a loader has its COPY
    // open and waits for the rest.
    let cut = offsets[7] as usize;
    stdin.write_all(&bytes[..cut]).expect("feed the archive");
    stdin.flush().expect("flush");
    let mut admin = common::shared().admin();
    let deadline = Instant::now() + Duration::from_secs(120);
    let pid = loop {
        if let Some(pid) = jobdbctl_copy_pids(&mut admin, &db).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "no COPY started");
        std::thread::sleep(Duration::from_millis(5));
    };
    let ended: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .expect("terminate")
        .get(0);
    assert!(ended);
    // The rest of the archive: the restore stops reading it once it sees the loader gone.
    let _ = stdin.write_all(&bytes[cut..]);
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the restore hung after its loader's session ended");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = common::Run::from(child.wait_with_output().expect("wait"));
    r.expect(6);
    let line = r.one_line_error();
    assert_has(line, "closed the connection");
    assert_eq!(
        rows_of(&mut client, "bulk.blob"),
        live,
        "the live schema changed"
    );
    assert!(
        common::leftover_schemas(&mut client).is_empty(),
        "staging left behind"
    );

    db.run(&[
        "restore",
        path_str(&archive),
        "--yes",
        "--force",
        "--schema",
        "bulk",
    ])
    .expect(0);
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM bulk.blob"),
        64_000
    );
}

#[test]
fn a_swap_that_times_out_on_a_lock_names_the_session_holding_it() {
    let db = populated(200);
    let dir = common::temp_dir("rt");
    let archive: PathBuf = dir.path().join("r.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let mut client = db.client();
    client.exec("INSERT INTO jobdb.jobs (task_identifier) VALUES ('since-backup')");
    let before = rows_of(&mut client, "jobdb.jobs");
    // A worker's open transaction holds the jobs table past the swap's lock timeout.
    let mut blocker = db.client();
    blocker.exec("SET application_name = 'stuck-worker'");
    let blocker_pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pid")
        .get(0);
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.jobs IN ROW EXCLUSIVE MODE");
    let r = db.run(&["restore", path_str(&archive), "--yes", "--force"]);
    tx.rollback().expect("rollback");
    r.expect(1);
    let line = r.one_line_error();
    assert_has(line, &format!("pid {blocker_pid}"));
    assert_has(line, "stuck-worker");
    assert_has(line, "LOCK TABLE jobdb.jobs");
    assert_has(line, "stop the workers");
    assert_has(line, "lock timeout");
    assert_eq!(rows_of(&mut client, "jobdb.jobs"), before);
    assert!(common::leftover_schemas(&mut client).is_empty());

    db.run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(0);
}

#[test]
fn the_archive_header_cannot_choose_which_schema_restore_force_replaces() {
    let db = populated(20);
    let dir = common::temp_dir("rt");
    let good = dir.path().join("good.tar.gz");
    db.run(&["backup", "--output", path_str(&good)]).expect(0);
    let forged = dir.path().join("public.tar.gz");
    edited_archive(&good, &forged, &|h| h["schema"] = json!("public"));
    let mut client = db.client();
    client.exec("CREATE TABLE public.unrelated (x int); INSERT INTO public.unrelated VALUES (42)");
    for args in [
        vec!["restore", path_str(&forged), "--yes", "--force"],
        vec!["restore", "-", "--yes", "--force"],
    ] {
        let mut cmd = db.cmd();
        cmd.args(&args);
        if args[1] == "-" {
            cmd.stdin(File::open(&forged).expect("open"));
        }
        let run = common::run(cmd);
        run.expect(3);
        let line = run.one_line_error();
        assert!(
            line.contains("\"public\"") && line.contains("--schema"),
            "{line}"
        );
        assert_eq!(
            scalar_i64(&mut client, "SELECT x::int8 FROM public.unrelated"),
            42,
            "{args:?} touched the public schema"
        );
        assert!(common::leftover_schemas(&mut client).is_empty());
    }
    let help = db.run(&["restore", "--help"]);
    help.stdout_has("Only the job schema is ever");
}

/// Restore's loaders commit asynchronously and size their sort memory (their sessions'
/// settings only); the swap commits synchronously, so a server that crashes the moment
/// restore exits 0 comes back with the restored data — and the engine's sessions never see
/// restore's settings.
#[test]
fn a_crash_right_after_restore_keeps_the_restored_data_and_no_setting_leaks() {
    let c = common::TestCluster::started();
    let mut client = c.client();
    generate::populate(&mut client, "jobdb", &Spec::jobs(3000));
    client.exec("UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour'");
    let dir = common::temp_dir("rt");
    let archive = dir.path().join("a.tar.zst");
    c.run(&[
        "backup",
        "--compression=zstd",
        "--output",
        path_str(&archive),
    ])
    .expect(0);
    let before = rows_of(&mut client, "jobdb.jobs").len();
    client.exec("DELETE FROM jobdb.jobs WHERE id % 3 = 0");
    drop(client);
    c.run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(0);
    // What restore left (running jobs queued again), read by another session.
    let expected = rows_of(&mut c.client(), "jobdb.jobs");
    assert_eq!(expected.len(), before);
    // The server dies at once: no shutdown checkpoint, only what the WAL on disk holds.
    c.run(&["stop", "--mode", "immediate"]).expect(0);
    c.run(&["start"]).expect(0);
    let mut client = c.client();
    assert_eq!(
        rows_of(&mut client, "jobdb.jobs"),
        expected,
        "restored rows lost in a crash"
    );
    for (setting, default) in [
        ("synchronous_commit", "on"),
        ("maintenance_work_mem", "64MB"),
    ] {
        let value: String = client
            .query_one(&format!("SHOW {setting}"), &[])
            .expect("show")
            .get(0);
        assert_eq!(value, default, "{setting} leaked out of restore's sessions");
    }
}

/// A cold archive whose server configuration sets commands, libraries, outside files and
/// includes: verify reports each, restore comments each out and reports it, and the
/// restored server starts without any of them.
#[test]
fn a_cold_archive_cannot_make_the_server_run_a_command_or_load_code() {
    let cluster = TestCluster::started();
    cluster.run(&["stop"]).expect(0);
    let pgdata = cluster.pgdata();
    let dir = common::temp_dir("tr");
    let marker = dir.path().join("ran");
    let evil_conf = dir.path().join("evil.conf");
    fs::write(
        &evil_conf,
        format!("archive_command = 'touch {}'\n", marker.display()),
    )
    .expect("evil include");
    let auto = pgdata.join("postgresql.auto.conf");
    let original = fs::read_to_string(&auto).expect("auto.conf");
    let touch = format!("'touch {}'", marker.display());
    let settings: Vec<(&str, String)> = vec![
        ("archive_mode", "on".into()),
        ("archive_command", touch.clone()),
        ("archive_cleanup_command", touch.clone()),
        ("recovery_end_command", touch.clone()),
        ("restore_command", touch.clone()),
        ("ssl_passphrase_command", touch.clone()),
        ("archive_library", "'evil_archiver'".into()),
        ("shared_preload_libraries", "'evil_preload'".into()),
        ("session_preload_libraries", "'evil_session'".into()),
        ("local_preload_libraries", "'evil_local'".into()),
        (
            "dynamic_library_path",
            format!("'{}'", dir.path().display()),
        ),
        ("jit_provider", "'evil_jit'".into()),
        ("data_directory", format!("'{}'", dir.path().display())),
        ("config_file", format!("'{}'", evil_conf.display())),
        ("hba_file", format!("'{}'", evil_conf.display())),
        ("ident_file", format!("'{}'", evil_conf.display())),
        (
            "external_pid_file",
            format!("'{}/pid'", dir.path().display()),
        ),
    ];
    let mut hostile = original.clone();
    for (name, value) in &settings {
        hostile.push_str(&format!("{name} = {value}\n"));
    }
    hostile.push_str(&format!("include '{}'\n", evil_conf.display()));
    fs::write(&auto, &hostile).expect("write hostile auto.conf");
    let conf = pgdata.join("postgresql.conf");
    let mut main_conf = fs::read_to_string(&conf).expect("postgresql.conf");
    main_conf.push_str(&format!(
        "include_dir '{}'\nSHARED_PRELOAD_LIBRARIES='evil_upper'\n",
        dir.path().display()
    ));
    fs::write(&conf, main_conf).expect("write postgresql.conf");

    let archive = dir.path().join("cold.tar.gz");
    cluster
        .run(&["backup", "--mode", "cold", "--output", path_str(&archive)])
        .expect(0);
    fs::write(&auto, &original).expect("put back auto.conf");

    let mut expected: Vec<String> = settings
        .iter()
        .map(|(name, _)| format!("postgresql.auto.conf: {name}"))
        .collect();
    expected.push("postgresql.auto.conf: include".into());
    expected.push("postgresql.conf: include_dir".into());
    expected.push("postgresql.conf: shared_preload_libraries".into());
    expected.sort();
    let listed = |json: &serde_json::Value| common::sorted_strings(&json["config_left_out"]);
    let verify = cluster.run(&["verify", path_str(&archive), "--json"]);
    verify.expect(0);
    assert_eq!(listed(&verify.json()), expected);
    let human = cluster.run(&["verify", path_str(&archive)]);
    assert!(
        human.expect(0).stdout.contains("restore leaves out"),
        "{}",
        human.stdout
    );

    // A dry run of the cold restore checks, says what it would replace, and changes nothing.
    let dry = cluster.run(&[
        "restore",
        path_str(&archive),
        "--dry-run",
        "--force",
        "--json",
    ]);
    dry.expect(0);
    assert!(
        dry.json()["would_replace"]
            .as_str()
            .is_some_and(|w| w.contains("the embedded cluster at")),
        "{}",
        dry.stdout
    );
    assert_eq!(fs::read_to_string(&auto).expect("auto.conf"), original);
    assert!(
        !pgdata.join("postmaster.pid").exists(),
        "the dry run started the server"
    );
    assert!(!cluster.data_dir().join("psql.restoring").exists());

    let restore = cluster.run(&["restore", path_str(&archive), "--yes", "--force", "--json"]);
    restore.expect(0);
    assert_eq!(listed(&restore.json()), expected);
    for file in ["postgresql.auto.conf", "postgresql.conf"] {
        let text = fs::read_to_string(pgdata.join(file)).expect("restored conf");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let lower = line.to_lowercase();
            assert!(
                !settings
                    .iter()
                    .any(|(name, _)| lower.trim_start().starts_with(name))
                    && !lower.starts_with("include ")
                    && !lower.starts_with("include_dir"),
                "{file} still sets: {line}"
            );
        }
    }
    // The restored server starts (it would not with the archive's libraries) and runs with
    // this host's settings.
    cluster.run(&["start"]).expect(0);
    let mut client = cluster.client();
    for name in [
        "archive_command",
        "shared_preload_libraries",
        "restore_command",
        "archive_mode",
    ] {
        let value: String = client
            .query_one(&format!("SHOW {name}"), &[])
            .expect("show")
            .get(0);
        assert!(
            value.is_empty() || value == "off" || value == "(disabled)",
            "{name} = {value}"
        );
    }
    client.exec("SELECT pg_switch_wal(); CHECKPOINT");
    assert!(!marker.exists(), "a command from the archive ran");
}

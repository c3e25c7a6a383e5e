//! The real Graphile Worker, from the npm registry: each pinned version is installed once
//! into a cache outside the repository (`$JOBDBCTL_TEST_CACHE`, else
//! `~/.cache/jobdbctl-tests`), and a small node script written to a temp dir lets the engine
//! install its schema and fill it through its own API, so tests see exactly what a real
//! deployment has. Nothing here is skipped: no node, no npm or no registry is a test failure
//! that says so.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{shared, temp_dir, TestDb};

/// How long one run of the node script may take before the test fails.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

/// Populates a fresh database: migrations, then jobs added through the engine's API (queues,
/// future run_at, priorities, job keys, flags), a worker that completes some and fails some,
/// and a worker that dies holding a job and its queue. Prints one JSON line.
const POPULATE: &str = r#"
await gw.runMigrations(base);
const utils = await gw.makeWorkerUtils(base);
for (let i = 0; i < 6; i++) {
  await utils.addJob("ok", { i }, { queueName: i % 2 ? "serial" : undefined });
}
for (let i = 0; i < 3; i++) {
  await utils.addJob("fail", { i }, { maxAttempts: 5, priority: i });
}
for (let i = 0; i < 20; i++) {
  await utils.addJob(
    i % 3 ? "send_email" : "resize",
    { to: `user${i}@example.com`, note: "naïve \\ back\tslash " + i },
    {
      queueName: i % 4 === 0 ? `queue_${i % 8}` : undefined,
      runAt: later(60 + i),
      priority: (i % 5) - 2,
      maxAttempts: 10 + i,
      jobKey: i % 7 === 0 ? `key-${i}` : undefined,
      flags: i % 6 === 0 ? ["slow", "beta"] : undefined,
    },
  );
}
await gw.quickAddJob(base, "quick", { hello: "world" }, { runAt: later(5), queueName: "serial" });
await gw.runOnce({ ...base, concurrency: 2 }, {
  ok: async () => {},
  fail: async () => {
    throw new Error("failed on purpose");
  },
});
// A worker that dies holding a job (and its queue): the locks stay in the database.
await utils.addJob("hang", {}, { queueName: "hanging" });
let taken;
const held = new Promise((resolve) => (taken = resolve));
await gw.run({ ...base, concurrency: 1 }, {
  hang: () => {
    taken();
    return new Promise(() => {});
  },
});
await held;
await utils.release();
done({ populated: true });
"#;

/// Installs the engine's schema and nothing else.
const MIGRATE: &str = r#"
await gw.runMigrations(base);
done({ migrated: true });
"#;

/// Uses a (restored) schema the way a deployment does: migrations must find nothing to do,
/// a new job is added and a worker completes it. Prints the new job's id.
const EXERCISE: &str = r#"
await gw.runMigrations(base);
const utils = await gw.makeWorkerUtils(base);
const job = await utils.addJob("after_restore", { n: 1 }, { queueName: "after" });
await utils.release();
let ran = 0;
await gw.runOnce({ ...base, concurrency: 1 }, {
  after_restore: async () => {
    ran++;
  },
  ok: async () => {},
  fail: async () => {},
  hang: async () => {},
  quick: async () => {},
});
done({ added_job_id: Number(job.id), ran });
"#;

/// Shared prologue: loads the installed engine (CommonJS before v0.18, ESM after) and its
/// `pg`, and connects through the PG* environment the test sets.
const PROLOGUE: &str = r#"
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const dir = process.argv[2];
const require = createRequire(path.join(dir, "package.json"));
const pg = require("pg");
const mod = await import(pathToFileURL(require.resolve("graphile-worker")).href);
const gw = typeof mod.runMigrations === "function" ? mod : mod.default;
const pgPool = new pg.Pool({ max: 4 });
pgPool.on("error", (e) => {
  console.error("pool error", e);
  process.exit(2);
});
const base = { pgPool, noHandleSignals: true, pollInterval: 50, logger: new gw.Logger(() => () => {}) };
const later = (minutes) => new Date(Date.now() + minutes * 60_000);
const done = (result) => {
  console.log(JSON.stringify(result));
  // Workers left running on purpose (a dead worker's lock) must not keep node alive.
  process.exit(0);
};
"#;

/// An installed Graphile Worker version.
pub struct Engine {
    pub version: String,
    /// The npm prefix: `node_modules/graphile-worker` lives under it.
    pub dir: PathBuf,
}

pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("JOBDBCTL_TEST_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache/jobdbctl-tests"),
        None => std::env::temp_dir().join("jobdbctl-tests-cache"),
    }
}

fn installed_version(prefix: &Path) -> Option<String> {
    let text = fs::read_to_string(prefix.join("node_modules/graphile-worker/package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["version"].as_str().map(str::to_string)
}

/// An exclusive `flock` on `path`, released when the file is closed.
pub fn lock_file(path: &Path) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open lock file {}: {e}", path.display()));
    // SAFETY: a valid open descriptor; flock blocks until the lock is ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "cannot lock {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    file
}

/// Installs `graphile-worker@version` into the cache unless it is there. Concurrent tests
/// (and test binaries) wait for one another on a lock file; the install goes to a temp dir
/// renamed into place, so an interrupted one leaves nothing that looks installed.
pub fn engine(version: &str) -> Engine {
    let root = cache_root();
    fs::create_dir_all(&root)
        .unwrap_or_else(|e| panic!("cannot create test cache {}: {e}", root.display()));
    let dir = root.join(format!("graphile-worker-{version}"));
    let engine = Engine {
        version: version.to_string(),
        dir: dir.clone(),
    };
    if installed_version(&dir).as_deref() == Some(version) {
        return engine;
    }
    let _lock = lock_file(&root.join(format!("graphile-worker-{version}.lock")));
    if installed_version(&dir).as_deref() == Some(version) {
        return engine;
    }
    // Holding the lock, anything of this version in the cache is a leftover.
    let temp_prefix = format!(".install-graphile-worker-{version}-");
    for entry in fs::read_dir(&root).expect("read test cache").flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&temp_prefix)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot remove broken install {}: {e}", dir.display()));
    }
    let temp = tempfile::Builder::new()
        .prefix(&temp_prefix)
        .tempdir_in(&root)
        .expect("create install dir");
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(temp.path())
        .arg(format!("graphile-worker@{version}"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run npm to install graphile-worker@{version} ({e}); these tests need node and npm (e.g. apt-get install nodejs npm)"
            )
        });
    super::assert_success(&out, &format!("npm install graphile-worker@{version} (these tests need the npm registry, or a cache at $JOBDBCTL_TEST_CACHE already holding it)"));
    let got = installed_version(temp.path());
    assert_eq!(
        got.as_deref(),
        Some(version),
        "npm installed graphile-worker {got:?}, not {version}"
    );
    fs::rename(temp.keep(), &dir).unwrap_or_else(|e| {
        panic!(
            "cannot move the graphile-worker install to {}: {e}",
            dir.display()
        )
    });
    engine
}

impl Engine {
    /// Graphile Worker installs its schema in `db` and fills it (see [`POPULATE`]).
    pub fn populate(&self, db: &TestDb) -> serde_json::Value {
        self.script(db, POPULATE)
    }

    /// Graphile Worker installs its schema in `db`, empty.
    pub fn migrate(&self, db: &TestDb) -> serde_json::Value {
        self.script(db, MIGRATE)
    }

    /// Graphile Worker uses the schema in `db` (see [`EXERCISE`]).
    pub fn exercise(&self, db: &TestDb) -> serde_json::Value {
        self.script(db, EXERCISE)
    }

    /// [`Engine::populate`] on a database of any server: `host` its socket directory.
    pub fn populate_at(&self, host: &Path, port: u16, dbname: &str) -> serde_json::Value {
        self.script_at(host, port, dbname, POPULATE)
    }

    /// [`Engine::exercise`] on a database of any server.
    pub fn exercise_at(&self, host: &Path, port: u16, dbname: &str) -> serde_json::Value {
        self.script_at(host, port, dbname, EXERCISE)
    }

    fn script(&self, db: &TestDb, body: &str) -> serde_json::Value {
        let server = shared();
        self.script_at(&server.socket_dir(), server.tcp_port, &db.name, body)
    }

    fn script_at(&self, host: &Path, port: u16, dbname: &str, body: &str) -> serde_json::Value {
        let work = temp_dir("gwjs");
        let script = work.path().join("engine.mjs");
        fs::write(&script, format!("{PROLOGUE}\n{body}")).expect("write node script");
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(&self.dir)
            .current_dir(work.path())
            .env_remove("DATABASE_URL")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env("PGHOST", host)
            .env("PGPORT", port.to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", dbname)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run node ({e}); these tests need node (e.g. apt-get install nodejs)")
        });
        let (mut stdout, mut stderr) = (
            child.stdout.take().expect("stdout"),
            child.stderr.take().expect("stderr"),
        );
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + SCRIPT_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for node") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "graphile-worker {} script did not finish within {SCRIPT_DEADLINE:?}",
                    self.version
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out_reader.join().expect("stdout reader");
        let stderr = err_reader.join().expect("stderr reader");
        assert!(
            status.success(),
            "graphile-worker {} script failed ({status}):\nstdout: {stdout}\nstderr: {stderr}",
            self.version
        );
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| {
            panic!(
                "graphile-worker {} script printed no JSON result ({e}): {stdout}\nstderr: {stderr}",
                self.version
            )
        })
    }
}

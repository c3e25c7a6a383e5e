//! Encrypted archives against the real `age` tool: what jobdbctl encrypts the tool
//! decrypts to the plain archive, what the tool encrypts jobdbctl restores; a missing or
//! wrong key and tampered ciphertext are exit 5 with the database as it was; the catalog
//! lists and prunes encrypted archives without the key; secrets stay out of output.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{path_str, scalar_i64, TestDb};

/// An age key pair made by `age-keygen`: the identity file (mode 0600) and its recipient.
struct Key {
    file: PathBuf,
    recipient: String,
}

fn age_key(dir: &Path, name: &str) -> Key {
    let file = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .output()
        .expect("run age-keygen (Debian package age)");
    common::assert_success(&out, "age-keygen");
    let text = fs::read_to_string(&file).expect("read key");
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_string();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod key");
    Key { file, recipient }
}

/// A file only its owner may read, as key files must be.
fn private_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn age(args: &[&str]) {
    let out = Command::new("age").args(args).output().expect("run age");
    common::assert_success(&out, &format!("age {args:?}"));
}

fn jobs(db: &TestDb) -> i64 {
    scalar_i64(&mut db.client(), "SELECT count(*) FROM jobdb.jobs")
}

/// Backs up with `extra` flags into `dir` and returns the archive's path.
fn backup(db: &TestDb, dir: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["backup", "--json", "--output", path_str(dir)];
    args.extend_from_slice(extra);
    let run = db.run(&args);
    run.expect(0);
    let json = run.json();
    let archive = PathBuf::from(json["archive"].as_str().expect("archive"));
    assert_eq!(json["encrypted"], is_age_file(&archive), "{json}");
    let stored = fs::metadata(&archive).expect("stat archive").len();
    assert_eq!(
        json["bytes"], stored,
        "the size reported is the file's: {json}"
    );
    archive
}

fn is_age_file(path: &Path) -> bool {
    fs::read(path)
        .expect("read archive")
        .starts_with(b"age-encryption.org/v1\n")
}

#[test]
fn the_age_tool_decrypts_what_jobdbctl_encrypts_and_the_other_way_round() {
    let db = TestDb::populated_unlocked(500);
    let dir = common::temp_dir("enc");
    let key = age_key(dir.path(), "key.txt");
    let archive = backup(&db, dir.path(), &["--encrypt-to", &key.recipient]);
    assert!(
        path_str(&archive).ends_with(".tar.gz.age"),
        "{}",
        archive.display()
    );
    assert!(is_age_file(&archive));

    // The tool's plaintext is jobdbctl's plain archive.
    let plain = dir.path().join("plain.tar.gz");
    age(&[
        "-d",
        "-i",
        path_str(&key.file),
        "-o",
        path_str(&plain),
        path_str(&archive),
    ]);
    let checked = db.run(&["verify", "--json", path_str(&plain)]);
    checked.expect(0);
    assert_eq!(checked.json()["encrypted"], false);
    assert!(checked.json()["tables"][0]["rows"].is_number());

    // What the tool encrypts, jobdbctl restores.
    let by_tool = dir.path().join("by-tool.tar.gz.age");
    age(&[
        "-r",
        &key.recipient,
        "-o",
        path_str(&by_tool),
        path_str(&plain),
    ]);
    let before = jobs(&db);
    db.client().exec("DELETE FROM jobdb.jobs WHERE id % 2 = 0");
    assert!(jobs(&db) < before);
    db.run(&[
        "restore",
        path_str(&by_tool),
        "--identity",
        path_str(&key.file),
        "--yes",
        "--force",
    ])
    .expect(0);
    assert_eq!(jobs(&db), before, "the restore put every job back");
    // From standard input too: decrypted and checked as it streams.
    db.client().exec("DELETE FROM jobdb.jobs WHERE id % 2 = 1");
    let mut piped = db.cmd();
    piped
        .args(["restore", "-", "--yes", "--force", "--identity"])
        .arg(&key.file)
        .stdin(fs::File::open(&archive).expect("open archive"));
    common::run(piped).expect(0);
    assert_eq!(jobs(&db), before, "restored from standard input");
    let sealed = db.run(&[
        "verify",
        "--json",
        "--identity",
        path_str(&key.file),
        path_str(&archive),
    ]);
    sealed.expect(0);
    assert_eq!(sealed.json()["encrypted"], true);
}

use common::Exec;

#[test]
fn a_missing_or_wrong_key_or_tampered_ciphertext_is_exit_5_with_nothing_changed() {
    let db = TestDb::populated_unlocked(2000);
    let dir = common::temp_dir("enc");
    let key = age_key(dir.path(), "key.txt");
    let other = age_key(dir.path(), "other.txt");
    let archive = backup(&db, dir.path(), &["--encrypt-to", &key.recipient]);
    db.client().exec("DELETE FROM jobdb.jobs WHERE id % 3 = 0");
    let before = jobs(&db);
    let restore = |extra: &[&str], archive: &Path| {
        let mut args = vec!["restore", path_str(archive), "--yes", "--force"];
        args.extend_from_slice(extra);
        db.run(&args)
    };

    restore(&[], &archive).expect(5).error_has("--identity");
    restore(&["--identity", path_str(&other.file)], &archive)
        .expect(5)
        .error_has("does not decrypt");
    // One byte changed in the middle of the payload.
    let mut bytes = fs::read(&archive).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = dir.path().join("tampered.tar.gz.age");
    fs::write(&tampered, &bytes).expect("write");
    restore(&["--identity", path_str(&key.file)], &tampered)
        .expect(5)
        .error_has("fails authentication");
    // Cut off: the last chunk is missing.
    let cut = dir.path().join("cut.tar.gz.age");
    fs::write(&cut, &bytes[..bytes.len() - 100]).expect("write");
    restore(&["--identity", path_str(&key.file)], &cut).expect(5);
    assert_eq!(jobs(&db), before, "nothing changed");
    assert!(common::leftover_schemas(&mut db.client()).is_empty());

    // A key file others may read is refused, naming it.
    fs::set_permissions(&key.file, fs::Permissions::from_mode(0o644)).expect("chmod");
    restore(&["--identity", path_str(&key.file)], &archive)
        .expect(3)
        .error_has(path_str(&key.file));
    assert_eq!(jobs(&db), before);
}

#[test]
fn a_passphrase_file_encrypts_and_decrypts_and_never_shows() {
    let db = TestDb::populated_unlocked(300);
    let dir = common::temp_dir("enc");
    let secret = "correct horse battery staple 7431";
    let file = private_file(dir.path(), "passphrase", &format!("{secret}\n"));
    let with_passphrase = format!("--passphrase-file={}", file.display());
    let run = db.run(&[
        "-v",
        "backup",
        "--output",
        path_str(dir.path()),
        &with_passphrase,
    ]);
    run.expect(0);
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    let archive = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|p| path_str(p).ends_with(".age"))
        .expect("an encrypted archive");
    assert!(is_age_file(&archive));
    let bytes = fs::read(&archive).expect("read");
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // A passphrase file others may read is refused, naming it.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).expect("chmod");
    db.run(&[
        "verify",
        "--passphrase-file",
        path_str(&file),
        path_str(&archive),
    ])
    .expect(3)
    .error_has(path_str(&file));
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    let wrong = private_file(dir.path(), "wrong", "not it\n");
    db.run(&[
        "verify",
        "--passphrase-file",
        path_str(&wrong),
        path_str(&archive),
    ])
    .expect(5)
    .error_has("does not decrypt");
    let before = jobs(&db);
    db.client().exec("DELETE FROM jobdb.jobs WHERE id % 2 = 0");
    let restored = db.run(&[
        "-v",
        "restore",
        path_str(&archive),
        "--passphrase-file",
        path_str(&file),
        "--yes",
        "--force",
    ]);
    restored.expect(0);
    assert!(!restored.stdout.contains(secret) && !restored.stderr.contains(secret));
    assert_eq!(jobs(&db), before);
}

#[test]
fn the_catalog_lists_and_prunes_encrypted_archives_without_the_key() {
    let db = TestDb::populated_unlocked(200);
    let dir = common::temp_dir("enc");
    let keys = common::temp_dir("keys");
    let key = age_key(keys.path(), "key.txt");
    // The configuration encrypts every backup; no flag needed (cron).
    db.write_config(&format!("encrypt_recipients = [\"{}\"]\n", key.recipient));
    let archives: Vec<PathBuf> = (0..3).map(|_| backup(&db, dir.path(), &[])).collect();
    assert!(archives.iter().all(|a| is_age_file(a)));

    let listing = db.run(&["backups", "--json", "--dir", path_str(dir.path())]);
    listing.expect(0);
    let rows = listing.json();
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["encrypted"], true, "{row}");
        assert_eq!(row["database"], db.name.as_str(), "{row}");
        assert!(row["taken_at"].is_string(), "{row}");
        assert_eq!(row["retention"], "managed", "{row}");
        // Nothing about the jobs without the key.
        assert!(
            row["jobs"].is_null() && row["last_used_job_id"].is_null(),
            "{row}"
        );
    }

    let human = db.run(&["backups", "--dir", path_str(dir.path())]);
    human.expect(0).stdout_has("encrypted");

    // Checking needs the key.
    db.run(&["backups", "verify", "--dir", path_str(dir.path())])
        .expect(5)
        .error_has("--identity");
    db.run(&[
        "backups",
        "verify",
        "--dir",
        path_str(dir.path()),
        "--identity",
        path_str(&key.file),
    ])
    .expect(0);

    // Pruning does not.
    db.run(&[
        "backups",
        "prune",
        "--keep",
        "1",
        "--yes",
        "--dir",
        path_str(dir.path()),
    ])
    .expect(0);
    let left: Vec<PathBuf> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(left, vec![archives[2].clone()], "the newest is kept");

    // restore latest without the key refuses instead of taking an older plain archive.
    backup(&db, dir.path(), &["--encrypt-to", &key.recipient]);
    db.remove_config();
    let plain = backup(&db, dir.path(), &[]);
    fs::remove_file(&plain).expect("remove the plain one again");
    let latest = [
        "restore",
        "latest",
        "--force",
        "--dir",
        path_str(dir.path()),
    ];
    let with = |extra: &'static str| [&latest[..], &[extra]].concat();
    db.run(&with("--yes")).expect(5).error_has("encrypted");
    let mut from_env = db.cmd();
    from_env
        .env("JOBDBCTL_IDENTITY_FILE", &key.file)
        .args(with("--dry-run"));
    common::run(from_env).expect(0);
    db.write_config(&format!("identity_file = \"{}\"\n", path_str(&key.file)));
    let params = db.run(&["show-params", "--json"]);
    params.expect(0);
    let identity = params.json()["params"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "identity_file").cloned())
        .expect("identity_file shown");
    assert_eq!(identity["value"], path_str(&key.file), "{identity}");
    let text = fs::read_to_string(&key.file).expect("key");
    let secret = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-"));
    let secret = secret.expect("secret key line");
    assert!(
        !params.stdout.contains(secret),
        "the key itself is never shown"
    );
    db.run(&with("--yes")).expect(0);
}

#[test]
fn an_ssh_ed25519_key_works_as_recipient_and_identity_for_both_tools() {
    let db = TestDb::populated_unlocked(100);
    let dir = common::temp_dir("enc");
    let key = dir.path().join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", path_str(&key)])
        .output()
        .expect("run ssh-keygen");
    common::assert_success(&out, "ssh-keygen");
    let public = fs::read_to_string(key.with_extension("pub")).expect("public key");
    let archive = backup(&db, dir.path(), &["--encrypt-to", public.trim()]);
    let plain = dir.path().join("plain.tar.gz");
    age(&[
        "-d",
        "-i",
        path_str(&key),
        "-o",
        path_str(&plain),
        path_str(&archive),
    ]);
    db.run(&["verify", path_str(&plain)]).expect(0);
    db.run(&["verify", "--identity", path_str(&key), path_str(&archive)])
        .expect(0);

    // A recipients file in the configuration: an age key and the ssh key, comments between;
    // either identity opens the archive.
    let age_id = age_key(dir.path(), "age.txt");
    let list = dir.path().join("recipients");
    let text = format!(
        "# the team\n{}\n\n# break-glass\n{}",
        age_id.recipient, public
    );
    fs::write(&list, text).expect("write recipients");
    db.write_config(&format!("encrypt_recipients_file = '{}'\n", list.display()));
    let both = backup(&db, dir.path(), &[]);
    assert!(is_age_file(&both), "encrypted by the configuration alone");
    for identity in [&key, &age_id.file] {
        db.run(&["verify", "--identity", path_str(identity), path_str(&both)])
            .expect(0);
    }
}

#[test]
fn bad_recipients_and_both_kinds_at_once_are_usage_errors() {
    let db = TestDb::initialized();
    let dir = common::temp_dir("enc");
    let backup_to = |extra: &[&str]| {
        let mut args = vec!["backup", "--output", path_str(dir.path())];
        args.extend_from_slice(extra);
        db.run(&args)
    };
    backup_to(&["--encrypt-to", "age1nope"])
        .expect(2)
        .error_has("not an age public key");
    let key = age_key(dir.path(), "key.txt");
    let pass = private_file(dir.path(), "pass", "p\n");
    backup_to(&[
        "--encrypt-to",
        &key.recipient,
        "--passphrase-file",
        path_str(&pass),
    ])
    .expect(2)
    .error_has("not both");
    // A private key given as a recipient is not echoed back.
    let secret = fs::read_to_string(&key.file).expect("key");
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("secret line");
    let run = backup_to(&["--encrypt-to", secret]);
    run.expect(2);
    assert!(!run.stderr.contains(&secret[20..]), "{}", run.stderr);
    let nothing: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tar"))
        .collect();
    assert!(nothing.is_empty(), "no archive written: {nothing:?}");
}

#[test]
fn a_cold_backup_is_encrypted_by_the_same_setting_and_restores() {
    let c = common::TestCluster::started();
    let keys = common::temp_dir("keys");
    let key = age_key(keys.path(), "key.txt");
    c.write_config(&format!(
        "data_dir = '{}'\nencrypt_recipients = [\"{}\"]\nidentity_file = '{}'\n",
        c.data_dir().display(),
        key.recipient,
        key.file.display()
    ));
    let first = common::insert_job(&mut c.client());
    let dir = common::temp_dir("enc");
    let cold = dir.path().join("cold.tar.zst.age");
    let output = format!("--output={}", cold.display());
    c.run(&["backup", "--mode=cold", "--compression=zstd", &output])
        .expect(0);
    assert!(is_age_file(&cold));
    common::insert_job(&mut c.client());
    c.run(&["restore", path_str(&cold), "--yes", "--force"])
        .expect(0);
    assert_eq!(
        scalar_i64(
            &mut c.client(),
            "SELECT coalesce(max(id), 0) FROM jobdb.jobs"
        ),
        first,
        "the cluster is back as the archive has it"
    );
}

//! `backup --compression gzip|zstd|none`: each codec round-trips through backup, verify and
//! restore into an empty database; readers tell the codec from the content, not the name;
//! damaged zstd is refused before anything changes; the catalog and retention know all three.

mod common;

use std::path::{Path, PathBuf};

use common::{pg_dump_sorted, scalar_i64, TestDb};

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn backup(db: &TestDb, dir: &Path, codec: &str) -> PathBuf {
    let run = db.run(&[
        "backup",
        "--output",
        path_str(dir),
        "--compression",
        codec,
        "--json",
    ]);
    PathBuf::from(run.expect(0).json()["archive"].as_str().expect("archive"))
}

#[test]
fn each_codec_round_trips_and_is_read_from_content_not_name() {
    let db = TestDb::populated_unlocked(2000);
    let data = pg_dump_sorted(&db, "jobdb", "--data-only");
    let dir = common::temp_dir("cz");
    for (codec, suffix, magic) in [
        ("gzip", ".tar.gz", &[0x1f, 0x8b][..]),
        ("zstd", ".tar.zst", &[0x28, 0xb5, 0x2f, 0xfd][..]),
        ("none", ".tar", &[][..]),
    ] {
        let archive = backup(&db, dir.path(), codec);
        let name = archive.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(name.ends_with(suffix), "{codec}: {name}");
        let bytes = std::fs::read(&archive).expect("read archive");
        assert!(bytes.starts_with(magic), "{codec}: wrong magic");
        if codec == "none" {
            assert_eq!(&bytes[257..262], b"ustar");
        }
        // Named as something else, it still verifies and restores: the content decides.
        let renamed = dir.path().join(format!("renamed-{codec}.bak"));
        std::fs::copy(&archive, &renamed).expect("copy");
        db.run(&["verify", path_str(&renamed)]).expect(0);
        let target = TestDb::empty();
        target
            .run(&["restore", path_str(&renamed), "--yes"])
            .expect(0);
        assert_eq!(
            pg_dump_sorted(&target, "jobdb", "--data-only"),
            data,
            "{codec}: restored rows differ"
        );
        // And from standard input.
        let piped = TestDb::empty();
        let mut cmd = piped.cmd();
        cmd.args(["restore", "-", "--yes"])
            .stdin(std::fs::File::open(&archive).expect("open"));
        common::run(cmd).expect(0);
        assert_eq!(pg_dump_sorted(&piped, "jobdb", "--data-only"), data);
    }

    // The catalog lists all three, read whole or by their ends, all complete.
    let listed = db.run(&["--json", "backups", "--dir", path_str(dir.path())]);
    let items = listed.expect(0).json();
    let items = items.as_array().expect("list");
    let own: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["named_by_jobdbctl"] == true)
        .collect();
    assert_eq!(own.len(), 3, "{items:?}");
    assert!(own.iter().all(|i| i["jobs"] == 2000), "{items:?}");
    assert!(
        own.iter()
            .all(|i| i["state"] == "complete" || i["state"] == "unverified"),
        "{items:?}"
    );
    db.run(&["backups", "verify", "--dir", path_str(dir.path())])
        .expect(0);

    // Retention counts and prunes jobdbctl's own archives of every codec, never a renamed one.
    db.run(&[
        "backups",
        "prune",
        "--dir",
        path_str(dir.path()),
        "--keep",
        "1",
        "--yes",
    ])
    .expect(0);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left.iter().any(|n| n.ends_with(".tar")), "{left:?}");
    assert_eq!(left.iter().filter(|n| n.starts_with("renamed-")).count(), 3);
}

#[test]
fn damaged_zstd_is_refused_and_nothing_changes() {
    let db = TestDb::populated_unlocked(500);
    let dir = common::temp_dir("cz");
    let archive = backup(&db, dir.path(), "zstd");
    let bytes = std::fs::read(&archive).expect("read");
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated", bytes[..bytes.len() * 2 / 3].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            let at = b.len() / 2;
            b[at] ^= 0x55;
            b
        }),
        (
            "junk",
            b"this is not an archive at all, just text\n".repeat(20),
        ),
    ];
    for (what, content) in cases {
        let path = dir.path().join(format!("{what}.tar.zst"));
        std::fs::write(&path, &content).expect("write");
        common::assert_archive_refused(&db, &TestDb::empty(), &path, what);
    }
    // A frame that asks for a window above the reader's limit (2 GiB) is refused, not
    // honoured: zstd's frame header with window descriptor 0xf8 (exponent 31).
    let mut huge = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8];
    huge.extend(std::iter::repeat_n(0u8, 300));
    let path = dir.path().join("window.tar.zst");
    std::fs::write(&path, &huge).expect("write");
    let refused = db.run(&["verify", path_str(&path)]);
    refused.expect(5);
    assert_eq!(
        scalar_i64(&mut db.client(), "SELECT count(*) FROM jobdb.jobs"),
        500
    );
}

#[test]
fn an_unknown_codec_is_a_usage_error_and_the_config_key_chooses_the_default() {
    let db = TestDb::populated_unlocked(100);
    let dir = common::temp_dir("cz");
    db.run(&[
        "backup",
        "--output",
        path_str(dir.path()),
        "--compression",
        "lz4",
    ])
    .expect(2);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);

    db.write_config("compression = 'zstd'\n");
    let run = db.run(&["backup", "--output", path_str(dir.path()), "--json"]);
    let archive = run.expect(0).json()["archive"]
        .as_str()
        .expect("archive")
        .to_string();
    assert!(archive.ends_with(".tar.zst"), "{archive}");
    let shown = db.run(&["show-params", "compression"]);
    assert_eq!(shown.expect(0).stdout.trim(), "zstd");

    db.write_config("compression = 'lz4'\n");
    let bad = db.run(&["backup", "--output", path_str(dir.path())]);
    bad.expect(2);
    assert!(bad.one_line_error().contains("lz4"), "{}", bad.stderr);
}

#[test]
fn a_cold_backup_in_zstd_restores_the_cluster() {
    let c = common::TestCluster::started();
    let mut client = c.client();
    let first = common::insert_job(&mut client);
    drop(client);
    let dir = common::temp_dir("cz");
    let cold = dir.path().join("cold.tar.zst");
    c.run(&[
        "backup",
        "--mode",
        "cold",
        "--compression",
        "zstd",
        "--output",
        path_str(&cold),
    ])
    .expect(0);
    assert!(std::fs::read(&cold)
        .expect("read")
        .starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
    let mut client = c.client();
    common::insert_job(&mut client);
    drop(client);
    c.run(&["restore", path_str(&cold), "--yes", "--force"])
        .expect(0);
    let mut client = c.client();
    assert_eq!(
        scalar_i64(&mut client, "SELECT coalesce(max(id), 0) FROM jobdb.jobs"),
        first,
        "the cluster is back as the archive has it"
    );
}

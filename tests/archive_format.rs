//! The archive format: each codec round-trips and is read from the content, binary COPY
//! entries for portable types, malformed entries refused before any server sees them.

mod common;
use common::Exec;

use common::path_str;

use common::pg_dump_sorted;
use common::scalar_i64;
use common::TestDb;
use sha2::Digest;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::path::PathBuf;

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
        "--keep=1",
        "--yes",
        "--dir",
        path_str(dir.path()),
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
        "--mode=cold",
        "--compression=zstd",
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

/// A row-major binary entry: a binary COPY file.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A column-major binary entry.
const COLUMNS: &[u8] = b"JDBCOL1\n";

fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(archive).expect("open archive");
    let mut tar = tar::Archive::new(file);
    let mut out = Vec::new();
    for e in tar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        out.push((name, data));
    }
    out
}

/// Writes `entries` as an archive whose manifest records their real sizes and checksums, as
/// a forger who knows the format would.
fn forge(entries: &[(String, Vec<u8>)], path: &Path) {
    let mut entries = entries.to_vec();
    let last = entries.len() - 1;
    let mut manifest: serde_json::Value = serde_json::from_slice(&entries[last].1).expect("json");
    let real: BTreeMap<&str, &Vec<u8>> = entries[..last]
        .iter()
        .map(|(n, d)| (n.as_str(), d))
        .collect();
    for e in manifest["entries"].as_array_mut().expect("entries") {
        let data = real[e["name"].as_str().expect("name")];
        e["size"] = data.len().into();
        e["sha256"] = hex::encode(Sha256::digest(data)).into();
    }
    entries[last].1 = serde_json::to_vec_pretty(&manifest).expect("encode");
    let mut builder = tar::Builder::new(std::fs::File::create(path).expect("create"));
    for (name, data) in &entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut h, name, data.as_slice())
            .expect("append");
    }
    builder.finish().expect("finish tar");
}

fn formats(entries: &[(String, Vec<u8>)]) -> BTreeMap<String, (String, usize)> {
    let header: serde_json::Value = serde_json::from_slice(&entries[0].1).expect("header");
    header["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let format = t["format"].as_str().unwrap_or("text").to_string();
            (t["name"].as_str().expect("name").to_string(), (format, i))
        })
        .collect()
}

fn data_entries(entries: &[(String, Vec<u8>)], table: usize) -> Vec<&Vec<u8>> {
    let prefix = format!("data/{table:04}/");
    entries
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix))
        .map(|(_, d)| d)
        .collect()
}

#[test]
fn portable_types_travel_binary_others_text_and_both_restore_identically() {
    let db = TestDb::populated_unlocked(500);
    db.client()
        .exec(r#"
            CREATE TYPE jobdb.mood AS ENUM ('calm', 'busy');
            CREATE DOMAIN jobdb.positive AS int CHECK (VALUE > 0);
            CREATE TYPE jobdb.pair AS (a int, b text);
            CREATE TABLE jobdb.builtin_types (
                id int8 PRIMARY KEY, i2 int2, i4 int4, n numeric, f4 float4, f8 float8, b bool,
                t text, vc varchar(10), c char(3), nm name, ch "char", by bytea, j json,
                jb jsonb, ts timestamp, tstz timestamptz, d date, tm time, tmtz timetz,
                iv interval, u uuid, ip inet, ci cidr, mac macaddr, bits bit varying,
                ia int4[], ta text[], tsv tsvector, pt point, x xml, o oid);
            INSERT INTO jobdb.builtin_types
            SELECT i, (i % 30000)::int2, -i, (i * 1.5)::numeric ^ 3, i / 7.0, i / 3.0, i % 2 = 0,
                   E'tab\there\nnewline \\ backslash ' || i, 'v' || i % 1000, 'c', 'name' || i, 'x',
                   decode('00ff00' || lpad(to_hex(i), 8, '0'), 'hex'), json_build_object('i', i),
                   jsonb_build_object('k', i, 'nested', jsonb_build_array(i, NULL, 'é')),
                   '2026-01-01'::timestamp + i * interval '1 minute', '2026-01-01 00:00+05'::timestamptz - i * interval '1 s',
                   '2000-02-29'::date + i, '12:34:56.789'::time, '01:02:03+04'::timetz,
                   make_interval(days => -i, secs => i / 1000.0), md5(i::text)::uuid, '10.0.0.1'::inet + i,
                   '192.168.0.0/16', '08:00:2b:01:02:03', (i::bit(12))::varbit,
                   ARRAY[i, NULL, -i], ARRAY[ARRAY['a', NULL], ARRAY['', E'q"\\']],
                   to_tsvector('simple', 'job number ' || i), point(i, -i), ('<job n="' || i || '"/>')::xml, i::oid
              FROM generate_series(1, 2000) i;
            INSERT INTO jobdb.builtin_types (id, n, f4, f8, ts, tstz, d) VALUES
                (-1, 'NaN', 'Infinity', '-Infinity', 'infinity', '-infinity', 'infinity'),
                (-2, 123456789012345678901234567890.123456789, 'NaN', 1e-300, NULL, NULL, NULL);
            INSERT INTO jobdb.builtin_types (id) VALUES (-3);
            CREATE TABLE jobdb.big (id int PRIMARY KEY, payload text);
            INSERT INTO jobdb.big SELECT i, repeat(md5(i::text), 300) FROM generate_series(1, 2500) i;
            CREATE TABLE jobdb.user_types (id int, m jobdb.mood, p jobdb.positive, pr jobdb.pair,
                                           ms jobdb.mood[], r regclass);
            INSERT INTO jobdb.user_types
            SELECT i, CASE WHEN i % 2 = 0 THEN 'calm' ELSE 'busy' END::jobdb.mood, i, (i, 'b' || i)::jobdb.pair,
                   ARRAY['calm', 'busy']::jobdb.mood[], 'pg_class'::regclass
              FROM generate_series(1, 300) i;
            CREATE TABLE jobdb.reg_array (id int, r regtype[]);
            INSERT INTO jobdb.reg_array VALUES (1, ARRAY['int4', 'text']::regtype[]);
            CREATE TABLE jobdb.huge (id int, body text);
            INSERT INTO jobdb.huge VALUES (1, repeat('0123456789abcdef', 1100000)), (2, 'small');
            "#);
    let data = pg_dump_sorted(&db, "jobdb", "--data-only");
    let schema = pg_dump_sorted(&db, "jobdb", "--schema-only");
    let dir = common::temp_dir("bc");
    let archive = backup(&db, dir.path(), "none");
    let entries = entries(&archive);
    let formats = formats(&entries);
    for (table, want) in [
        ("jobs", "binary"),
        ("builtin_types", "binary"),
        ("big", "binary"),
        ("user_types", "text"),
        ("reg_array", "text"),
    ] {
        let (format, index) = &formats[table];
        assert_eq!(format, want, "{table}: {formats:?}");
        let chunks = data_entries(&entries, *index);
        assert!(!chunks.is_empty(), "{table} has no data entry");
        for chunk in chunks {
            let binary = chunk.starts_with(SIGNATURE) || chunk.starts_with(COLUMNS);
            assert_eq!(binary, want == "binary", "{table}");
        }
    }
    // The big table is cut into several entries, each column-major.
    let big = data_entries(&entries, formats["big"].1);
    assert!(big.len() >= 2, "big table in {} entries", big.len());
    assert!(big.iter().all(|d| d.starts_with(COLUMNS)));
    // A row of 17.6 MB makes an entry too big to regroup: a plain binary COPY file.
    let (format, huge) = &formats["huge"];
    assert_eq!(format, "binary");
    let huge = data_entries(&entries, *huge);
    let row_major: Vec<_> = huge.iter().filter(|d| d.starts_with(SIGNATURE)).collect();
    assert_eq!(row_major.len(), 1, "the huge row's entry");
    assert!(row_major[0].len() > 17_000_000 && row_major[0].ends_with(&[0xff, 0xff]));
    assert!(huge
        .iter()
        .all(|d| d.starts_with(SIGNATURE) || d.starts_with(COLUMNS)));

    db.run(&["verify", path_str(&archive)]).expect(0);
    let target = TestDb::empty();
    target
        .run(&["restore", path_str(&archive), "--yes"])
        .expect(0);
    assert_eq!(pg_dump_sorted(&target, "jobdb", "--data-only"), data);
    assert_eq!(pg_dump_sorted(&target, "jobdb", "--schema-only"), schema);
}

type Edit<'a> = (&'a str, &'a dyn Fn(&mut Vec<u8>));

#[test]
fn a_malformed_binary_entry_is_refused_before_any_server_sees_it() {
    let db = TestDb::populated_unlocked(300);
    db.client().exec(
        "CREATE TABLE jobdb.huge (id int, body text);
             INSERT INTO jobdb.huge VALUES (1, repeat('0123456789abcdef', 1100000));",
    );
    let dir = common::temp_dir("bc");
    let archive = backup(&db, dir.path(), "none");
    let good = entries(&archive);
    let formats = formats(&good);
    let entry_of = |table: &str| {
        let (format, index) = &formats[table];
        assert_eq!(format, "binary", "{table}");
        good.iter()
            .position(|(n, _)| n.starts_with(&format!("data/{index:04}/")))
            .expect("data entry")
    };
    let (jobs, huge) = (entry_of("jobs"), entry_of("huge"));
    assert!(good[jobs].1.starts_with(COLUMNS));
    assert!(good[huge].1.starts_with(SIGNATURE));

    // Column-major: magic, rows (u32), columns (u16), then each column's lengths and values.
    let column_major: [Edit; 6] = [
        ("one row more than it holds", &|d| d[11] += 1),
        ("one column less than the table", &|d| d[13] -= 1),
        ("negative field length", &|d| {
            d[14..18].copy_from_slice(&(-7i32).to_be_bytes())
        }),
        ("a byte after the last column", &|d| d.push(0)),
        ("one byte short", &|d| {
            d.pop();
        }),
        ("larger than restore regroups in memory", &|d| {
            d.resize(16 << 20 | 1, 0)
        }),
    ];
    // Row-major: a binary COPY file (19-byte header, rows, trailer).
    let row_major: [Edit; 5] = [
        ("OIDs flag in the header", &|d| d[11] = 0x01),
        ("wrong field count", &|d| d[20] += 1),
        ("no trailer", &|d| d.truncate(d.len() - 2)),
        ("bytes after the trailer", &|d| d.extend_from_slice(b"\0\0")),
        ("negative field length", &|d| {
            d[21..25].copy_from_slice(&(-7i32).to_be_bytes())
        }),
    ];
    let cases = column_major
        .iter()
        .map(|e| (jobs, e))
        .chain(row_major.iter().map(|e| (huge, e)));
    let target = TestDb::empty();
    let before = pg_dump_sorted(&db, "jobdb", "--data-only");
    for (at, (what, edit)) in cases {
        let mut forged = good.clone();
        edit(&mut forged[at].1);
        let path = dir.path().join("forged.tar");
        forge(&forged, &path);
        let verified = common::assert_archive_refused(&db, &target, &path, what);
        assert!(
            verified.stderr.contains(&forged[at].0),
            "{what}: the error names the entry: {}",
            verified.stderr
        );
        db.run(&["restore", path_str(&path), "--yes"]).expect(5);
        assert_eq!(
            pg_dump_sorted(&db, "jobdb", "--data-only"),
            before,
            "{what}: a refused restore changed the database"
        );
    }
    // Unchanged, the same forging path gives an archive that restores: the refusals above
    // came from the binary entries, not from the forging.
    let path = dir.path().join("unchanged.tar");
    forge(&good, &path);
    target.run(&["restore", path_str(&path), "--yes"]).expect(0);
    assert_eq!(
        scalar_i64(&mut target.client(), "SELECT count(*) FROM jobdb.jobs"),
        300
    );
    assert_eq!(pg_dump_sorted(&target, "jobdb", "--data-only"), before);
}

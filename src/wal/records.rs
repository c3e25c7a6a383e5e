//! jobdbctl's own records beside the archived WAL (restore points, base backups): small
//! JSON files whose names are never WAL file names, so `wal-fetch` never serves them.
//! Each is created exclusively, never replacing another, and fsynced with its directory; a
//! record that cannot be read is an error naming it (exit 5): a record silently skipped
//! would send a recovery somewhere else.

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Read;

use super::Archive;
use crate::error::{failure, Exit};

/// A record is a few hundred bytes; anything much larger was not written by jobdbctl.
const MAX_RECORD: u64 = 16 << 10;

/// Stores `value` as `file` in `archive`, exclusively.
pub fn put<T: Serialize>(
    archive: &Archive,
    file: &str,
    value: &T,
    what: &str,
) -> anyhow::Result<()> {
    let data =
        serde_json::to_vec_pretty(value).with_context(|| format!("cannot encode the {what}"))?;
    archive.store.put_new(file, &data).map(drop)
}

/// Every record in `archive` whose file name starts with `prefix` and ends in `.json`,
/// checked by `check` (a record failing it is damaged).
pub fn all<T: DeserializeOwned>(
    archive: &Archive,
    prefix: &str,
    what: &str,
    check: impl Fn(&T) -> bool,
) -> anyhow::Result<Vec<T>> {
    let store = &*archive.store;
    if !store.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for listed in store.list()? {
        if !(listed.name.starts_with(prefix) && listed.name.ends_with(".json")) {
            continue;
        }
        // The name came from a directory the server user can write into.
        let path =
            crate::output::printable(&store.path_of(&listed.name).display().to_string(), 200);
        let damaged = |why: String| {
            failure(
                Exit::BadArchive,
                format!("{what} record {path} is damaged ({why}); move it aside"),
            )
        };
        let object = store
            .open(&listed.name)
            .with_context(|| format!("cannot open {path}"))?;
        if object.bytes() > MAX_RECORD {
            return Err(damaged(format!("{} bytes", object.bytes())));
        }
        let mut text = Vec::new();
        object
            .stream()
            .and_then(|mut r| r.read_to_end(&mut text))
            .with_context(|| format!("cannot read {path}"))?;
        let value: T = serde_json::from_slice(&text).map_err(|e| damaged(e.to_string()))?;
        if !check(&value) {
            return Err(damaged("values jobdbctl never writes".into()));
        }
        out.push(value);
    }
    Ok(out)
}

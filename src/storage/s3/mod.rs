//! An S3 bucket and prefix (`s3://bucket/prefix/`) as a place of archives: AWS S3, MinIO,
//! SeaweedFS, Ceph RGW, any S3-compatible store.
//!
//! What it guarantees, beside the module's (`crate::storage`):
//! - An archive is a multipart upload: its key exists only once CompleteMultipartUpload
//!   succeeds. A failed, refused or interrupted run aborts its upload; a killed one leaves an
//!   incomplete upload, invisible to listings, that `backups prune` removes after a day.
//!   A CompleteMultipartUpload answered 200 with an error body is a failure.
//! - Nothing is overwritten: the key is checked before the first byte is read from the
//!   database (exit 3 when taken), and the completion is conditional (`If-None-Match: *`)
//!   where the store honours it.
//! - Memory stays bounded whatever the archive's size: at most three parts (5 MiB each below
//!   5 GB) in memory while writing, two 8 MiB chunks ahead while reading.
//! - Reads are ranged GETs conditional on the ETag read first (`If-Match`): a read that
//!   breaks resumes at its chunk, and an object replaced meanwhile is exit 5, never a mix.
//! - Every request has a time limit and is retried for a bounded total (`client`).

mod client;
mod read;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rusty_s3::actions::{ListObjectsV2, ObjectIdentifier};
use rusty_s3::{Method, S3Action, UrlStyle};

use self::client::{Call, Client, SIGNED_FOR};
use super::{Identity, Listed, Object, Store, Upload};
use crate::config::s3::{Addressing, S3Config};
use crate::error::{failure, Exit};

/// Incomplete uploads older than this are abandoned (a killed run's), not being written.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `s3://bucket/prefix/` split: the bucket, and the prefix ("" or ending in `/`).
pub struct Url {
    pub bucket: String,
    pub prefix: String,
}

impl Url {
    /// Parses `s3://bucket[/prefix]`; the prefix is a directory whether or not it ends in
    /// `/`.
    pub fn parse(text: &str) -> anyhow::Result<Url> {
        let bad = |why: &str| {
            failure(
                Exit::Usage,
                format!("{text:?} is not a usable s3:// URL: {why}; e.g. s3://backups/jobdb/"),
            )
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(bad(
                "a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens",
            ));
        }
        if prefix.chars().any(char::is_control)
            || prefix.split('/').any(|s| s == "." || s == "..")
            || prefix.contains("//")
            || prefix.starts_with('/')
        {
            return Err(bad(
                "the prefix has an empty, `.` or `..` segment or a control character",
            ));
        }
        let mut prefix = prefix.to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Url {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

/// Connects the bucket of `url` with the configured endpoint and credentials.
pub fn connect(url: &Url, config: &S3Config, verbose: bool) -> anyhow::Result<Arc<Client>> {
    let endpoint = config.endpoint_url();
    let parsed = endpoint
        .parse::<url::Url>()
        .map_err(|e| failure(Exit::Usage, format!("S3 endpoint {endpoint:?}: {e}")))?;
    let style = match config.addressing.value {
        Addressing::Path => UrlStyle::Path,
        Addressing::Virtual => UrlStyle::VirtualHost,
    };
    let bucket = rusty_s3::Bucket::new(
        parsed,
        style,
        url.bucket.clone(),
        config.region.value.clone(),
    )
    .map_err(|e| {
        failure(
            Exit::Usage,
            format!(
                "cannot address bucket {} at {endpoint} with {} addressing: {e}; set s3_addressing",
                url.bucket, config.addressing.value
            ),
        )
    })?;
    let credentials = config.credentials()?.ok_or_else(|| {
        failure(
            Exit::Usage,
            format!(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put profile [{}] in {}",
                config.profile.value,
                config.credentials_file.value.display()
            ),
        )
    })?;
    let c = credentials.value;
    let credentials = match c.session_token {
        Some(token) => rusty_s3::Credentials::new_with_token(
            c.access_key_id,
            c.secret_access_key.expose(),
            token.expose(),
        ),
        None => rusty_s3::Credentials::new(c.access_key_id, c.secret_access_key.expose()),
    };
    let ca = match &config.ca_file {
        Some(s) => Some(std::fs::read(&s.value).with_context(|| {
            format!(
                "cannot read the S3 CA file {} ({})",
                s.value.display(),
                s.source
            )
        })?),
        None => None,
    };
    Ok(Arc::new(Client::new(
        bucket,
        credentials,
        endpoint,
        ca,
        config.retry_for.value,
        verbose,
    )?))
}

pub struct S3Store {
    client: Arc<Client>,
    prefix: String,
    /// Size and ETag of each object the last listing showed, so opening one of them needs
    /// no HEAD (its reads are conditional on that ETag all the same).
    listed: std::sync::Mutex<std::collections::HashMap<String, (u64, String)>>,
}

/// Catalog reads in flight at once against a bucket: each waits on a round trip.
pub(super) const PARALLEL_READS: usize = 16;

impl S3Store {
    pub fn new(client: Arc<Client>, url: &Url) -> S3Store {
        S3Store {
            client,
            prefix: url.prefix.clone(),
            listed: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Every object directly under the prefix, page by page.
    fn list_objects(&self) -> anyhow::Result<Vec<Listed>> {
        let client = &self.client;
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let sign = || {
                let mut action = ListObjectsV2::new(&client.bucket, Some(&client.credentials));
                action.with_prefix(self.prefix.as_str());
                action.with_delimiter("/");
                action.with_max_keys(1000);
                if let Some(t) = &token {
                    action.with_continuation_token(t.as_str());
                }
                action.sign(SIGNED_FOR)
            };
            let what = format!("list {}", self.describe());
            let answer = client.expect(&Call::new(&what, Method::Get, &sign), &[200])?;
            let page = ListObjectsV2::parse_response(&answer.text())
                .map_err(|e| client.unreadable(&what, e))?;
            for object in page.contents {
                let Some(name) = object.key.strip_prefix(&self.prefix) else {
                    continue;
                };
                if name.is_empty() || name.contains('/') {
                    continue;
                }
                let etag = object.etag.unwrap_or_default();
                let bytes = object.size.unwrap_or(0);
                if let Ok(mut seen) = self.listed.lock() {
                    seen.insert(name.to_string(), (bytes, etag.clone()));
                }
                listed.push(Listed {
                    name: name.to_string(),
                    bytes,
                    modified: object.last_modified.as_deref().and_then(parse_time),
                    owner: crate::safe_fs::euid(),
                    identity: identity(&etag, bytes),
                });
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(listed),
            }
        }
    }

    fn head(&self, name: &str) -> anyhow::Result<Option<(u64, String)>> {
        self.client.head(&self.key(name), &self.url_of(name))
    }

    fn url_of(&self, name: &str) -> String {
        format!("s3://{}/{}{name}", self.client.bucket.name(), self.prefix)
    }
}

/// An object's identity for a later delete or second read: its ETag and size.
fn identity(etag: &str, bytes: u64) -> Identity {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(etag.trim_matches('"').as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_le_bytes(first), bytes)
}

fn parse_time(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
}

impl Store for S3Store {
    fn describe(&self) -> String {
        self.url_of("")
    }

    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from(self.url_of(name))
    }

    fn exists(&self) -> bool {
        self.prepare().is_ok()
    }

    /// Checks that the bucket answers to these credentials (a one-key listing), before a
    /// backup reads anything from the database.
    fn prepare(&self) -> anyhow::Result<()> {
        let client = &self.client;
        let sign = || {
            let mut action = ListObjectsV2::new(&client.bucket, Some(&client.credentials));
            action.with_prefix(self.prefix.as_str());
            action.with_max_keys(1);
            action.sign(SIGNED_FOR)
        };
        let what = format!("list {}", self.describe());
        client.expect(&Call::new(&what, Method::Get, &sign), &[200])?;
        Ok(())
    }

    fn list(&self) -> anyhow::Result<Vec<Listed>> {
        self.list_objects()
    }

    fn open(&self, name: &str) -> std::io::Result<Box<dyn Object>> {
        let seen = self.listed.lock().ok().and_then(|l| l.get(name).cloned());
        let (bytes, etag) = match seen {
            Some(known) => known,
            None => self
                .head(name)
                .map_err(read::into_io)?
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?,
        };
        Ok(Box::new(read::S3Object::new(
            self.client.clone(),
            self.key(name),
            self.url_of(name),
            bytes,
            etag,
        )))
    }

    fn create(&self, name: &str) -> anyhow::Result<Box<dyn Upload>> {
        if self.head(name)?.is_some() {
            return Err(failure(
                Exit::Refused,
                format!(
                    "refusing to write {}: an object is already there, and backup never overwrites one in a bucket; \
                     choose another name or delete it",
                    self.url_of(name)
                ),
            ));
        }
        upload::S3Upload::start(self.client.clone(), self.key(name), self.url_of(name))
    }

    fn remove(&self, name: &str, identity: Identity) -> anyhow::Result<bool> {
        Ok(self.remove_many(&[(name.to_string(), identity)])?[0])
    }

    /// One listing to check that each object is still the one read, then DeleteObjects in
    /// batches of 1,000.
    fn remove_many(&self, doomed: &[(String, Identity)]) -> anyhow::Result<Vec<bool>> {
        let now: std::collections::HashMap<String, Identity> = self
            .list_objects()?
            .into_iter()
            .map(|l| (l.name, l.identity))
            .collect();
        let mut gone = vec![false; doomed.len()];
        let mut batch = Vec::new();
        for (i, (name, identity)) in doomed.iter().enumerate() {
            match now.get(name) {
                None => gone[i] = true,
                Some(current) if current == identity => batch.push(i),
                Some(_) => {}
            }
        }
        let client = &self.client;
        for part in batch.chunks(1000) {
            let ids: Vec<ObjectIdentifier> = part
                .iter()
                .map(|&i| ObjectIdentifier::new(self.key(&doomed[i].0)))
                .collect();
            let mut action = client
                .bucket
                .delete_objects(Some(&client.credentials), ids.iter());
            action.set_quiet(true);
            let sign = || action.sign(SIGNED_FOR);
            let (body, md5) = action.clone().body_with_md5();
            let what = format!("delete {} archive(s) in {}", part.len(), self.describe());
            let answer = client.expect(
                &Call::new(&what, Method::Post, &sign)
                    .headers(&[("content-md5", md5.as_str())])
                    .body(body.as_bytes()),
                &[200],
            )?;
            let result = rusty_s3::actions::DeleteObjectsResponse::parse(&answer.text());
            let failed: Vec<String> = match result {
                Ok(r) => r
                    .errors
                    .into_iter()
                    .map(|e| format!("{}: {}", e.key, e.code))
                    .collect(),
                Err(_) if answer.error_code().is_some() => {
                    return Err(client.refused(&what, &answer));
                }
                Err(_) => Vec::new(),
            };
            if let Some(first) = failed.first() {
                return Err(failure(
                    Exit::Runtime,
                    format!(
                        "S3 {}: {what}: {} not deleted (first: {first})",
                        client.endpoint,
                        failed.len()
                    ),
                ));
            }
            for &i in part {
                gone[i] = true;
            }
        }
        Ok(gone)
    }

    fn free_bytes(&self) -> anyhow::Result<u64> {
        Ok(u64::MAX)
    }

    fn parallel_reads(&self) -> usize {
        PARALLEL_READS
    }

    fn remove_abandoned(&self, dry_run: bool) -> anyhow::Result<Vec<PathBuf>> {
        upload::remove_abandoned(&self.client, &self.prefix, dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        let u = Url::parse("s3://backups/jobdb").expect("parses");
        assert_eq!(
            (u.bucket.as_str(), u.prefix.as_str()),
            ("backups", "jobdb/")
        );
        let u = Url::parse("s3://backups").expect("parses");
        assert_eq!(u.prefix, "");
        for bad in [
            "s3://B/x",
            "s3://ab/x",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "file:///x",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}

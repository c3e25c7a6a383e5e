//! Writing an archive as a multipart upload: the writer fills a part, a thread uploads it
//! while the next fills (three parts in memory at most), and completion names the object.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context as _;
use instant_xml::FromXml;
use rusty_s3::actions::CreateMultipartUpload;
use rusty_s3::{Method, S3Action};

use super::client::{Call, Client, SIGNED_FOR};
use super::ABANDONED_AFTER;
use crate::error::{failure, Exit};
use crate::storage::Upload;

/// The size of part `number` (from 1): S3's smallest (5 MiB, but the last), so an archive's
/// upload keeps pace with its writing and little is left for completion; doubled every 1,000
/// parts to stay within S3's 10,000 (archives of terabytes).
fn part_size(number: usize) -> usize {
    (5 << 20) << (number.saturating_sub(1) / 1000).min(6)
}

enum Message {
    Part(Vec<u8>),
    /// The last part (maybe empty), then complete.
    Last(Vec<u8>),
}

/// The filling part, shared by the writer and `complete` (which sends what is left in it,
/// whenever the archive writer drops its end).
struct Filling {
    buf: Vec<u8>,
    /// The number of the part `buf` fills.
    number: usize,
    sender: Option<SyncSender<Message>>,
}

pub struct S3Upload {
    client: Arc<Client>,
    key: String,
    url: String,
    upload_id: String,
    filling: Arc<Mutex<Filling>>,
    /// The uploading thread: the parts' ETags, in order.
    worker: Option<JoinHandle<anyhow::Result<Vec<String>>>>,
}

impl S3Upload {
    pub fn start(client: Arc<Client>, key: String, url: String) -> anyhow::Result<Box<dyn Upload>> {
        let sign = || {
            client
                .bucket
                .create_multipart_upload(Some(&client.credentials), &key)
                .sign(SIGNED_FOR)
        };
        let what = format!("start the upload of {url}");
        let answer = client.expect(&Call::new(&what, Method::Post, &sign), &[200])?;
        let upload_id = CreateMultipartUpload::parse_response(&answer.text())
            .map_err(|e| client.unreadable(&what, e))?
            .upload_id()
            .to_string();
        let (tx, rx) = sync_channel(1);
        let worker = {
            let (client, key, url, id) =
                (client.clone(), key.clone(), url.clone(), upload_id.clone());
            std::thread::Builder::new()
                .name("s3-upload".into())
                .spawn(move || upload_parts(&client, &key, &url, &id, rx))
                .context("cannot start the upload thread")?
        };
        Ok(Box::new(S3Upload {
            client,
            key,
            url,
            upload_id,
            filling: Arc::new(Mutex::new(Filling {
                buf: Vec::with_capacity(part_size(1)),
                number: 1,
                sender: Some(tx),
            })),
            worker: Some(worker),
        }))
    }

    fn finish_parts(&mut self) -> anyhow::Result<Vec<String>> {
        let sender = {
            let mut filling = self
                .filling
                .lock()
                .map_err(|_| anyhow::anyhow!("upload state poisoned"))?;
            let last = std::mem::take(&mut filling.buf);
            filling.sender.take().map(|s| (s, last))
        };
        if let Some((sender, last)) = sender {
            // A send fails only when the thread has stopped; its result says why.
            let _ = sender.send(Message::Last(last));
        }
        match self.worker.take() {
            Some(worker) => worker
                .join()
                .map_err(|_| anyhow::anyhow!("the upload thread panicked"))?,
            None => anyhow::bail!("internal error: upload already finished"),
        }
    }

    /// Whether the object at the key is the one these parts make: S3's multipart ETag is
    /// the MD5 of the parts' MD5s, a dash, and their number.
    fn landed(&self, etags: &[String]) -> anyhow::Result<bool> {
        use md5::Digest as _;
        let mut all = md5::Md5::new();
        for etag in etags {
            let Ok(digest) = hex::decode(etag.trim_matches('"')) else {
                return Ok(false);
            };
            all.update(digest);
        }
        let expected = format!("{}-{}", hex::encode(all.finalize()), etags.len());
        let object = self.client.head(&self.key, &self.url)?;
        Ok(object.is_some_and(|(_, etag)| etag.trim_matches('"') == expected))
    }

    /// Best effort: the run is failing already, and an upload left behind is removed by
    /// `backups prune` after a day.
    fn abort_upload(&self) {
        let what = format!("abort the upload of {}", self.url);
        let _ = abort(&self.client, &self.key, &self.upload_id, &what);
    }
}

/// AbortMultipartUpload: the upload's parts are deleted (one already gone counts as done).
fn abort(client: &Client, key: &str, upload_id: &str, what: &str) -> anyhow::Result<()> {
    let sign = || {
        client
            .bucket
            .abort_multipart_upload(Some(&client.credentials), key, upload_id)
            .sign(SIGNED_FOR)
    };
    client.expect(&Call::new(what, Method::Delete, &sign), &[200, 204, 404])?;
    Ok(())
}

fn upload_parts(
    client: &Client,
    key: &str,
    url: &str,
    upload_id: &str,
    rx: Receiver<Message>,
) -> anyhow::Result<Vec<String>> {
    let mut etags = Vec::new();
    loop {
        let (data, last) = match rx.recv() {
            Ok(Message::Part(data)) => (data, false),
            Ok(Message::Last(data)) => (data, true),
            // The writer went away without finishing: the run failed; abort does the rest.
            Err(_) => anyhow::bail!("upload of {url} abandoned"),
        };
        if !data.is_empty() || etags.is_empty() {
            let number = etags.len() as u16 + 1;
            let sign = || {
                client
                    .bucket
                    .upload_part(Some(&client.credentials), key, number, upload_id)
                    .sign(SIGNED_FOR)
            };
            let what = format!("upload part {number} of {url}");
            let answer =
                client.expect(&Call::new(&what, Method::Put, &sign).body(&data), &[200])?;
            let etag = answer.header("etag").with_context(|| {
                format!("S3 {}: {what}: no ETag in the answer", client.endpoint)
            })?;
            etags.push(etag.to_string());
        }
        if last {
            return Ok(etags);
        }
    }
}

impl Upload for S3Upload {
    fn writer(&mut self) -> anyhow::Result<Box<dyn Write + Send>> {
        Ok(Box::new(PartWriter {
            filling: self.filling.clone(),
        }))
    }

    fn complete(mut self: Box<Self>) -> anyhow::Result<PathBuf> {
        let etags = match self.finish_parts() {
            Ok(etags) => etags,
            Err(e) => {
                self.abort_upload();
                return Err(e);
            }
        };
        let client = &self.client;
        let action = client.bucket.complete_multipart_upload(
            Some(&client.credentials),
            &self.key,
            &self.upload_id,
            etags.iter().map(String::as_str),
        );
        let signed = {
            let mut action = action.clone();
            // Create-only where the store honours it; the key was checked free at the start.
            action.headers_mut().insert("if-none-match", "*");
            action
        };
        let sign = || signed.sign(SIGNED_FOR);
        let body = action.body();
        let what = format!("complete the upload of {}", self.url);
        let answer = client.send(
            &Call::new(&what, Method::Post, &sign)
                .headers(&[("if-none-match", "*")])
                .body(body.as_bytes()),
        );
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.abort_upload();
                return Err(e);
            }
        };
        // 200 with an <Error> body is a failure (the store gave up after answering).
        let failed = answer.status != 200
            || answer.error_code().is_some()
            || rusty_s3::actions::CompleteMultipartUploadResponse::parse(&answer.text()).is_err();
        // A completion the store carried out whose answer was lost is retried and then
        // answered "no such upload" (or 412, the object being there now): the object is ours
        // if its ETag is the one these parts make.
        if failed && matches!(answer.status, 404 | 412) && self.landed(&etags)? {
            return Ok(PathBuf::from(&self.url));
        }
        if failed {
            self.abort_upload();
            if answer.status == 412 {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "refusing to replace {}: an object appeared there while this backup was written; nothing was overwritten",
                        self.url
                    ),
                ));
            }
            return Err(client.refused(&what, &answer));
        }
        Ok(PathBuf::from(&self.url))
    }

    fn abort(mut self: Box<Self>) {
        if let Ok(mut filling) = self.filling.lock() {
            filling.sender = None;
            filling.buf = Vec::new();
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        self.abort_upload();
    }
}

struct PartWriter {
    filling: Arc<Mutex<Filling>>,
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut filling = self
            .filling
            .lock()
            .map_err(|_| std::io::Error::other("upload state poisoned"))?;
        let size = part_size(filling.number);
        let n = (size - filling.buf.len()).min(data.len());
        filling.buf.extend_from_slice(&data[..n]);
        if filling.buf.len() == size {
            filling.number += 1;
            let next = part_size(filling.number);
            let full = std::mem::replace(&mut filling.buf, Vec::with_capacity(next));
            let sender = filling
                .sender
                .clone()
                .ok_or_else(|| std::io::Error::other("the upload was finished or aborted"))?;
            // Not holding the lock while the thread is busy with the previous part.
            drop(filling);
            sender
                .send(Message::Part(full))
                .map_err(|_| std::io::Error::other(failure_of_thread()))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The upload thread stops only on a failure, which `complete` reports in full.
fn failure_of_thread() -> crate::error::Failure {
    crate::error::Failure {
        exit: Exit::Connect,
        message: "the upload to object storage failed (the reason follows when the run ends)"
            .into(),
    }
}

/// Removes (or with `dry_run`, lists) the incomplete uploads under `prefix` started more than
/// [`ABANDONED_AFTER`] ago: runs killed mid-upload. Younger ones may be running elsewhere.
pub fn remove_abandoned(
    client: &Client,
    prefix: &str,
    dry_run: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let bucket = client.bucket.name();
    let now = chrono::Utc::now();
    let mut removed = Vec::new();
    for (key, id, initiated) in list_uploads(client, prefix)? {
        // Deeper prefixes are other places' business.
        if key
            .strip_prefix(prefix)
            .is_none_or(|name| name.contains('/'))
        {
            continue;
        }
        let old = initiated.is_some_and(|t| {
            now.signed_duration_since(t)
                .to_std()
                .is_ok_and(|age| age > ABANDONED_AFTER)
        });
        if !old {
            continue;
        }
        let url = format!("s3://{bucket}/{key} (incomplete upload)");
        if !dry_run {
            let what = format!("abort the abandoned upload of s3://{bucket}/{key}");
            abort(client, &key, &id, &what)?;
        }
        removed.push(PathBuf::from(url));
    }
    Ok(removed)
}

/// An incomplete upload: its key, upload ID and when it started.
type Pending = (String, String, Option<chrono::DateTime<chrono::Utc>>);

/// ListMultipartUploads under `prefix`: (key, upload ID, initiated), page by page. rusty-s3
/// has no action for it; its signer presigns the request.
fn list_uploads(client: &Client, prefix: &str) -> anyhow::Result<Vec<Pending>> {
    let mut all = Vec::new();
    let mut markers: Option<(String, String)> = None;
    loop {
        let sign = || {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some((k, _)) = &markers {
                query.push(("key-marker", k.as_str()));
            }
            query.push(("prefix", prefix));
            if let Some((_, u)) = &markers {
                query.push(("upload-id-marker", u.as_str()));
            }
            query.push(("uploads", ""));
            let c = &client.credentials;
            rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                Method::Get,
                client.bucket.base_url().clone(),
                c.key(),
                c.secret(),
                c.token(),
                client.bucket.region(),
                SIGNED_FOR.as_secs(),
                query.into_iter(),
                std::iter::empty(),
            )
        };
        let what = format!(
            "list incomplete uploads in s3://{}/{prefix}",
            client.bucket.name()
        );
        let answer = client.expect(&Call::new(&what, Method::Get, &sign), &[200])?;
        let page: Uploads =
            instant_xml::from_str(&answer.text()).map_err(|e| client.unreadable(&what, e))?;
        for u in page.uploads {
            let initiated = chrono::DateTime::parse_from_rfc3339(&u.initiated)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc));
            all.push((u.key, u.upload_id, initiated));
        }
        match (
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        ) {
            (Some(true), Some(k), Some(u)) if !k.is_empty() => markers = Some((k, u)),
            _ => return Ok(all),
        }
    }
}

const S3_XML_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

#[derive(FromXml)]
#[xml(rename = "ListMultipartUploadsResult", ns(S3_XML_NS))]
struct Uploads {
    #[xml(rename = "IsTruncated")]
    is_truncated: Option<bool>,
    #[xml(rename = "NextKeyMarker")]
    next_key_marker: Option<String>,
    #[xml(rename = "NextUploadIdMarker")]
    next_upload_id_marker: Option<String>,
    uploads: Vec<PendingUpload>,
}

#[derive(FromXml)]
#[xml(rename = "Upload", ns(S3_XML_NS))]
struct PendingUpload {
    #[xml(rename = "Key")]
    key: String,
    #[xml(rename = "UploadId")]
    upload_id: String,
    #[xml(rename = "Initiated")]
    initiated: String,
}

//! One S3 request at a time, signed by rusty-s3 and sent by ureq, with a time limit on every
//! request and retries with exponential backoff and jitter for a bounded total. Nothing here
//! prints a URL: a presigned URL carries the access key's signature (and a session token).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rusty_s3::{Bucket, Credentials, Method, S3Action};
use url::Url;

use crate::error::{failure, Exit};

/// How long a signed URL stays valid: longer than any request with its retries.
pub const SIGNED_FOR: Duration = Duration::from_secs(3600);

/// The longest any single request may take; shorter when the retry budget is.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

/// A request: what it does (for messages), how to sign it, what to send.
pub struct Call<'a> {
    /// e.g. `upload part 3 of jobs-….tar.zst`.
    pub what: &'a str,
    pub method: Method,
    /// Signs the request anew for each attempt.
    pub sign: &'a dyn Fn() -> Url,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a [u8]>,
}

impl<'a> Call<'a> {
    pub fn new(what: &'a str, method: Method, sign: &'a dyn Fn() -> Url) -> Call<'a> {
        Call {
            what,
            method,
            sign,
            headers: &[],
            body: None,
        }
    }

    pub fn headers(self, headers: &'a [(&'a str, &'a str)]) -> Call<'a> {
        Call { headers, ..self }
    }

    pub fn body(self, body: &'a [u8]) -> Call<'a> {
        Call {
            body: Some(body),
            ..self
        }
    }
}

/// A response with its body read whole (every body asked for is bounded: a listing page, a
/// part-sized range).
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `HTTP 503 SlowDown: Please reduce…`: the status and the store's code and message.
    pub fn summary(&self) -> String {
        let (code, message) = self.error_code().unwrap_or_default();
        match (code.is_empty(), message.is_empty()) {
            (true, _) => format!("HTTP {}", self.status),
            (false, true) => format!("HTTP {} {code}", self.status),
            (false, false) => format!("HTTP {} {code}: {}", self.status, one_line(&message)),
        }
    }

    /// The `<Error><Code>…` of an S3 error body, if the body is one.
    pub fn error_code(&self) -> Option<(String, String)> {
        let text = self.text();
        if !text.contains("<Error>") {
            return None;
        }
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let close = format!("</{name}>");
            let start = text.find(&open)? + open.len();
            let end = text[start..].find(&close)? + start;
            Some(text[start..end].to_string())
        };
        Some((
            tag("Code").unwrap_or_default(),
            tag("Message").unwrap_or_default(),
        ))
    }
}

pub struct Client {
    pub bucket: Bucket,
    pub credentials: Credentials,
    agent: ureq::Agent,
    /// For messages: the endpoint URL, without credentials.
    pub endpoint: String,
    retry_for: Duration,
    verbose: bool,
}

impl Client {
    pub fn new(
        bucket: Bucket,
        credentials: Credentials,
        endpoint: String,
        ca_pem: Option<Vec<u8>>,
        retry_for: Duration,
        verbose: bool,
    ) -> anyhow::Result<Client> {
        let limit = REQUEST_LIMIT.min(retry_for).max(Duration::from_secs(1));
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(limit))
            .timeout_connect(Some(limit.min(Duration::from_secs(10))))
            // A connection for each of the catalog's parallel reads.
            .max_idle_connections_per_host(super::PARALLEL_READS)
            .user_agent(concat!("jobdbctl/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .context("cannot read the S3 CA file: not PEM certificates")?;
            if certs.is_empty() {
                anyhow::bail!("the S3 CA file holds no certificate");
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Client {
            bucket,
            credentials,
            agent: config.build().into(),
            endpoint,
            retry_for,
            verbose,
        })
    }

    /// Sends `call`, retrying what may pass (timeouts, resets, 5xx, 429, 408) with
    /// exponential backoff and jitter until the retry budget is spent; then exit 6 naming
    /// the endpoint and the last error. Other statuses are the caller's to read.
    pub fn send(&self, call: &Call) -> anyhow::Result<Answer> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1u32;
        loop {
            let why = match self.attempt(call) {
                Ok(answer) if !retryable(answer.status) => return Ok(answer),
                Ok(answer) => answer.summary(),
                Err(Transport::Retry(why)) => why,
                Err(Transport::Fatal(why)) => {
                    return Err(failure(
                        Exit::Connect,
                        format!("S3 {}: {}: {why}", self.endpoint, call.what),
                    ))
                }
            };
            let spent = started.elapsed();
            let wait = jitter(delay);
            if spent + wait >= self.retry_for {
                return Err(failure(
                    Exit::Connect,
                    format!(
                        "S3 {}: {} failed after {attempt} attempt(s) over {}s: {why}; check the endpoint and the network, or raise s3_retry_for",
                        self.endpoint,
                        call.what,
                        spent.as_secs()
                    ),
                ));
            }
            if self.verbose {
                eprintln!(
                    "s3 retry: {} (attempt {attempt}): {why}; again in {} ms",
                    call.what,
                    wait.as_millis()
                );
            }
            std::thread::sleep(wait);
            delay = (delay * 2).min(Duration::from_secs(20));
            attempt += 1;
        }
    }

    /// [`Client::send`], where any status but `ok` is the store's refusal.
    pub fn expect(&self, call: &Call, ok: &[u16]) -> anyhow::Result<Answer> {
        let answer = self.send(call)?;
        if ok.contains(&answer.status) {
            Ok(answer)
        } else {
            Err(self.refused(call.what, &answer))
        }
    }

    fn attempt(&self, call: &Call) -> Result<Answer, Transport> {
        let url = (call.sign)();
        let url = url.as_str();
        let response = match call.method {
            Method::Get => with_headers(self.agent.get(url), call.headers).call(),
            Method::Head => with_headers(self.agent.head(url), call.headers).call(),
            Method::Delete => with_headers(self.agent.delete(url), call.headers).call(),
            Method::Put => {
                with_headers(self.agent.put(url), call.headers).send(call.body.unwrap_or(&[]))
            }
            Method::Post => {
                with_headers(self.agent.post(url), call.headers).send(call.body.unwrap_or(&[]))
            }
        };
        let mut response = response.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(transport)?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// A failure of `what` answered with `answer`: the store's code and message, with the
    /// exit code that fits (credentials and permissions: 6; no such bucket: 2).
    pub fn refused(&self, what: &str, answer: &Answer) -> anyhow::Error {
        let (code, _) = answer.error_code().unwrap_or_default();
        let (exit, hint) = match (answer.status, code.as_str()) {
            (404, "NoSuchBucket") => (
                Exit::Usage,
                "the bucket does not exist; check the s3:// URL or create the bucket",
            ),
            (403, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken") => (
                Exit::Connect,
                "the store refused the credentials; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file",
            ),
            (403, _) => (
                Exit::Connect,
                "access denied; the credentials need list, read, write and delete on this bucket and prefix",
            ),
            _ => (Exit::Runtime, "see the store's message"),
        };
        failure(
            exit,
            format!("S3 {}: {what}: {}; {hint}", self.endpoint, answer.summary()),
        )
    }

    /// An answer that is not the XML it should be.
    pub fn unreadable(&self, what: &str, why: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("S3 {}: {what}: unreadable answer: {why}", self.endpoint)
    }

    /// HEAD of `key` (`url` for messages): its size and ETag, `None` when there is no such
    /// object.
    pub fn head(&self, key: &str, url: &str) -> anyhow::Result<Option<(u64, String)>> {
        let sign = || {
            self.bucket
                .head_object(Some(&self.credentials), key)
                .sign(SIGNED_FOR)
        };
        let what = format!("stat {url}");
        let answer = self.expect(&Call::new(&what, Method::Head, &sign), &[200, 404])?;
        if answer.status == 404 {
            return Ok(None);
        }
        let bytes = answer
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let etag = answer.header("etag").unwrap_or_default().to_string();
        Ok(Some((bytes, etag)))
    }
}

enum Transport {
    Retry(String),
    Fatal(String),
}

fn with_headers<B>(
    mut request: ureq::RequestBuilder<B>,
    headers: &[(&str, &str)],
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

/// What may succeed when tried again: the store's own trouble, throttling, timeouts.
fn retryable(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// A transport error, told without the URL it was for.
fn transport(e: ureq::Error) -> Transport {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => Transport::Retry(format!("timed out ({t})")),
        // A certificate the CA file (or the public roots) does not vouch for: no retry helps.
        E::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            Transport::Fatal(format!(
                "TLS: {io}; for a private endpoint set s3_ca_file (or AWS_CA_BUNDLE) to its CA"
            ))
        }
        E::Io(io) => Transport::Retry(format!("connection error: {}", io.kind())),
        E::ConnectionFailed => Transport::Retry("connection failed".into()),
        E::HostNotFound => Transport::Retry("host not found".into()),
        E::Protocol(p) => Transport::Retry(format!("broken response: {p}")),
        E::Tls(why) => Transport::Fatal(format!("TLS: {why}")),
        E::Rustls(why) => Transport::Fatal(format!("TLS: {why}")),
        E::BodyExceedsLimit(n) => Transport::Fatal(format!("response larger than {n} bytes")),
        other => {
            let text = other.to_string();
            // Some errors quote the request's URL, which is signed.
            if text.contains("X-Amz-") || text.contains("://") {
                Transport::Fatal("request failed".into())
            } else {
                Transport::Fatal(text)
            }
        }
    }
}

/// Between half and all of `delay`, so that runs retrying together spread out.
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let fraction = 0.5 + f64::from(nanos % 1000) / 2000.0;
    delay.mul_f64(fraction)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

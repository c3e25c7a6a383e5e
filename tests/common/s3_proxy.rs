//! A small fault-injecting HTTP proxy in front of the real SeaweedFS: it forwards each
//! request (one per connection: it answers `Connection: close`) and, when a rule matches,
//! drops the connection mid-request, answers 503 SlowDown, stalls, answers 200 with an
//! error body, or ages the incomplete uploads a listing reports. Every request is logged
//! (method, kind, Range) for the tests to check what the client did.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    CreateUpload,
    UploadPart,
    Complete,
    Abort,
    ListUploads,
    List,
    Head,
    Get,
    Delete,
    Other,
}

#[derive(Clone)]
pub enum Action {
    /// Run this, then forward (e.g. replace the object being read).
    Before(Arc<dyn Fn() + Send + Sync>),
    /// Close the connection after half the request body (or the head), answering nothing.
    DropMidRequest,
    /// Forward, then send half the answer's body and close.
    DropMidAnswer,
    /// 503 with an S3 `SlowDown` error.
    SlowDown,
    /// Read the request, then answer nothing until the client gives up.
    Stall,
    /// Answer 200 with an `InternalError` body, as a store that gave up after sending the
    /// status does; the store itself never sees the request.
    ErrorBody200,
    /// Forward; in the answer, every `<Initiated>` time becomes two days ago.
    AgeUploads,
}

/// `action` on requests of `kind`, skipping the first `after` of them, for `times` of them.
#[derive(Clone)]
pub struct Rule {
    pub kind: Kind,
    pub after: usize,
    pub times: usize,
    pub action: Action,
}

impl Rule {
    /// `action` on the first request of `kind`.
    pub fn once(kind: Kind, action: Action) -> Rule {
        Rule::nth(kind, 0, 1, action)
    }

    /// `action` on every request of `kind`.
    pub fn always(kind: Kind, action: Action) -> Rule {
        Rule::nth(kind, 0, usize::MAX / 2, action)
    }

    /// `action` on `times` requests of `kind` after the first `after`.
    pub fn nth(kind: Kind, after: usize, times: usize, action: Action) -> Rule {
        Rule {
            kind,
            after,
            times,
            action,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub kind: Kind,
    pub range: Option<String>,
    pub faulted: bool,
}

#[derive(Default)]
struct State {
    rules: Vec<(Rule, usize)>,
    seen: Vec<Seen>,
}

pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream`, on a loopback port of its own.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &state);
                });
            }
        });
        Proxy { port, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn add(&self, rule: Rule) {
        self.state
            .lock()
            .expect("proxy state")
            .rules
            .push((rule, 0));
    }

    pub fn clear(&self) {
        let mut s = self.state.lock().expect("proxy state");
        s.rules.clear();
        s.seen.clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("proxy state").seen.clone()
    }
}

fn kind_of(method: &str, target: &str) -> Kind {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    match method {
        "PUT" if has("partNumber") => Kind::UploadPart,
        "POST" if has("uploadId") => Kind::Complete,
        "POST" if has("uploads") => Kind::CreateUpload,
        "DELETE" if has("uploadId") => Kind::Abort,
        "GET" if has("uploads") => Kind::ListUploads,
        "GET" if has("list-type") => Kind::List,
        "GET" => Kind::Get,
        "HEAD" => Kind::Head,
        "DELETE" => Kind::Delete,
        "POST" if has("delete") => Kind::Delete,
        _ => Kind::Other,
    }
}

fn serve(client: TcpStream, upstream: u16, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut range = None;
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if request_line.is_empty() {
            request_line = line.trim_end().to_string();
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = lower.strip_prefix("range:") {
            range = Some(v.trim().to_string());
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let kind = kind_of(&method, &target);
    let action = {
        let mut s = state.lock().expect("proxy state");
        let mut chosen = None;
        for (rule, count) in s.rules.iter_mut() {
            if rule.kind != kind {
                continue;
            }
            *count += 1;
            if *count > rule.after && *count <= rule.after + rule.times {
                chosen = Some(rule.action.clone());
                break;
            }
        }
        s.seen.push(Seen {
            method: method.clone(),
            kind,
            range,
            faulted: chosen.is_some(),
        });
        chosen
    };
    let mut client = client;
    if let Some(Action::DropMidRequest) = action {
        let mut half = vec![0u8; length / 2];
        let _ = reader.read_exact(&mut half);
        client.shutdown(Shutdown::Both)?;
        return Ok(());
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    if let Some(Action::Before(hook)) = &action {
        hook();
    }
    match action {
        Some(Action::SlowDown) => {
            let why = "Please reduce your request rate.";
            return s3_error(&mut client, "503 Slow Down", "SlowDown", why);
        }
        Some(Action::ErrorBody200) => {
            let why = "We encountered an internal error. Please try again.";
            return s3_error(&mut client, "200 OK", "InternalError", why);
        }
        Some(Action::Stall) => {
            // Longer than any client waits; the client closes first.
            let _ = client.set_read_timeout(Some(Duration::from_secs(600)));
            let mut sink = [0u8; 1];
            let _ = client.read(&mut sink);
            return Ok(());
        }
        _ => {}
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(&head)?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    match action {
        Some(Action::DropMidAnswer) => {
            let split = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(answer.len(), |p| p + 4);
            let cut = split + (answer.len() - split) / 2;
            client.write_all(&answer[..cut])?;
            client.shutdown(Shutdown::Both)?;
        }
        Some(Action::AgeUploads) => client.write_all(&age_uploads(&answer))?,
        _ => client.write_all(&answer)?,
    }
    Ok(())
}

/// An S3 error document with `status`.
fn s3_error(
    client: &mut TcpStream,
    status: &str,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
}

/// The answer with every `<Initiated>` two days back and its Content-Length fixed.
fn age_uploads(answer: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(answer).into_owned();
    let Some(split) = text.find("\r\n\r\n") else {
        return answer.to_vec();
    };
    let (head, body) = (&text[..split], &text[split + 4..]);
    let old = (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let mut aged = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("<Initiated>") {
        let after = &rest[start + "<Initiated>".len()..];
        let Some(end) = after.find("</Initiated>") else {
            break;
        };
        aged.push_str(&rest[..start]);
        aged.push_str("<Initiated>");
        aged.push_str(&old);
        rest = &after[end..];
    }
    aged.push_str(rest);
    let head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{aged}",
        head.join("\r\n"),
        aged.len()
    )
    .into_bytes()
}

//! Object-storage settings, read the way S3 users already have them: the AWS environment
//! variables and shared credentials file first, then jobdbctl.toml. Credentials are looked up
//! only when a bucket is used (and by `show-params`), so a broken `~/.aws/credentials` never
//! stops a command that works on local files. Secrets never leave [`Secret`] as text except
//! to sign a request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::{env_var, layered, or_default, Setting, Source};
use crate::error::{failure, Exit};

/// How long a failing request is retried before the run gives up (exit 6).
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(120);

/// Path-style (`https://host/bucket/key`) or virtual-host (`https://bucket.host/key`) URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    Path,
    Virtual,
}

impl fmt::Display for Addressing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Addressing::Path => "path",
            Addressing::Virtual => "virtual",
        })
    }
}

/// A value that must never be printed: `Debug` and `Display` show `********`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The text itself, for signing a request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl Credentials {
    /// The access key ID as AWS tools show it: its last four characters.
    pub fn masked_key_id(&self) -> String {
        let id = &self.access_key_id;
        let tail: String = id
            .chars()
            .skip(id.chars().count().saturating_sub(4))
            .collect();
        format!("****{tail}")
    }
}

/// The file's keys for object storage (copied out of `FileConfig`, which cannot flatten them:
/// serde's `deny_unknown_fields` does not work with `flatten`).
#[derive(Debug, Default)]
pub(super) struct FileKeys {
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_addressing: Option<Addressing>,
    pub s3_ca_file: Option<PathBuf>,
    pub s3_profile: Option<String>,
    pub s3_retry_for: Option<String>,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `None`: AWS itself, `https://s3.<region>.amazonaws.com`.
    pub endpoint: Option<Setting<String>>,
    pub region: Setting<String>,
    pub addressing: Setting<Addressing>,
    /// Trusted certificates for a private endpoint (PEM), instead of the public roots.
    pub ca_file: Option<Setting<PathBuf>>,
    /// Which profile of the shared credentials file.
    pub profile: Setting<String>,
    /// The shared credentials file.
    pub credentials_file: Setting<PathBuf>,
    pub retry_for: Setting<Duration>,
}

impl S3Config {
    pub(super) fn load(file: FileKeys, file_path: &Path) -> anyhow::Result<S3Config> {
        // The service-specific variable wins, as in the AWS SDKs.
        let endpoint_env = env_var("AWS_ENDPOINT_URL_S3").or_else(|| env_var("AWS_ENDPOINT_URL"));
        let endpoint = layered(None, endpoint_env, file.s3_endpoint, file_path);
        if let Some(e) = &endpoint {
            check_endpoint(&e.value, &e.source)?;
        }
        let region = or_default(
            layered(
                None,
                env_var("AWS_REGION").or_else(|| env_var("AWS_DEFAULT_REGION")),
                file.s3_region,
                file_path,
            ),
            "us-east-1".to_string(),
        );
        let addressing_env = match env_var(ADDRESSING_VAR) {
            Some((name, value)) => Some((name, parse_addressing(&value)?)),
            None => None,
        };
        // A custom endpoint (MinIO, SeaweedFS, Ceph) rarely has wildcard DNS for buckets.
        let addressing = or_default(
            layered(None, addressing_env, file.s3_addressing, file_path),
            if endpoint.is_some() {
                Addressing::Path
            } else {
                Addressing::Virtual
            },
        );
        let ca_file = layered(
            None,
            env_var("AWS_CA_BUNDLE").map(|(n, v)| (n, PathBuf::from(v))),
            file.s3_ca_file,
            file_path,
        )
        .map(super::absolute_setting);
        let profile = or_default(
            layered(None, env_var("AWS_PROFILE"), file.s3_profile, file_path),
            "default".to_string(),
        );
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let credentials_file = or_default(
            layered(
                None,
                env_var("AWS_SHARED_CREDENTIALS_FILE").map(|(n, v)| (n, PathBuf::from(v))),
                None,
                file_path,
            ),
            home.join(".aws").join("credentials"),
        );
        let retry_for = super::duration_setting(
            file.s3_retry_for,
            "s3_retry_for",
            file_path,
            DEFAULT_RETRY_FOR,
        )?;
        Ok(S3Config {
            endpoint,
            region,
            addressing,
            ca_file,
            profile,
            credentials_file,
            retry_for,
        })
    }

    /// The settings the environment gives, with no configuration file: what `wal-push` and
    /// `wal-fetch` use, run by the server with the environment `start` gave it.
    pub fn from_environment() -> anyhow::Result<S3Config> {
        S3Config::load(FileKeys::default(), Path::new(""))
    }

    /// The environment under which [`S3Config::from_environment`] gives these settings
    /// back, with the credentials resolved now (from the environment or the shared
    /// credentials file, which the server user may not be able to read): what the embedded
    /// server is started with when it archives its WAL into a bucket. Secrets stay in
    /// [`Secret`]; the caller puts them into a child's environment, never on a command line.
    pub fn environment(&self) -> anyhow::Result<Vec<(&'static str, Secret)>> {
        let credentials = self.credentials()?.ok_or_else(|| {
            failure(
                Exit::Usage,
                format!(
                    "no S3 credentials for the WAL archive: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put profile [{}] in {}",
                    self.profile.value,
                    self.credentials_file.value.display()
                ),
            )
        })?;
        let plain = |v: String| Secret(v);
        let mut env = vec![
            ("AWS_REGION", plain(self.region.value.clone())),
            (ADDRESSING_VAR, plain(self.addressing.value.to_string())),
            ("AWS_ACCESS_KEY_ID", plain(credentials.value.access_key_id)),
            ("AWS_SECRET_ACCESS_KEY", credentials.value.secret_access_key),
        ];
        if let Some(endpoint) = &self.endpoint {
            env.push(("AWS_ENDPOINT_URL_S3", plain(endpoint.value.clone())));
        }
        if let Some(ca) = &self.ca_file {
            env.push(("AWS_CA_BUNDLE", plain(ca.value.display().to_string())));
        }
        if let Some(token) = credentials.value.session_token {
            env.push(("AWS_SESSION_TOKEN", token));
        }
        Ok(env)
    }

    /// The endpoint requests go to.
    pub fn endpoint_url(&self) -> String {
        match &self.endpoint {
            Some(e) => e.value.trim_end_matches('/').to_string(),
            None => format!("https://s3.{}.amazonaws.com", self.region.value),
        }
    }

    /// The credentials and where they came from: the environment, else the shared
    /// credentials file's profile; `None` when neither has any.
    pub fn credentials(&self) -> anyhow::Result<Option<Setting<Credentials>>> {
        let id = env_var("AWS_ACCESS_KEY_ID");
        let secret = env_var("AWS_SECRET_ACCESS_KEY");
        match (id, secret) {
            (Some((name, id)), Some((_, secret))) => {
                return Ok(Some(Setting {
                    value: Credentials {
                        access_key_id: id,
                        secret_access_key: Secret(secret),
                        session_token: env_var("AWS_SESSION_TOKEN").map(|(_, t)| Secret(t)),
                    },
                    source: Source::Env(name),
                }))
            }
            (Some((name, _)), None) | (None, Some((name, _))) => {
                return Err(failure(
                    Exit::Usage,
                    format!(
                        "{name} is set but its partner is not; set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither to use {}",
                        self.credentials_file.value.display()
                    ),
                ))
            }
            (None, None) => {}
        }
        let path = &self.credentials_file.value;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && self.credentials_file.source == Source::Default =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot read the shared credentials file {} ({})",
                        path.display(),
                        self.credentials_file.source
                    )
                })
            }
        };
        let profile = &self.profile.value;
        let keys = profile_keys(&text, profile);
        let get = |key: &str| keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Ok(Some(Setting {
                value: Credentials {
                    access_key_id: id,
                    secret_access_key: Secret(secret),
                    session_token: get("aws_session_token").map(Secret),
                },
                source: Source::File(path.clone()),
            })),
            _ if self.profile.source == Source::Default && keys.is_empty() => Ok(None),
            _ => Err(failure(
                Exit::Usage,
                format!(
                    "profile {:?} ({}) in {} has no aws_access_key_id and aws_secret_access_key; add them or choose another profile",
                    profile,
                    self.profile.source,
                    path.display()
                ),
            )),
        }
    }
}

/// Sets `s3_addressing` from the environment (the server's WAL commands read no file).
const ADDRESSING_VAR: &str = "JOBDBCTL_S3_ADDRESSING";

/// Variables that would make the server's WAL commands read other credentials than the
/// ones `start` resolved.
pub const OVERRIDDEN_VARS: [&str; 6] = [
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "AWS_SESSION_TOKEN",
];

fn parse_addressing(value: &str) -> anyhow::Result<Addressing> {
    match value {
        "path" => Ok(Addressing::Path),
        "virtual" => Ok(Addressing::Virtual),
        other => Err(failure(
            Exit::Usage,
            format!("{ADDRESSING_VAR}={other:?} is neither path nor virtual"),
        )),
    }
}

/// `key = value` lines of `[profile]` in an INI credentials file; values never logged.
fn profile_keys(text: &str, profile: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            inside = name == profile || name.strip_prefix("profile ") == Some(profile);
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            keys.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    keys
}

/// `http://` or `https://`, a host, nothing after the path: anything else would be signed
/// for one place and sent to another.
fn check_endpoint(url: &str, source: &Source) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty() && !r.contains(['?', '#', '@']) && !r.chars().any(char::is_whitespace)
    });
    if ok {
        return Ok(());
    }
    Err(failure(
        Exit::Usage,
        format!(
            "S3 endpoint {url:?} ({source}) is not an http:// or https:// URL of a host; e.g. https://minio.example.com:9000"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_by_name() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[profile backup]\nAWS_ACCESS_KEY_ID=C\naws_secret_access_key=D\n";
        assert_eq!(profile_keys(text, "default")[0].1, "A");
        let backup = profile_keys(text, "backup");
        assert_eq!(backup[0], ("aws_access_key_id".into(), "C".into()));
        assert!(profile_keys(text, "other").is_empty());
    }

    #[test]
    fn endpoints_are_urls_of_a_host() {
        for good in [
            "http://127.0.0.1:8333",
            "https://s3.example.com/",
            "https://h",
        ] {
            check_endpoint(good, &Source::Default).expect(good);
        }
        for bad in [
            "127.0.0.1:8333",
            "ftp://h",
            "https://",
            "https://u:p@h",
            "https://h/?x",
        ] {
            assert!(check_endpoint(bad, &Source::Default).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "******** ********");
    }
}

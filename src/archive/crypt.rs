//! Encrypted archives: the whole archive file (compressed tar) inside a standard age file
//! (age-encryption.org/v1), so the `age` tool decrypts it to the plain archive and an archive
//! the tool encrypted restores. Encrypted to age X25519 or ssh recipients, or with a
//! passphrase (scrypt).
//!
//! What stays readable without the key (docs/backups.md, "Encrypted backups"): the file's
//! name, size and time, and — for recipient-encrypted archives — a stanza in the age header
//! that the age tool skips (unknown stanza types are ignored by the format) holding what the
//! catalog sorts and prunes by: when the backup was taken, its mode, the server and database
//! it came from, the profile and schema, and its retention mark. No row counts, job IDs,
//! table names or contents. The header MAC covers that stanza, so once the key is given a
//! changed stanza fails the archive. The age format allows nothing beside a passphrase's
//! stanza, so a passphrase-encrypted archive shows nothing but its name without the
//! passphrase.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::SecretString;
use age_core::format::{FileKey, Stanza};
use anyhow::Context as _;

use crate::archive::Manifest;
use crate::error::{failure, Exit};

/// The first line of every age file.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The catalog's stanza type: a name in a domain of ours, as the format asks of new types.
const META_TAG: &str = "jobdbctl.dev/meta";

/// What a backup encrypts to.
pub enum Seal {
    Recipients(Vec<Box<dyn age::Recipient + Send + Sync>>),
    Passphrase(SecretString),
}

impl Seal {
    /// From the settings: recipients given one by one and in files (one a line, `#`
    /// comments), or a passphrase file; `None` when none is set. Recipients and a passphrase
    /// together are refused: age allows a passphrase only alone.
    pub fn from_settings(
        recipients: &[String],
        recipient_files: &[PathBuf],
        passphrase_file: Option<&Path>,
    ) -> anyhow::Result<Option<Seal>> {
        let mut all = Vec::new();
        for r in recipients {
            all.push(recipient(r, "--encrypt-to")?);
        }
        for file in recipient_files {
            let text = std::fs::read_to_string(file).map_err(|e| {
                failure(
                    Exit::Usage,
                    format!("cannot read recipients file {}: {e}", file.display()),
                )
            })?;
            let before = all.len();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                all.push(recipient(line, &file.display().to_string())?);
            }
            if all.len() == before {
                return Err(failure(
                    Exit::Usage,
                    format!(
                        "recipients file {} names no recipient; put one age or ssh public key a line in it",
                        file.display()
                    ),
                ));
            }
        }
        match (all.is_empty(), passphrase_file) {
            (true, None) => Ok(None),
            (false, None) => Ok(Some(Seal::Recipients(all))),
            (true, Some(file)) => Ok(Some(Seal::Passphrase(read_passphrase(file)?))),
            (false, Some(_)) => Err(failure(
                Exit::Usage,
                "give recipients or a passphrase file, not both: an age file encrypted with a passphrase has no other recipient",
            )),
        }
    }

    /// Wraps `out`: what is written to the result is encrypted; `head` goes into the meta
    /// stanza (recipients only). `finish` must be called on the result for the file to be
    /// complete.
    pub fn wrap<W: Write>(
        &self,
        out: W,
        head: &Manifest,
    ) -> anyhow::Result<age::stream::StreamWriter<W>> {
        let encryptor = match self {
            Seal::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
            Seal::Recipients(list) => {
                let meta = Meta(serde_json::to_vec(&catalog_view(head))?);
                let all = std::iter::once(&meta as &dyn age::Recipient)
                    .chain(list.iter().map(|r| r.as_ref() as &dyn age::Recipient));
                age::Encryptor::with_recipients(all)
                    .map_err(|e| anyhow::anyhow!("cannot encrypt: {e}"))?
            }
        };
        encryptor
            .wrap_output(out)
            .context("cannot write the archive's encryption header")
    }
}

/// What a restore or verify decrypts with: the contents of identity files (parsed when
/// used, so the set can be shared by threads) and a passphrase.
#[derive(Default)]
pub struct Keys {
    identities: Vec<(PathBuf, SecretString)>,
    passphrase: Option<(PathBuf, SecretString)>,
}

impl Keys {
    /// Reads the files, refusing any that others may read (as libpq refuses `~/.pgpass`).
    pub fn load(
        identity_files: &[PathBuf],
        passphrase_file: Option<&Path>,
    ) -> anyhow::Result<Keys> {
        let mut keys = Keys::default();
        for file in identity_files {
            let text = read_private(file, "identity file")?;
            // Parsed now, so a wrong file is named before anything is read.
            identities_of(file, &text)?;
            keys.identities
                .push((file.clone(), SecretString::from(text)));
        }
        if let Some(file) = passphrase_file {
            keys.passphrase = Some((file.to_path_buf(), read_passphrase(file)?));
        }
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.passphrase.is_none()
    }

    /// The plaintext of the age file `input`.
    pub fn open<'a>(
        &self,
        input: impl Read + Send + 'a,
        label: &str,
    ) -> anyhow::Result<Box<dyn Read + Send + 'a>> {
        if self.is_empty() {
            return Err(bad(
                label,
                "it is encrypted (age); give the key with --identity FILE or --passphrase-file FILE",
            ));
        }
        let decryptor = age::Decryptor::new(std::io::BufReader::with_capacity(1 << 16, input))
            .map_err(|e| bad(label, format!("its encryption header is unreadable: {e}")))?;
        let mut identities: Vec<Box<dyn age::Identity>> = Vec::new();
        let what = if decryptor.is_scrypt() {
            let Some((file, p)) = &self.passphrase else {
                return Err(bad(
                    label,
                    "it is encrypted with a passphrase; give it with --passphrase-file FILE",
                ));
            };
            identities.push(Box::new(age::scrypt::Identity::new(p.clone())));
            format!("the passphrase in {}", file.display())
        } else {
            use age::secrecy::ExposeSecret as _;
            if self.identities.is_empty() {
                return Err(bad(
                    label,
                    "it is encrypted to age recipients; give an identity with --identity FILE",
                ));
            }
            for (file, text) in &self.identities {
                identities.extend(identities_of(file, text.expose_secret())?);
            }
            let files: Vec<String> = self
                .identities
                .iter()
                .map(|(f, _)| f.display().to_string())
                .collect();
            format!("identity {}", files.join(", "))
        };
        let reader = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref()))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => bad(
                    label,
                    format!("{what} does not decrypt it (encrypted to another key)"),
                ),
                age::DecryptError::InvalidMac => bad(
                    label,
                    "its encryption header fails authentication: tampered with or damaged",
                ),
                e => bad(label, format!("cannot decrypt it: {e}")),
            })?;
        Ok(Box::new(Authenticated(reader)))
    }
}

/// Says what a failed chunk means: the STREAM chunks are authenticated one by one.
struct Authenticated<R>(R);

impl<R: Read> Read for Authenticated<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                std::io::Error::new(
                    e.kind(),
                    "its ciphertext fails authentication: tampered with, damaged or cut off",
                )
            } else {
                e
            }
        })
    }
}

/// Whether a file's first bytes are an age file's.
pub fn is_encrypted(first: &[u8]) -> bool {
    first.starts_with(MAGIC)
}

/// What the catalog may know of an encrypted archive without the key: the meta stanza in
/// the header at the file's start (`None` when there is none, e.g. a passphrase).
pub fn meta(start: &[u8]) -> Option<Manifest> {
    let mut lines = start.strip_prefix(MAGIC)?.split(|&b| b == b'\n');
    while let Some(line) = lines.next() {
        if line.starts_with(b"---") {
            return None;
        }
        let Some(args) = line.strip_prefix(b"-> ") else {
            continue;
        };
        let mut args = args.split(|&b| b == b' ');
        if args.next() != Some(META_TAG.as_bytes()) {
            continue;
        }
        // The body: base64 lines of 64 columns, the last one shorter.
        let mut body = Vec::new();
        for line in lines.by_ref() {
            body.extend_from_slice(line);
            if line.len() < 64 {
                break;
            }
        }
        let json = base64_decode(&body)?;
        let m: Manifest = serde_json::from_slice(&json).ok()?;
        return Some(m);
    }
    None
}

/// The header as the catalog may see it: what it sorts and prunes by, nothing about the jobs.
fn catalog_view(head: &Manifest) -> Manifest {
    Manifest {
        server_version: None,
        schema_version: None,
        last_used_job_id: None,
        total_file_bytes: None,
        tables: Vec::new(),
        entries: Vec::new(),
        ..head.clone()
    }
}

struct Meta(Vec<u8>);

impl age::Recipient for Meta {
    fn wrap_file_key(
        &self,
        _: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let stanza = Stanza {
            tag: META_TAG.to_string(),
            args: vec!["v1".to_string()],
            body: self.0.clone(),
        };
        Ok((vec![stanza], HashSet::new()))
    }
}

fn recipient(text: &str, from: &str) -> anyhow::Result<Box<dyn age::Recipient + Send + Sync>> {
    if let Ok(r) = age::x25519::Recipient::from_str(text) {
        return Ok(Box::new(r));
    }
    if let Ok(r) = age::ssh::Recipient::from_str(text) {
        return Ok(Box::new(r));
    }
    // The key itself is public, but a private key given by mistake must not be echoed.
    let shown: String = text.chars().take(12).collect();
    Err(failure(
        Exit::Usage,
        format!(
            "recipient {shown:?}… ({from}) is not an age public key (age1…) or an ssh-ed25519 / ssh-rsa public key; make one with age-keygen and give its public key"
        ),
    ))
}

fn identities_of(file: &Path, text: &str) -> anyhow::Result<Vec<Box<dyn age::Identity>>> {
    let unusable = |why: &str| {
        failure(
            Exit::Usage,
            format!("identity file {} {why}", file.display()),
        )
    };
    if text.trim_start().starts_with("-----BEGIN") {
        let key =
            age::ssh::Identity::from_buffer(text.as_bytes(), Some(file.display().to_string()))
                .map_err(|_| unusable("is not an ssh private key age can use"))?;
        return match key {
            age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(key)]),
            age::ssh::Identity::Encrypted(_) => Err(unusable(
                "holds a passphrase-protected ssh key; give an unprotected copy (mode 0600) or an age identity",
            )),
            age::ssh::Identity::Unsupported(_) => {
                Err(unusable("holds an ssh key type age does not support"))
            }
        };
    }
    let parsed = age::IdentityFile::from_buffer(text.as_bytes())
        .map_err(|_| unusable("is not an age identity file (AGE-SECRET-KEY-1… lines)"))?;
    let identities = parsed
        .into_identities()
        .map_err(|_| unusable("holds identities age cannot use"))?;
    if identities.is_empty() {
        return Err(unusable("holds no identity"));
    }
    Ok(identities)
}

fn read_passphrase(file: &Path) -> anyhow::Result<SecretString> {
    let text = read_private(file, "passphrase file")?;
    let first = text.lines().next().unwrap_or_default();
    let passphrase = first.trim_end_matches('\r');
    if passphrase.is_empty() {
        return Err(failure(
            Exit::Usage,
            format!(
                "passphrase file {} is empty; its first line is the passphrase",
                file.display()
            ),
        ));
    }
    Ok(SecretString::from(passphrase.to_string()))
}

/// A secret file's contents; one others may read is refused, naming it (exit 3). The mode
/// checked is the one of the file opened, not of whatever the name points to a moment later.
fn read_private(file: &Path, what: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::MetadataExt as _;
    let unreadable = |e: std::io::Error| {
        failure(
            Exit::Usage,
            format!("cannot read {what} {}: {e}", file.display()),
        )
    };
    let mut f = std::fs::File::open(file).map_err(unreadable)?;
    let mode = f.metadata().map_err(unreadable)?.mode();
    if mode & 0o077 != 0 {
        return Err(failure(
            Exit::Refused,
            format!(
                "{what} {} may be read by others (mode {:04o}); make it private: chmod 600 {}",
                file.display(),
                mode & 0o7777,
                file.display()
            ),
        ));
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(unreadable)?;
    Ok(text)
}

fn bad(label: &str, message: impl AsRef<str>) -> anyhow::Error {
    failure(
        Exit::BadArchive,
        format!("archive {label} cannot be read: {}", message.as_ref()),
    )
}

/// Standard base64 without padding, as age writes stanza bodies.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_as_age_encodes() {
        assert_eq!(base64_decode(b"aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode(b"aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode(b"").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode(b"a*"), None);
    }
}

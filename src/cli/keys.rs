//! The encryption flags, defined once and flattened into the commands that write or read
//! archives; a flag replaces the setting of the same kind in jobdbctl.toml.

use std::path::PathBuf;

use crate::archive::crypt::{Keys, Seal};
use crate::config::Config;

#[derive(Debug, Default, clap::Args)]
pub struct SealArgs {
    /// Encrypt the archive to this age public key (age1…) or ssh-ed25519 / ssh-rsa public
    /// key; repeat for several. The result is a standard age file (.age). Default:
    /// encrypt_recipients in jobdbctl.toml.
    #[arg(long, value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to every public key in FILE, one a line (# comments). Default:
    /// encrypt_recipients_file in jobdbctl.toml.
    #[arg(long, value_name = "FILE")]
    pub encrypt_to_file: Vec<PathBuf>,
    /// Encrypt with the passphrase on FILE's first line (mode 0600; never on the command
    /// line). Default: passphrase_file in jobdbctl.toml.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl SealArgs {
    /// What to encrypt to: these flags if any is given, else the settings.
    pub fn seal(&self, config: &Config) -> anyhow::Result<Option<Seal>> {
        let flagged = !self.encrypt_to.is_empty()
            || !self.encrypt_to_file.is_empty()
            || self.passphrase_file.is_some();
        if flagged {
            return Seal::from_settings(
                &self.encrypt_to,
                &self.encrypt_to_file,
                self.passphrase_file.as_deref(),
            );
        }
        let recipients = config
            .encrypt_recipients
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        let files: Vec<PathBuf> = config
            .encrypt_recipients_file
            .iter()
            .map(|s| s.value.clone())
            .collect();
        let passphrase = config.passphrase_file.as_ref().map(|s| s.value.as_path());
        Seal::from_settings(&recipients, &files, passphrase)
    }
}

#[derive(Debug, Default, Clone, clap::Args)]
pub struct KeyArgs {
    /// Decrypt encrypted archives with this age identity file (age-keygen's output) or
    /// unprotected ssh private key (mode 0600); repeatable. Default: identity_file in
    /// jobdbctl.toml or JOBDBCTL_IDENTITY_FILE.
    #[arg(long, value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Decrypt passphrase-encrypted archives with the passphrase on FILE's first line
    /// (mode 0600). Default: passphrase_file in jobdbctl.toml.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The keys to decrypt with: these flags if any is given, else the settings.
    pub fn keys(&self, config: &Config) -> anyhow::Result<Keys> {
        if !self.identity.is_empty() || self.passphrase_file.is_some() {
            return Keys::load(&self.identity, self.passphrase_file.as_deref());
        }
        let identities: Vec<PathBuf> = config
            .identity_file
            .iter()
            .map(|s| s.value.clone())
            .collect();
        let passphrase = config.passphrase_file.as_ref().map(|s| s.value.as_path());
        Keys::load(&identities, passphrase)
    }
}

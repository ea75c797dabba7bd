//! Secrets at rest: XChaCha20-Poly1305 sealing of secret values (and of webhook secrets and
//! status tokens) with a key held outside the database.
//!
//! A sealed value is `key version (1 byte) || nonce (24 random bytes) || ciphertext + tag`.
//! The associated data names the row ([`secret_aad`]: repository id or `global`, a NUL, the
//! secret's name), so a sealed value copied into another row does not open. Opening never
//! returns plaintext for a wrong key, changed bytes, another row's value or an unknown key
//! version: each is an error.
//!
//! The key comes from `GANTRY_SECRET_KEY` (32 bytes as 64 hex digits or base64) or from a key
//! file, created at first start with mode 0600 and 32 random bytes. A key file that other
//! users can read is refused. Keys rotate through a [`KeyRing`]: the current key seals, older
//! keys (by version) still open, and [`KeyRing::reseal`] moves a value to the current key.
//!
//! To rotate: give the new key a new version (`GANTRY_SECRET_KEY=v2:KEY`, or that text in the
//! key file) and the old one to `GANTRY_SECRET_KEY_PREVIOUS` or the file
//! `secret.key.previous`; at its start the server seals every stored value again with the new
//! key, after which the old key is no longer needed.
//!
//! This module must not log, print or format key bytes or plaintext; `Debug` shows neither.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable holding the key.
pub const KEY_ENV: &str = "GANTRY_SECRET_KEY";
/// The key file's usual name in the data directory.
pub const KEY_FILE_NAME: &str = "secret.key";
/// The environment variable holding retired keys (key rotation).
pub const PREVIOUS_KEYS_ENV: &str = "GANTRY_SECRET_KEY_PREVIOUS";
/// The file of retired keys in the data directory, one per line.
pub const PREVIOUS_KEYS_FILE_NAME: &str = "secret.key.previous";
/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes (XChaCha20).
pub const NONCE_LEN: usize = 24;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;
/// The smallest sealed value: version, nonce, tag (empty plaintext).
pub const MIN_SEALED_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// What went wrong loading a key or opening a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{source_name} is malformed: {reason}")]
    MalformedKey {
        /// `GANTRY_SECRET_KEY` or the key file's path.
        source_name: String,
        reason: String,
    },
    #[error(
        "the key file {} can be read or written by other users (mode {mode:04o}); run `chmod 600 {}` and check who could have copied it",
        path.display(),
        path.display()
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("could not {action} the key file {}: {source}", path.display())]
    KeyFileIo {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key version 0 is reserved; use 1 to 255")]
    ReservedVersion,
    #[error(
        "two keys have version {0}: give the new key its own version, as in GANTRY_SECRET_KEY=v2:KEY (the old key keeps v1)"
    )]
    DuplicateVersion(u8),
    #[error("the sealed value is {0} bytes long, too short to be a sealed value")]
    Truncated(usize),
    #[error("the sealed value was made with key version {0}, which is not configured")]
    UnknownKeyVersion(u8),
    #[error(
        "the sealed value does not open: wrong key, changed bytes, or a value from another row"
    )]
    Open,
}

/// A 32-byte key and the version stored in front of what it seals.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey {
    version: u8,
    bytes: [u8; KEY_LEN],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("version", &self.version)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

/// Where [`SecretKey::load`] found the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// From `GANTRY_SECRET_KEY`.
    Env,
    /// From an existing key file.
    File(PathBuf),
    /// A new key file was just created. If the database already holds sealed values, they
    /// were sealed with another key: the caller should refuse to start.
    Created(PathBuf),
}

impl SecretKey {
    /// A key with version 1 (the version of a key loaded from the environment or a file).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SecretKey {
        SecretKey { version: 1, bytes }
    }

    /// A new random key with version 1.
    pub fn generate() -> SecretKey {
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        SecretKey::from_bytes(bytes)
    }

    /// The same key with another version (1 to 255), for key rings.
    pub fn with_version(self, version: u8) -> Result<SecretKey, SecretError> {
        if version == 0 {
            return Err(SecretError::ReservedVersion);
        }
        Ok(SecretKey { version, ..self })
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    /// Parses a key written as 64 hex digits or as base64 (standard or URL-safe, padded or
    /// not) of 32 bytes. Surrounding whitespace is ignored. `source_name` names where the
    /// text came from in errors; the text itself is never repeated.
    ///
    /// A `v<N>:` prefix (`v2:` + the key) gives the key version `N` (1 to 255; 1 without a
    /// prefix): a new key gets a new version when keys rotate.
    pub fn parse(text: &str, source_name: &str) -> Result<SecretKey, SecretError> {
        let malformed = |reason: String| SecretError::MalformedKey {
            source_name: source_name.to_owned(),
            reason,
        };
        let text = text.trim();
        if let Some((prefix, rest)) = text.split_once(':')
            && let Some(digits) = prefix.strip_prefix('v')
        {
            let version = digits
                .parse::<u8>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    malformed(format!(
                        "the version before `:` is `{prefix}`; expected v1 to v255 (as in v2:KEY)"
                    ))
                })?;
            return SecretKey::parse(rest, source_name)?.with_version(version);
        }
        if text.is_empty() {
            return Err(malformed(
                "it is empty; expected 32 bytes as 64 hex digits or base64 (generate one with `openssl rand -hex 32`)".into(),
            ));
        }
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut bytes = [0u8; KEY_LEN];
            hex::decode_to_slice(text, &mut bytes)
                .map_err(|_| malformed("it is not hexadecimal".into()))?;
            return Ok(SecretKey::from_bytes(bytes));
        }
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let decoded = engines.iter().find_map(|engine| engine.decode(text).ok());
        match decoded {
            Some(bytes) => {
                let len = bytes.len();
                let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
                    malformed(format!(
                        "it is base64 of {len} bytes; the key must be exactly {KEY_LEN} bytes"
                    ))
                })?;
                Ok(SecretKey::from_bytes(bytes))
            }
            None if text.bytes().all(|b| b.is_ascii_hexdigit()) => Err(malformed(format!(
                "it has {} hex digits; the key must be exactly 64 hex digits ({KEY_LEN} bytes)",
                text.len()
            ))),
            None => Err(malformed(format!(
                "it is neither 64 hex digits nor base64 of {KEY_LEN} bytes ({} characters given)",
                text.chars().count()
            ))),
        }
    }

    /// Reads an existing key file: 32 raw bytes, or the key as text (hex or base64). Refuses
    /// a file that group or others can read or write.
    pub fn read_file(path: &Path) -> Result<SecretKey, SecretError> {
        check_permissions(path)?;
        let bytes = std::fs::read(path).map_err(|source| SecretError::KeyFileIo {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        if let Ok(raw) = <[u8; KEY_LEN]>::try_from(bytes.as_slice()) {
            return Ok(SecretKey::from_bytes(raw));
        }
        let name = path.display().to_string();
        match std::str::from_utf8(&bytes) {
            Ok(text) => SecretKey::parse(text, &name),
            Err(_) => Err(SecretError::MalformedKey {
                source_name: name,
                reason: format!(
                    "it holds {} bytes; expected {KEY_LEN} raw bytes, or the key as hex or base64 text",
                    bytes.len()
                ),
            }),
        }
    }

    /// Reads the key file, or creates it (mode 0600, 32 random bytes, written atomically) when
    /// it does not exist. The `bool` is true when the file was created.
    pub fn read_or_create_file(path: &Path) -> Result<(SecretKey, bool), SecretError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => return Ok((SecretKey::read_file(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SecretError::KeyFileIo {
                    action: "inspect",
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let key = SecretKey::generate();
        match create_key_file(path, &key.bytes) {
            Ok(()) => Ok((key, true)),
            // Another process created it first: use theirs.
            Err(SecretError::KeyFileIo { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Ok((SecretKey::read_file(path)?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// The server's key: `env_value` (the value of `GANTRY_SECRET_KEY`, when set) wins;
    /// otherwise the key file at `key_file`, created when missing.
    pub fn load(
        env_value: Option<&str>,
        key_file: &Path,
    ) -> Result<(SecretKey, KeyOrigin), SecretError> {
        if let Some(text) = env_value {
            return Ok((SecretKey::parse(text, KEY_ENV)?, KeyOrigin::Env));
        }
        let (key, created) = SecretKey::read_or_create_file(key_file)?;
        let origin = if created {
            KeyOrigin::Created(key_file.to_owned())
        } else {
            KeyOrigin::File(key_file.to_owned())
        };
        Ok((key, origin))
    }

    /// Retired keys, which still open what they sealed until it is sealed again: those in
    /// `env_value` (the value of `GANTRY_SECRET_KEY_PREVIOUS`, separated by commas or
    /// whitespace) and those in the file `file` when it exists (one per line; empty lines and
    /// lines starting with `#` are skipped; the same permission check as the key file).
    pub fn load_previous(
        env_value: Option<&str>,
        file: &Path,
    ) -> Result<Vec<SecretKey>, SecretError> {
        let mut keys = Vec::new();
        if let Some(text) = env_value {
            let parts = text
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|part| !part.is_empty());
            for (i, part) in parts.enumerate() {
                keys.push(SecretKey::parse(
                    part,
                    &format!("{PREVIOUS_KEYS_ENV} (key {})", i + 1),
                )?);
            }
        }
        match std::fs::symlink_metadata(file) {
            Ok(_) => {
                check_permissions(file)?;
                let text =
                    std::fs::read_to_string(file).map_err(|source| SecretError::KeyFileIo {
                        action: "read",
                        path: file.to_owned(),
                        source,
                    })?;
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    keys.push(SecretKey::parse(
                        line,
                        &format!("{} line {}", file.display(), i + 1),
                    )?);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SecretError::KeyFileIo {
                    action: "inspect",
                    path: file.to_owned(),
                    source,
                });
            }
        }
        Ok(keys)
    }

    /// [`SecretKey::load_previous`] with the process environment.
    pub fn load_previous_from_env_or_file(file: &Path) -> Result<Vec<SecretKey>, SecretError> {
        let value = std::env::var_os(PREVIOUS_KEYS_ENV);
        let text = match &value {
            None => None,
            Some(value) => Some(value.to_str().ok_or_else(|| SecretError::MalformedKey {
                source_name: PREVIOUS_KEYS_ENV.to_owned(),
                reason: "it is not UTF-8 text".into(),
            })?),
        };
        SecretKey::load_previous(text, file)
    }

    /// [`SecretKey::load`] with the process environment. A `GANTRY_SECRET_KEY` that is not
    /// UTF-8 is malformed.
    pub fn load_from_env_or_file(key_file: &Path) -> Result<(SecretKey, KeyOrigin), SecretError> {
        match std::env::var_os(KEY_ENV) {
            None => SecretKey::load(None, key_file),
            Some(value) => match value.to_str() {
                Some(text) => SecretKey::load(Some(text), key_file),
                None => Err(SecretError::MalformedKey {
                    source_name: KEY_ENV.to_owned(),
                    reason: "it is not UTF-8 text".into(),
                }),
            },
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|source| SecretError::KeyFileIo {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), SecretError> {
    Ok(())
}

/// Writes `bytes` to a temporary file with mode 0600 next to `path`, syncs it, and links it
/// to `path`, which fails when `path` exists: no reader ever sees a partial key.
fn create_key_file(path: &Path, bytes: &[u8]) -> Result<(), SecretError> {
    let io = |action: &'static str, at: &Path| {
        let at = at.to_owned();
        move |source| SecretError::KeyFileIo {
            action,
            path: at,
            source,
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io("create the directory of", path))?;
    let mut suffix = [0u8; 8];
    rand::rng().fill_bytes(&mut suffix);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| KEY_FILE_NAME.to_owned());
    let temp = dir.join(format!(".{file_name}.{}.tmp", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&temp).map_err(io("create", &temp))?;
        file.write_all(bytes).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("sync", &temp))?;
        std::fs::hard_link(&temp, path).map_err(io("create", path))?;
        if let Ok(dir) = std::fs::File::open(&dir) {
            // Make the new name durable; not all platforms allow syncing a directory.
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&temp);
    result
}

/// The associated data of a secret: the repository id (or `global` for a global secret), a
/// NUL byte, and the secret's name.
pub fn secret_aad(repository_id: Option<&str>, name: &str) -> Vec<u8> {
    let scope = repository_id.unwrap_or("global");
    let mut aad = Vec::with_capacity(scope.len() + 1 + name.len());
    aad.extend_from_slice(scope.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// The associated data of a sealed column of `repositories` (`webhook_secret`,
/// `status_token`): `repositories`, NUL, the repository id, NUL, the column. It cannot equal
/// a [`secret_aad`], so such a value cannot be moved into the secrets table (and from there
/// into a job).
pub fn repository_field_aad(repository_id: &str, column: &str) -> Vec<u8> {
    let mut aad = b"repositories\0".to_vec();
    aad.extend_from_slice(repository_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(column.as_bytes());
    aad
}

/// The associated data of the sealed value stored at `at`.
pub fn sealed_aad(at: &crate::store::SealedAt) -> Vec<u8> {
    use crate::store::SealedAt;
    match at {
        SealedAt::Secret {
            repository_id,
            name,
            ..
        } => secret_aad(repository_id.as_ref().map(|r| r.as_str()), name),
        SealedAt::WebhookSecret(repo) => repository_field_aad(repo.as_str(), "webhook_secret"),
        SealedAt::StatusToken(repo) => repository_field_aad(repo.as_str(), "status_token"),
    }
}

/// Seals `plaintext` under `key`, bound to `aad`, with a fresh random nonce.
pub fn seal(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 seals any message shorter than 256 GiB");
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(key.version);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// The key version a sealed value names, when it is long enough to be one.
pub fn sealed_key_version(sealed: &[u8]) -> Option<u8> {
    (sealed.len() >= MIN_SEALED_LEN).then(|| sealed[0])
}

/// Opens a value sealed by [`seal`] with `key` and the same `aad`.
pub fn open(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
    let version = sealed_key_version(sealed).ok_or(SecretError::Truncated(sealed.len()))?;
    if version != key.version {
        return Err(SecretError::UnknownKeyVersion(version));
    }
    open_with(key, aad, sealed)
}

fn open_with(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
    key.cipher()
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| SecretError::Open)
}

/// The current key and older keys by version, so keys can rotate: seal with the current key,
/// open with whichever key a value names, and [`reseal`](KeyRing::reseal) old values.
#[derive(Clone, Debug)]
pub struct KeyRing {
    current: SecretKey,
    older: Vec<SecretKey>,
}

impl KeyRing {
    pub fn new(current: SecretKey) -> KeyRing {
        KeyRing {
            current,
            older: Vec::new(),
        }
    }

    /// Adds a retired key that still opens values sealed with its version.
    pub fn with_old_key(mut self, key: SecretKey) -> Result<KeyRing, SecretError> {
        if key.version == self.current.version
            || self.older.iter().any(|k| k.version == key.version)
        {
            return Err(SecretError::DuplicateVersion(key.version));
        }
        self.older.push(key);
        Ok(self)
    }

    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    fn key(&self, version: u8) -> Option<&SecretKey> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.version == version)
    }

    /// Seals with the current key.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&self.current, aad, plaintext)
    }

    /// Opens with the key the value names.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let version = sealed_key_version(sealed).ok_or(SecretError::Truncated(sealed.len()))?;
        let key = self
            .key(version)
            .ok_or(SecretError::UnknownKeyVersion(version))?;
        open_with(key, aad, sealed)
    }

    /// Whether `sealed` was made with an older key than the current one.
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        sealed_key_version(sealed).is_some_and(|v| v != self.current.version)
    }

    /// Re-seals a value under the current key: `Some(new sealed value)` to store, or `None`
    /// when it already uses the current key (it is still opened, so a damaged value is an
    /// error either way).
    pub fn reseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Option<Vec<u8>>, SecretError> {
        let plaintext = self.open(aad, sealed)?;
        if !self.needs_reseal(sealed) {
            return Ok(None);
        }
        Ok(Some(self.seal(aad, &plaintext)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_layout_is_version_nonce_ciphertext() {
        let key = SecretKey::from_bytes([7; 32])
            .with_version(3)
            .expect("version");
        let sealed = seal(&key, b"global\0TOKEN", b"hunter2");
        assert_eq!(sealed.len(), 1 + NONCE_LEN + b"hunter2".len() + TAG_LEN);
        assert_eq!(sealed[0], 3);
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        // A fresh nonce each time.
        assert_ne!(seal(&key, b"a", b"x"), seal(&key, b"a", b"x"));
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = SecretKey::from_bytes([0xab; 32]);
        let text = format!("{key:?} {:?}", KeyRing::new(key.clone()));
        assert!(!text.contains("171") && !text.to_lowercase().contains("abab"));
    }

    #[test]
    fn version_zero_is_reserved() {
        assert!(matches!(
            SecretKey::generate().with_version(0),
            Err(SecretError::ReservedVersion)
        ));
    }
}

//! Key files: an ed25519 key pair stored as hex text (the secret in a file
//! only its owner can read). The cluster's admin key is made when a dev
//! cluster is created; `canond` reads public keys, the CLI the secret.

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} does not hold a 32-byte hex key")]
    Malformed { path: PathBuf },
    #[error("{0:?} is not a 32-byte hex public key")]
    BadPublic(String),
}

fn parse32(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

/// Reads a secret key written by [`write_signing_key`].
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = parse32(&text).ok_or_else(|| KeyError::Malformed {
        path: path.to_path_buf(),
    })?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A public key from its hex text.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = parse32(text).ok_or_else(|| KeyError::BadPublic(text.to_string()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPublic(text.to_string()))
}

/// The hex text of a public key.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// A fresh key from the operating system's random source.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand08::rngs::OsRng)
}

/// Writes `key` to a new file `path`, readable by its owner only (refused
/// if the file exists: a key is never overwritten).
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = hex::encode(key.to_bytes()) + "\n";
    canon_tls::files::write_new_secret(path, text.as_bytes()).map_err(err)
}

/// Reads the key at `path`, or makes and writes one if there is none.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
    if path.exists() {
        return read_signing_key(path);
    }
    let key = generate();
    write_signing_key(path, &key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.key");
        let key = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap().to_bytes(), key.to_bytes());
        let public = public_key_hex(&key.verifying_key());
        assert_eq!(parse_public_key(&public).unwrap(), key.verifying_key());
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyError::Malformed { .. })
        ));
        assert!(parse_public_key("abcd").is_err());
    }
}

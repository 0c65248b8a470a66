//! A user's secret key on disk: made fresh, written hex, readable by its
//! owner only, never over an existing file. `canon keygen`, `canon user
//! create` and `canon user rotate-key` all make keys this one way.

use std::path::Path;

use ed25519_dalek::SigningKey;

/// Makes a fresh key from the operating system's random source and writes
/// it to `path` (created with mode 0600; refused if the file exists).
pub fn create(path: &Path) -> Result<SigningKey, String> {
    let key = generate();
    write_new(path, &key)?;
    Ok(key)
}

/// A fresh key from the operating system's random source.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand08::rngs::OsRng)
}

/// Writes `key` to a new file `path` (mode 0600; refused if it exists).
pub fn write_new(path: &Path, key: &SigningKey) -> Result<(), String> {
    let text = hex::encode(key.to_bytes()) + "\n";
    canon_tls::files::write_new_secret(path, text.as_bytes()).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{} exists; not overwriting a key", path.display())
        }
        _ => format!("cannot write {}: {e}", path.display()),
    })
}

/// The id of `key` (as signatures and `canon policy get` name it).
pub fn id(key: &SigningKey) -> String {
    canon_trust::PublicKey(key.verifying_key().to_bytes())
        .id()
        .0
}

/// The public half of `key`, hex (as policies list keys).
pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        let key = create(&path).unwrap();
        let read = crate::Signer::from_file("a", &path).unwrap();
        assert_eq!(
            read.key_id(),
            canon_trust::PublicKey(key.verifying_key().to_bytes())
                .id()
                .0
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = create(&path).unwrap_err();
        assert!(e.contains("exists"), "{e}");
        assert_eq!(
            crate::Signer::from_file("a", &path).unwrap().key_id(),
            read.key_id()
        );
    }
}

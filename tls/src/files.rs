//! Writing certificates and keys the way an operator expects (keys 0600,
//! certificates 0644, nothing replaced unless asked, every refusal naming
//! the file) and reading PEM files back.

use std::io::Write;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// One file to write.
#[derive(Debug, Clone)]
pub struct Output {
    pub path: PathBuf,
    pub contents: String,
    /// A private key: readable by its owner only (mode 0600).
    pub secret: bool,
}

/// Writes every file, or none: with `overwrite` false, an existing file
/// anywhere in `outputs` refuses the whole write, naming it, before
/// anything is written.
pub fn write_all(outputs: &[Output], overwrite: bool) -> Result<(), TlsError> {
    if !overwrite {
        if let Some(o) = outputs.iter().find(|o| o.path.exists()) {
            return Err(TlsError::Exists {
                path: o.path.display().to_string(),
            });
        }
    }
    for o in outputs {
        write_one(o)?;
    }
    Ok(())
}

fn write_one(o: &Output) -> Result<(), TlsError> {
    let err = |e: std::io::Error| TlsError::Write {
        path: o.path.display().to_string(),
        reason: e.to_string(),
    };
    if let Some(dir) = o.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // A replaced key is removed first, so that its new contents never sit
    // in a file with the old file's (perhaps wider) mode.
    if o.secret && o.path.exists() {
        std::fs::remove_file(&o.path).map_err(err)?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(if o.secret { 0o600 } else { 0o644 });
    }
    let mut f = open.open(&o.path).map_err(err)?;
    f.write_all(o.contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Writes `contents` to a new file `path` readable by its owner only
/// (mode 0600 from the moment it exists), refusing atomically if the file
/// exists (`ErrorKind::AlreadyExists`): how signing keys are written.
pub fn write_new_secret(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut f = open.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// A file's text, or an error naming it.
pub fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Every certificate in a PEM file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read_text(path)?;
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Read {
            path: path.display().to_string(),
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Read {
            path: path.display().to_string(),
            reason: "no certificate in it (want a PEM CERTIFICATE block)".into(),
        });
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read_text(path)?;
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        reason: format!("no private key in it: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(dir: &Path, name: &str, secret: bool) -> Output {
        Output {
            path: dir.join(name),
            contents: format!("{name}\n"),
            secret,
        }
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn keys_are_private_and_nothing_is_replaced_unasked() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            out(dir.path(), "a.crt", false),
            out(dir.path(), "a.key", true),
        ];
        write_all(&files, false).unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir.path().join("a.key")), 0o600);
            assert_eq!(mode(&dir.path().join("a.crt")), 0o644);
        }
        // Only the key exists: still nothing is written, and the refusal
        // names it.
        std::fs::remove_file(dir.path().join("a.crt")).unwrap();
        let e = write_all(&files, false).unwrap_err().to_string();
        assert!(e.contains("a.key exists"), "{e}");
        assert!(e.contains("--overwrite"), "{e}");
        assert!(!dir.path().join("a.crt").exists());
        // A key widened by hand is private again once replaced.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.path().join("a.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            write_all(&files, true).unwrap();
            assert_eq!(mode(&key), 0o600);
        }
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.crt");
        assert!(read_certs(&missing)
            .unwrap_err()
            .to_string()
            .contains("nope.crt"));
        std::fs::write(&missing, "hello").unwrap();
        let e = read_certs(&missing).unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
        assert!(read_key(&missing).is_err());
    }
}

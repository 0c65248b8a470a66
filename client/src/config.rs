//! Where the CLI finds a cluster: `--endpoints`, `CANON_ENDPOINTS`,
//! `CANON_CONFIG` (a `client.toml`), or the dev cluster's `client.toml` in
//! the default data dir. A `client.toml` also names the user and key file.
//!
//! This module owns the `client.toml` format, reading and writing alike:
//! the file is the CLI's, and `canon dev` writes it here from the endpoints
//! and key its cluster reports. The node crate never sees the format (it
//! cannot: `client` depends on `node` only through the `canon` binary's
//! `dev` feature, never the other way round).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The contents of a `client.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// The user's secret key file.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The cluster's id, which every signature names (its audience).
    /// Without it the client asks the cluster for its id once per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Mutual TLS: the `[tls]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsPaths>,
    /// How commands travel: `grpc` (the default) or `sqs` (through
    /// `intake_queue`, answered on `reply_queue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The cluster's SQS intake queue (URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake_queue: Option<String>,
    /// This user's SQS reply queue (URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_queue: Option<String>,
    /// The public half of the cluster's reply key (64 hex digits): only
    /// replies it signed are believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_key: Option<String>,
    /// How long to wait for a reply over SQS (`30s`, `2m`; default 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_timeout: Option<String>,
    /// The cluster's S3 overflow bucket (`canond --overflow-bucket`): a
    /// `run` or `update` over SQS stores its compiled composition there
    /// when the command would not fit in a message. (Replies too large
    /// for a message are read from wherever the cluster's signed reply
    /// says, without it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overflow_bucket: Option<String>,
    /// The web console's address (`http://127.0.0.1:9480`), for `canon
    /// console`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
}

/// The transports `transport` (and `--via`) name.
pub const TRANSPORTS: [&str; 2] = ["grpc", "sqs"];

impl ClientConfig {
    /// Whether commands go over SQS: `via` (a flag) if given, else the
    /// file's `transport`.
    pub fn over_sqs(&self, via: Option<&str>) -> Result<bool, String> {
        match via.or(self.transport.as_deref()).unwrap_or("grpc") {
            "grpc" => Ok(false),
            "sqs" => Ok(true),
            other => Err(format!(
                "unknown transport {other:?}: use one of {}",
                TRANSPORTS.join(", ")
            )),
        }
    }

    /// What the SQS transport needs, from this file: each missing setting
    /// named.
    pub fn sqs_settings(&self) -> Result<crate::sqs::SqsSettings, String> {
        let need = |v: &Option<String>, name: &str| {
            v.clone()
                .ok_or_else(|| format!("commands over SQS need {name} in client.toml"))
        };
        let timeout = match &self.reply_timeout {
            Some(t) => canon_model::parse_duration(t)
                .map_err(|e| format!("client.toml's reply_timeout: {e}"))?,
            None => crate::sqs::REPLY_TIMEOUT,
        };
        Ok(crate::sqs::SqsSettings {
            intake_queue: need(&self.intake_queue, "intake_queue")?,
            reply_queue: need(&self.reply_queue, "reply_queue")?,
            reply_key: need(
                &self.reply_key,
                "reply_key (the cluster's reply public key)",
            )?,
            timeout,
            overflow_bucket: self.overflow_bucket.clone(),
        })
    }
}

/// `client.toml`'s `[tls]` table: the CA the nodes' certificates chain to
/// (the peer CA's certificate), and this user's client certificate and
/// key (signed by the cluster's client CA). With it, endpoints without a
/// scheme are reached over https. An admin's may also name the client CA's
/// directory (`client_ca`), from which `canon user create` issues a new
/// user's certificate (`canon dev` writes it for its admin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

impl TlsPaths {
    /// The SDK's TLS settings.
    pub fn to_client_tls(&self) -> canon_tls::ClientTls {
        canon_tls::ClientTls {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

impl ClientConfig {
    /// Calls `f` on each file path the configuration holds.
    fn each_path(&mut self, mut f: impl FnMut(&mut Option<PathBuf>)) {
        f(&mut self.key);
        if let Some(tls) = &mut self.tls {
            f(&mut tls.ca);
            f(&mut tls.cert);
            f(&mut tls.key);
            f(&mut tls.client_ca);
        }
    }

    /// Writes this configuration to `path` as a `client.toml`. Absolute
    /// paths inside `path`'s directory are written relative to it, so the
    /// folder can move (and [`read`] finds them again); relative paths are
    /// taken as relative to it already.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let mut c = self.clone();
        if let Some(dir) = folder_of(path) {
            let near = |p: &mut Option<PathBuf>| {
                if let Some(rel) = p.as_ref().and_then(|p| p.strip_prefix(&dir).ok()) {
                    *p = Some(rel.to_path_buf());
                }
            };
            c.each_path(near);
        }
        let text = toml::to_string(&c).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The default data dir of `canon dev`: `$XDG_DATA_HOME/canon/dev` or
/// `~/.local/share/canon/dev`.
pub fn default_dev_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("canon/dev");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/canon/dev")
}

/// The absolute directory of the file `path` (`client.toml` alone: the
/// working directory).
fn folder_of(path: &Path) -> Option<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    std::path::absolute(dir.unwrap_or(Path::new("."))).ok()
}

/// Reads a `client.toml`. Relative paths (the key, the TLS files) are
/// relative to the file.
pub fn read(path: &Path) -> Result<ClientConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut c: ClientConfig =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // Absolute, so that a config written back (a key rotation) names the
    // same files whatever the working directory.
    if let Some(dir) = folder_of(path) {
        c.each_path(|p| {
            if let Some(rel) = p.as_ref().filter(|p| p.is_relative()) {
                *p = Some(dir.join(rel));
            }
        });
    }
    Ok(c)
}

/// The `client.toml` [`resolve`] reads: `config` when given, else the dev
/// cluster's when it exists.
pub fn source(config: Option<&Path>) -> Option<PathBuf> {
    match config {
        Some(p) => Some(p.to_path_buf()),
        None => Some(default_dev_dir().join("client.toml")).filter(|p| p.exists()),
    }
}

/// Resolves the client configuration: explicit endpoints win, then
/// `CANON_CONFIG`, then the dev cluster's file. Explicit endpoints still
/// take the user and key from a config file when one exists.
pub fn resolve(endpoints: &[String], config: Option<&Path>) -> Result<ClientConfig, String> {
    let file = match source(config) {
        Some(p) => Some(read(&p)?),
        None => None,
    };
    let mut c = file.unwrap_or_default();
    if !endpoints.is_empty() {
        c.endpoints = endpoints.to_vec();
    }
    if c.endpoints.is_empty() && c.transport.as_deref() != Some("sqs") {
        return Err(
            "no cluster configured: start one with `canon dev`, or give --endpoints / CANON_ENDPOINTS / CANON_CONFIG"
                .into(),
        );
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_key_is_found_next_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(
            &path,
            "endpoints = [\"http://127.0.0.1:1\"]\nkey = \"admin.key\"\n",
        )
        .unwrap();
        let c = read(&path).unwrap();
        assert_eq!(c.key, Some(dir.path().join("admin.key")));
        std::fs::write(
            &path,
            "endpoints = [\"127.0.0.1:1\"]\n[tls]\nca = \"tls/ca.crt\"\ncert = \"/abs/me.crt\"\nkey = \"me.key\"\n",
        )
        .unwrap();
        let tls = read(&path).unwrap().tls.unwrap();
        assert_eq!(tls.ca, Some(dir.path().join("tls/ca.crt")));
        assert_eq!(tls.cert, Some(PathBuf::from("/abs/me.crt")));
        assert_eq!(tls.key, Some(dir.path().join("me.key")));
        std::fs::write(&path, "endpoints = 3").unwrap();
        assert!(read(&path).is_err());
        assert!(resolve(&[], Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn a_written_config_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        let c = ClientConfig {
            endpoints: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            user: Some("admin".into()),
            key: Some(dir.path().join("admin.key")),
            tls: Some(TlsPaths {
                ca: Some(dir.path().join("ca.crt")),
                cert: Some(dir.path().join("admin.crt")),
                key: Some(dir.path().join("admin-tls.key")),
                client_ca: Some(dir.path().join("tls/client-ca")),
            }),
            cluster_id: Some("dev-0123abcd".into()),
            transport: Some("sqs".into()),
            intake_queue: Some("https://sqs.us-east-1.amazonaws.com/1/canon.fifo".into()),
            reply_queue: Some("https://sqs.us-east-1.amazonaws.com/1/alice.fifo".into()),
            reply_key: Some("ab".repeat(32)),
            reply_timeout: Some("30s".into()),
            overflow_bucket: None,
            console: None,
        };
        c.write(&path).unwrap();
        assert_eq!(read(&path).unwrap(), c);
        // What lies in the config's folder is named relative to it, so
        // the folder can move; what lies elsewhere stays absolute.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("key = \"admin.key\""), "{text}");
        assert!(text.contains("client_ca = \"tls/client-ca\""), "{text}");
        let elsewhere = ClientConfig {
            key: Some(PathBuf::from("/elsewhere/admin.key")),
            ..c.clone()
        };
        elsewhere.write(&path).unwrap();
        assert_eq!(read(&path).unwrap(), elsewhere);
        assert!(c.write(&dir.path().join("missing/client.toml")).is_err());
    }
}

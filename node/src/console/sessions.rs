//! Console sessions: a login token is checked once (it is fresh for only
//! the envelope freshness window); the browser then holds a random session
//! id in an HttpOnly cookie, kept here with its signer until it expires.
//! Sessions live in this node's memory: after a restart, `canon console
//! --open` again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand08::RngCore;

use crate::api::console_door::ConsoleReader;

/// How long a console session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions kept at most; the oldest go first (a flood of logins cannot
/// grow the node's memory).
const SESSIONS_MAX: usize = 1024;

/// The node's console sessions.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, (ConsoleReader, Instant)>>);

impl Sessions {
    /// A new session for `reader`; its id (64 hex digits).
    pub fn open(&self, reader: ConsoleReader) -> String {
        let mut bytes = [0u8; 32];
        rand08::rngs::OsRng.fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, (_, expires)| *expires > now);
        while map.len() >= SESSIONS_MAX {
            let oldest = map
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(id.clone(), (reader, now + SESSION_TTL));
        id
    }

    /// The signer of session `id`, if it is open.
    pub fn reader(&self, id: &str) -> Option<ConsoleReader> {
        let map = self.lock();
        let (reader, expires) = map.get(id)?;
        (*expires > Instant::now()).then(|| reader.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ConsoleReader, Instant)>> {
        // A poisoned map only lost a half-made session; keep serving.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use canon_raft::Principal;

    use super::*;

    fn reader(user: &str) -> ConsoleReader {
        ConsoleReader {
            principal: Principal {
                user: user.into(),
                key_id: "0123456789abcdef".into(),
                root: false,
            },
            cert_fingerprint: None,
        }
    }

    #[test]
    fn a_session_names_its_signer_and_unknown_ids_name_no_one() {
        let s = Sessions::default();
        let a = s.open(reader("alice"));
        let b = s.open(reader("bob"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(
            s.reader(&a).map(|r| r.user().to_string()),
            Some("alice".into())
        );
        assert_eq!(
            s.reader(&b).map(|r| r.user().to_string()),
            Some("bob".into())
        );
        assert!(s.reader("").is_none());
        assert!(s.reader(&"0".repeat(64)).is_none());
    }

    #[test]
    fn sessions_are_bounded_the_oldest_going_first() {
        let s = Sessions::default();
        let first = s.open(reader("first"));
        for _ in 0..SESSIONS_MAX {
            s.open(reader("many"));
        }
        assert!(s.reader(&first).is_none());
        assert_eq!(s.lock().len(), SESSIONS_MAX);
    }
}

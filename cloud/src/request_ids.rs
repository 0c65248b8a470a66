//! The cloud's request ids of one executed request: every call an adapter
//! makes to carry a request out (the look-up by ownership tag before a
//! create, the mutation itself and each of its retries, a recovery's
//! describe) answers with an id the cloud's own logs know it by. The
//! adapter collects them while it works and hands them back on the
//! [`Outcome`] or the [`CloudError`], so the conductor can put them in the
//! request's audit record (AWS support asks for them; CloudTrail shows
//! them).

use std::sync::Mutex;

use crate::{CloudError, Outcome};

/// The ids collected while one request is carried out, in call order.
#[derive(Debug, Default)]
pub(crate) struct RequestIds(Mutex<Vec<String>>);

impl RequestIds {
    /// Notes one call's id, if the cloud gave one (a call that never
    /// reached it has none).
    pub(crate) fn push(&self, id: Option<&str>) {
        if let Some(id) = id.filter(|i| !i.is_empty()) {
            // A poisoned lock only means a panic mid-push of a string.
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(id.to_string());
        }
    }

    /// `result` with the ids collected so far.
    pub(crate) fn attach(self, result: Result<Outcome, CloudError>) -> Result<Outcome, CloudError> {
        let ids = self.0.into_inner().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(mut o) => {
                o.request_ids = ids;
                Ok(o)
            }
            Err(mut e) => {
                e.request_ids = ids;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_land_on_the_outcome_or_the_error_in_call_order() {
        let ids = RequestIds::default();
        ids.push(Some("a"));
        ids.push(None);
        ids.push(Some(""));
        ids.push(Some("b"));
        let o = ids.attach(Ok(Outcome::default())).unwrap();
        assert_eq!(o.request_ids, ["a", "b"]);
        let ids = RequestIds::default();
        ids.push(Some("c"));
        let e = ids.attach(Err(CloudError::terminal("X", "y"))).unwrap_err();
        assert_eq!(e.request_ids, ["c"]);
    }
}

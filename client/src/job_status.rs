//! A job's status as the SDK's users read it. The API carries it as the
//! enum [`pb::JobStatus`]; the words shown for it (`IN PROGRESS`,
//! `SUCCEEDED`, `FAILED`) are those of [`canon_model::JobStatus`], which the
//! conductor records, so they are written once, in the model.

use canon_model::JobStatus;

use crate::pb;

/// The status of `j`; `None` if it carries none this SDK knows (a newer
/// node's).
pub fn job_status(j: &pb::JobView) -> Option<JobStatus> {
    match j.status() {
        pb::JobStatus::InProgress => Some(JobStatus::InProgress),
        pb::JobStatus::Succeeded => Some(JobStatus::Succeeded),
        pb::JobStatus::Failed => Some(JobStatus::Failed),
        pb::JobStatus::Unspecified => None,
    }
}

/// The words for the status of `j`, as `canon history` shows them.
pub fn status_words(j: &pb::JobView) -> String {
    job_status(j).map_or_else(|| "UNKNOWN".to_string(), |s| s.to_string())
}

/// True once `j` has ended, whichever way.
pub fn is_finished(j: &pb::JobView) -> bool {
    job_status(j).is_some_and(JobStatus::is_finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(status: pb::JobStatus) -> pb::JobView {
        pb::JobView {
            status: status.into(),
            ..pb::JobView::default()
        }
    }

    #[test]
    fn statuses_read_as_the_cli_has_always_shown_them() {
        let words: Vec<String> = [
            pb::JobStatus::InProgress,
            pb::JobStatus::Succeeded,
            pb::JobStatus::Failed,
            pb::JobStatus::Unspecified,
        ]
        .into_iter()
        .map(|s| status_words(&view(s)))
        .collect();
        assert_eq!(words, ["IN PROGRESS", "SUCCEEDED", "FAILED", "UNKNOWN"]);
        assert!(!is_finished(&view(pb::JobStatus::InProgress)));
        assert!(is_finished(&view(pb::JobStatus::Failed)));
        assert!(!is_finished(&view(pb::JobStatus::Unspecified)));
    }
}

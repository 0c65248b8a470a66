//! The words a job status is shown as. The API carries job status as the
//! enum [`JobStatus`]; the CLI's tables, its `--json` output and the SDK's
//! users all show the same words (`IN PROGRESS`, `SUCCEEDED`, `FAILED`), so
//! they are written once, next to the generated type.

use std::fmt;

use crate::canon::api::v1::JobStatus;

impl JobStatus {
    /// True once the job has ended, whichever way.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobStatus::InProgress => "IN PROGRESS",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            // A status this reader does not know (a newer node), or none.
            JobStatus::Unspecified => "UNKNOWN",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_the_cli_has_always_shown_them() {
        let words: Vec<String> = [
            JobStatus::InProgress,
            JobStatus::Succeeded,
            JobStatus::Failed,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(words, ["IN PROGRESS", "SUCCEEDED", "FAILED"]);
        assert!(!JobStatus::InProgress.is_finished());
        assert!(JobStatus::Failed.is_finished());
    }
}

//! Idempotency: the client tokens of creates, derived from the job and the
//! logical id so that a job re-run after a crash (by this or a new leader)
//! sends the same token and EC2 returns the first result instead of a
//! duplicate.

use canon_model::{Request, ResourceKind};
use sha2::{Digest, Sha256};

/// EC2 accepts client tokens of up to 64 ASCII characters.
const MAX_TOKEN: usize = 64;

/// The client token of `request` in job `job_id`: a hash of the job, the
/// request's guid (logical id and part) and its request type.
pub fn client_token(job_id: &str, request: &Request) -> String {
    let mut h = Sha256::new();
    h.update(job_id.as_bytes());
    h.update([0]);
    h.update(request.guid().as_bytes());
    h.update([0]);
    h.update(request.request_type().as_bytes());
    let mut token = hex::encode(h.finalize());
    token.truncate(MAX_TOKEN);
    token
}

/// Whether EC2 takes a client token when creating `kind`. For the others,
/// the adapter looks for the ownership tag before creating.
pub fn has_client_token(kind: ResourceKind) -> bool {
    matches!(kind, ResourceKind::RouteTable | ResourceKind::Instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_model::{Action, Fid, LogicalId, Region, Tags};

    #[test]
    fn tokens_are_stable_per_job_and_target() {
        let fid = Fid::random();
        let req = |path: &str| Request {
            target: LogicalId::new(fid, path),
            part: None,
            region: Region::new("us-west-2"),
            action: Action::CreateInternetGateway { tags: Tags::new() },
        };
        let a = client_token("job-1", &req("igw"));
        assert_eq!(a, client_token("job-1", &req("igw")));
        assert_ne!(a, client_token("job-2", &req("igw")));
        assert_ne!(a, client_token("job-1", &req("igw2")));
        assert_eq!(a.len(), 64);
        assert!(has_client_token(ResourceKind::Instance));
        assert!(!has_client_token(ResourceKind::SecurityGroup));
    }
}

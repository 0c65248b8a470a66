//! Errors as values, classified the way the executor needs to act on them.
//!
//! Every failure the cloud reports lands in one of three classes: retry it
//! (throttling, 5xx, timeouts, dependencies that are going away), count it as
//! done (a delete of something gone, a revoke of a rule that is gone), or stop
//! (invalid parameter, permission denied). The cloud's own code and message are
//! kept, with request ids stripped so the same failure always reads the same.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Try again later: throttling, server errors, timeouts, transient
    /// dependencies.
    Retryable,
    /// The request's effect is already in place; treat as success.
    AlreadyDone,
    /// Retrying the same request will fail the same way.
    Terminal,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::AlreadyDone => "already-done",
            ErrorClass::Terminal => "terminal",
        })
    }
}

/// A failed cloud call: its class, the cloud's error code and its message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message} ({class})")]
pub struct CloudError {
    pub class: ErrorClass,
    /// EC2's code (`InvalidVpc.Range`), or one of Canon's own for failures
    /// that never reached the cloud (`Canon.Unresolved`, `Canon.Transport`).
    pub code: String,
    /// The cloud's message with request ids removed.
    pub message: String,
    /// The cloud's ids of the calls made for the request that failed, in
    /// order, when an adapter's `execute` returns it (see
    /// `crate::request_ids`); kept apart from the message so that the
    /// same failure always reads the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
}

impl CloudError {
    /// An error classified from its code, for `action` (the request type,
    /// e.g. `aws.ec2.delete_vpc`, or a describe's name).
    pub fn classified(action: &str, code: &str, message: &str) -> Self {
        CloudError {
            class: classify(action, code),
            code: code.to_string(),
            message: strip_request_ids(message),
            request_ids: Vec::new(),
        }
    }

    /// An error with an explicit class.
    pub fn new(class: ErrorClass, code: &str, message: impl Into<String>) -> Self {
        CloudError {
            class,
            code: code.to_string(),
            message: strip_request_ids(&message.into()),
            request_ids: Vec::new(),
        }
    }

    pub fn terminal(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Terminal, code, message)
    }

    pub fn retryable(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Retryable, code, message)
    }

    /// True for throttling: the caller should slow down, not only retry.
    pub fn is_throttle(&self) -> bool {
        is_throttle_code(&self.code)
    }

    /// Whether the request may have taken effect although it failed: no
    /// answer came (`Canon.Transport`: a timeout, a reset connection), a
    /// server error (5xx: EC2 may have acted before failing), or an answer
    /// Canon could not read (`Canon.BadResponse`). Any other error is a
    /// clean refusal: EC2 answered that it did nothing (throttling among
    /// them), or Canon never sent the request. A create of a kind without
    /// client tokens that failed so must be looked up before it is sent
    /// again (issue #19).
    pub fn may_have_taken_effect(&self) -> bool {
        self.code == TRANSPORT || self.code == BAD_RESPONSE || is_server_code(&self.code)
    }

    /// True for failures worth retrying at once inside one call (throttling,
    /// server errors, transport), as opposed to retryable conditions that
    /// need the world to change first (a dependency still going away).
    pub fn is_transient(&self) -> bool {
        self.is_throttle() || is_server_code(&self.code) || self.code == TRANSPORT
    }
}

/// Canon's code for a request that could not be sent or got no answer.
pub const TRANSPORT: &str = "Canon.Transport";
/// Canon's code for an account whose role could not be looked up (its
/// directory, the trust policy, could not be read): retried, and never
/// answered by acting with the node's own credentials instead.
pub const NO_ROLE: &str = "Canon.AccountRoleUnknown";
/// Canon's code for a request with a reference that was never resolved.
pub const UNRESOLVED: &str = "Canon.Unresolved";
/// Canon's code for a cloud answer that is missing something it must have.
pub const BAD_RESPONSE: &str = "Canon.BadResponse";
/// Canon's code for an action handed to a resource kind it does not belong
/// to: a routing mistake in an adapter, reported rather than a panic.
pub const MISROUTED: &str = "Canon.Misrouted";
/// EC2's code for a network ACL entry whose direction and number are
/// taken (see [`crate::recovery`]).
pub const NACL_ENTRY_EXISTS: &str = "NetworkAclEntryAlreadyExists";
/// EC2's code for an authorize refused because one of its rules exists
/// (the whole call is refused; see [`crate::recovery`]).
pub const DUPLICATE_RULE: &str = "InvalidPermission.Duplicate";

fn is_throttle_code(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "SlowDown"
    )
}

fn is_server_code(code: &str) -> bool {
    matches!(
        code,
        "InternalError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "Unavailable"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "InsufficientInstanceCapacity"
    ) || code.starts_with("Http5")
}

/// The error for `action` routed to the wrong resource kind.
pub fn misrouted(action: &canon_model::Action) -> CloudError {
    CloudError::terminal(
        MISROUTED,
        format!("{} reached the wrong resource kind", action.request_type()),
    )
}

/// The class of EC2 error `code` returned to `action`.
pub fn classify(action: &str, code: &str) -> ErrorClass {
    if is_throttle_code(code) || is_server_code(code) || code == TRANSPORT {
        return ErrorClass::Retryable;
    }
    // A dependency that is still going away (an instance shutting down, a
    // network interface detaching) clears by itself: try again later.
    if code == "DependencyViolation" || code == "IncorrectInstanceState" {
        return ErrorClass::Retryable;
    }
    // A network ACL entry a replace needs is gone, or one a create adds
    // is there with other contents (the recovery found it different), or
    // the subnet, association or ACL of an association is not visible
    // yet: the next observation sees the cloud as it is and plans again.
    if (action == "aws.ec2.replace_network_acl_entry" && code == "InvalidNetworkAclEntry.NotFound")
        || (action == "aws.ec2.create_network_acl_entry" && code == NACL_ENTRY_EXISTS)
        || (action == "aws.ec2.replace_network_acl_association" && code.ends_with(".NotFound"))
    {
        return ErrorClass::Retryable;
    }
    // An address a NAT gateway being deleted still holds is freed when the
    // gateway is gone: its release, and a new gateway that needs it, wait.
    if (action == "aws.ec2.release_address" && code == "InvalidIPAddress.InUse")
        || (action == "aws.ec2.create_nat_gateway" && code == "Resource.AlreadyAssociated")
    {
        return ErrorClass::Retryable;
    }
    // A peering connection just requested may still be
    // `initiating-request` (or not yet visible) when its accept comes:
    // that clears by itself. One accepted already is seen so by the next
    // observation, which plans no accept.
    if action == "aws.ec2.accept_vpc_peering_connection"
        && (code == "InvalidStateTransition" || code == "InvalidVpcPeeringConnectionID.NotFound")
    {
        return ErrorClass::Retryable;
    }
    // A volume still detaching is deleted, or attached elsewhere, once it
    // is free; an instance still pending takes its volumes once it runs.
    if (action == "aws.ec2.delete_volume" && code == "VolumeInUse")
        || (action == "aws.ec2.attach_volume"
            && (code == "VolumeInUse" || code == "IncorrectState"))
    {
        return ErrorClass::Retryable;
    }
    let deleting = action.starts_with("aws.ec2.delete_")
        || action == "aws.ec2.terminate_instances"
        || action == "aws.ec2.release_address";
    if deleting && code.ends_with(".NotFound") {
        return ErrorClass::AlreadyDone;
    }
    let done = match action {
        "aws.ec2.revoke_security_group_ingress" | "aws.ec2.revoke_security_group_egress" => {
            code == "InvalidPermission.NotFound"
        }
        "aws.ec2.authorize_security_group_ingress" | "aws.ec2.authorize_security_group_egress" => {
            code == DUPLICATE_RULE
        }
        "aws.ec2.detach_internet_gateway" => code == "Gateway.NotAttached",
        // Detached already: the volume is available, or its instance (a
        // terminated one lets go of its volumes) is gone.
        "aws.ec2.detach_volume" => matches!(
            code,
            "IncorrectState" | "InvalidAttachment.NotFound" | "InvalidInstanceID.NotFound"
        ),
        "aws.ec2.disassociate_route_table" | "aws.ec2.disassociate_address" => {
            code == "InvalidAssociationID.NotFound"
        }
        // The IPv6 block is gone already (EC2 and moto spell the codes
        // of the two association ids differently; both end so).
        "aws.ec2.disassociate_vpc_cidr_block" | "aws.ec2.disassociate_subnet_cidr_block" => {
            code.ends_with(".NotFound")
        }
        _ => false,
    };
    if done {
        ErrorClass::AlreadyDone
    } else {
        ErrorClass::Terminal
    }
}

/// Removes request ids (`Request ID: 4c1f…`, `RequestId=…`) from a message so
/// that the same failure always has the same text.
pub fn strip_request_ids(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    let bytes = message.as_bytes();
    'scan: while i < message.len() {
        for key in ["request id", "requestid", "request-id"] {
            if lower[i..].starts_with(key) {
                let mut j = i + key.len();
                while j < bytes.len() && matches!(bytes[j], b':' | b'=' | b' ' | b'"') {
                    j += 1;
                }
                let start = j;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-') {
                    j += 1;
                }
                if j > start {
                    // Also drop the punctuation that introduced the id.
                    let trimmed = out.trim_end_matches([' ', '(', '[', ',', ';', '.']).len();
                    out.truncate(trimmed);
                    while j < bytes.len() && matches!(bytes[j], b')' | b']' | b'"') {
                        j += 1;
                    }
                    i = j;
                    continue 'scan;
                }
            }
        }
        // Advance one character (keeping UTF-8 boundaries).
        let ch_len = message[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&message[i..i + ch_len]);
        i += ch_len;
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_action() {
        assert_eq!(
            classify("aws.ec2.describe_vpcs", "RequestLimitExceeded"),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify("aws.ec2.create_vpc", "InternalError"),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify("aws.ec2.delete_vpc", "InvalidVpcID.NotFound"),
            ErrorClass::AlreadyDone
        );
        assert_eq!(
            classify("aws.ec2.create_subnet", "InvalidVpcID.NotFound"),
            ErrorClass::Terminal
        );
        assert_eq!(
            classify(
                "aws.ec2.revoke_security_group_ingress",
                "InvalidPermission.NotFound"
            ),
            ErrorClass::AlreadyDone
        );
        assert_eq!(
            classify("aws.ec2.create_vpc", "InvalidVpc.Range"),
            ErrorClass::Terminal
        );
        // An address a deleting NAT gateway still holds frees itself.
        assert_eq!(
            classify("aws.ec2.release_address", "InvalidIPAddress.InUse"),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify("aws.ec2.create_nat_gateway", "Resource.AlreadyAssociated"),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(
                "aws.ec2.associate_route_table",
                "Resource.AlreadyAssociated"
            ),
            ErrorClass::Terminal
        );
        assert_eq!(
            classify("aws.ec2.delete_nat_gateway", "InvalidNatGatewayID.NotFound"),
            ErrorClass::AlreadyDone
        );
        assert_eq!(
            classify("aws.ec2.delete_subnet", "DependencyViolation"),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify("aws.ec2.create_vpc", "UnauthorizedOperation"),
            ErrorClass::Terminal
        );
        // A connection not yet pending acceptance (or not yet visible) is
        // accepted on a later try; a deleted one's delete is done.
        assert_eq!(
            classify(
                "aws.ec2.accept_vpc_peering_connection",
                "InvalidStateTransition"
            ),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(
                "aws.ec2.accept_vpc_peering_connection",
                "InvalidVpcPeeringConnectionID.NotFound"
            ),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(
                "aws.ec2.delete_vpc_peering_connection",
                "InvalidVpcPeeringConnectionID.NotFound"
            ),
            ErrorClass::AlreadyDone
        );
        assert_eq!(
            classify(
                "aws.ec2.create_vpc_peering_connection",
                "InvalidVpcID.NotFound"
            ),
            ErrorClass::Terminal
        );
    }

    #[test]
    fn request_ids_are_stripped() {
        assert_eq!(
            strip_request_ids(
                "The vpc ID 'vpc-1' does not exist (Request ID: 4c1f6a7e-9d2b-4f1e-8a11-2b5e0c9d7f00)"
            ),
            "The vpc ID 'vpc-1' does not exist"
        );
        assert_eq!(
            strip_request_ids("Rate exceeded. RequestId=ABC123-def"),
            "Rate exceeded"
        );
        assert_eq!(strip_request_ids("no id here"), "no id here");
        assert_eq!(strip_request_ids("ünïcode ok"), "ünïcode ok");
        let e = CloudError::classified(
            "aws.ec2.delete_vpc",
            "DependencyViolation",
            "has dependencies; Request ID: x-1",
        );
        let f = CloudError::classified(
            "aws.ec2.delete_vpc",
            "DependencyViolation",
            "has dependencies; Request ID: y-2",
        );
        assert_eq!(e, f);
    }
}

//! Reads that arrive as messages (the SQS intake queue): the read token
//! gRPC carries in metadata travels in the message beside the request, and
//! the same check (`read_auth`: [`Api::read_principal`], then
//! [`Api::admit_reader`], which records a refusal) and the same handlers
//! answer. Over a queue a read is always signed, since its reply queue is
//! trusted only when the signature verifies: the token signs an
//! `SqsReadBody`, the request with its reply queue and request id. Events,
//! a stream, have no queue form.

use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::sqs::v1 as sqs;
use prost::Message;
use tonic::Status;

use super::grpc_status::{bad, envelope_status};
use super::intake::{Answer, Arrival, Shut};
use super::read_auth::{Asked, Reader};
use super::Api;
use crate::envelope::Signed;

/// A read a queue can carry, decoded.
#[derive(Debug, Clone, PartialEq)]
enum Query {
    Status(pb::StatusRequest),
    History(pb::HistoryRequest),
    GetPolicy,
    ListAccounts,
    Audit(pb::AuditRequest),
    CanI(pb::CanIRequest),
    Validations(pb::ValidationsRequest),
}

impl Query {
    /// The request of gRPC method `method` in `bytes`.
    fn decode(method: &str, bytes: &[u8]) -> Result<Query, Status> {
        Ok(match method {
            "Status" => Query::Status(request(bytes)?),
            "History" => Query::History(request(bytes)?),
            "GetPolicy" => Query::GetPolicy,
            "ListAccounts" => Query::ListAccounts,
            "Audit" => Query::Audit(request(bytes)?),
            "CanI" => Query::CanI(request(bytes)?),
            "Validations" => Query::Validations(request(bytes)?),
            other => {
                return Err(bad(&format!(
                    "{other} cannot be read over a queue (events need the gRPC port)"
                )))
            }
        })
    }

    /// The process the read is about (empty: none).
    fn alias(&self) -> &str {
        match self {
            Query::Status(r) => &r.alias,
            Query::History(r) => &r.alias,
            _ => "",
        }
    }
}

/// The request of type `T` in a read's bytes.
fn request<T: Message + Default>(bytes: &[u8]) -> Result<T, Status> {
    T::decode(bytes).map_err(|e| bad(&format!("the read's request does not decode: {e}")))
}

impl Api {
    /// The door for a read that came by `arrival` (a queue message): the
    /// token checked, then the read answered as its gRPC call would be.
    pub async fn take_read(
        &self,
        read: &sqs::SignedRead,
        arrival: &Arrival,
    ) -> Result<Answer, Shut> {
        let checked = self
            .read_principal(Signed::of_read(read), &read.method, &read.body)
            .await;
        let signed = checked.as_ref().err().is_none_or(|e| e.after_signature());
        let query = sqs::SqsReadBody::decode(read.body.as_slice())
            .map_err(|e| bad(&format!("the read's body does not decode: {e}")))
            .and_then(|body| Query::decode(&read.method, &body.request));
        let asked = Asked {
            method: &read.method,
            alias: query.as_ref().map_or("", Query::alias),
            body: &read.body,
        };
        let reader = self
            .admit_reader(
                checked.map_err(envelope_status),
                Some(&read.user),
                asked,
                arrival.clone(),
            )
            .await
            .map_err(|status| Shut { status, signed })?;
        Ok(self.answer_read(&reader, query?).await?)
    }

    /// Answers `query` for `reader`.
    async fn answer_read(&self, reader: &Reader, query: Query) -> Result<Answer, Status> {
        Ok(match query {
            Query::Status(req) => Answer::Status(self.handle_status(Some(reader), req).await?),
            Query::History(req) => Answer::History(self.handle_history(Some(reader), req).await?),
            Query::GetPolicy => {
                self.metrics.call("get_policy");
                Answer::Policy(self.handle_get_policy(reader).await?)
            }
            Query::ListAccounts => {
                self.metrics.call("list_accounts");
                Answer::Accounts(self.handle_list_accounts(reader).await?)
            }
            Query::Audit(req) => {
                self.metrics.call("audit");
                Answer::Audit(self.handle_audit(reader, req).await?)
            }
            Query::CanI(req) => {
                self.metrics.call("can_i");
                Answer::CanI(self.handle_can_i(reader, req).await?)
            }
            Query::Validations(req) => {
                self.metrics.call("validations");
                Answer::Validations(self.handle_validations(reader, req).await?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_its_process_and_events_have_no_queue_form() {
        let status = pb::StatusRequest {
            alias: "dev-sam".into(),
            ..Default::default()
        };
        let q = Query::decode("Status", &status.encode_to_vec()).unwrap();
        assert_eq!(q.alias(), "dev-sam");
        assert_eq!(Query::decode("GetPolicy", &[]).unwrap().alias(), "");
        let e = Query::decode("Events", &[]).unwrap_err();
        assert!(e.message().contains("events need the gRPC port"), "{e}");
        assert!(Query::decode("History", &[0xff, 0xff]).is_err());
    }
}

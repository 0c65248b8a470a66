//! EC2 through the SDK, one file per resource kind: the call each of the
//! kind's actions maps to, its describes (observation, page by page, and
//! the look-up before a create) and the recovery of its errors whose effect
//! may already be in place. `execute` and `observe` route to these files.

pub(super) mod dhcp_options;
pub(super) mod egress_only_internet_gateway;
pub(super) mod elastic_ip;
pub(super) mod instance;
pub(super) mod internet_gateway;
pub(super) mod nat_gateway;
pub(super) mod network_acl;
pub(super) mod route_table;
pub(super) mod security_group;
pub(super) mod subnet;
pub(super) mod tags;
pub(super) mod volume;
pub(super) mod vpc;
pub(super) mod vpc_endpoint;
pub(super) mod vpc_peering_connection;

use std::future::Future;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use canon_model::ResourceKind;

use super::{AwsCloud, Resend};
use crate::names::{describe_action, describe_request_type};
use crate::request_ids::RequestIds;
use crate::{CloudError, Scope};

/// Writes a kind's `find_owned(ec2, owner)`: the id of the resource that
/// carries ownership tag `owner`, if EC2 shows one (the look-up before a
/// create of a kind without client tokens, see `crate::idempotency`).
/// `$describe` is the SDK's describe call, `$items` the answer's list and
/// `$id` an item's id. A macro because the SDK's builders and answers share
/// no trait; the kind's file states its `KIND`.
macro_rules! find_owned_by_tag {
    ($describe:ident, $items:ident, $id:ident) => {
        /// The resources carrying an ownership tag among `owners` (at
        /// most 200), as (owner, id), in one describe.
        pub(in crate::aws) async fn find_owned(
            ec2: &$crate::aws::ec2::Ec2<'_>,
            owners: &[String],
        ) -> Result<Vec<(String, String)>, $crate::CloudError> {
            Ok(ec2
                .describe(KIND, || {
                    ec2.client
                        .$describe()
                        .filters($crate::aws::convert::owners_filter(owners))
                        .send()
                })
                .await?
                .$items()
                .iter()
                .filter_map(|r| $crate::aws::convert::owned_pair(r.tags(), owners, r.$id()))
                .collect())
        }
    };
}
pub(super) use find_owned_by_tag;

/// One page of a kind's observation: `$describe` (the SDK's describe call)
/// of every resource Canon owns (or, for an import, the candidates
/// `Ec2::select` names), narrowed by any further `$filter`s and, for a look
/// by id, to the ids [`Ec2::asked`] names (given with `$set_ids`, the
/// describe's id parameter), from page `$token` (`None` for the first).
macro_rules! describe_owned_page {
    ($ec2:expr, $describe:ident, $set_ids:ident, $token:expr $(, $filter:expr)* $(,)?) => {
        $ec2.describe(KIND, || {
            $ec2.client
                .$describe()
                .set_filters(Some($ec2.selection()))
                $(.filters($filter))*
                .$set_ids($ec2.asked_ids())
                .set_max_results($ec2.page_limit(KIND))
                .set_next_token($token.clone())
                .send()
        })
    };
}
pub(super) use describe_owned_page;

/// One account and region's EC2, as a request or an observation sees it.
#[derive(Clone, Copy)]
pub(super) struct Ec2<'a> {
    pub cloud: &'a AwsCloud,
    pub scope: &'a Scope,
    pub client: &'a Client,
    /// Where a request being executed collects its calls' request ids
    /// (none for observations).
    pub ids: Option<&'a RequestIds>,
    /// What a describe selects: `None`, what Canon owns (the ownership
    /// tag's filter); for an import's candidates, these filters instead
    /// (`crate::aws::candidates`).
    pub select: Option<&'a [Filter]>,
    /// The ids a look by id names in its describes' id parameter
    /// (`VpcIds`, `GroupIds`, …): EC2 then looks them up directly instead
    /// of walking the region. `None`: no id parameter.
    pub asked: Option<&'a [String]>,
}

impl Ec2<'_> {
    /// The filters of a describe: see [`Ec2::select`].
    pub fn selection(&self) -> Vec<Filter> {
        match self.select {
            None => vec![crate::aws::convert::owned_filter()],
            Some(filters) => filters.to_vec(),
        }
    }

    /// The id parameter of a describe: see [`Ec2::asked`].
    pub fn asked_ids(&self) -> Option<Vec<String>> {
        self.asked.map(<[String]>::to_vec)
    }

    /// The page size (`MaxResults`) of a describe of `kind`: EC2's
    /// largest, or none when it names ids (the answer is no longer than
    /// the ids, and `DescribeInstances` refuses `MaxResults` beside
    /// instance ids).
    pub fn page_limit(&self, kind: ResourceKind) -> Option<i32> {
        match self.asked {
            None => Some(crate::aws::observe::page_size(kind)),
            Some(_) => None,
        }
    }

    /// Whether a describe selects what Canon owns (an observation).
    pub fn owned_only(&self) -> bool {
        self.select.is_none()
    }

    /// One API call (see [`AwsCloud::call`]), its request id (each
    /// attempt's, answered or failed) noted for the request being executed.
    pub async fn call<T, E, F, Fut>(
        &self,
        action: &str,
        request_type: &str,
        f: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call_resending((action, request_type), Resend::AfterAnyTransient, f)
            .await
    }

    /// [`Ec2::call`] sent again after a transient failure only as `resend`
    /// allows.
    pub async fn call_resending<T, E, F, Fut>(
        &self,
        (action, request_type): (&str, &str),
        resend: Resend,
        f: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let noted = |id: Option<&str>| {
            if let Some(ids) = self.ids {
                ids.push(id);
            }
        };
        self.cloud
            .call(self.scope, (action, request_type), resend, noted, f)
            .await
    }

    /// One describe of `kind`'s resources.
    pub async fn describe<T, E, F, Fut>(&self, kind: ResourceKind, f: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call(describe_action(kind), describe_request_type(kind), f)
            .await
    }
}

/// The call one request maps to: where it goes, its EC2 action and request
/// type, and its client token (used by the creates that take one).
pub(super) struct Call<'a> {
    pub ec2: Ec2<'a>,
    pub name: &'a str,
    pub request_type: &'static str,
    pub token: &'a str,
    /// When the call is sent again after a transient failure.
    pub resend: Resend,
}

impl Call<'_> {
    /// Sends the request's call.
    pub async fn send<T, E, F, Fut>(&self, f: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.ec2
            .call_resending((self.name, self.request_type), self.resend, f)
            .await
    }
}

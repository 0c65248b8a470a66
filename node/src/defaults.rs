//! What a node assumes when nothing says otherwise: the account of processes
//! whose command names none, and the user whose key is the admin's. `canond`
//! (its settings' defaults and its one configured key) and `canon dev` (its
//! cluster's account and key) both start from these, so they live in a
//! module of their own rather than in either.

/// The account processes run in when their command names none (`canond
/// --account` overrides it; a dev cluster always uses it).
pub const DEFAULT_ACCOUNT: &str = "087820496137";

/// The user whose key `canond --admin-key` names and whose key a dev
/// cluster creates.
pub const ADMIN_USER: &str = "admin";

/// The cluster id of a `canond` started without `--cluster-id`. Every
/// signature names its cluster; clusters that share an id (both left at
/// this default) accept each other's commands, so canond warns about it.
pub const DEFAULT_CLUSTER_ID: &str = "canon";

//! Canon's hands and eyes on the cloud: the `Cloud` trait, `AwsCloud` over the
//! real AWS SDK and `SimCloud`, an in-memory deterministic EC2 with faults.

//! The client API at the door: only a correctly signed, fresh, unreplayed
//! command changes state; a retried command (same command id, new
//! envelope) applies once; malformed commands are refused with
//! InvalidArgument, never a panic. Runs a dev cluster in this process and
//! speaks raw gRPC to it.

use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};
use canon_node::envelope::{signing_payload, SignedBy};
use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::api::v1::canon_client::CanonClient;
use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use tonic::Code;

fn now_ms() -> u64 {
    canon_node::now_ms()
}

fn key_id(key: &SigningKey) -> String {
    canon_trust::PublicKey(key.verifying_key().to_bytes())
        .id()
        .0
}

/// An envelope for cluster `audience` signed by `key` as `user` at `at`,
/// living a minute.
fn envelope(
    audience: &str,
    key: &SigningKey,
    user: &str,
    at: u64,
    command: &[u8],
) -> pb::SignedEnvelope {
    let nonce = uuid::Uuid::new_v4().as_bytes().to_vec();
    let key_id = key_id(key);
    let by = SignedBy {
        user,
        key_id: &key_id,
        audience,
        timestamp_ms: at,
    };
    let expires_ms = at + 60_000;
    let signature = key
        .sign(&signing_payload(&by, &nonce, expires_ms, command))
        .to_bytes()
        .to_vec();
    pb::SignedEnvelope {
        command: command.to_vec(),
        user: user.into(),
        nonce,
        timestamp_ms: at,
        signature,
        audience: audience.into(),
        key_id,
        expires_ms,
    }
}

fn compiled() -> pb::CompiledComposition {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw");
    let out = canon_lang::compile_file(&path, canon_lang::Options::default()).unwrap();
    let c = out.compiled.unwrap();
    pb::CompiledComposition {
        bytes: c.encode(),
        source_hash: c.source_hash,
    }
}

fn run_command(alias: &str, composition: Option<pb::CompiledComposition>) -> pb::Command {
    pb::Command {
        command_id: uuid::Uuid::new_v4().to_string(),
        dry_run: false,
        reply_queue: String::new(),
        action: Some(pb::command::Action::Run(pb::Run {
            alias: alias.into(),
            fid: uuid::Uuid::new_v4().to_string(),
            account: String::new(),
            composition,
            tick_interval_ms: 0,
            import: false,
            composition_ref: None,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_fresh_unreplayed_commands_change_state() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(5),
        shards: 2,
        signed_reads: false,
        tls: false,
        ..DevOptions::new(tmp.path())
    })
    .await
    .unwrap();
    let admin = canon_node::keys::read_signing_key(&cluster.admin_key).unwrap();
    let mut api = CanonClient::connect(cluster.endpoints[1].clone())
        .await
        .unwrap();
    let cmd = run_command("door", Some(compiled())).encode_to_vec();

    // A stranger's key, an unknown user, a stale or future timestamp.
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let e = api
        .submit(envelope(
            &cluster.cluster_id,
            &stranger,
            "admin",
            now_ms(),
            &cmd,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = api
        .submit(envelope(
            &cluster.cluster_id,
            &admin,
            "mallory",
            now_ms(),
            &cmd,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = api
        .submit(envelope(
            &cluster.cluster_id,
            &admin,
            "admin",
            now_ms() - 600_000,
            &cmd,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = api
        .submit(envelope(
            &cluster.cluster_id,
            &admin,
            "admin",
            now_ms() + 600_000,
            &cmd,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // A tampered command under a good signature.
    let mut tampered = envelope(&cluster.cluster_id, &admin, "admin", now_ms(), &cmd);
    tampered.command = run_command("other", Some(compiled())).encode_to_vec();
    let e = api.submit(tampered).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Another cluster's command (a staging command replayed here), or one
    // naming no cluster: refused, naming both clusters.
    let e = api
        .submit(envelope("staging", &admin, "admin", now_ms(), &cmd))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("\"staging\""), "{e:?}");
    assert!(e.message().contains(&cluster.cluster_id), "{e:?}");
    let e = api
        .submit(envelope("", &admin, "admin", now_ms(), &cmd))
        .await
        .unwrap_err();
    assert!(e.message().contains("audience"), "{e:?}");
    // Expired: signed 7 minutes ago to live 1, so void for 6 minutes, past
    // the node's 5-minute allowance for clock skew.
    let e = api
        .submit(envelope(
            &cluster.cluster_id,
            &admin,
            "admin",
            now_ms() - 420_000,
            &cmd,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("expired"), "{e:?}");
    // The cluster states its id, the audience clients sign for.
    let id = api
        .cluster_status(pb::ClusterStatusRequest { local: true })
        .await
        .unwrap()
        .into_inner()
        .cluster_id;
    assert_eq!(id, cluster.cluster_id);
    assert!(id.starts_with("dev-"), "{id}");
    let status = api
        .status(pb::StatusRequest {
            alias: String::new(),
            all: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(status.processes.is_empty(), "{status:?}");
    // Unsigned reads pass on this cluster (it does not require signed
    // reads), but a read token that does not verify is refused.
    let read = pb::StatusRequest {
        alias: String::new(),
        all: true,
        ..Default::default()
    };
    for (key, user) in [(&stranger, "admin"), (&admin, "mallory")] {
        let at = now_ms();
        let key_id = key_id(key);
        let by = SignedBy {
            user,
            key_id: &key_id,
            audience: &cluster.cluster_id,
            timestamp_ms: at,
        };
        let sig = key.sign(&canon_node::envelope::read_payload(
            &by,
            "Status",
            &read.encode_to_vec(),
        ));
        let mut req = tonic::Request::new(read.clone());
        let md = req.metadata_mut();
        md.insert("canon-user", user.parse().unwrap());
        md.insert("canon-key-id", key_id.parse().unwrap());
        md.insert("canon-audience", cluster.cluster_id.parse().unwrap());
        md.insert("canon-timestamp", at.to_string().parse().unwrap());
        md.insert(
            "canon-signature",
            hex::encode(sig.to_bytes()).parse().unwrap(),
        );
        let e = api.status(req).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{user}: {e:?}");
    }

    // The good one applies; the same envelope again is a replay.
    let good = envelope(&cluster.cluster_id, &admin, "admin", now_ms(), &cmd);
    let first = api.submit(good.clone()).await.unwrap().into_inner();
    let e = api.submit(good).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("replay"), "{e:?}");
    // The same command in a fresh envelope, sent to another node (a
    // client's retry): answered, not applied again.
    let mut other = CanonClient::connect(cluster.endpoints[2].clone())
        .await
        .unwrap();
    let again = other
        .submit(envelope(
            &cluster.cluster_id,
            &admin,
            "admin",
            now_ms(),
            &cmd,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.job, first.job);
    let status = api
        .status(pb::StatusRequest {
            alias: String::new(),
            all: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.processes.len(), 1, "{status:?}");

    // Malformed commands: refused, nothing panics, the node still answers.
    for bad in [
        b"\xff\xff not a command".to_vec(),
        pb::Command {
            command_id: "nope".into(),
            dry_run: false,
            reply_queue: String::new(),
            action: None,
        }
        .encode_to_vec(),
        pb::Command {
            command_id: uuid::Uuid::new_v4().to_string(),
            dry_run: false,
            reply_queue: String::new(),
            action: None,
        }
        .encode_to_vec(),
        run_command("bad alias!", Some(compiled())).encode_to_vec(),
        run_command("no-composition", None).encode_to_vec(),
        run_command(
            "garbage",
            Some(pb::CompiledComposition {
                bytes: vec![0xde, 0xad],
                source_hash: String::new(),
            }),
        )
        .encode_to_vec(),
    ] {
        let e = api
            .submit(envelope(
                &cluster.cluster_id,
                &admin,
                "admin",
                now_ms(),
                &bad,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    let e = api.submit(pb::SignedEnvelope::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = api
        .history(pb::HistoryRequest {
            alias: "nobody".into(),
            start_ms: 0,
            end_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    api.cluster_status(pb::ClusterStatusRequest { local: true })
        .await
        .unwrap();
    // A join that makes no sense is refused before anything changes.
    for (node, addr, code) in [
        (0, "127.0.0.1:1", Code::InvalidArgument),
        (9, "nowhere", Code::InvalidArgument),
        (1, "127.0.0.1:1", Code::AlreadyExists),
    ] {
        let e = api
            .join(pb::JoinRequest {
                node,
                addr: addr.into(),
                token: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{node} {addr}: {e:?}");
    }
    join_tokens_admit_only_the_invited_node(&mut api, &cluster.cluster_id, &admin).await;
    // gRPC health says the API serves.
    let channel = tonic::transport::Endpoint::from_shared(cluster.endpoints[0].clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "canon.api.v1.Canon".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Reflection lists the API (what `grpcurl list` shows).
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(channel);
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![ask]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"canon.api.v1.Canon".to_string()),
        "{names:?}"
    );
    // A kill (a release) retried after the conductor finished it (its
    // first answer lost) gets the first outcome again; a new one is told
    // there is nothing there.
    let signer = (cluster.cluster_id.as_str(), &admin);
    let kill = |alias: &str| {
        pb::command::Action::Kill(pb::Kill {
            alias: alias.into(),
        })
    };
    ended_then_retried(&mut api, &mut other, signer, "door", kill, "Killed").await;
    let run = run_command("kept", Some(compiled())).encode_to_vec();
    let (id, key) = signer;
    api.submit(envelope(id, key, "admin", now_ms(), &run))
        .await
        .unwrap();
    // A release waits for the RUN job to end (it is refused while one is
    // in progress).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while api
        .status(pb::StatusRequest {
            alias: "kept".into(),
            all: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .processes[0]
        .last_message
        != "SUCCESS"
    {
        assert!(std::time::Instant::now() < deadline, "kept never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let release = |alias: &str| {
        pb::command::Action::Release(pb::Release {
            alias: alias.into(),
        })
    };
    ended_then_retried(&mut api, &mut other, signer, "kept", release, "Released").await;
    cluster.shutdown().await;
}

/// Sends the command `ending` makes for `alias` (a kill, a release), waits
/// until the process is no longer live, then sends it again under the same
/// command id through `other`: the retry is answered with the first job and
/// the process in `state`. A new command of the kind is told there is
/// nothing there (NotFound).
async fn ended_then_retried(
    api: &mut CanonClient<tonic::transport::Channel>,
    other: &mut CanonClient<tonic::transport::Channel>,
    (cluster_id, admin): (&str, &SigningKey),
    alias: &str,
    ending: impl Fn(&str) -> pb::command::Action,
    state: &str,
) {
    let command = |id: String| {
        pb::Command {
            command_id: id,
            dry_run: false,
            reply_queue: String::new(),
            action: Some(ending(alias)),
        }
        .encode_to_vec()
    };
    let sent = |id: String| envelope(cluster_id, admin, "admin", now_ms(), &command(id));
    let first_id = uuid::Uuid::new_v4().to_string();
    let first = api
        .submit(sent(first_id.clone()))
        .await
        .unwrap()
        .into_inner();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let gone = api
            .status(pb::StatusRequest {
                alias: alias.into(),
                all: false,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().processes.iter().all(|p| p.state == state))
            .unwrap_or_else(|e| e.code() == Code::NotFound);
        if gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{alias} never became {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its alias free, the ended process is still read by it, history too.
    let history = api
        .history(pb::HistoryRequest {
            alias: alias.into(),
            start_ms: 0,
            end_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.process.map(|p| p.state).as_deref(), Some(state));
    assert!(
        history.jobs.iter().any(|j| j.id == first.job),
        "{:?}",
        history.jobs
    );
    let again = other.submit(sent(first_id)).await.unwrap().into_inner();
    assert_eq!(again.job, first.job);
    assert_eq!(again.process.map(|p| p.state).as_deref(), Some(state));
    let e = api
        .submit(sent(uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

/// Without TLS a node joins only with a join token an admin made: none, an
/// unknown one or one made for another node is refused (and spends
/// nothing); making one is a signed command.
async fn join_tokens_admit_only_the_invited_node(
    api: &mut CanonClient<tonic::transport::Channel>,
    cluster_id: &str,
    admin: &SigningKey,
) {
    let join = |node: u64, token: &str| pb::JoinRequest {
        node,
        addr: format!("127.0.0.1:{}", 40_000 + node),
        token: token.into(),
    };
    let e = api.join(join(9, "")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("canon cluster join-token"), "{e:?}");
    let e = api.join(join(9, "canon-join-00")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("unknown join token"), "{e:?}");

    let make = |ttl_ms: u64, signer: &SigningKey| {
        let cmd = pb::Command {
            command_id: uuid::Uuid::new_v4().to_string(),
            dry_run: false,
            reply_queue: String::new(),
            action: Some(pb::command::Action::CreateJoinToken(pb::CreateJoinToken {
                ttl_ms,
                node: 4,
            })),
        };
        envelope(cluster_id, signer, "admin", now_ms(), &cmd.encode_to_vec())
    };
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let e = api.create_join_token(make(0, &stranger)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = api
        .create_join_token(make(8 * 24 * 3_600_000, admin))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let t = api
        .create_join_token(make(0, admin))
        .await
        .unwrap()
        .into_inner();
    assert!(t.token.starts_with("canon-join-"), "{t:?}");
    let hour_ms = 3_600_000;
    assert!(t.expires_ms.abs_diff(now_ms() + hour_ms) < 60_000, "{t:?}");
    let e = api.join(join(5, &t.token)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("admits node 4, not node 5"), "{e:?}");
    // Submit does not take it: it has its own call.
    let e = api.submit(make(0, admin)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
}

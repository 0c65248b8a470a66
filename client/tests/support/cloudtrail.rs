//! What EventBridge would put on a Canon events queue: CloudTrail's
//! record of an EC2 call (moto emits none), sent into a moto SQS queue.

/// The CloudTrail record EventBridge would deliver for an ingress rule
/// `caller` added to `sg` just now.
pub fn ingress_event(sg: &str, caller: &str) -> String {
    let now = time_of(canon_node::now_ms());
    serde_json::json!({
        "version": "0",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "time": now,
        "detail": {
            "eventSource": "ec2.amazonaws.com",
            "eventName": "AuthorizeSecurityGroupIngress",
            "eventTime": now,
            "userIdentity": {"type": "IAMUser", "arn": caller},
            "requestParameters": {"groupId": sg,
                "ipPermissions": {"items": [{"ipProtocol": "-1",
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
            "responseElements": {"_return": true}
        }
    })
    .to_string()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a time in ms, as CloudTrail writes it.
pub fn time_of(ms: u64) -> String {
    canon_model::utc::iso_seconds(ms)
}

/// A new queue named `name`: its URL.
pub async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Sends `body` to the queue at `url`, as EventBridge would.
pub async fn deliver(sqs: &aws_sdk_sqs::Client, url: &str, body: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

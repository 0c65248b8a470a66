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

/// `YYYY-MM-DDTHH:MM:SSZ` of a time in ms (civil from days, Hinnant).
pub fn time_of(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
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

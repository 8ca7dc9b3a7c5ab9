//! State shared by every actor: resolved ids of special actions, console page layouts, the
//! stream's time span and the dates of organisation-wide changes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Rng;
use crate::api::{ApiId, Catalog};
use crate::org::Org;
use crate::payload::Payload;
use crate::timefmt::aws_long;

/// Ids of actions that actors emit by name.
#[derive(Debug)]
pub(crate) struct Special {
    pub console_login: ApiId,
    pub assume_role: ApiId,
    pub assume_saml: ApiId,
    pub assume_web: ApiId,
    pub caller_identity: ApiId,
}

/// Console pages: opening the page for the first action also fires the others.
const CONSOLE_PAGES: &[(&str, &[&str])] = &[
    (
        "ec2:DescribeInstances",
        &[
            "ec2:DescribeInstanceStatus",
            "ec2:DescribeAddresses",
            "ec2:DescribeSecurityGroups",
        ],
    ),
    ("ec2:DescribeVolumes", &["ec2:DescribeSnapshots"]),
    ("ec2:DescribeSecurityGroups", &["ec2:DescribeVpcs"]),
    (
        "s3:ListBuckets",
        &["s3:GetBucketLocation", "s3:GetBucketLocation"],
    ),
    (
        "s3:ListObjects",
        &["s3:GetBucketLocation", "s3:GetBucketVersioning"],
    ),
    (
        "lambda:GetFunction20150331v2",
        &[
            "lambda:GetPolicy20150331v2",
            "lambda:ListVersionsByFunction20150331",
        ],
    ),
    (
        "ecs:DescribeServices",
        &[
            "ecs:ListTasks",
            "ecs:DescribeTasks",
            "ecs:DescribeTaskDefinition",
        ],
    ),
    ("cloudwatch:DescribeAlarms", &["cloudwatch:GetMetricData"]),
    ("logs:DescribeLogStreams", &["logs:DescribeLogGroups"]),
    (
        "guardduty:ListFindings",
        &["guardduty:GetFindings", "guardduty:ListDetectors"],
    ),
    (
        "iam:ListUsers",
        &[
            "iam:GetAccountSummary",
            "iam:ListAccessKeys",
            "iam:ListMFADevices",
        ],
    ),
    (
        "ce:GetCostAndUsage",
        &["ce:GetDimensionValues", "ce:GetCostForecast"],
    ),
    ("rds:DescribeDBInstances", &["rds:DescribeDBClusters"]),
    (
        "elasticloadbalancing:DescribeLoadBalancers",
        &["elasticloadbalancing:DescribeTargetGroups"],
    ),
    ("securityhub:GetFindings", &["securityhub:DescribeHub"]),
];

/// Everything actors share.
#[derive(Debug)]
pub(crate) struct World {
    pub special: Special,
    pub pages: BTreeMap<ApiId, Vec<ApiId>>,
    /// End of the stream (exclusive).
    pub end: i64,
    /// Midnight UTC of the day every workstation gets the new aws-cli and Boto3.
    pub bump_t: i64,
}

impl World {
    pub(crate) fn new(cat: &Catalog, end: i64, bump_t: i64) -> Self {
        let special = Special {
            console_login: cat.id("signin:ConsoleLogin"),
            assume_role: cat.id("sts:AssumeRole"),
            assume_saml: cat.id("sts:AssumeRoleWithSAML"),
            assume_web: cat.id("sts:AssumeRoleWithWebIdentity"),
            caller_identity: cat.id("sts:GetCallerIdentity"),
        };
        let pages = CONSOLE_PAGES
            .iter()
            .map(|(k, v)| (cat.id(k), cat.ids(v)))
            .collect();
        World {
            special,
            pages,
            end,
            bump_t,
        }
    }
}

/// Newly minted temporary credentials, for the `responseElements` of `AssumeRole*`.
#[derive(Debug)]
pub(crate) struct Minted<'a> {
    pub role_arn: &'a str,
    pub role_id: &'a str,
    pub session: &'a str,
    pub key: &'a str,
    pub t: i64,
    pub duration: i64,
}

/// The payload of an `AssumeRole`-family call; `extra_req`/`extra_resp` add the
/// variant-specific fields.
pub(crate) fn assume_payload(
    org: &Org,
    _rng: &mut Rng,
    m: &Minted<'_>,
    extra_req: Value,
    extra_resp: Value,
) -> Payload {
    let sts_arn = {
        let role = m.role_arn.rsplit('/').next().unwrap_or(m.role_arn);
        format!(
            "arn:aws:sts::{}:assumed-role/{role}/{}",
            org.account, m.session
        )
    };
    let mut req =
        json!({"roleArn": m.role_arn, "roleSessionName": m.session, "durationSeconds": m.duration});
    merge(&mut req, extra_req);
    let mut resp = json!({
        "credentials": {"accessKeyId": m.key, "expiration": aws_long(m.t + m.duration)},
        "assumedRoleUser": {"assumedRoleId": format!("{}:{}", m.role_id, m.session), "arn": sts_arn}
    });
    merge(&mut resp, extra_resp);
    Payload {
        req,
        resp,
        resources: Some(
            json!([{"accountId": org.account, "type": "AWS::IAM::Role", "ARN": m.role_arn}]),
        ),
        extra: None,
        host: None,
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

//! `requestParameters`, `responseElements`, `resources` and `additionalEventData` per action.
//!
//! Each action gets a small object shaped like the real one (EC2's `…Set: {items: […]}`
//! wrappers, S3's `bucketName`/`Host`, DynamoDB's hidden key values, IAM's long dates). Reads
//! mostly return `responseElements: null`, as CloudTrail does. Which resource a request names
//! comes from a [`Focus`]: the resources an actor works with, or the fixed ids of an attack.

use rand::Rng as _;
use rand::seq::IndexedRandom as _;
use serde_json::{Value, json};

use crate::Rng;
use crate::api::Api;
use crate::ids;
use crate::org::Org;
use crate::timefmt::{aws_long, date, rfc3339};

/// The resources an actor tends to name, and fixed ids that override random choices.
#[derive(Debug, Default, Clone)]
pub(crate) struct Focus {
    pub buckets: Vec<usize>,
    pub secrets: Vec<usize>,
    pub tables: Vec<usize>,
    pub queues: Vec<usize>,
    pub functions: Vec<usize>,
    pub log_groups: Vec<usize>,
    pub params: Vec<usize>,
    pub kms: Vec<usize>,
    pub instances: Vec<String>,
    pub volume: Option<String>,
    pub snapshot: Option<String>,
    /// Account an attacker shares a snapshot with.
    pub foreign_account: Option<String>,
    /// IAM user name a request is about (for `CreateUser` and friends).
    pub user: Option<String>,
    /// IAM role name a request is about.
    pub role: Option<String>,
    /// Lambda function a request is about, when it is not in the inventory yet.
    pub function: Option<String>,
    /// Access key id a `CreateAccessKey` returns (so later use of the key matches).
    pub access_key: Option<String>,
    /// Cycle through the lists in order instead of drawing at random.
    pub sequential: bool,
}

/// The parts of a record that depend on the action.
#[derive(Debug)]
pub(crate) struct Payload {
    pub req: Value,
    pub resp: Value,
    pub resources: Option<Value>,
    pub extra: Option<Value>,
    /// `clientProvidedHostHeader` when it is not the service endpoint (S3 virtual hosts).
    pub host: Option<String>,
}

impl Payload {
    /// Request and response only.
    pub(crate) fn new(req: Value, resp: Value) -> Self {
        Payload {
            req,
            resp,
            resources: None,
            extra: None,
            host: None,
        }
    }
}

/// Everything a payload builder may look at.
#[derive(Debug)]
pub(crate) struct Px<'a> {
    pub org: &'a Org,
    pub rng: &'a mut Rng,
    pub focus: &'a Focus,
    pub t: i64,
    pub region: &'a str,
    /// Index of the call within its burst, for sequential picks.
    pub nth: u32,
}

impl<'a> Px<'a> {
    fn pick(&mut self, list: &[usize], all: usize) -> usize {
        if list.is_empty() {
            self.rng.random_range(0..all.max(1))
        } else if self.focus.sequential {
            list[self.nth as usize % list.len()]
        } else {
            list[self.rng.random_range(0..list.len())]
        }
    }
    fn bucket(&mut self) -> usize {
        let f: &'a Focus = self.focus;
        self.pick(&f.buckets, self.org.buckets.len())
    }
    fn object(&mut self, b: usize) -> String {
        let keys = &self.org.buckets[b].keys;
        if self.focus.sequential {
            keys[self.nth as usize % keys.len()].clone()
        } else {
            keys[self.rng.random_range(0..keys.len())].clone()
        }
    }
    fn secret(&mut self) -> usize {
        let f: &'a Focus = self.focus;
        self.pick(&f.secrets, self.org.secrets.len())
    }
    fn table(&mut self) -> &'static str {
        let f: &'a Focus = self.focus;
        let i = self.pick(&f.tables, self.org.tables.len());
        self.org.tables[i]
    }
    fn queue_url(&mut self) -> String {
        let f: &'a Focus = self.focus;
        let i = self.pick(&f.queues, self.org.queues.len());
        format!(
            "https://sqs.{}.amazonaws.com/{}/{}",
            self.region, self.org.account, self.org.queues[i]
        )
    }
    fn function(&mut self) -> String {
        if let Some(f) = &self.focus.function {
            return f.clone();
        }
        let f: &'a Focus = self.focus;
        let i = self.pick(&f.functions, self.org.functions.len());
        self.org.functions[i].clone()
    }
    fn function_arn(&mut self) -> String {
        let f = self.function();
        format!(
            "arn:aws:lambda:{}:{}:function:{f}",
            self.region, self.org.account
        )
    }
    fn log_group(&mut self) -> String {
        let f: &'a Focus = self.focus;
        let i = self.pick(&f.log_groups, self.org.log_groups.len());
        self.org.log_groups[i].clone()
    }
    fn param(&mut self) -> &'static str {
        let f: &'a Focus = self.focus;
        let i = self.pick(&f.params, self.org.parameters.len());
        self.org.parameters[i]
    }
    fn kms(&mut self) -> String {
        let f: &'a Focus = self.focus;
        let i = self.pick(&f.kms, self.org.kms_keys.len());
        self.org.kms_arn(i)
    }
    fn instance(&mut self) -> String {
        if self.focus.instances.is_empty() {
            self.org
                .instances
                .choose(self.rng)
                .cloned()
                .unwrap_or_default()
        } else {
            let i = self.rng.random_range(0..self.focus.instances.len());
            self.focus.instances[i].clone()
        }
    }
    fn volume(&mut self) -> (String, u32) {
        match &self.focus.volume {
            Some(v) => (v.clone(), 100),
            None => self
                .org
                .volumes
                .choose(self.rng)
                .cloned()
                .unwrap_or_default(),
        }
    }
    fn snapshot(&mut self) -> String {
        match &self.focus.snapshot {
            Some(s) => s.clone(),
            None => self
                .org
                .snapshots
                .choose(self.rng)
                .cloned()
                .unwrap_or_default(),
        }
    }
    fn user(&mut self) -> String {
        match &self.focus.user {
            Some(u) => u.clone(),
            None => self.org.users.choose(self.rng).cloned().unwrap_or_default(),
        }
    }
    fn role(&mut self) -> String {
        match &self.focus.role {
            Some(r) => r.clone(),
            None => self.org.roles.choose(self.rng).cloned().unwrap_or_default(),
        }
    }
    fn one_of<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }
    fn ec2_ok(&mut self) -> Value {
        json!({"requestId": ids::uuid(self.rng), "_return": true})
    }
    fn acct(&self) -> &str {
        &self.org.account
    }
}

fn items(key: &str, vals: &[String]) -> Value {
    let list: Vec<Value> = vals.iter().map(|v| json!({ key: v })).collect();
    json!({ "items": list })
}

fn filter(name: &str, value: &str) -> Value {
    json!({"items": [{"name": name, "valueSet": {"items": [{"value": value}]}}]})
}

fn s3_data(
    px: &mut Px<'_>,
    bucket: &str,
    key: Option<&str>,
    bytes_in: u64,
    bytes_out: u64,
) -> (Value, Value) {
    let acct = px.acct().to_owned();
    let mut resources = Vec::with_capacity(2);
    if let Some(k) = key {
        resources
            .push(json!({"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{k}")}));
    }
    resources.push(json!({"accountId": acct, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}));
    let extra = json!({
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": bytes_in,
        "AuthenticationMethod": "AuthHeader",
        "x-amz-id-2": ids::b64(px.rng, 76),
        "bytesTransferredOut": bytes_out,
    });
    (Value::Array(resources), extra)
}

/// `requestParameters` and friends for one call of `api`.
pub(crate) fn build(api: &Api, px: &mut Px<'_>) -> Payload {
    let org: &Org = px.org;
    let region = px.region.to_owned();
    let acct = px.acct().to_owned();
    let p = |req: Value| Payload::new(req, Value::Null);
    match api.full {
        // ---- EC2 ----
        "ec2:DescribeInstances" => {
            if px.chance(0.4) {
                let i = px.instance();
                p(json!({"instancesSet": items("instanceId", &[i]), "filterSet": {}}))
            } else {
                p(
                    json!({"instancesSet": {}, "filterSet": filter("instance-state-name", "running")}),
                )
            }
        }
        "ec2:DescribeInstanceStatus" => {
            p(json!({"instancesSet": {}, "filterSet": {}, "includeAllInstances": false}))
        }
        "ec2:DescribeVolumes" => {
            if px.chance(0.3) {
                let i = px.instance();
                p(json!({"volumeSet": {}, "filterSet": filter("attachment.instance-id", &i)}))
            } else {
                p(json!({"volumeSet": {}, "filterSet": {}}))
            }
        }
        "ec2:DescribeSnapshots" => match &px.focus.snapshot {
            Some(s) => p(
                json!({"snapshotSet": items("snapshotId", std::slice::from_ref(s)), "ownersSet": {}, "restorableBySet": {}, "filterSet": {}}),
            ),
            None => p(
                json!({"snapshotSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "restorableBySet": {}, "filterSet": {}}),
            ),
        },
        "ec2:DescribeSecurityGroups" => {
            p(json!({"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}))
        }
        "ec2:DescribeVpcs" => p(json!({"vpcSet": {}, "filterSet": {}})),
        "ec2:DescribeSubnets" => {
            let vpc = px.org.vpcs[0].clone();
            p(json!({"subnetSet": {}, "filterSet": filter("vpc-id", &vpc)}))
        }
        "ec2:DescribeImages" => p(
            json!({"executableBySet": {}, "imagesSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "filterSet": {}, "includeDeprecated": false}),
        ),
        "ec2:DescribeRegions" => p(json!({"regionSet": {}})),
        "ec2:DescribeAddresses" => {
            p(json!({"publicIpsSet": {}, "allocationIdsSet": {}, "filterSet": {}}))
        }
        "ec2:DescribeTags" => {
            let i = px.instance();
            p(json!({"filterSet": filter("resource-id", &i)}))
        }
        "ec2:DescribeNetworkInterfaces" => p(json!({"networkInterfaceIdSet": {}, "filterSet": {}})),
        "ec2:DescribeLaunchTemplates" => {
            p(json!({"DescribeLaunchTemplatesRequest": {"MaxResults": 200}}))
        }
        "ec2:DescribeKeyPairs" => p(json!({"keySet": {}, "filterSet": {}})),
        "ec2:DescribeRouteTables" => p(json!({"routeTableIdSet": {}, "filterSet": {}})),
        "ec2:DescribeAvailabilityZones" => {
            p(json!({"availabilityZoneSet": {}, "availabilityZoneIdSet": {}}))
        }
        "ec2:DescribeAccountAttributes" => p(
            json!({"accountAttributeNameSet": {"items": [{"attributeName": "supported-platforms"}]}, "filterSet": {}}),
        ),
        "ec2:DescribeFlowLogs" => p(json!({"DescribeFlowLogsRequest": {"MaxResults": 1000}})),
        "ec2:DescribeInstanceTypes" => p(
            json!({"DescribeInstanceTypesRequest": {"InstanceType": {"content": "m6i.large", "tag": 1}}}),
        ),
        "ec2:GetConsoleOutput" => {
            let i = px.instance();
            p(json!({"instanceId": i}))
        }
        "ec2:CreateSnapshot" => {
            let (vol, size) = px.volume();
            let snap = px
                .focus
                .snapshot
                .clone()
                .unwrap_or_else(|| ids::ec2_id(px.rng, "snap"));
            let desc = if px.focus.foreign_account.is_some() {
                "backup".to_owned()
            } else {
                format!("ebs-snapshot-manager daily {}", date(px.t))
            };
            Payload::new(
                json!({"volumeId": vol, "description": desc}),
                json!({"requestId": ids::uuid(px.rng), "snapshotId": snap, "volumeId": vol, "status": "pending",
                       "startTime": px.t * 1000, "progress": "", "ownerId": acct, "volumeSize": size, "encrypted": true}),
            )
        }
        "ec2:DeleteSnapshot" => {
            let s = px.snapshot();
            Payload::new(json!({"snapshotId": s}), px.ec2_ok())
        }
        "ec2:ModifySnapshotAttribute" => {
            let s = px.snapshot();
            let who = px
                .focus
                .foreign_account
                .clone()
                .unwrap_or_else(|| px.org.other_accounts[0].clone());
            Payload::new(
                json!({"snapshotId": s, "createVolumePermission": {"add": {"items": [{"userId": who}]}}, "attributeType": "CREATE_VOLUME_PERMISSION"}),
                px.ec2_ok(),
            )
        }
        "ec2:CreateTags" => {
            let r = px.focus.snapshot.clone().unwrap_or_else(|| px.instance());
            let tag = if r.starts_with("snap-") {
                json!({"items": [{"key": "managed-by", "value": "ebs-snapshot-manager"}, {"key": "retention-days", "value": "7"}]})
            } else {
                json!({"items": [{"key": "owner", "value": "platform"}]})
            };
            Payload::new(
                json!({"resourcesSet": items("resourceId", &[r]), "tagSet": tag}),
                px.ec2_ok(),
            )
        }
        "ec2:RunInstances" => {
            let i = px.instance();
            let ami = px.org.amis[0].clone();
            let ip = ids::private_ip(px.rng, 0);
            let lt = format!("lt-0{}", ids::hex(px.rng, 16));
            let resv = ids::ec2_id(px.rng, "r");
            Payload::new(
                json!({"instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]}, "launchTemplate": {"launchTemplateId": lt, "version": "7"},
                       "instanceMarketOptions": {}, "subnetId": px.org.subnets[0], "clientToken": ids::uuid(px.rng)}),
                json!({"requestId": ids::uuid(px.rng), "reservationId": resv, "ownerId": acct, "requesterId": "226008221399",
                       "instancesSet": {"items": [{"instanceId": i, "imageId": ami, "instanceState": {"code": 0, "name": "pending"},
                       "privateIpAddress": ip, "instanceType": "m6i.large", "launchTime": px.t * 1000}]}}),
            )
        }
        "ec2:TerminateInstances" | "ec2:StopInstances" | "ec2:StartInstances" => {
            let i = px.instance();
            let (cur, prev) = match api.name {
                "TerminateInstances" => ((32, "shutting-down"), (16, "running")),
                "StopInstances" => ((64, "stopping"), (16, "running")),
                _ => ((0, "pending"), (80, "stopped")),
            };
            Payload::new(
                json!({"instancesSet": items("instanceId", std::slice::from_ref(&i))}),
                json!({"requestId": ids::uuid(px.rng), "instancesSet": {"items": [{"instanceId": i,
                       "currentState": {"code": cur.0, "name": cur.1}, "previousState": {"code": prev.0, "name": prev.1}}]}}),
            )
        }
        "ec2:AuthorizeSecurityGroupIngress" => {
            let sg = px
                .org
                .security_groups
                .choose(px.rng)
                .cloned()
                .unwrap_or_default();
            let rule = format!("sgr-0{}", ids::hex(px.rng, 16));
            Payload::new(
                json!({"groupId": sg, "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                       "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}, "groups": {}, "ipv6Ranges": {}, "prefixListIds": {}}]}}),
                json!({"requestId": ids::uuid(px.rng), "_return": true, "securityGroupRuleSet": {"items": [{"groupOwnerId": acct,
                       "groupId": sg, "securityGroupRuleId": rule, "isEgress": false, "ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "10.0.0.0/16"}]}}),
            )
        }
        "ec2:DeleteFlowLogs" => {
            let fl = px.org.flow_logs.choose(px.rng).cloned().unwrap_or_default();
            Payload::new(
                json!({"DeleteFlowLogsRequest": {"FlowLogId": {"content": fl, "tag": 1}}}),
                json!({"DeleteFlowLogsResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "requestId": ids::uuid(px.rng), "unsuccessful": ""}}),
            )
        }

        // ---- S3 bucket level ----
        "s3:ListBuckets" => {
            let host = format!("s3.{region}.amazonaws.com");
            Payload {
                host: Some(host.clone()),
                ..p(json!({"Host": host}))
            }
        }
        "s3:GetBucketLocation"
        | "s3:GetBucketPolicy"
        | "s3:GetBucketAcl"
        | "s3:GetBucketVersioning"
        | "s3:GetBucketEncryption"
        | "s3:GetBucketPublicAccessBlock"
        | "s3:GetBucketTagging"
        | "s3:GetBucketLogging"
        | "s3:DeleteBucketPublicAccessBlock" => {
            let b = px.bucket();
            let name = px.org.buckets[b].name.clone();
            let host = format!("{name}.s3.{region}.amazonaws.com");
            let sub = match api.name {
                "GetBucketLocation" => "location",
                "GetBucketPolicy" => "policy",
                "GetBucketAcl" => "acl",
                "GetBucketVersioning" => "versioning",
                "GetBucketEncryption" => "encryption",
                "GetBucketTagging" => "tagging",
                "GetBucketLogging" => "logging",
                _ => "publicAccessBlock",
            };
            Payload {
                host: Some(host.clone()),
                ..p(json!({"bucketName": name, "Host": host, sub: ""}))
            }
        }
        "s3:PutBucketPolicy" => {
            let b = px.bucket();
            let name = px.org.buckets[b].name.clone();
            let host = format!("{name}.s3.{region}.amazonaws.com");
            let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                                "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{name}/*")}]});
            Payload {
                host: Some(host.clone()),
                ..p(json!({"bucketName": name, "Host": host, "policy": "", "bucketPolicy": policy}))
            }
        }
        // ---- S3 data events ----
        "s3:ListObjects" => {
            let b = px.bucket();
            let name = px.org.buckets[b].name.clone();
            let key = px.object(b);
            let prefix = key.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            let host = format!("{name}.s3.{region}.amazonaws.com");
            let (res, extra) = s3_data(px, &name, None, 0, 0);
            Payload {
                req: json!({"bucketName": name, "Host": host, "list-type": "2", "prefix": format!("{prefix}/"), "delimiter": "/", "encoding-type": "url"}),
                resp: Value::Null,
                resources: Some(res),
                extra: Some(extra),
                host: Some(host),
            }
        }
        "s3:GetObject" | "s3:HeadObject" | "s3:DeleteObject" | "s3:PutObject" => {
            let b = px.bucket();
            let name = px.org.buckets[b].name.clone();
            let key = if api.name == "PutObject" && name.ends_with("app-uploads") {
                format!("uploads/{}/original.jpg", ids::uuid(px.rng))
            } else {
                px.object(b)
            };
            let host = format!("{name}.s3.{region}.amazonaws.com");
            let size = px.rng.random_range(200..4_000_000u64);
            let (bin, bout) = match api.name {
                "PutObject" => (size, 0),
                "GetObject" => (0, size),
                _ => (0, 0),
            };
            let (res, extra) = s3_data(px, &name, Some(&key), bin, bout);
            let resp = if api.name == "PutObject" {
                json!({"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": px.org.kms_arn(0),
                       "x-amz-server-side-encryption-bucket-key-enabled": "true"})
            } else {
                Value::Null
            };
            Payload {
                req: json!({"bucketName": name, "Host": host, "key": key}),
                resp,
                resources: Some(res),
                extra: Some(extra),
                host: Some(host),
            }
        }

        // ---- IAM ----
        "iam:ListUsers" | "iam:ListRoles" | "iam:ListGroups" | "iam:ListInstanceProfiles" => {
            if px.chance(0.5) {
                p(Value::Null)
            } else {
                p(json!({"maxItems": 1000}))
            }
        }
        "iam:ListPolicies" => p(json!({"scope": "Local", "onlyAttached": false, "maxItems": 100})),
        "iam:GetAccountSummary" | "iam:GetAccountPasswordPolicy" => p(Value::Null),
        "iam:GetAccountAuthorizationDetails" => p(
            json!({"filter": ["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"]}),
        ),
        "iam:GetUser"
        | "iam:ListAttachedUserPolicies"
        | "iam:ListUserPolicies"
        | "iam:ListGroupsForUser"
        | "iam:ListAccessKeys"
        | "iam:ListMFADevices"
        | "iam:GetLoginProfile" => {
            let u = px.user();
            p(json!({"userName": u}))
        }
        "iam:GetRole" | "iam:ListAttachedRolePolicies" | "iam:ListRolePolicies" => {
            let r = px.role();
            p(json!({"roleName": r}))
        }
        "iam:GetPolicy" | "iam:GetPolicyVersion" => {
            let name = px.one_of(&[
                "ReadOnlyAccess",
                "AmazonS3ReadOnlyAccess",
                "AmazonEC2FullAccess",
                "PowerUserAccess",
            ]);
            let arn = format!("arn:aws:iam::aws:policy/{name}");
            if api.name == "GetPolicy" {
                p(json!({"policyArn": arn}))
            } else {
                p(
                    json!({"policyArn": arn, "versionId": format!("v{}", px.rng.random_range(1..12u32))}),
                )
            }
        }
        "iam:CreateUser" => {
            let u = px.user();
            let id = ids::unique_id(px.rng, "AIDA");
            Payload::new(
                json!({"userName": u}),
                json!({"user": {"path": "/", "userName": u, "userId": id, "arn": format!("arn:aws:iam::{acct}:user/{u}"), "createDate": aws_long(px.t)}}),
            )
        }
        "iam:CreateAccessKey" => {
            let u = px.user();
            let key = px
                .focus
                .access_key
                .clone()
                .unwrap_or_else(|| ids::access_key(px.rng, "AKIA"));
            Payload::new(
                json!({"userName": u}),
                json!({"accessKey": {"userName": u, "accessKeyId": key, "status": "Active", "createDate": aws_long(px.t)}}),
            )
        }
        "iam:AttachUserPolicy" => {
            let u = px.user();
            p(json!({"userName": u, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))
        }
        "iam:CreateLoginProfile" => {
            let u = px.user();
            Payload::new(
                json!({"userName": u, "passwordResetRequired": false}),
                json!({"loginProfile": {"userName": u, "createDate": aws_long(px.t), "passwordResetRequired": false}}),
            )
        }
        "iam:UpdateAssumeRolePolicy" => {
            let r = px.role();
            let who = px
                .focus
                .foreign_account
                .clone()
                .unwrap_or_else(|| acct.clone());
            let doc = format!(
                "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":\"ec2.amazonaws.com\"}},\"Action\":\"sts:AssumeRole\"}},{{\"Effect\":\"Allow\",\"Principal\":{{\"AWS\":\"arn:aws:iam::{who}:root\"}},\"Action\":\"sts:AssumeRole\"}}]}}"
            );
            p(json!({"roleName": r, "policyDocument": doc}))
        }
        "iam:CreateRole" => {
            let r = px.role();
            let id = ids::unique_id(px.rng, "AROA");
            let doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}";
            Payload::new(
                json!({"roleName": r, "assumeRolePolicyDocument": doc, "tags": [{"key": "managed-by", "value": "terraform"}]}),
                json!({"role": {"path": "/", "roleName": r, "roleId": id, "arn": format!("arn:aws:iam::{acct}:role/{r}"), "createDate": aws_long(px.t),
                       "assumeRolePolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"}}),
            )
        }
        "iam:AttachRolePolicy" => {
            let r = px.role();
            p(
                json!({"roleName": r, "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}),
            )
        }
        "iam:PutRolePolicy" => {
            let r = px.role();
            let q = px.org.queues[0];
            p(
                json!({"roleName": r, "policyName": "queue-access", "policyDocument": format!(
                "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":[\"sqs:ReceiveMessage\",\"sqs:DeleteMessage\"],\"Resource\":\"arn:aws:sqs:{region}:{acct}:{q}\"}}]}}")}),
            )
        }
        "iam:TagRole" => {
            let r = px.role();
            p(json!({"roleName": r, "tags": [{"key": "team", "value": "platform"}]}))
        }

        // ---- STS (callers that mint credentials build their own payloads) ----
        "sts:GetCallerIdentity" | "sts:GetSessionToken" => p(Value::Null),

        // ---- CloudWatch ----
        "cloudwatch:DescribeAlarms" => {
            if px.chance(0.5) {
                p(json!({"stateValue": "ALARM"}))
            } else {
                p(json!({"maxRecords": 100}))
            }
        }
        "cloudwatch:GetMetricData" | "cloudwatch:GetMetricStatistics" => {
            let i = px.instance();
            let (ns, metric, dim, val) = if px.chance(0.5) {
                ("AWS/EC2", "CPUUtilization", "InstanceId", i)
            } else {
                let f = px.function();
                (
                    "AWS/Lambda",
                    px.one_of(&["Errors", "Duration", "Invocations", "Throttles"]),
                    "FunctionName",
                    f,
                )
            };
            let start = rfc3339(px.t - 3 * 3600);
            let end = rfc3339(px.t);
            if api.name == "GetMetricData" {
                p(
                    json!({"metricDataQueries": [{"id": "m1", "metricStat": {"metric": {"namespace": ns, "metricName": metric,
                       "dimensions": [{"name": dim, "value": val}]}, "period": 300, "stat": "Average"}, "returnData": true}],
                       "startTime": start, "endTime": end}),
                )
            } else {
                p(
                    json!({"namespace": ns, "metricName": metric, "dimensions": [{"name": dim, "value": val}],
                       "startTime": start, "endTime": end, "period": 300, "statistics": ["Average", "Maximum"]}),
                )
            }
        }
        "cloudwatch:ListMetrics" => {
            let ns = px.one_of(&[
                "AWS/EC2",
                "AWS/Lambda",
                "AWS/RDS",
                "AWS/ApplicationELB",
                "AWS/SQS",
            ]);
            p(json!({"namespace": ns}))
        }
        "cloudwatch:PutMetricAlarm" => {
            let f = px.function();
            p(
                json!({"alarmName": format!("{f}-errors"), "metricName": "Errors", "namespace": "AWS/Lambda", "statistic": "Sum",
                     "dimensions": [{"name": "FunctionName", "value": f}], "period": 300, "evaluationPeriods": 1, "threshold": 1.0,
                     "comparisonOperator": "GreaterThanOrEqualToThreshold", "alarmActions": [format!("arn:aws:sns:{region}:{acct}:alerts-critical")]}),
            )
        }
        "cloudwatch:ListDashboards" => p(Value::Null),
        "cloudwatch:GetDashboard" => {
            let d = px.one_of(&["prod-overview", "orders-api", "data-pipelines", "cost"]);
            p(json!({"dashboardName": d}))
        }

        // ---- Logs ----
        "logs:DescribeLogGroups" => {
            let pre = px.one_of(&["/aws/lambda/", "/ecs/", "/aws/rds/"]);
            if px.chance(0.5) {
                p(json!({"logGroupNamePrefix": pre, "limit": 50}))
            } else {
                p(json!({"limit": 50}))
            }
        }
        "logs:DescribeLogStreams" => {
            let g = px.log_group();
            p(
                json!({"logGroupName": g, "orderBy": "LastEventTime", "descending": true, "limit": 50}),
            )
        }
        "logs:FilterLogEvents" => {
            let g = px.log_group();
            let pat = px.one_of(&["ERROR", "Exception", "timeout", "\"status\":500", ""]);
            p(
                json!({"logGroupName": g, "startTime": (px.t - 3600) * 1000, "filterPattern": pat, "interleaved": true}),
            )
        }
        "logs:GetLogEvents" => {
            let g = px.log_group();
            let stream = format!("2024/03/04/[$LATEST]{}", ids::hex(px.rng, 32));
            p(json!({"logGroupName": g, "logStreamName": stream, "startFromHead": false}))
        }
        "logs:StartQuery" => {
            let g = px.log_group();
            Payload::new(
                json!({"logGroupNames": [g], "startTime": px.t - 3600, "endTime": px.t,
                       "queryString": "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 50"}),
                json!({"queryId": ids::uuid(px.rng)}),
            )
        }
        "logs:GetQueryResults" => p(json!({"queryId": ids::uuid(px.rng)})),
        "logs:CreateLogGroup" | "logs:PutRetentionPolicy" => {
            let g = px.log_group();
            if api.name == "CreateLogGroup" {
                p(json!({"logGroupName": g}))
            } else {
                p(json!({"logGroupName": g, "retentionInDays": 30}))
            }
        }
        "logs:CreateLogStream" => {
            let g = px.log_group();
            let stream = if g.starts_with("/aws/lambda/") {
                format!(
                    "{}/[$LATEST]{}",
                    date(px.t).replace('-', "/"),
                    ids::hex(px.rng, 32)
                )
            } else {
                format!("ecs/app/{}", ids::hex(px.rng, 32))
            };
            p(json!({"logGroupName": g, "logStreamName": stream}))
        }

        // ---- Lambda ----
        "lambda:ListFunctions20150331" => p(json!({"functionVersion": "ALL", "maxItems": 50})),
        "lambda:GetFunction20150331v2"
        | "lambda:GetFunctionConfiguration20150331v2"
        | "lambda:ListVersionsByFunction20150331"
        | "lambda:GetPolicy20150331v2" => {
            let f = px.function();
            p(json!({"functionName": f}))
        }
        "lambda:UpdateFunctionCode20150331v2"
        | "lambda:CreateFunction20150331"
        | "lambda:UpdateFunctionConfiguration20150331v2"
        | "lambda:PublishVersion20150331" => {
            let f = px.function();
            let arn = format!("arn:aws:lambda:{region}:{acct}:function:{f}");
            let sha = ids::b64(px.rng, 43) + "=";
            let req = match api.name {
                "UpdateFunctionCode20150331v2" => {
                    json!({"functionName": f, "publish": true, "dryRun": false, "architectures": ["arm64"]})
                }
                "CreateFunction20150331" => {
                    json!({"functionName": f, "runtime": "python3.12", "role": format!("arn:aws:iam::{acct}:role/{f}-lambda-role"),
                                                    "handler": "app.handler", "timeout": 30, "memorySize": 512, "publish": false})
                }
                "PublishVersion20150331" => json!({"functionName": f}),
                _ => json!({"functionName": f, "timeout": 30, "memorySize": 512}),
            };
            Payload::new(
                req,
                json!({"functionName": f, "functionArn": arn, "runtime": "python3.12", "handler": "app.handler",
                                     "codeSize": px.rng.random_range(20_000..9_000_000u32), "timeout": 30, "memorySize": 512,
                                     "lastModified": format!("{}.000+0000", &rfc3339(px.t)[..19]), "codeSha256": sha,
                                     "version": "$LATEST", "state": "Pending", "lastUpdateStatus": "InProgress"}),
            )
        }
        "lambda:AddPermission20150331v2" => {
            let f = px.function();
            Payload::new(
                json!({"functionName": f, "statementId": "AllowEventBridge", "action": "lambda:InvokeFunction", "principal": "events.amazonaws.com"}),
                json!({"statement": "{\"Sid\":\"AllowEventBridge\",\"Effect\":\"Allow\"}"}),
            )
        }
        "lambda:Invoke" => {
            let arn = px.function_arn();
            Payload {
                resources: Some(
                    json!([{"accountId": acct, "type": "AWS::Lambda::Function", "ARN": arn}]),
                ),
                ..p(json!({"functionName": arn, "invocationType": "Event"}))
            }
        }

        // ---- ECS / ECR ----
        "ecs:ListClusters" => p(json!({"maxResults": 100})),
        "ecs:DescribeClusters" => {
            let c = px.org.clusters[0];
            p(
                json!({"clusters": [format!("arn:aws:ecs:{region}:{acct}:cluster/{c}")], "include": ["ATTACHMENTS", "SETTINGS"]}),
            )
        }
        "ecs:ListServices" => p(json!({"cluster": px.org.clusters[0], "maxResults": 100})),
        "ecs:DescribeServices" | "ecs:ListTasks" => {
            let s = px.one_of(&org.ecs_services);
            if api.name == "ListTasks" {
                p(
                    json!({"cluster": px.org.clusters[0], "serviceName": s, "desiredStatus": "RUNNING"}),
                )
            } else {
                p(json!({"cluster": px.org.clusters[0], "services": [s]}))
            }
        }
        "ecs:DescribeTasks" => {
            let task = format!(
                "arn:aws:ecs:{region}:{acct}:task/{}/{}",
                px.org.clusters[0],
                ids::hex(px.rng, 32)
            );
            p(json!({"cluster": px.org.clusters[0], "tasks": [task]}))
        }
        "ecs:DescribeTaskDefinition" => {
            let s = px.one_of(&org.ecs_services);
            p(json!({"taskDefinition": format!("{s}:{}", px.rng.random_range(20..140u32))}))
        }
        "ecs:ListTaskDefinitions" => p(
            json!({"familyPrefix": px.one_of(&org.ecs_services), "sort": "DESC", "maxResults": 10}),
        ),
        "ecs:RegisterTaskDefinition" => {
            let s = px.one_of(&org.ecs_services);
            let rev = px.rng.random_range(20..140u32);
            let image = format!(
                "{acct}.dkr.ecr.{region}.amazonaws.com/{s}:{}",
                ids::hex(px.rng, 7)
            );
            Payload::new(
                json!({"family": s, "containerDefinitions": [{"name": s, "image": image, "cpu": 256, "memory": 512, "essential": true,
                       "portMappings": [{"containerPort": 8080, "protocol": "tcp"}]}], "networkMode": "awsvpc",
                       "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024",
                       "executionRoleArn": format!("arn:aws:iam::{acct}:role/ecsTaskExecutionRole")}),
                json!({"taskDefinition": {"taskDefinitionArn": format!("arn:aws:ecs:{region}:{acct}:task-definition/{s}:{rev}"),
                       "family": s, "revision": rev, "status": "ACTIVE"}}),
            )
        }
        "ecs:UpdateService" => {
            let s = px.one_of(&org.ecs_services);
            let rev = px.rng.random_range(20..140u32);
            Payload::new(
                json!({"cluster": px.org.clusters[0], "service": s, "taskDefinition": format!("{s}:{rev}"), "forceNewDeployment": false}),
                json!({"service": {"serviceName": s, "serviceArn": format!("arn:aws:ecs:{region}:{acct}:service/{}/{s}", px.org.clusters[0]),
                       "status": "ACTIVE", "desiredCount": 3, "taskDefinition": format!("arn:aws:ecs:{region}:{acct}:task-definition/{s}:{rev}")}}),
            )
        }
        "ecr:GetAuthorizationToken" => p(Value::Null),
        "ecr:BatchGetImage"
        | "ecr:DescribeImages"
        | "ecr:ListImages"
        | "ecr:GetDownloadUrlForLayer"
        | "ecr:InitiateLayerUpload"
        | "ecr:CompleteLayerUpload"
        | "ecr:BatchCheckLayerAvailability"
        | "ecr:PutImage" => {
            let repo = px.one_of(&org.repos);
            let digest = format!("sha256:{}", ids::hex(px.rng, 64));
            match api.name {
                "BatchGetImage" => p(
                    json!({"repositoryName": repo, "registryId": acct, "imageIds": [{"imageTag": "latest"}],
                                            "acceptedMediaTypes": ["application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"]}),
                ),
                "GetDownloadUrlForLayer" | "CompleteLayerUpload" => {
                    p(json!({"repositoryName": repo, "registryId": acct, "layerDigest": digest}))
                }
                "BatchCheckLayerAvailability" => {
                    p(json!({"repositoryName": repo, "registryId": acct, "layerDigests": [digest]}))
                }
                "InitiateLayerUpload" => Payload::new(
                    json!({"repositoryName": repo, "registryId": acct}),
                    json!({"uploadId": ids::uuid(px.rng), "partSize": 10_485_760}),
                ),
                "PutImage" => {
                    let tag = ids::hex(px.rng, 7);
                    Payload::new(
                        json!({"repositoryName": repo, "registryId": acct, "imageTag": tag, "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json"}),
                        json!({"image": {"registryId": acct, "repositoryName": repo, "imageId": {"imageDigest": digest, "imageTag": tag}}}),
                    )
                }
                _ => p(json!({"repositoryName": repo, "registryId": acct, "maxResults": 100})),
            }
        }
        "ecr:DescribeRepositories" => p(Value::Null),

        // ---- KMS ----
        "kms:Decrypt" | "kms:Encrypt" | "kms:GenerateDataKey" => {
            let key = px.kms();
            let ctx = if px.focus.secrets.is_empty() {
                json!({"aws:s3:arn": format!("arn:aws:s3:::{}", px.org.buckets[px.focus.buckets.first().copied().unwrap_or(0)].name)})
            } else {
                let s = px.secret();
                json!({"SecretARN": px.org.secrets[s].arn, "SecretVersionId": ids::uuid(px.rng)})
            };
            let mut req =
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": ctx});
            if api.name == "GenerateDataKey" {
                req = json!({"keyId": key, "encryptionContext": req["encryptionContext"].clone(), "keySpec": "AES_256"});
            } else if api.name == "Encrypt" {
                req["keyId"] = json!(key);
            }
            Payload {
                resources: Some(json!([{"accountId": acct, "type": "AWS::KMS::Key", "ARN": key}])),
                ..p(req)
            }
        }
        "kms:DescribeKey" | "kms:GetKeyPolicy" => {
            let key = px.kms();
            let req = if api.name == "GetKeyPolicy" {
                json!({"keyId": key, "policyName": "default"})
            } else {
                json!({"keyId": key})
            };
            Payload {
                resources: Some(json!([{"accountId": acct, "type": "AWS::KMS::Key", "ARN": key}])),
                ..p(req)
            }
        }
        "kms:ListKeys" | "kms:ListAliases" => p(json!({"limit": 100})),

        // ---- Secrets Manager / SSM ----
        "secretsmanager:GetSecretValue" | "secretsmanager:DescribeSecret" => {
            let s = px.secret();
            let id = if px.chance(0.5) {
                px.org.secrets[s].arn.clone()
            } else {
                px.org.secrets[s].name.clone()
            };
            p(json!({"secretId": id}))
        }
        "secretsmanager:ListSecrets" => p(json!({"maxResults": 100})),
        "ssm:GetParameter" => {
            let name = px.param();
            p(json!({"name": name, "withDecryption": true}))
        }
        "ssm:GetParameters" => {
            let a = px.param();
            let b = px.param();
            p(json!({"names": [a, b], "withDecryption": true}))
        }
        "ssm:GetParametersByPath" => {
            let a = px.param();
            let path = a.rsplit_once('/').map_or("/", |(d, _)| d).to_owned() + "/";
            p(json!({"path": path, "recursive": true, "withDecryption": true}))
        }
        "ssm:DescribeParameters" | "ssm:DescribeInstanceInformation" | "ssm:ListCommands" => {
            p(json!({"maxResults": 50}))
        }
        "ssm:UpdateInstanceInformation" => {
            let i = px.instance();
            let ip = ids::private_ip(px.rng, 0);
            let host = format!("ip-{}.ec2.internal", ip.replace('.', "-"));
            p(
                json!({"instanceId": i, "agentVersion": "3.2.2222.0", "agentStatus": "Active", "platformType": "Linux",
                     "platformName": "Amazon Linux", "platformVersion": "2023", "iPAddress": ip, "computerName": host,
                     "agentName": "amazon-ssm-agent", "availabilityZone": format!("{region}a")}),
            )
        }
        "ssm:StartSession" => {
            let i = px.instance();
            let sid = format!(
                "{}-{}",
                px.focus
                    .user
                    .clone()
                    .unwrap_or_else(|| "session".to_owned()),
                ids::hex(px.rng, 17)
            );
            Payload::new(
                json!({"target": i}),
                json!({"sessionId": sid, "tokenValue": "Value hidden due to security reasons.",
                                                      "streamUrl": format!("wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{sid}?role=publish_subscribe&cell-number=AAEAA")}),
            )
        }

        // ---- DynamoDB ----
        "dynamodb:ListTables" => p(json!({"limit": 100})),
        "dynamodb:DescribeTable" => {
            let t = px.table();
            p(json!({"tableName": t}))
        }
        "dynamodb:GetItem"
        | "dynamodb:PutItem"
        | "dynamodb:UpdateItem"
        | "dynamodb:DeleteItem"
        | "dynamodb:Query" => {
            let t = px.table();
            let arn = format!("arn:aws:dynamodb:{region}:{acct}:table/{t}");
            let req = match api.name {
                "GetItem" => {
                    json!({"tableName": t, "key": {"pk": "HIDDEN_DUE_TO_SECURITY_REASONS", "sk": "HIDDEN_DUE_TO_SECURITY_REASONS"}, "consistentRead": false})
                }
                "PutItem" => {
                    json!({"tableName": t, "key": {"pk": "HIDDEN_DUE_TO_SECURITY_REASONS", "sk": "HIDDEN_DUE_TO_SECURITY_REASONS"}, "item": ["pk", "sk", "status", "updatedAt"]})
                }
                "UpdateItem" => {
                    json!({"tableName": t, "key": {"pk": "HIDDEN_DUE_TO_SECURITY_REASONS"}, "updateExpression": "SET #s = :s, updatedAt = :u",
                                       "expressionAttributeNames": {"#s": "status"}, "returnValues": "NONE"})
                }
                "DeleteItem" => {
                    json!({"tableName": t, "key": {"pk": "HIDDEN_DUE_TO_SECURITY_REASONS"}})
                }
                _ => {
                    json!({"tableName": t, "keyConditionExpression": "pk = :pk", "limit": 25, "scanIndexForward": false})
                }
            };
            Payload {
                resources: Some(
                    json!([{"accountId": acct, "type": "AWS::DynamoDB::Table", "ARN": arn}]),
                ),
                ..p(req)
            }
        }

        // ---- SQS / SNS ----
        "sqs:ListQueues" => p(json!({"maxResults": 1000})),
        "sqs:GetQueueAttributes" => {
            let q = px.queue_url();
            p(json!({"queueUrl": q, "attributeNames": ["All"]}))
        }
        "sqs:SendMessage" | "sqs:ReceiveMessage" | "sqs:DeleteMessage" => {
            let q = px.queue_url();
            let name = q.rsplit('/').next().unwrap_or("").to_owned();
            let arn = format!("arn:aws:sqs:{region}:{acct}:{name}");
            let (req, resp) = match api.name {
                "SendMessage" => (
                    json!({"queueUrl": q, "messageBody": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
                    json!({"mD5OfMessageBody": ids::hex(px.rng, 32), "messageId": ids::uuid(px.rng)}),
                ),
                "ReceiveMessage" => (
                    json!({"queueUrl": q, "maxNumberOfMessages": 10, "waitTimeSeconds": 20, "attributeNames": ["All"]}),
                    Value::Null,
                ),
                _ => (
                    json!({"queueUrl": q, "receiptHandle": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
                    Value::Null,
                ),
            };
            Payload {
                resources: Some(
                    json!([{"accountId": acct, "type": "AWS::SQS::Queue", "ARN": arn}]),
                ),
                ..Payload::new(req, resp)
            }
        }
        "sqs:CreateQueue" | "sqs:SetQueueAttributes" => {
            let name = "invoice-reconciliation";
            let url = format!("https://sqs.{region}.amazonaws.com/{acct}/{name}");
            if api.name == "CreateQueue" {
                Payload::new(
                    json!({"queueName": name, "attributes": {"VisibilityTimeout": "120", "MessageRetentionPeriod": "345600", "SqsManagedSseEnabled": "true"}}),
                    json!({"queueUrl": url}),
                )
            } else {
                p(
                    json!({"queueUrl": url, "attributes": {"RedrivePolicy": format!("{{\"deadLetterTargetArn\":\"arn:aws:sqs:{region}:{acct}:orders-dlq\",\"maxReceiveCount\":5}}")}}),
                )
            }
        }
        "sns:ListTopics" => p(Value::Null),
        "sns:Publish" => {
            let topic = format!(
                "arn:aws:sns:{region}:{acct}:{}",
                px.one_of(&["alerts-critical", "order-updates"])
            );
            Payload {
                resources: Some(
                    json!([{"accountId": acct, "type": "AWS::SNS::Topic", "ARN": topic}]),
                ),
                ..Payload::new(
                    json!({"topicArn": topic, "message": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
                    json!({"messageId": ids::uuid(px.rng)}),
                )
            }
        }

        // ---- RDS / ElastiCache ----
        "rds:DescribeDBInstances" | "rds:DescribeDBSnapshots" => {
            if px.chance(0.5) {
                p(Value::Null)
            } else {
                let db = px.one_of(&org.db_instances);
                p(json!({"dBInstanceIdentifier": db}))
            }
        }
        "rds:DescribeDBClusters" => p(json!({"includeShared": false})),
        "elasticache:DescribeCacheClusters" => {
            p(json!({"showCacheNodeInfo": true, "showCacheClustersNotInReplicationGroups": false}))
        }

        // ---- CloudTrail / GuardDuty / Security Hub / Config / Organizations ----
        "cloudtrail:DescribeTrails" => p(json!({"trailNameList": [], "includeShadowTrails": true})),
        "cloudtrail:ListTrails" => p(Value::Null),
        "cloudtrail:GetTrailStatus"
        | "cloudtrail:StopLogging"
        | "cloudtrail:DeleteTrail"
        | "cloudtrail:GetEventSelectors" => {
            let trail = if api.name == "DeleteTrail" {
                px.org.trails[1]
            } else {
                px.org.trails[0]
            };
            let arn = format!("arn:aws:cloudtrail:{region}:{acct}:trail/{trail}");
            if api.name == "GetEventSelectors" {
                p(json!({"trailName": arn}))
            } else {
                p(json!({"name": arn}))
            }
        }
        "cloudtrail:PutEventSelectors" => {
            let arn = format!(
                "arn:aws:cloudtrail:{region}:{acct}:trail/{}",
                px.org.trails[0]
            );
            let sel = json!([{"readWriteType": "ReadOnly", "includeManagementEvents": false, "dataResources": [], "excludeManagementEventSources": []}]);
            Payload::new(
                json!({"trailName": arn, "eventSelectors": sel}),
                json!({"trailARN": arn, "eventSelectors": sel}),
            )
        }
        "cloudtrail:LookupEvents" => {
            let name = px.one_of(&[
                "ConsoleLogin",
                "CreateAccessKey",
                "AssumeRole",
                "PutBucketPolicy",
                "AuthorizeSecurityGroupIngress",
            ]);
            p(
                json!({"startTime": rfc3339(px.t - 86_400), "endTime": rfc3339(px.t),
                     "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": name}], "maxResults": 50}),
            )
        }
        "guardduty:ListDetectors" => p(Value::Null),
        "guardduty:GetDetector" | "guardduty:DeleteDetector" => {
            p(json!({"detectorId": px.org.detector_id}))
        }
        "guardduty:ListFindings" => p(
            json!({"detectorId": px.org.detector_id, "findingCriteria": {"criterion": {"service.archived": {"eq": ["false"]}}},
                                             "sortCriteria": {"attributeName": "severity", "orderBy": "DESC"}, "maxResults": 50}),
        ),
        "guardduty:GetFindings" => {
            let f: Vec<String> = (0..3).map(|_| ids::hex(px.rng, 32)).collect();
            p(json!({"detectorId": px.org.detector_id, "findingIds": f}))
        }
        "securityhub:GetFindings" => p(
            json!({"filters": {"RecordState": [{"value": "ACTIVE", "comparison": "EQUALS"}],
                                                         "WorkflowStatus": [{"value": "NEW", "comparison": "EQUALS"}]}, "maxResults": 100}),
        ),
        "securityhub:DescribeHub" => p(Value::Null),
        "config:DescribeConfigRules" | "config:DescribeConfigurationRecorders" => p(Value::Null),
        "config:DescribeComplianceByConfigRule" => p(json!({"complianceTypes": ["NON_COMPLIANT"]})),
        "organizations:DescribeOrganization" | "organizations:ListAccounts" => p(Value::Null),

        // ---- Cost ----
        "ce:GetCostAndUsage" | "ce:GetCostForecast" | "ce:GetDimensionValues" => {
            let today = date(px.t);
            let month_start = format!("{}-01", &today[..7]);
            match api.name {
                "GetCostAndUsage" => p(
                    json!({"timePeriod": {"start": month_start, "end": today}, "granularity": "DAILY",
                                              "metrics": ["UnblendedCost"], "groupBy": [{"type": "DIMENSION", "key": "SERVICE"}]}),
                ),
                "GetCostForecast" => p(
                    json!({"timePeriod": {"start": today, "end": format!("{}-28", &today[..7])}, "metric": "UNBLENDED_COST", "granularity": "MONTHLY"}),
                ),
                _ => p(
                    json!({"timePeriod": {"start": month_start, "end": today}, "dimension": "SERVICE", "context": "COST_AND_USAGE"}),
                ),
            }
        }
        "budgets:DescribeBudgets" => p(json!({"accountId": acct, "maxResults": 100})),

        // ---- Athena / Glue ----
        "athena:StartQueryExecution" => {
            let q = px.one_of(&[
                "SELECT event_type, count(*) FROM clickstream WHERE dt = current_date GROUP BY 1",
                "SELECT * FROM orders WHERE dt >= date_add('day', -7, current_date) LIMIT 100",
                "SELECT customer_id, sum(total) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 20",
            ]);
            let results = px
                .org
                .bucket_index("athena-results")
                .map(|i| px.org.buckets[i].name.clone())
                .unwrap_or_default();
            Payload::new(
                json!({"queryString": q, "queryExecutionContext": {"database": "analytics", "catalog": "AwsDataCatalog"}, "workGroup": "primary",
                       "resultConfiguration": {"outputLocation": format!("s3://{results}/query-results/")}, "clientRequestToken": ids::uuid(px.rng)}),
                json!({"queryExecutionId": ids::uuid(px.rng)}),
            )
        }
        "athena:GetQueryExecution" | "athena:GetQueryResults" => {
            p(json!({"queryExecutionId": ids::uuid(px.rng)}))
        }
        "athena:ListWorkGroups" => p(json!({"maxResults": 50})),
        "glue:GetDatabases" => p(json!({"resourceShareType": "ALL"})),
        "glue:GetTables" => p(json!({"databaseName": "analytics"})),
        "glue:GetTable" | "glue:GetPartitions" => {
            let t = px.one_of(&["clickstream", "orders", "payments", "sessions"]);
            p(json!({"databaseName": "analytics", "name": t}))
        }
        "glue:StartJobRun" | "glue:GetJobRuns" => {
            let job = px.one_of(&[
                "clickstream-compaction",
                "orders-daily-etl",
                "payments-reconcile",
            ]);
            if api.name == "StartJobRun" {
                Payload::new(
                    json!({"jobName": job}),
                    json!({"jobRunId": format!("jr_{}", ids::hex(px.rng, 64))}),
                )
            } else {
                p(json!({"jobName": job, "maxResults": 20}))
            }
        }

        // ---- ELB / Auto Scaling / CloudFormation / Route 53 / CloudFront / Step Functions / tagging ----
        "elasticloadbalancing:DescribeLoadBalancers" => p(json!({"pageSize": 400})),
        "elasticloadbalancing:DescribeTargetGroups" => p(json!({"pageSize": 400})),
        "elasticloadbalancing:DescribeTargetHealth" => {
            let tg = format!(
                "arn:aws:elasticloadbalancing:{region}:{acct}:targetgroup/prod-web-tg/{}",
                ids::hex(px.rng, 16)
            );
            p(json!({"targetGroupArn": tg}))
        }
        "autoscaling:DescribeAutoScalingGroups" => {
            p(json!({"autoScalingGroupNames": ["prod-web-asg"]}))
        }
        "autoscaling:UpdateAutoScalingGroup" => p(
            json!({"autoScalingGroupName": "prod-web-asg", "desiredCapacity": px.rng.random_range(3..7u32)}),
        ),
        "cloudformation:DescribeStacks" => {
            let s = px.one_of(&org.stacks);
            p(json!({"stackName": s}))
        }
        "cloudformation:ListStacks" => p(
            json!({"stackStatusFilter": ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"]}),
        ),
        "route53:ListHostedZones" => p(Value::Null),
        "route53:ListResourceRecordSets" => {
            p(json!({"hostedZoneId": px.org.hosted_zone, "maxItems": "300"}))
        }
        "route53:ChangeResourceRecordSets" => {
            let name = format!(
                "{}.{}",
                px.one_of(&["api", "orders", "status", "grafana"]),
                px.org.domain
            );
            Payload::new(
                json!({"hostedZoneId": px.org.hosted_zone, "changeBatch": {"changes": [{"action": "UPSERT", "resourceRecordSet":
                       {"name": name, "type": "CNAME", "tTL": 300, "resourceRecords": [{"value": format!("prod-web-alb-{}.{region}.elb.amazonaws.com", px.rng.random_range(100_000_000..999_999_999u32))}]}}]}}),
                json!({"changeInfo": {"id": format!("/change/C{}", ids::upper(px.rng, 20)), "status": "PENDING", "submittedAt": aws_long(px.t)}}),
            )
        }
        "cloudfront:ListDistributions" => p(Value::Null),
        "cloudfront:CreateInvalidation" => {
            let dist = px.org.distribution.clone();
            let id = format!("I{}", ids::upper(px.rng, 13));
            Payload::new(
                json!({"distributionId": dist, "invalidationBatch": {"paths": {"quantity": 1, "items": ["/*"]}, "callerReference": format!("deploy-{}", px.t)}}),
                json!({"location": format!("https://cloudfront.amazonaws.com/2020-05-31/distribution/{dist}/invalidation/{id}"),
                       "invalidation": {"id": id, "status": "InProgress", "createTime": aws_long(px.t)}}),
            )
        }
        "states:ListStateMachines" => p(Value::Null),
        "states:CreateStateMachine" | "states:DescribeStateMachine" => {
            let arn = format!("arn:aws:states:{region}:{acct}:stateMachine:invoice-reconciliation");
            if api.name == "CreateStateMachine" {
                Payload::new(
                    json!({"name": "invoice-reconciliation", "definition": "HIDDEN_DUE_TO_SECURITY_REASONS",
                           "roleArn": format!("arn:aws:iam::{acct}:role/invoice-reconciler-sfn-role"), "type": "STANDARD"}),
                    json!({"stateMachineArn": arn, "creationDate": aws_long(px.t)}),
                )
            } else {
                p(json!({"stateMachineArn": arn, "includedData": "ALL_DATA"}))
            }
        }
        "tagging:GetResources" => p(
            json!({"resourcesPerPage": 100, "resourceTypeFilters": ["ec2:instance", "rds:db", "lambda:function"]}),
        ),

        _ => {
            if api.read_only {
                p(Value::Null)
            } else {
                p(json!({}))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;
    use crate::api::{ACTIONS, Catalog};

    #[test]
    fn every_action_builds_an_object_or_null() {
        let mut rng = Rng::seed_from_u64(9);
        let org = Org::new(&mut rng);
        let cat = Catalog::new();
        let focus = Focus::default();
        for name in ACTIONS {
            let api = cat.get(cat.id(name));
            let mut px = Px {
                org: &org,
                rng: &mut rng,
                focus: &focus,
                t: 1_709_543_702,
                region: "us-east-1",
                nth: 0,
            };
            let pl = build(api, &mut px);
            assert!(pl.req.is_object() || pl.req.is_null(), "{name}");
            if api.data {
                assert!(
                    pl.resources.is_some(),
                    "{name} is a data event without resources"
                );
            }
        }
    }

    #[test]
    fn snapshot_share_names_the_foreign_account() {
        let mut rng = Rng::seed_from_u64(9);
        let org = Org::new(&mut rng);
        let cat = Catalog::new();
        let focus = Focus {
            snapshot: Some("snap-0123".into()),
            foreign_account: Some("999988887777".into()),
            ..Focus::default()
        };
        let api = cat.get(cat.id("ec2:ModifySnapshotAttribute"));
        let mut px = Px {
            org: &org,
            rng: &mut rng,
            focus: &focus,
            t: 0,
            region: "us-east-1",
            nth: 0,
        };
        let pl = build(api, &mut px);
        assert_eq!(
            pl.req["createVolumePermission"]["add"]["items"][0]["userId"],
            "999988887777"
        );
        assert_eq!(pl.req["snapshotId"], "snap-0123");
    }
}

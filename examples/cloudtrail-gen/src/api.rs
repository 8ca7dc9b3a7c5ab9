//! The API catalogue: every AWS service and `eventName` the generator can emit.
//!
//! Actions are named IAM-style, `service:EventName` (`ec2:DescribeInstances`), in plain data
//! tables; [`Catalog`] resolves them once to compact [`ApiId`]s and derives the per-action facts
//! CloudTrail records carry (`eventSource`, `readOnly`, management or data event, the aws-cli
//! command that issues it).

use std::collections::BTreeMap;

/// One AWS service as CloudTrail names it.
#[derive(Debug)]
pub(crate) struct Service {
    /// IAM action prefix, the part before `:` in catalogue names.
    pub key: &'static str,
    /// `eventSource`.
    pub source: &'static str,
    /// aws-cli command group (`aws <cli> <op>`).
    pub cli: &'static str,
    /// First label of the API endpoint host (`monitoring` for CloudWatch).
    pub endpoint: &'static str,
    /// Global services log to `us-east-1` and use a region-less endpoint.
    pub global: bool,
}

macro_rules! svc {
    ($key:literal, $src:literal, $cli:literal, $ep:literal, $global:literal) => {
        Service {
            key: $key,
            source: $src,
            cli: $cli,
            endpoint: $ep,
            global: $global,
        }
    };
}

/// Services, by IAM prefix.
pub(crate) const SERVICES: &[Service] = &[
    svc!("ec2", "ec2.amazonaws.com", "ec2", "ec2", false),
    svc!("s3", "s3.amazonaws.com", "s3api", "s3", false),
    svc!("iam", "iam.amazonaws.com", "iam", "iam", true),
    svc!("sts", "sts.amazonaws.com", "sts", "sts", false),
    svc!(
        "cloudwatch",
        "monitoring.amazonaws.com",
        "cloudwatch",
        "monitoring",
        false
    ),
    svc!("logs", "logs.amazonaws.com", "logs", "logs", false),
    svc!("lambda", "lambda.amazonaws.com", "lambda", "lambda", false),
    svc!("ecs", "ecs.amazonaws.com", "ecs", "ecs", false),
    svc!("ecr", "ecr.amazonaws.com", "ecr", "api.ecr", false),
    svc!("kms", "kms.amazonaws.com", "kms", "kms", false),
    svc!(
        "secretsmanager",
        "secretsmanager.amazonaws.com",
        "secretsmanager",
        "secretsmanager",
        false
    ),
    svc!("ssm", "ssm.amazonaws.com", "ssm", "ssm", false),
    svc!(
        "dynamodb",
        "dynamodb.amazonaws.com",
        "dynamodb",
        "dynamodb",
        false
    ),
    svc!("sqs", "sqs.amazonaws.com", "sqs", "sqs", false),
    svc!("sns", "sns.amazonaws.com", "sns", "sns", false),
    svc!(
        "cloudtrail",
        "cloudtrail.amazonaws.com",
        "cloudtrail",
        "cloudtrail",
        false
    ),
    svc!(
        "guardduty",
        "guardduty.amazonaws.com",
        "guardduty",
        "guardduty",
        false
    ),
    svc!(
        "securityhub",
        "securityhub.amazonaws.com",
        "securityhub",
        "securityhub",
        false
    ),
    svc!(
        "config",
        "config.amazonaws.com",
        "configservice",
        "config",
        false
    ),
    svc!(
        "organizations",
        "organizations.amazonaws.com",
        "organizations",
        "organizations",
        true
    ),
    svc!("ce", "ce.amazonaws.com", "ce", "ce", true),
    svc!(
        "budgets",
        "budgets.amazonaws.com",
        "budgets",
        "budgets",
        true
    ),
    svc!("athena", "athena.amazonaws.com", "athena", "athena", false),
    svc!("glue", "glue.amazonaws.com", "glue", "glue", false),
    svc!("rds", "rds.amazonaws.com", "rds", "rds", false),
    svc!(
        "elasticloadbalancing",
        "elasticloadbalancing.amazonaws.com",
        "elbv2",
        "elasticloadbalancing",
        false
    ),
    svc!(
        "autoscaling",
        "autoscaling.amazonaws.com",
        "autoscaling",
        "autoscaling",
        false
    ),
    svc!(
        "cloudformation",
        "cloudformation.amazonaws.com",
        "cloudformation",
        "cloudformation",
        false
    ),
    svc!(
        "route53",
        "route53.amazonaws.com",
        "route53",
        "route53",
        true
    ),
    svc!("signin", "signin.amazonaws.com", "signin", "signin", true),
    svc!(
        "states",
        "states.amazonaws.com",
        "stepfunctions",
        "states",
        false
    ),
    svc!(
        "elasticache",
        "elasticache.amazonaws.com",
        "elasticache",
        "elasticache",
        false
    ),
    svc!(
        "cloudfront",
        "cloudfront.amazonaws.com",
        "cloudfront",
        "cloudfront",
        true
    ),
    svc!(
        "tagging",
        "tagging.amazonaws.com",
        "resourcegroupstaggingapi",
        "tagging",
        false
    ),
];

/// Every action the generator emits, `service:EventName`.
pub(crate) const ACTIONS: &[&str] = &[
    // EC2
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeVolumes",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeImages",
    "ec2:DescribeRegions",
    "ec2:DescribeAddresses",
    "ec2:DescribeTags",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeKeyPairs",
    "ec2:DescribeRouteTables",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeFlowLogs",
    "ec2:DescribeInstanceTypes",
    "ec2:CreateSnapshot",
    "ec2:DeleteSnapshot",
    "ec2:ModifySnapshotAttribute",
    "ec2:CreateTags",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:DeleteFlowLogs",
    "ec2:GetConsoleOutput",
    // S3 (bucket-level management events, then object-level data events)
    "s3:ListBuckets",
    "s3:GetBucketLocation",
    "s3:GetBucketPolicy",
    "s3:GetBucketAcl",
    "s3:GetBucketVersioning",
    "s3:GetBucketEncryption",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetBucketLogging",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPublicAccessBlock",
    "s3:ListObjects",
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:HeadObject",
    // IAM
    "iam:ListUsers",
    "iam:ListRoles",
    "iam:ListPolicies",
    "iam:ListGroups",
    "iam:GetUser",
    "iam:GetRole",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListAttachedRolePolicies",
    "iam:ListAttachedUserPolicies",
    "iam:ListUserPolicies",
    "iam:ListGroupsForUser",
    "iam:ListRolePolicies",
    "iam:ListAccessKeys",
    "iam:ListMFADevices",
    "iam:GetAccountSummary",
    "iam:GetAccountPasswordPolicy",
    "iam:ListInstanceProfiles",
    "iam:GetLoginProfile",
    "iam:GetAccountAuthorizationDetails",
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:AttachUserPolicy",
    "iam:CreateLoginProfile",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateRole",
    "iam:AttachRolePolicy",
    "iam:PutRolePolicy",
    "iam:TagRole",
    // STS
    "sts:GetCallerIdentity",
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
    "sts:GetSessionToken",
    // CloudWatch and Logs
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:ListDashboards",
    "cloudwatch:GetDashboard",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "logs:StartQuery",
    "logs:GetQueryResults",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutRetentionPolicy",
    // Lambda (CloudTrail keeps the API version in the event name)
    "lambda:ListFunctions20150331",
    "lambda:GetFunction20150331v2",
    "lambda:GetFunctionConfiguration20150331v2",
    "lambda:UpdateFunctionCode20150331v2",
    "lambda:UpdateFunctionConfiguration20150331v2",
    "lambda:CreateFunction20150331",
    "lambda:ListVersionsByFunction20150331",
    "lambda:GetPolicy20150331v2",
    "lambda:AddPermission20150331v2",
    "lambda:PublishVersion20150331",
    "lambda:Invoke",
    // Containers
    "ecs:ListClusters",
    "ecs:DescribeClusters",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:UpdateService",
    "ecs:ListTaskDefinitions",
    "ecr:GetAuthorizationToken",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:DescribeRepositories",
    "ecr:DescribeImages",
    "ecr:ListImages",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:CompleteLayerUpload",
    "ecr:BatchCheckLayerAvailability",
    // Secrets and keys
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
    "kms:ListKeys",
    "kms:ListAliases",
    "kms:GetKeyPolicy",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecrets",
    "secretsmanager:DescribeSecret",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:DescribeParameters",
    "ssm:UpdateInstanceInformation",
    "ssm:DescribeInstanceInformation",
    "ssm:StartSession",
    "ssm:ListCommands",
    // Data stores and messaging
    "dynamodb:ListTables",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "sqs:ListQueues",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:CreateQueue",
    "sqs:SetQueueAttributes",
    "sns:ListTopics",
    "sns:Publish",
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeDBSnapshots",
    "elasticache:DescribeCacheClusters",
    // Audit and security
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:LookupEvents",
    "cloudtrail:GetEventSelectors",
    "cloudtrail:ListTrails",
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:PutEventSelectors",
    "guardduty:ListDetectors",
    "guardduty:GetDetector",
    "guardduty:ListFindings",
    "guardduty:GetFindings",
    "guardduty:DeleteDetector",
    "securityhub:GetFindings",
    "securityhub:DescribeHub",
    "config:DescribeConfigRules",
    "config:DescribeComplianceByConfigRule",
    "config:DescribeConfigurationRecorders",
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
    // Cost
    "ce:GetCostAndUsage",
    "ce:GetCostForecast",
    "ce:GetDimensionValues",
    "budgets:DescribeBudgets",
    // Analytics
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:ListWorkGroups",
    "glue:GetDatabases",
    "glue:GetTables",
    "glue:GetTable",
    "glue:GetPartitions",
    "glue:StartJobRun",
    "glue:GetJobRuns",
    // Networking, delivery, orchestration
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:UpdateAutoScalingGroup",
    "cloudformation:DescribeStacks",
    "cloudformation:ListStacks",
    "route53:ListHostedZones",
    "route53:ListResourceRecordSets",
    "route53:ChangeResourceRecordSets",
    "cloudfront:ListDistributions",
    "cloudfront:CreateInvalidation",
    "states:ListStateMachines",
    "states:CreateStateMachine",
    "states:DescribeStateMachine",
    "tagging:GetResources",
    "signin:ConsoleLogin",
];

/// Object- and item-level actions that CloudTrail records as data events.
const DATA_EVENTS: &[&str] = &[
    "s3:ListObjects",
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:HeadObject",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sns:Publish",
    "lambda:Invoke",
];

/// Actions CloudTrail marks `readOnly: true` although their names do not say so.
const READ_ONLY_EXTRA: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
    "sts:GetSessionToken",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "sqs:ReceiveMessage",
    "dynamodb:Query",
    "ecr:BatchCheckLayerAvailability",
];

/// Index of an action in the [`Catalog`].
pub(crate) type ApiId = u16;

/// The resolved facts about one action.
#[derive(Debug)]
pub(crate) struct Api {
    /// `service:EventName`.
    pub full: &'static str,
    pub svc: &'static Service,
    /// `eventName`.
    pub name: &'static str,
    pub read_only: bool,
    /// Data event (`managementEvent: false`, `eventCategory: "Data"`).
    pub data: bool,
    /// `command/…` token of aws-cli v2 (`ec2.describe-instances`, `s3.cp`).
    pub cli_command: String,
}

/// All actions, resolved.
#[derive(Debug)]
pub(crate) struct Catalog {
    apis: Vec<Api>,
    by_name: BTreeMap<&'static str, ApiId>,
}

fn kebab(name: &str) -> String {
    let stem = name
        .find(|c: char| c.is_ascii_digit())
        .map_or(name, |i| &name[..i]);
    let mut out = String::with_capacity(stem.len() + 4);
    let chars: Vec<char> = stem.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn derive_read_only(full: &str, name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Describe", "List", "Get", "Lookup", "Search", "BatchGet", "Head", "Filter", "Query",
    ];
    READ_ONLY_EXTRA.contains(&full) || PREFIXES.iter().any(|p| name.starts_with(p))
}

impl Catalog {
    /// Resolves [`ACTIONS`] against [`SERVICES`].
    pub(crate) fn new() -> Self {
        let mut apis = Vec::with_capacity(ACTIONS.len());
        let mut by_name = BTreeMap::new();
        for &full in ACTIONS {
            let (key, name) = full.split_once(':').unwrap_or(("", full));
            let Some(svc) = SERVICES.iter().find(|s| s.key == key) else {
                panic!("action {full} names an unknown service");
            };
            let cli_command = match full {
                "s3:ListBuckets" | "s3:ListObjects" => "s3.ls".to_owned(),
                "s3:GetObject" | "s3:PutObject" => "s3.cp".to_owned(),
                "s3:DeleteObject" => "s3.rm".to_owned(),
                _ => format!("{}.{}", svc.cli, kebab(name)),
            };
            let id = ApiId::try_from(apis.len()).unwrap_or(ApiId::MAX);
            by_name.insert(full, id);
            apis.push(Api {
                full,
                svc,
                name,
                read_only: derive_read_only(full, name),
                data: DATA_EVENTS.contains(&full),
                cli_command,
            });
        }
        Self { apis, by_name }
    }

    /// The id of `service:EventName`. Unknown names are a bug in a static table: panics.
    pub(crate) fn id(&self, full: &str) -> ApiId {
        match self.by_name.get(full) {
            Some(&id) => id,
            None => panic!("unknown action {full}"),
        }
    }

    /// Resolves a list of names.
    pub(crate) fn ids(&self, names: &[&str]) -> Vec<ApiId> {
        names.iter().map(|n| self.id(n)).collect()
    }

    /// The facts about an action.
    pub(crate) fn get(&self, id: ApiId) -> &Api {
        &self.apis[usize::from(id)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_all_and_derives_flags() {
        let c = Catalog::new();
        let d = c.get(c.id("ec2:DescribeInstances"));
        assert!(d.read_only && !d.data);
        assert_eq!(d.cli_command, "ec2.describe-instances");
        assert_eq!(d.svc.source, "ec2.amazonaws.com");
        let g = c.get(c.id("s3:GetObject"));
        assert!(g.read_only && g.data);
        assert!(!c.get(c.id("ec2:CreateSnapshot")).read_only);
        assert!(c.get(c.id("sts:AssumeRole")).read_only);
        assert_eq!(
            c.get(c.id("lambda:GetFunction20150331v2")).cli_command,
            "lambda.get-function"
        );
        assert_eq!(
            c.get(c.id("iam:ListMFADevices")).cli_command,
            "iam.list-mfa-devices"
        );
        assert_eq!(
            c.get(c.id("iam:GetAccountAuthorizationDetails"))
                .cli_command,
            "iam.get-account-authorization-details"
        );
        assert_eq!(
            c.get(c.id("rds:DescribeDBInstances")).cli_command,
            "rds.describe-db-instances"
        );
        for d in DATA_EVENTS.iter().chain(READ_ONLY_EXTRA) {
            c.id(d);
        }
    }

    #[test]
    fn names_are_unique() {
        let c = Catalog::new();
        assert_eq!(c.by_name.len(), ACTIONS.len());
    }
}

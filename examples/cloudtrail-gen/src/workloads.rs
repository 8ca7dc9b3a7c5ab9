//! Workload roles: EC2 instance profiles, ECS task roles, Lambda execution roles, a Glue job
//! role, a SaaS monitoring role, scheduled functions and the EBS backup role.
//!
//! Each role calls a narrow mix of actions at high volume from VPC addresses (through VPC
//! endpoints) or AWS public addresses, under sessions that rotate: instance ids and ECS task ids
//! as session names with credentials refreshed every few hours, Lambda sessions named after the
//! function and renewed on cold starts, `botocore-session-<epoch>` for the backup script. Every
//! new session is preceded by the `AssumeRole` that minted it (by `ec2.amazonaws.com`,
//! `lambda.amazonaws.com`, `ecs-tasks.amazonaws.com`, a vendor account or the ops host).
//! The roles are plain data in [`TEMPLATES`].

use std::collections::VecDeque;
use std::sync::Arc;

use rand::Rng as _;
use serde_json::json;

use crate::agents::{self, Agent};
use crate::api::{ApiId, Catalog};
use crate::dist::{between, cumulative, pick_cum, poisson};
use crate::ids;
use crate::org::{AWS_OCTETS, Org};
use crate::payload::Focus;
use crate::record::{Call, Caller, Emitter, Fail, Ident, SessionAttrs, Tls};
use crate::timefmt::{DAY, HOUR, weekday};
use crate::world::{Minted, World, assume_payload};
use crate::{Label, Rng};

/// Benign novelty: a workload role that appeared after a deploy.
pub const NEW_SERVICE_ROLE: &str = "new-service-role";

/// How a role's credentials are obtained and when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// Instance profile on `n` instances.
    Ec2(u32),
    /// ECS task role for `n` running tasks.
    Ecs(u32),
    /// Lambda execution role; `true` for Node.js, `false` for Python.
    Lambda(bool),
    /// A role an AWS service assumes with a fixed session name (Glue jobs).
    Service(&'static str, &'static str),
    /// A SaaS vendor's account assumes the role every hour and crawls every ten minutes.
    External,
    /// Scheduled function running once a day at the given UTC hour.
    Daily(u32),
    /// Scheduled function running every hour.
    Hourly,
    /// The EBS snapshot script, assumed from the ops host every night.
    Backup,
}

/// A workload role as data.
#[derive(Debug)]
pub(crate) struct Template {
    pub role: &'static str,
    pub host: Host,
    /// Events per hour at average load (for scheduled roles: calls per run).
    pub rate: f64,
    pub function: Option<&'static str>,
    pub mix: &'static [(&'static str, f64)],
    pub buckets: &'static [&'static str],
    pub secrets: &'static [&'static str],
    pub tables: &'static [&'static str],
    pub queues: &'static [&'static str],
    pub params: &'static [&'static str],
}

const T: Template = Template {
    role: "",
    host: Host::Hourly,
    rate: 0.0,
    function: None,
    mix: &[],
    buckets: &[],
    secrets: &[],
    tables: &[],
    queues: &[],
    params: &[],
};

/// Workload roles, in the order they are instantiated (`--roles N` takes the first N, then
/// repeats with a numeric suffix).
pub(crate) const TEMPLATES: &[Template] = &[
    Template {
        role: "web-app-ec2-role",
        host: Host::Ec2(3),
        rate: 110.0,
        mix: &[
            ("ssm:UpdateInstanceInformation", 3.0),
            ("s3:GetObject", 6.0),
            ("s3:PutObject", 3.0),
            ("kms:Decrypt", 3.0),
            ("kms:GenerateDataKey", 2.0),
            ("secretsmanager:GetSecretValue", 0.8),
            ("ssm:GetParameter", 1.5),
            ("sqs:SendMessage", 3.0),
            ("ec2:DescribeTags", 0.3),
            ("logs:CreateLogStream", 0.2),
            ("sts:GetCallerIdentity", 0.1),
        ],
        buckets: &["prod-app-assets", "app-uploads"],
        secrets: &["prod/web/session-secret"],
        queues: &["thumbnail-jobs"],
        params: &["/prod/web/api_base_url", "/prod/common/log_level"],
        ..T
    },
    Template {
        role: "orders-api-task-role",
        host: Host::Ecs(3),
        rate: 200.0,
        function: Some("orders-api"),
        mix: &[
            ("dynamodb:GetItem", 8.0),
            ("dynamodb:PutItem", 3.0),
            ("dynamodb:Query", 5.0),
            ("dynamodb:UpdateItem", 3.0),
            ("sqs:SendMessage", 4.0),
            ("kms:Decrypt", 2.0),
            ("secretsmanager:GetSecretValue", 0.4),
            ("ssm:GetParameter", 0.5),
            ("sns:Publish", 1.0),
        ],
        secrets: &["prod/orders/db-credentials"],
        tables: &["orders", "idempotency-keys", "carts"],
        queues: &["order-events"],
        params: &["/prod/orders/db_host", "/prod/orders/feature_flags"],
        ..T
    },
    Template {
        role: "ecsTaskExecutionRole",
        host: Host::Ecs(2),
        rate: 25.0,
        mix: &[
            ("ecr:GetAuthorizationToken", 2.0),
            ("ecr:BatchGetImage", 2.0),
            ("ecr:GetDownloadUrlForLayer", 6.0),
            ("logs:CreateLogStream", 2.0),
            ("secretsmanager:GetSecretValue", 1.0),
        ],
        secrets: &["prod/orders/db-credentials", "prod/payments/stripe-api-key"],
        ..T
    },
    Template {
        role: "ebs-backup-role",
        host: Host::Backup,
        rate: 0.0,
        mix: &[
            ("ec2:DescribeVolumes", 1.0),
            ("ec2:DescribeSnapshots", 1.0),
            ("ec2:CreateSnapshot", 1.0),
            ("ec2:CreateTags", 1.0),
            ("ec2:DeleteSnapshot", 1.0),
        ],
        ..T
    },
    Template {
        role: "DatadogIntegrationRole",
        host: Host::External,
        rate: 5.0,
        mix: &[
            ("cloudwatch:GetMetricData", 8.0),
            ("cloudwatch:ListMetrics", 3.0),
            ("ec2:DescribeInstances", 2.0),
            ("ec2:DescribeVolumes", 1.0),
            ("rds:DescribeDBInstances", 1.0),
            ("elasticloadbalancing:DescribeLoadBalancers", 1.0),
            ("elasticloadbalancing:DescribeTargetGroups", 1.0),
            ("lambda:ListFunctions20150331", 1.0),
            ("tagging:GetResources", 2.0),
            ("sqs:ListQueues", 0.5),
            ("dynamodb:ListTables", 0.5),
            ("dynamodb:DescribeTable", 0.5),
            ("s3:ListBuckets", 0.3),
            ("ecs:ListClusters", 0.5),
            ("ecs:DescribeClusters", 0.5),
            ("autoscaling:DescribeAutoScalingGroups", 0.5),
            ("cloudwatch:DescribeAlarms", 0.5),
        ],
        ..T
    },
    Template {
        role: "thumbnail-generator-lambda-role",
        host: Host::Lambda(true),
        rate: 70.0,
        function: Some("thumbnail-generator"),
        mix: &[
            ("s3:GetObject", 3.0),
            ("s3:PutObject", 3.0),
            ("kms:Decrypt", 1.0),
            ("kms:GenerateDataKey", 1.0),
            ("sqs:DeleteMessage", 1.0),
            ("logs:CreateLogStream", 0.1),
        ],
        buckets: &["app-uploads"],
        queues: &["thumbnail-jobs"],
        ..T
    },
    Template {
        role: "ingest-clickstream-lambda-role",
        host: Host::Lambda(false),
        rate: 110.0,
        function: Some("ingest-clickstream"),
        mix: &[
            ("s3:PutObject", 6.0),
            ("kms:GenerateDataKey", 3.0),
            ("glue:GetTable", 0.3),
            ("logs:CreateLogStream", 0.1),
        ],
        buckets: &["data-lake-raw"],
        ..T
    },
    Template {
        role: "payments-api-task-role",
        host: Host::Ecs(2),
        rate: 80.0,
        function: Some("payments-api"),
        mix: &[
            ("dynamodb:GetItem", 4.0),
            ("dynamodb:PutItem", 3.0),
            ("dynamodb:Query", 2.0),
            ("secretsmanager:GetSecretValue", 1.0),
            ("kms:Decrypt", 2.0),
            ("kms:GenerateDataKey", 1.0),
            ("sqs:ReceiveMessage", 3.0),
            ("sqs:DeleteMessage", 2.0),
        ],
        secrets: &["prod/payments/stripe-api-key", "prod/payments/adyen-hmac"],
        tables: &["payments-ledger", "idempotency-keys"],
        queues: &["payment-webhooks"],
        ..T
    },
    Template {
        role: "batch-workers-ec2-role",
        host: Host::Ec2(2),
        rate: 90.0,
        mix: &[
            ("s3:GetObject", 4.0),
            ("s3:PutObject", 4.0),
            ("sqs:ReceiveMessage", 3.0),
            ("sqs:DeleteMessage", 2.0),
            ("ssm:UpdateInstanceInformation", 2.0),
            ("kms:Decrypt", 2.0),
            ("kms:GenerateDataKey", 2.0),
            ("glue:GetPartitions", 0.5),
        ],
        buckets: &["data-lake-raw", "data-lake-curated"],
        queues: &["order-events"],
        ..T
    },
    Template {
        role: "order-notifier-lambda-role",
        host: Host::Lambda(true),
        rate: 35.0,
        function: Some("order-notifier"),
        mix: &[
            ("sns:Publish", 1.0),
            ("dynamodb:GetItem", 2.0),
            ("secretsmanager:GetSecretValue", 0.3),
            ("kms:Decrypt", 0.5),
            ("sqs:DeleteMessage", 1.0),
            ("sqs:SendMessage", 1.0),
        ],
        secrets: &["prod/email/sendgrid-api-key"],
        tables: &["orders"],
        queues: &["email-outbound"],
        ..T
    },
    Template {
        role: "web-frontend-task-role",
        host: Host::Ecs(2),
        rate: 55.0,
        function: Some("web-frontend"),
        mix: &[
            ("s3:GetObject", 3.0),
            ("ssm:GetParameters", 1.0),
            ("dynamodb:GetItem", 3.0),
            ("dynamodb:PutItem", 2.0),
            ("kms:Decrypt", 1.0),
        ],
        buckets: &["prod-app-assets"],
        tables: &["sessions"],
        params: &["/prod/web/api_base_url", "/prod/common/datadog_site"],
        ..T
    },
    Template {
        role: "worker-task-role",
        host: Host::Ecs(2),
        rate: 60.0,
        function: Some("worker"),
        mix: &[
            ("sqs:ReceiveMessage", 4.0),
            ("sqs:DeleteMessage", 3.0),
            ("secretsmanager:GetSecretValue", 0.3),
            ("sns:Publish", 0.5),
            ("dynamodb:UpdateItem", 2.0),
        ],
        secrets: &["prod/email/sendgrid-api-key"],
        tables: &["orders"],
        queues: &["email-outbound", "order-events"],
        ..T
    },
    Template {
        role: "fraud-scorer-lambda-role",
        host: Host::Lambda(false),
        rate: 45.0,
        function: Some("fraud-scorer"),
        mix: &[
            ("dynamodb:Query", 3.0),
            ("kms:Decrypt", 1.0),
            ("ssm:GetParameter", 0.5),
            ("s3:GetObject", 0.5),
        ],
        buckets: &["ml-training-data"],
        tables: &["payments-ledger"],
        params: &["/prod/payments/timeout_ms"],
        ..T
    },
    Template {
        role: "glue-etl-role",
        host: Host::Service("GlueJobRunnerSession", "glue.amazonaws.com"),
        rate: 35.0,
        mix: &[
            ("s3:GetObject", 4.0),
            ("s3:PutObject", 3.0),
            ("glue:GetTable", 2.0),
            ("glue:GetPartitions", 2.0),
            ("kms:Decrypt", 1.0),
            ("logs:CreateLogStream", 0.3),
        ],
        buckets: &["data-lake-raw", "data-lake-curated"],
        ..T
    },
    Template {
        role: "cost-report-daily-lambda-role",
        host: Host::Daily(6),
        rate: 12.0,
        function: Some("cost-report-daily"),
        mix: &[
            ("ce:GetCostAndUsage", 4.0),
            ("ce:GetCostForecast", 1.0),
            ("s3:PutObject", 2.0),
            ("sns:Publish", 0.5),
        ],
        buckets: &["finance-reports"],
        ..T
    },
    Template {
        role: "slack-alerts-lambda-role",
        host: Host::Lambda(false),
        rate: 4.0,
        function: Some("slack-alerts"),
        mix: &[("secretsmanager:GetSecretValue", 1.0), ("kms:Decrypt", 1.0)],
        secrets: &["prod/notifier/slack-webhook"],
        ..T
    },
    Template {
        role: "search-indexer-lambda-role",
        host: Host::Lambda(true),
        rate: 25.0,
        function: Some("search-indexer"),
        mix: &[
            ("s3:GetObject", 2.0),
            ("secretsmanager:GetSecretValue", 0.5),
            ("kms:Decrypt", 0.5),
            ("dynamodb:Query", 1.0),
        ],
        buckets: &["app-uploads"],
        secrets: &["prod/search/opensearch-master"],
        tables: &["orders"],
        ..T
    },
    Template {
        role: "user-cleanup-lambda-role",
        host: Host::Daily(3),
        rate: 20.0,
        function: Some("user-cleanup"),
        mix: &[("dynamodb:Query", 3.0), ("dynamodb:DeleteItem", 5.0)],
        tables: &["sessions"],
        ..T
    },
    Template {
        role: "etl-trigger-lambda-role",
        host: Host::Hourly,
        rate: 3.0,
        function: Some("etl-trigger"),
        mix: &[("glue:StartJobRun", 1.0), ("glue:GetJobRuns", 2.0)],
        ..T
    },
    Template {
        role: "invoice-pdf-renderer-lambda-role",
        host: Host::Lambda(false),
        rate: 20.0,
        function: Some("invoice-pdf-renderer"),
        mix: &[
            ("s3:GetObject", 1.0),
            ("s3:PutObject", 2.0),
            ("dynamodb:GetItem", 1.0),
            ("kms:Decrypt", 1.0),
        ],
        buckets: &["finance-reports"],
        tables: &["orders"],
        ..T
    },
];

/// The role a CI deploy creates in the middle of the stream.
pub(crate) const NEW_ROLE: Template = Template {
    role: "invoice-reconciler-lambda-role",
    host: Host::Lambda(false),
    rate: 30.0,
    function: Some("invoice-reconciler"),
    mix: &[
        ("dynamodb:Query", 2.0),
        ("s3:GetObject", 2.0),
        ("s3:PutObject", 1.0),
        ("kms:Decrypt", 1.0),
        ("logs:CreateLogStream", 0.1),
    ],
    buckets: &["finance-reports"],
    tables: &["payments-ledger"],
    ..T
};

/// Expected events per day of a template (for sizing streams by event count).
pub(crate) fn expected_per_day(t: &Template) -> f64 {
    // Mean of `Workload::load` over a week: 0.55 on weekdays, 30 % less at weekends.
    let mean_load = 0.55 * (5.0 + 2.0 * 0.7) / 7.0;
    let sessions = 10.0;
    match t.host {
        Host::Ec2(_) | Host::Ecs(_) | Host::Lambda(_) => {
            t.rate * SCALE * 24.0 * mean_load + sessions
        }
        Host::Service(..) => t.rate * SCALE * (6.0 * 3.0 + 18.0 * 0.3) + sessions,
        Host::External => t.rate * 6.0 * 24.0 + 24.0,
        Host::Daily(_) => t.rate + 1.0,
        Host::Hourly => (t.rate + 1.0) * 24.0,
        Host::Backup => 30.0,
    }
}

/// Volume knob for all continuous workloads.
const SCALE: f64 = 1.1;

/// Third-party account of the monitoring vendor.
const VENDOR_ACCOUNT: &str = "464622532012";

#[derive(Debug, Clone)]
struct Session {
    ident: Arc<Ident>,
    ip: Arc<str>,
    expires: i64,
    /// Instance or task id (the session name), or the function name.
    name: String,
}

/// A workload role.
#[derive(Debug)]
pub(crate) struct Workload {
    pub role: String,
    role_id: String,
    role_arn: String,
    pub host: Host,
    rate: f64,
    mix: Vec<ApiId>,
    cum: Vec<f64>,
    focus: Focus,
    agent: Agent,
    ssm_agent: Agent,
    ssm_api: ApiId,
    sessions: Vec<Session>,
    /// Active from this time on.
    pub start: i64,
    label_until: i64,
    region: &'static str,
    vpce: Option<Arc<str>>,
    subnet_octet: u8,
    /// Fixed egress addresses of the vendor crawler.
    vendor_ips: Vec<Arc<str>>,
    /// The ops host whose script assumes the backup role.
    ops: Option<Caller>,
    asg: Option<Caller>,
    function: String,
    /// Snapshots taken by each of the last nightly backup runs, oldest first.
    backups: VecDeque<Vec<String>>,
    /// Start of the hour being generated: nothing may be emitted earlier.
    floor: i64,
}

fn service_caller(host: &str, region: &'static str) -> Caller {
    Caller {
        ident: Ident::aws_service(host),
        ip: host.into(),
        agent: Agent::plain(host),
        region,
        console: false,
        vpce: None,
        tls: Tls::None,
        deny_rate: 0.0,
        throttle_rate: 0.0,
    }
}

impl Workload {
    /// Instantiates template `t` (with a suffix when templates repeat).
    pub(crate) fn new(
        org: &mut Org,
        cat: &Catalog,
        rng: &mut Rng,
        t: &Template,
        suffix: &str,
        start: i64,
        label_until: i64,
    ) -> Self {
        let role = format!("{}{suffix}", t.role);
        org.roles.push(role.clone());
        let role_id = ids::unique_id(rng, "AROA");
        let role_arn = format!("arn:aws:iam::{}:role/{role}", org.account);
        let mix: Vec<ApiId> = t.mix.iter().map(|&(a, _)| cat.id(a)).collect();
        let cum = cumulative(t.mix.iter().map(|&(_, w)| w));
        let idx = |names: &[&str], all: Vec<String>| -> Vec<usize> {
            names
                .iter()
                .filter_map(|n| all.iter().position(|x| x == n))
                .collect()
        };
        let mut focus = Focus {
            buckets: t
                .buckets
                .iter()
                .filter_map(|b| org.bucket_index(b))
                .collect(),
            secrets: idx(
                t.secrets,
                org.secrets.iter().map(|s| s.name.clone()).collect(),
            ),
            tables: idx(
                t.tables,
                org.tables.iter().map(|s| (*s).to_owned()).collect(),
            ),
            queues: idx(
                t.queues,
                org.queues.iter().map(|s| (*s).to_owned()).collect(),
            ),
            params: idx(
                t.params,
                org.parameters.iter().map(|s| (*s).to_owned()).collect(),
            ),
            kms: vec![rng.random_range(0..org.kms_keys.len())],
            ..Focus::default()
        };
        let function = t.function.unwrap_or(t.role).to_owned();
        if let Some(f) = t.function {
            if let Some(i) = org.functions.iter().position(|x| x == f) {
                focus.functions = vec![i];
                if let Some(g) = org
                    .log_groups
                    .iter()
                    .position(|x| x == &format!("/aws/lambda/{f}"))
                {
                    focus.log_groups = vec![g];
                }
            } else if let Some(g) = org
                .log_groups
                .iter()
                .position(|x| x == &format!("/ecs/{f}"))
            {
                focus.log_groups = vec![g];
            }
        }
        let agent = match t.host {
            Host::Ec2(_) if t.role.starts_with("batch") => Agent::plain(
                "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/linux#6.1.72-96.166.amzn2023.x86_64 md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.34",
            ),
            Host::Ec2(_) => agents::java_ec2(),
            Host::Ecs(_) if t.role == "ecsTaskExecutionRole" => Agent::plain(agents::ECS_AGENT),
            Host::Ecs(_) if t.role.starts_with("payments") => Agent::plain(
                "aws-sdk-java/2.25.6 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.2+13-LTS Java/21.0.2 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy",
            ),
            Host::Ecs(_) => agents::go_v2("AWS_ECS_FARGATE"),
            Host::Lambda(true) => agents::js_v3(
                "linux#5.10.209-219.866.amzn2.x86_64",
                "20.11.1",
                "exec-env/AWS_Lambda_nodejs20.x",
            ),
            Host::Service(..) => Agent::plain(
                "aws-sdk-java/1.12.651 Linux/5.10.209-198.858.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 scala/2.12.15 vendor/Amazon.com_Inc. cfg/retry-mode/legacy AWSGlue",
            ),
            Host::External => Agent::plain(agents::MONITORING_CRAWLER),
            Host::Backup => Agent::plain(
                "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/linux#6.1.72-96.166.amzn2023.x86_64 md/arch#x86_64 lang/python#3.9.16 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.34",
            ),
            Host::Lambda(false) | Host::Daily(_) | Host::Hourly => agents::boto3_lambda(),
        };
        let in_vpc = matches!(t.host, Host::Ec2(_) | Host::Ecs(_) | Host::Backup);
        let vpce = in_vpc.then(|| Arc::from(format!("vpce-0{}", ids::hex(rng, 16))));
        let vendor_ips = if t.host == Host::External {
            (0..3)
                .map(|_| Arc::from(ids::public_ip(rng, AWS_OCTETS)))
                .collect()
        } else {
            Vec::new()
        };
        let ops = (t.host == Host::Backup).then(|| {
            let ops_role_id = ids::unique_id(rng, "AROA");
            let instance = org.instances[org.instances.len() - 1].clone();
            let key = ids::access_key(rng, "ASIA");
            Caller {
                ident: Ident::assumed_role(&org.account, "/", "ops-automation-ec2-role", &ops_role_id, &instance, &key,
                                           &SessionAttrs { creation: start - 3 * HOUR, mfa: false }, None),
                ip: ids::private_ip(rng, 1).into(),
                agent: Agent::plain(
                    "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/linux#6.1.72-96.166.amzn2023.x86_64 md/arch#x86_64 lang/python#3.9.16 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.34",
                ),
                region: org.region,
                console: false,
                vpce: vpce.clone(),
                tls: Tls::V12,
                deny_rate: 0.0,
                throttle_rate: 0.0,
            }
        });
        let asg = matches!(t.host, Host::Ec2(_)).then(|| {
            let key = ids::access_key(rng, "ASIA");
            let mut c = service_caller("autoscaling.amazonaws.com", org.region);
            c.ident = Ident::assumed_role(
                &org.account,
                "/aws-service-role/autoscaling.amazonaws.com/",
                "AWSServiceRoleForAutoScaling",
                &ids::unique_id(rng, "AROA"),
                "AutoScaling",
                &key,
                &SessionAttrs {
                    creation: start,
                    mfa: false,
                },
                Some("autoscaling.amazonaws.com"),
            );
            c
        });
        Workload {
            role,
            role_id,
            role_arn,
            host: t.host,
            rate: t.rate,
            mix,
            cum,
            focus,
            agent,
            ssm_agent: Agent::plain(agents::SSM_AGENT),
            ssm_api: cat.id("ssm:UpdateInstanceInformation"),
            sessions: Vec::new(),
            start,
            label_until,
            region: org.region,
            vpce,
            subnet_octet: rng.random_range(0..4),
            vendor_ips,
            ops,
            asg,
            function,
            backups: VecDeque::new(),
            floor: start,
        }
    }

    fn label(&self, t: i64) -> Label {
        Label {
            benign_novelty: (t < self.label_until).then_some(NEW_SERVICE_ROLE),
            ..Label::default()
        }
    }

    fn caller(&self, s: &Session) -> Caller {
        Caller {
            ident: s.ident.clone(),
            ip: s.ip.clone(),
            agent: self.agent.clone(),
            region: self.region,
            console: false,
            vpce: self.vpce.clone(),
            tls: if matches!(self.host, Host::Ec2(_) | Host::Service(..)) {
                Tls::V12
            } else {
                Tls::V13
            },
            deny_rate: 0.0005,
            throttle_rate: 0.001,
        }
    }

    /// Mints a session named `name` at `t` and logs the `AssumeRole` that created it.
    fn mint(
        &self,
        em: &mut Emitter<'_>,
        w: &World,
        t: i64,
        name: String,
        ip: Arc<str>,
        life: i64,
    ) -> Session {
        let org = em.org;
        let key = ids::access_key(em.rng, "ASIA");
        let creation = t;
        let (assumer, extra_req) = match self.host {
            Host::Ec2(_) => (service_caller("ec2.amazonaws.com", self.region), json!({})),
            Host::Ecs(_) => (
                service_caller("ecs-tasks.amazonaws.com", self.region),
                json!({}),
            ),
            Host::Lambda(_) | Host::Daily(_) | Host::Hourly => (
                service_caller("lambda.amazonaws.com", self.region),
                json!({}),
            ),
            Host::Service(_, svc) => (service_caller(svc, self.region), json!({})),
            Host::External => {
                let mut c = service_caller("", self.region);
                c.ident = Ident::aws_account(
                    &format!("AROAWXKDVQ7Y3LPTH5M2N:{}", ids::hex(em.rng, 12)),
                    VENDOR_ACCOUNT,
                );
                c.ip = ip.clone();
                c.agent = self.agent.clone();
                c.tls = Tls::V12;
                (c, json!({"externalId": "0d5a6ce2b0e84c1f9a2f7a1c3be9d8a4"}))
            }
            Host::Backup => match &self.ops {
                Some(ops) => (ops.clone(), json!({})),
                None => (service_caller("ec2.amazonaws.com", self.region), json!({})),
            },
        };
        let minted = Minted {
            role_arn: &self.role_arn,
            role_id: &self.role_id,
            session: &name,
            key: &key,
            t,
            duration: life,
        };
        let payload = assume_payload(org, em.rng, &minted, extra_req, json!({}));
        let focus = Focus::default();
        let mut call = Call::new(t, w.special.assume_role, &assumer, &focus, self.label(t));
        call.fail = Fail::Never;
        call.payload = Some(payload);
        em.emit(call);
        let ident = Ident::assumed_role(
            &org.account,
            "/",
            &self.role,
            &self.role_id,
            &name,
            &key,
            &SessionAttrs {
                creation,
                mfa: false,
            },
            matches!(self.host, Host::Service(..)).then_some(match self.host {
                Host::Service(_, svc) => svc,
                _ => "",
            }),
        );
        Session {
            ident,
            ip,
            expires: t + life - em.rng.random_range(5 * 60..30 * 60),
            name,
        }
    }

    fn fresh_name_and_ip(&self, rng: &mut Rng, t: i64) -> (String, Arc<str>) {
        match self.host {
            Host::Ec2(_) => (
                ids::ec2_id(rng, "i"),
                ids::private_ip(rng, self.subnet_octet).into(),
            ),
            Host::Ecs(_) => (
                ids::hex(rng, 32),
                ids::private_ip(rng, self.subnet_octet + 8).into(),
            ),
            Host::Lambda(_) | Host::Daily(_) | Host::Hourly => (
                self.function.clone(),
                ids::public_ip(rng, AWS_OCTETS).into(),
            ),
            Host::Service(name, _) => (name.to_owned(), ids::public_ip(rng, AWS_OCTETS).into()),
            Host::External => {
                let ip = self.vendor_ips[rng.random_range(0..self.vendor_ips.len())].clone();
                ("DatadogAWSIntegration".to_owned(), ip)
            }
            Host::Backup => (
                format!("botocore-session-{t}"),
                ids::private_ip(rng, 1).into(),
            ),
        }
    }

    fn lifetime(&self, rng: &mut Rng) -> i64 {
        match self.host {
            Host::Lambda(_) | Host::Service(..) => rng.random_range(HOUR..4 * HOUR),
            Host::External | Host::Backup | Host::Daily(_) | Host::Hourly => HOUR,
            Host::Ec2(_) | Host::Ecs(_) => 6 * HOUR,
        }
    }

    fn slots(&self) -> usize {
        match self.host {
            Host::Ec2(n) | Host::Ecs(n) => n as usize,
            Host::Lambda(_) => 2,
            _ => 1,
        }
    }

    /// The session in `slot` valid at `t`, rotating (and replacing instances) as needed.
    fn session_at(&mut self, em: &mut Emitter<'_>, w: &World, slot: usize, t: i64) -> usize {
        while self.sessions.len() <= slot {
            let (name, ip) = self.fresh_name_and_ip(em.rng, t);
            let life = self.lifetime(em.rng);
            let at = (t - em.rng.random_range(1..20)).max(self.floor);
            let s = self.mint(em, w, at, name, ip, life);
            self.sessions.push(s);
        }
        if self.sessions[slot].expires <= t {
            let old = self.sessions[slot].clone();
            let keep_name =
                matches!(self.host, Host::Ec2(_) | Host::Ecs(_)) && em.rng.random::<f64>() > 0.1;
            let (name, ip) = if keep_name {
                (old.name.clone(), old.ip.clone())
            } else {
                self.fresh_name_and_ip(em.rng, t)
            };
            if !keep_name && let (Host::Ec2(_), Some(asg)) = (self.host, &self.asg) {
                let asg = asg.clone();
                let mut f = Focus {
                    instances: vec![old.name.clone()],
                    ..Focus::default()
                };
                let term = em.cat.id("ec2:TerminateInstances");
                let run = em.cat.id("ec2:RunInstances");
                let mut c = Call::new((t - 90).max(self.floor), term, &asg, &f, Label::default());
                c.fail = Fail::Never;
                em.emit(c);
                f.instances = vec![name.clone()];
                let mut c = Call::new((t - 80).max(self.floor), run, &asg, &f, Label::default());
                c.fail = Fail::Never;
                em.emit(c);
            }
            let life = self.lifetime(em.rng);
            self.sessions[slot] = self.mint(em, w, t, name, ip, life);
        }
        slot
    }

    /// Diurnal load: peaks mid-afternoon UTC, dips at night and at weekends.
    fn load(t: i64) -> f64 {
        let h = (t.rem_euclid(DAY) as f64) / HOUR as f64;
        let base = 0.55 + 0.45 * ((h - 15.0) / 24.0 * std::f64::consts::TAU).cos();
        if weekday(t, 0) >= 5 { base * 0.7 } else { base }
    }

    /// The current credentials of the first slot (for credential-theft scenarios).
    pub(crate) fn current_ident(&mut self, em: &mut Emitter<'_>, w: &World, t: i64) -> Arc<Ident> {
        let slot = self.session_at(em, w, 0, t);
        self.sessions[slot].ident.clone()
    }

    fn call(&mut self, em: &mut Emitter<'_>, w: &World, t: i64, slot: usize, api: ApiId, nth: u32) {
        let slot = self.session_at(em, w, slot, t);
        let mut caller = self.caller(&self.sessions[slot]);
        if api == self.ssm_api {
            caller.agent = self.ssm_agent.clone();
        }
        let focus = if matches!(self.host, Host::Ec2(_)) {
            let mut f = self.focus.clone();
            f.instances = vec![self.sessions[slot].name.clone()];
            f
        } else {
            self.focus.clone()
        };
        let mut c = Call::new(t, api, &caller, &focus, self.label(t));
        c.nth = nth;
        em.emit(c);
    }

    fn draw(&self, rng: &mut Rng) -> ApiId {
        self.mix[pick_cum(rng, &self.cum)]
    }

    /// Calls made in the hour starting at `h0`.
    pub(crate) fn hour(&mut self, em: &mut Emitter<'_>, w: &World, h0: i64) {
        if h0 + HOUR <= self.start {
            return;
        }
        let lo = h0.max(self.start);
        self.floor = h0;
        match self.host {
            Host::Ec2(_) | Host::Ecs(_) | Host::Lambda(_) | Host::Service(..) => {
                let night = if matches!(self.host, Host::Service(..)) {
                    let h = h0.rem_euclid(DAY) / HOUR;
                    if (0..6).contains(&h) { 3.0 } else { 0.3 }
                } else {
                    Self::load(h0)
                };
                let n = poisson(em.rng, self.rate * SCALE * night);
                let mut times: Vec<i64> =
                    (0..n).map(|_| em.rng.random_range(lo..h0 + HOUR)).collect();
                times.sort_unstable();
                for t in times {
                    let slot = em.rng.random_range(0..self.slots());
                    let api = self.draw(em.rng);
                    self.call(em, w, t, slot, api, 0);
                }
            }
            Host::External => {
                let mut t = lo + em.rng.random_range(0..600);
                while t < h0 + HOUR {
                    let n = between(em.rng, (self.rate * 0.6) as u32, (self.rate * 1.4) as u32);
                    let mut tt = t;
                    for i in 0..n {
                        let api = self.draw(em.rng);
                        self.call(em, w, tt, 0, api, i);
                        tt += em.rng.random_range(0..3);
                    }
                    t += 600 + em.rng.random_range(0..20);
                }
            }
            Host::Daily(hour) => {
                if (h0.rem_euclid(DAY) / HOUR) as u32 == hour && lo == h0 {
                    let t = h0 + em.rng.random_range(0..120);
                    self.burst(em, w, t);
                }
            }
            Host::Hourly => {
                if lo == h0 {
                    let t = h0 + 300 + em.rng.random_range(0..5);
                    self.burst(em, w, t);
                }
            }
            Host::Backup => {
                if h0.rem_euclid(DAY) / HOUR == 2 && lo == h0 {
                    let t = h0 + em.rng.random_range(0..300);
                    self.backup_run(em, w, t);
                }
            }
        }
    }

    fn burst(&mut self, em: &mut Emitter<'_>, w: &World, t0: i64) {
        self.sessions.clear();
        let n = between(em.rng, (self.rate * 0.5) as u32, (self.rate * 1.5) as u32).max(1);
        let mut t = t0;
        for i in 0..n {
            let api = self.draw(em.rng);
            self.call(em, w, t, 0, api, i);
            t += em.rng.random_range(0..4);
        }
    }

    /// The nightly EBS snapshot run: snapshot every volume, tag, prune last week's snapshots.
    fn backup_run(&mut self, em: &mut Emitter<'_>, w: &World, t0: i64) {
        self.sessions.clear();
        let cat = em.cat;
        let (describe_v, describe_s, create, tag, delete) = (
            cat.id("ec2:DescribeVolumes"),
            cat.id("ec2:DescribeSnapshots"),
            cat.id("ec2:CreateSnapshot"),
            cat.id("ec2:CreateTags"),
            cat.id("ec2:DeleteSnapshot"),
        );
        let mut t = t0;
        self.call(em, w, t, 0, describe_v, 0);
        let n = em.org.volumes.len().min(8);
        let day = t0.div_euclid(DAY);
        let label = self.label(t);
        let s = self.session_at(em, w, 0, t);
        let caller = self.caller(&self.sessions[s]);
        let mut taken = Vec::with_capacity(n);
        for v in 0..n {
            t += em.rng.random_range(1..4);
            let snap = ids::ec2_id(em.rng, "snap");
            taken.push(snap.clone());
            let focus = Focus {
                volume: Some(em.org.volumes[v].0.clone()),
                snapshot: Some(snap),
                ..Focus::default()
            };
            em.emit(Call::new(t, create, &caller, &focus, label));
            t += 1;
            em.emit(Call::new(t, tag, &caller, &focus, label));
        }
        self.backups.push_back(taken);
        t += em.rng.random_range(5..20);
        em.emit(Call::new(t, describe_s, &caller, &Focus::default(), label));
        // Retention: a week. Before the first week, prune snapshots that predate the stream.
        let expired = if self.backups.len() > 7 {
            self.backups.pop_front().unwrap_or_default()
        } else {
            let k = (day as usize * 3) % em.org.snapshots.len();
            em.org
                .snapshots
                .iter()
                .cycle()
                .skip(k)
                .take(3)
                .cloned()
                .collect()
        };
        for old in expired {
            t += em.rng.random_range(1..3);
            let focus = Focus {
                snapshot: Some(old),
                ..Focus::default()
            };
            em.emit(Call::new(t, delete, &caller, &focus, label));
        }
    }
}

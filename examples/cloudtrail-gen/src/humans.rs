//! People: IAM users and IAM Identity Center (SSO) users with personal habits.
//!
//! Each person has a team (which fixes the pool of actions they draw from), a personal
//! Zipf-shaped preference over that pool, a few rarely used actions, an office with its time
//! zone and working hours, one or two egress /24s with a handful of host addresses, and their
//! clients (a browser, an aws-cli install, maybe Boto3). Activity comes in sessions: a console
//! visit opens pages that fire several calls at once; a CLI session is a short run of commands;
//! a Boto3 script hammers one or two calls.
//!
//! Benign novelty is labelled here: a new joiner's first week, a new host in a known /24, a
//! hotel or home address, the fleet-wide aws-cli/Boto3 upgrade, and rarely used actions.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::Rng as _;
use rand::seq::{IndexedRandom as _, SliceRandom as _};
use serde_json::{Value, json};

use crate::agents::{self, Agent, CliInstall, Os};
use crate::api::{ApiId, Catalog};
use crate::dist::{cumulative, exponential, geometric, normal, pick_cum, poisson};
use crate::ids;
use crate::org::{FIRST_NAMES, HOME_OCTETS, LAST_NAMES, Org, Team};
use crate::payload::{Focus, Payload};
use crate::record::{Call, Caller, Emitter, Ident, SessionAttrs, Tls};
use crate::timefmt::{DAY, HOUR, local_hour, weekday};
use crate::world::{Minted, World, assume_payload};
use crate::{Label, Rng};

/// Benign novelty: the first week of a new joiner.
pub const NEW_ENGINEER: &str = "new-engineer";
/// Benign novelty: a new host address inside one of the person's usual /24s.
pub const NEW_IP_SAME_SUBNET: &str = "new-ip-same-subnet";
/// Benign novelty: a session from a hotel or home connection.
pub const TRAVEL_IP: &str = "travel-ip";
/// Benign novelty: the first day on the new aws-cli/Boto3 version.
pub const UA_VERSION_BUMP: &str = "ua-version-bump";
/// Benign novelty: an action the person seldom uses.
pub const RARE_SERVICE: &str = "rare-service";

/// What each team does, with base weights. The person-specific order is shuffled around these.
const DEV_POOL: &[(&str, f64)] = &[
    ("logs:FilterLogEvents", 8.0),
    ("logs:GetLogEvents", 7.0),
    ("ec2:DescribeInstances", 6.0),
    ("logs:DescribeLogStreams", 6.0),
    ("logs:DescribeLogGroups", 4.0),
    ("ecs:DescribeServices", 6.0),
    ("lambda:GetFunction20150331v2", 5.0),
    ("lambda:ListFunctions20150331", 4.0),
    ("s3:ListObjects", 5.0),
    ("s3:GetObject", 5.0),
    ("s3:ListBuckets", 4.0),
    ("cloudwatch:GetMetricData", 4.0),
    ("cloudwatch:DescribeAlarms", 3.0),
    ("logs:StartQuery", 3.0),
    ("logs:GetQueryResults", 4.0),
    ("ecs:ListServices", 3.0),
    ("ecs:ListTasks", 2.0),
    ("ecr:DescribeImages", 2.0),
    ("ecr:GetAuthorizationToken", 3.0),
    ("ssm:GetParameter", 3.0),
    ("ssm:GetParametersByPath", 2.0),
    ("dynamodb:DescribeTable", 3.0),
    ("dynamodb:ListTables", 2.0),
    ("sqs:GetQueueAttributes", 3.0),
    ("sqs:ListQueues", 1.5),
    ("sts:GetCallerIdentity", 3.0),
    ("lambda:GetFunctionConfiguration20150331v2", 2.0),
    ("ecs:DescribeTaskDefinition", 2.0),
    ("ecr:DescribeRepositories", 1.0),
    ("s3:PutObject", 1.0),
    ("iam:GetRole", 1.0),
    ("cloudformation:DescribeStacks", 1.0),
    ("secretsmanager:DescribeSecret", 0.8),
    ("lambda:Invoke", 0.8),
    ("dynamodb:Query", 0.8),
];
const DATA_POOL: &[(&str, f64)] = &[
    ("athena:StartQueryExecution", 10.0),
    ("athena:GetQueryExecution", 12.0),
    ("athena:GetQueryResults", 10.0),
    ("s3:ListObjects", 10.0),
    ("s3:GetObject", 12.0),
    ("glue:GetTable", 6.0),
    ("glue:GetTables", 5.0),
    ("glue:GetJobRuns", 5.0),
    ("s3:ListBuckets", 4.0),
    ("s3:PutObject", 4.0),
    ("glue:GetDatabases", 3.0),
    ("glue:GetPartitions", 3.0),
    ("s3:GetBucketLocation", 3.0),
    ("sts:GetCallerIdentity", 3.0),
    ("glue:StartJobRun", 2.0),
    ("athena:ListWorkGroups", 2.0),
    ("logs:FilterLogEvents", 2.0),
    ("cloudwatch:GetMetricData", 1.5),
    ("secretsmanager:GetSecretValue", 1.5),
    ("ec2:DescribeInstances", 1.0),
    ("dynamodb:DescribeTable", 1.0),
    ("logs:GetLogEvents", 1.0),
];
const SRE_POOL: &[(&str, f64)] = &[
    ("ec2:DescribeInstances", 12.0),
    ("cloudwatch:GetMetricData", 6.0),
    ("ec2:DescribeSecurityGroups", 5.0),
    ("cloudwatch:DescribeAlarms", 5.0),
    ("logs:FilterLogEvents", 5.0),
    ("ec2:DescribeInstanceStatus", 4.0),
    ("ec2:DescribeVolumes", 4.0),
    ("autoscaling:DescribeAutoScalingGroups", 4.0),
    ("elasticloadbalancing:DescribeTargetHealth", 4.0),
    ("rds:DescribeDBInstances", 4.0),
    ("ecs:DescribeServices", 4.0),
    ("sts:GetCallerIdentity", 4.0),
    ("elasticloadbalancing:DescribeLoadBalancers", 3.0),
    ("elasticloadbalancing:DescribeTargetGroups", 3.0),
    ("ec2:DescribeSnapshots", 3.0),
    ("iam:GetRole", 3.0),
    ("s3:ListBuckets", 3.0),
    ("logs:DescribeLogGroups", 3.0),
    ("logs:GetLogEvents", 3.0),
    ("ec2:DescribeVpcs", 2.0),
    ("ec2:DescribeSubnets", 2.0),
    ("ec2:DescribeNetworkInterfaces", 2.0),
    ("ec2:DescribeImages", 2.0),
    ("rds:DescribeDBClusters", 2.0),
    ("iam:ListRoles", 2.0),
    ("iam:ListAttachedRolePolicies", 2.0),
    ("route53:ListHostedZones", 2.0),
    ("route53:ListResourceRecordSets", 2.0),
    ("ssm:StartSession", 2.0),
    ("ssm:DescribeInstanceInformation", 2.0),
    ("cloudformation:DescribeStacks", 2.0),
    ("cloudwatch:ListMetrics", 2.0),
    ("ec2:DescribeRouteTables", 1.0),
    ("ec2:DescribeLaunchTemplates", 1.0),
    ("ec2:DescribeAddresses", 1.0),
    ("iam:GetPolicyVersion", 1.0),
    ("kms:DescribeKey", 1.0),
    ("s3:GetBucketPolicy", 1.0),
    ("rds:DescribeDBSnapshots", 1.0),
    ("cloudwatch:PutMetricAlarm", 0.6),
    ("autoscaling:UpdateAutoScalingGroup", 0.6),
    ("ecs:UpdateService", 0.5),
    ("ec2:CreateTags", 0.5),
    ("route53:ChangeResourceRecordSets", 0.4),
    ("ec2:StopInstances", 0.3),
    ("ec2:StartInstances", 0.3),
    ("ec2:AuthorizeSecurityGroupIngress", 0.3),
    ("ec2:GetConsoleOutput", 0.5),
];
const SECURITY_POOL: &[(&str, f64)] = &[
    ("guardduty:ListFindings", 8.0),
    ("guardduty:GetFindings", 8.0),
    ("securityhub:GetFindings", 8.0),
    ("cloudtrail:LookupEvents", 8.0),
    ("iam:ListUsers", 4.0),
    ("iam:ListAccessKeys", 4.0),
    ("config:DescribeComplianceByConfigRule", 4.0),
    ("s3:GetBucketPolicy", 4.0),
    ("ec2:DescribeSecurityGroups", 4.0),
    ("cloudtrail:DescribeTrails", 3.0),
    ("cloudtrail:GetTrailStatus", 3.0),
    ("iam:ListRoles", 3.0),
    ("iam:GetUser", 3.0),
    ("iam:ListMFADevices", 3.0),
    ("iam:ListAttachedUserPolicies", 3.0),
    ("config:DescribeConfigRules", 3.0),
    ("s3:GetBucketAcl", 3.0),
    ("s3:GetBucketPublicAccessBlock", 3.0),
    ("s3:ListBuckets", 3.0),
    ("sts:GetCallerIdentity", 3.0),
    ("logs:GetQueryResults", 3.0),
    ("guardduty:ListDetectors", 2.0),
    ("guardduty:GetDetector", 2.0),
    ("cloudtrail:GetEventSelectors", 2.0),
    ("iam:GetAccountSummary", 2.0),
    ("iam:ListPolicies", 2.0),
    ("iam:GetPolicyVersion", 2.0),
    ("s3:GetBucketEncryption", 2.0),
    ("s3:ListObjects", 2.0),
    ("s3:GetObject", 2.0),
    ("logs:StartQuery", 2.0),
    ("iam:GetAccountPasswordPolicy", 1.0),
    ("iam:GetLoginProfile", 1.0),
    ("ec2:DescribeFlowLogs", 1.0),
    ("kms:ListKeys", 1.0),
    ("kms:GetKeyPolicy", 1.0),
    ("organizations:DescribeOrganization", 1.0),
    ("organizations:ListAccounts", 1.0),
    ("securityhub:DescribeHub", 1.0),
    ("s3:GetBucketLogging", 1.0),
];
const FINANCE_POOL: &[(&str, f64)] = &[
    ("ce:GetCostAndUsage", 12.0),
    ("ce:GetDimensionValues", 5.0),
    ("budgets:DescribeBudgets", 5.0),
    ("ce:GetCostForecast", 4.0),
    ("s3:GetObject", 6.0),
    ("s3:ListObjects", 4.0),
    ("s3:ListBuckets", 2.0),
    ("s3:PutObject", 2.0),
    ("organizations:ListAccounts", 2.0),
    ("tagging:GetResources", 2.0),
    ("organizations:DescribeOrganization", 1.0),
    ("cloudwatch:GetDashboard", 1.0),
    ("sts:GetCallerIdentity", 0.8),
];

fn pool(team: Team) -> &'static [(&'static str, f64)] {
    match team {
        Team::Dev => DEV_POOL,
        Team::Data => DATA_POOL,
        Team::Sre => SRE_POOL,
        Team::Security => SECURITY_POOL,
        Team::Finance => FINANCE_POOL,
    }
}

/// Secrets a team's people read (suffix match on the secret name).
fn team_secrets(team: Team) -> &'static [&'static str] {
    match team {
        Team::Data => &[
            "prod/data/warehouse-password",
            "prod/analytics/snowflake-service",
        ],
        Team::Dev => &["staging/orders/db-credentials", "prod/web/session-secret"],
        _ => &[],
    }
}

/// How the person authenticates.
#[derive(Debug)]
pub(crate) enum Kind {
    /// An IAM user with a long-term access key and a console password.
    Iam {
        user: String,
        user_id: String,
        key_ident: Arc<Ident>,
    },
    /// An IAM Identity Center user landing in `AWSReservedSSO_<set>_<hex>`.
    Sso { role: String, role_id: String },
}

/// The client of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    Console,
    Cli,
    Boto,
}

/// A person.
#[derive(Debug)]
pub(crate) struct Human {
    pub email: String,
    pub team: Team,
    pub kind: Kind,
    pub tz_min: i32,
    /// Local working hours.
    pub start_h: f64,
    pub end_h: f64,
    activity: f64,
    home_region: &'static str,
    /// Usual source addresses; the first is the main one.
    pub ips: Vec<Arc<str>>,
    subnets: Vec<String>,
    pub os: Os,
    cli: CliInstall,
    cli_old: &'static str,
    boto_old: &'static str,
    browser: &'static str,
    console_share: f64,
    boto_share: f64,
    actions: Vec<ApiId>,
    cum: Vec<f64>,
    rare: Vec<ApiId>,
    /// Active from this time on.
    pub join: i64,
    new_until: i64,
    pub focus: Focus,
    console: Option<(Arc<Ident>, i64)>,
    cli_session: Option<(Arc<Ident>, i64)>,
    bump_day: Option<i64>,
}

impl Human {
    /// Draws a person of `team`; `iam` picks an IAM user over SSO.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        org: &mut Org,
        cat: &Catalog,
        rng: &mut Rng,
        team: Team,
        iam: bool,
        join: i64,
        new_until: i64,
        taken: &mut BTreeSet<String>,
    ) -> Self {
        let name = loop {
            let first = FIRST_NAMES.choose(rng).copied().unwrap_or("alex");
            let last = LAST_NAMES.choose(rng).copied().unwrap_or("doe");
            let n = format!("{first}.{last}");
            if taken.insert(n.clone()) {
                break n;
            }
        };
        let email = format!("{name}@{}", org.domain);
        let kind = if iam {
            let user = if rng.random::<f64>() < 0.5 {
                name.clone()
            } else {
                let (f, l) = name.split_once('.').unwrap_or((&name, ""));
                format!("{}{l}", &f[..1])
            };
            let user_id = ids::unique_id(rng, "AIDA");
            let key = ids::access_key(rng, "AKIA");
            org.users.push(user.clone());
            let key_ident = Ident::iam_user(&org.account, &user, &user_id, &key, None);
            Kind::Iam {
                user,
                user_id,
                key_ident,
            }
        } else {
            let role = format!(
                "AWSReservedSSO_{}_{}",
                team.permission_set(),
                ids::hex(rng, 16)
            );
            let role_id = ids::unique_id(rng, "AROA");
            Kind::Sso { role, role_id }
        };
        let office = rng.random_range(0..org.offices.len());
        let tz_min = org.offices[office].tz_min;
        let start_h = (9.0 + 0.8 * normal(rng)).clamp(7.0, 11.0);
        let end_h = start_h + 8.0 + rng.random::<f64>() * 1.5;
        let activity = (0.35 * normal(rng)).exp();

        let mut subnets = vec![org.offices[office].subnet.clone()];
        if rng.random::<f64>() < 0.6 {
            subnets.push(org.offices[office].vpn.clone());
        }
        let mut ips: Vec<Arc<str>> = Vec::new();
        for (i, s) in subnets.iter().enumerate() {
            let hosts = if i == 0 { rng.random_range(1..=2) } else { 1 };
            for _ in 0..hosts {
                ips.push(format!("{s}.{}", rng.random_range(2..=254u8)).into());
            }
        }

        let os = Os::draw(rng);
        let cli = CliInstall::new(os, rng);
        let console_share = match team {
            Team::Dev => 0.40,
            Team::Data => 0.35,
            Team::Sre => 0.30,
            Team::Security => 0.55,
            Team::Finance => 0.90,
        } * (0.6 + 0.8 * rng.random::<f64>());
        let boto_share = match team {
            Team::Data => 0.45,
            Team::Dev | Team::Sre => 0.12,
            _ => 0.0,
        };

        // Personal ranking: base weight times a log-normal whim, then Zipf weights by rank.
        let mut scored: Vec<(f64, &str)> = pool(team)
            .iter()
            .map(|&(a, w)| (w * (1.1 * normal(rng)).exp(), a))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let keep = ((scored.len() as f64) * (0.65 + 0.3 * rng.random::<f64>())).ceil() as usize;
        scored.truncate(keep.max(4));
        let actions: Vec<ApiId> = scored.iter().map(|&(_, a)| cat.id(a)).collect();
        let cum = cumulative((0..actions.len()).map(|r| 1.0 / ((r + 1) as f64).powf(1.05)));

        let own: BTreeSet<ApiId> = actions.iter().copied().collect();
        let mut others: Vec<ApiId> = Team::ALL
            .iter()
            .filter(|&&t| t != team)
            .flat_map(|&t| pool(t).iter().map(|&(a, _)| cat.id(a)))
            .filter(|a| !own.contains(a) && cat.get(*a).read_only)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        others.shuffle(rng);
        others.truncate(rng.random_range(3..=6));

        let mut focus = Focus {
            buckets: org.team_buckets(team),
            ..Focus::default()
        };
        if team == Team::Security {
            focus.buckets.clear();
            focus.buckets.extend(org.bucket_index("cloudtrail-logs"));
            focus.buckets.extend(org.bucket_index("security-findings"));
        }
        focus.secrets = team_secrets(team)
            .iter()
            .filter_map(|s| org.secrets.iter().position(|x| x.name == *s))
            .collect();

        Human {
            email,
            team,
            kind,
            tz_min,
            start_h,
            end_h,
            activity,
            home_region: org.region,
            ips,
            subnets,
            os,
            cli,
            cli_old: agents::CLI_OLD.choose(rng).copied().unwrap_or("2.15.30"),
            boto_old: agents::BOTO_OLD.choose(rng).copied().unwrap_or("1.34.51"),
            browser: os.browser(rng),
            console_share,
            boto_share,
            actions,
            cum,
            rare: others,
            join,
            new_until,
            focus,
            console: None,
            cli_session: None,
            bump_day: None,
        }
    }

    /// Makes the person a new joiner, active from `join` and labelled until `new_until`.
    pub(crate) fn set_join(&mut self, join: i64, new_until: i64) {
        self.join = join;
        self.new_until = new_until;
    }

    /// Whether this is a new joiner.
    pub(crate) fn is_new(&self) -> bool {
        self.new_until > self.join && self.join > 0
    }

    /// Activity level at `t`: working hours on weekdays, a little in the evening and at weekends.
    fn intensity(&self, t: i64) -> f64 {
        let h = local_hour(t, self.tz_min);
        if weekday(t, self.tz_min) >= 5 {
            let on_call = if self.team == Team::Sre { 2.0 } else { 1.0 };
            return if (10.0..18.0).contains(&h) {
                0.03 * on_call
            } else {
                0.004
            };
        }
        if h >= self.start_h && h < self.end_h {
            if (12.0..13.0).contains(&h) { 0.55 } else { 1.0 }
        } else if h >= self.start_h - 1.0 && h < self.start_h {
            0.15
        } else if h >= self.end_h && h < self.end_h + 1.5 {
            0.2
        } else if h >= self.end_h + 1.5 && h < 23.0 {
            0.04
        } else {
            0.004
        }
    }

    /// Sessions starting in the hour beginning at `h0`.
    pub(crate) fn hour(&mut self, em: &mut Emitter<'_>, w: &World, h0: i64) {
        if h0 + HOUR <= self.join {
            return;
        }
        let lambda = 1.3 * self.activity * self.intensity(h0 + HOUR / 2);
        let n = poisson(em.rng, lambda);
        let mut starts: Vec<i64> = (0..n).map(|_| h0 + em.rng.random_range(0..HOUR)).collect();
        starts.sort_unstable();
        for t0 in starts {
            if t0 >= self.join {
                self.session(em, w, t0);
            }
        }
    }

    fn draw_client(&self, rng: &mut Rng) -> Client {
        let x: f64 = rng.random();
        if x < self.console_share {
            Client::Console
        } else if rng.random::<f64>() < self.boto_share {
            Client::Boto
        } else {
            Client::Cli
        }
    }

    fn bumped(&mut self, t: i64, w: &World) -> (bool, bool) {
        if t < w.bump_t {
            return (false, false);
        }
        let day = t.div_euclid(DAY);
        let first = *self.bump_day.get_or_insert(day);
        (true, first == day)
    }

    /// The aws-cli or Boto3 agent at `t`, and whether it is the first day on the new version.
    fn api_agent(&mut self, client: Client, t: i64, w: &World) -> (Agent, bool) {
        let (new, first_day) = self.bumped(t, w);
        let agent = if client == Client::Boto {
            agents::boto3(if new { agents::BOTO_NEW } else { self.boto_old }, self.os)
        } else {
            self.cli
                .agent(if new { agents::CLI_NEW } else { self.cli_old })
        };
        (agent, first_day)
    }

    /// Credentials for CLI/SDK use at `t` (a long-term key, or an SSO role session).
    pub(crate) fn api_ident(&mut self, org: &Org, rng: &mut Rng, t: i64) -> Arc<Ident> {
        match &self.kind {
            Kind::Iam { key_ident, .. } => key_ident.clone(),
            Kind::Sso { role, role_id } => {
                if let Some((id, exp)) = &self.cli_session
                    && *exp > t
                {
                    return id.clone();
                }
                let key = ids::access_key(rng, "ASIA");
                let creation = t - rng.random_range(5..60);
                let id = Ident::assumed_role(
                    &org.account,
                    "/aws-reserved/sso.amazonaws.com/",
                    role,
                    role_id,
                    &self.email,
                    &key,
                    &SessionAttrs {
                        creation,
                        mfa: false,
                    },
                    None,
                );
                self.cli_session = Some((id.clone(), creation + 8 * HOUR));
                id
            }
        }
    }

    /// The caller the person normally is from the command line at `t` (usual address, usual
    /// client, current version): what an insider looks like.
    pub(crate) fn usual_caller(&mut self, em: &mut Emitter<'_>, w: &World, t: i64) -> Caller {
        let client = if self.boto_share > 0.4 {
            Client::Boto
        } else {
            Client::Cli
        };
        let (agent, _) = self.api_agent(client, t, w);
        let ident = self.api_ident(em.org, em.rng, t);
        self.caller(ident, self.ips[0].clone(), agent, false)
    }

    fn caller(&self, ident: Arc<Ident>, ip: Arc<str>, agent: Agent, console: bool) -> Caller {
        Caller {
            ident,
            ip,
            agent,
            region: self.home_region,
            console,
            vpce: None,
            tls: Tls::V13,
            deny_rate: if self.is_new() { 0.03 } else { 0.01 },
            throttle_rate: 0.0,
        }
    }

    /// A console session at `t0`, signing in first when needed; returns the caller and the
    /// time after sign-in.
    fn console_caller(
        &mut self,
        em: &mut Emitter<'_>,
        w: &World,
        t0: i64,
        ip: &Arc<str>,
        label: Label,
    ) -> (Caller, i64) {
        if let Some((id, exp)) = &self.console
            && *exp > t0
        {
            let c = self.caller(id.clone(), ip.clone(), Agent::plain(self.browser), true);
            return (c, t0);
        }
        let org = em.org;
        let key = ids::access_key(em.rng, "ASIA");
        let attrs = SessionAttrs {
            creation: t0 + 2,
            mfa: true,
        };
        let browser = Agent::plain(self.browser);
        let session = match &self.kind {
            Kind::Iam { user, user_id, .. } => {
                let login_ident = Ident::iam_user(&org.account, user, user_id, "", None);
                let login_caller = self.caller(login_ident, ip.clone(), browser.clone(), false);
                let focus = Focus::default();
                let mut call = Call::new(t0, w.special.console_login, &login_caller, &focus, label);
                call.fail = crate::record::Fail::Never;
                call.payload = Some(Payload {
                    req: Value::Null,
                    resp: json!({"ConsoleLogin": "Success"}),
                    resources: None,
                    extra: Some(json!({
                        "LoginTo": format!("https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_{}_{}", org.region, ids::hex(em.rng, 16)),
                        "MobileVersion": "No",
                        "MFAIdentifier": format!("arn:aws:iam::{}:mfa/{user}", org.account),
                        "MFAUsed": "Yes"
                    })),
                    host: None,
                });
                call.region = Some("us-east-1");
                em.emit(call);
                Ident::iam_user(&org.account, user, user_id, &key, Some(&attrs))
            }
            Kind::Sso { role, role_id } => {
                // A qualifier used to be drawn here for each sign-in (AWS's is one per
                // provider); the draw stays, so that every seed's stream is otherwise the same
                // as before and figures measured on it stay comparable.
                let _ = ids::b64(em.rng, 27);
                let qualifier = &org.saml_qualifier;
                let saml = Ident::saml_user(qualifier, &self.email);
                let saml_caller = self.caller(saml, ip.clone(), browser.clone(), false);
                let role_arn = format!(
                    "arn:aws:iam::{}:role/aws-reserved/sso.amazonaws.com/{role}",
                    org.account
                );
                let minted = Minted {
                    role_arn: &role_arn,
                    role_id,
                    session: &self.email,
                    key: &key,
                    t: t0,
                    duration: 8 * HOUR,
                };
                let extra_req = json!({"sAMLAssertionID": format!("_{}", ids::uuid(em.rng)),
                                       "principalArn": format!("arn:aws:iam::{}:saml-provider/{}", org.account, org.sso_provider)});
                let extra_resp = json!({"subjectType": "persistent",
                                        "issuer": format!("https://portal.sso.{}.amazonaws.com/saml/assertion/{}", org.region, ids::b64(em.rng, 40)),
                                        "audience": "https://signin.aws.amazon.com/saml", "nameQualifier": qualifier, "subject": self.email});
                let payload = assume_payload(org, em.rng, &minted, extra_req, extra_resp);
                let focus = Focus::default();
                let mut call = Call::new(t0, w.special.assume_saml, &saml_caller, &focus, label);
                call.fail = crate::record::Fail::Never;
                call.payload = Some(payload);
                em.emit(call);
                Ident::assumed_role(
                    &org.account,
                    "/aws-reserved/sso.amazonaws.com/",
                    role,
                    role_id,
                    &self.email,
                    &key,
                    &attrs,
                    None,
                )
            }
        };
        self.console = Some((session.clone(), t0 + 10 * HOUR));
        (
            self.caller(session, ip.clone(), browser, true),
            t0 + em.rng.random_range(2..8),
        )
    }

    fn pick_action(&self, rng: &mut Rng) -> (ApiId, bool) {
        if !self.rare.is_empty() && rng.random::<f64>() < 0.004 {
            (self.rare[rng.random_range(0..self.rare.len())], true)
        } else {
            (self.actions[pick_cum(rng, &self.cum)], false)
        }
    }

    /// The source address of a session, with its novelty label if any.
    fn session_ip(&mut self, rng: &mut Rng, org: &Org) -> (Arc<str>, Option<&'static str>) {
        let x: f64 = rng.random();
        if x < 0.006 {
            let ip: Arc<str> = org.foreign_ip(rng, HOME_OCTETS).into();
            return (ip, Some(TRAVEL_IP));
        }
        if x < 0.026 {
            let s = self.subnets[rng.random_range(0..self.subnets.len())].clone();
            let ip: Arc<str> = format!("{s}.{}", rng.random_range(2..=254u8)).into();
            if !self.ips.contains(&ip) {
                self.ips.push(ip.clone());
                return (ip, Some(NEW_IP_SAME_SUBNET));
            }
        }
        let i = if self.ips.len() == 1 || rng.random::<f64>() < 0.75 {
            0
        } else {
            rng.random_range(1..self.ips.len())
        };
        (self.ips[i].clone(), None)
    }

    fn session(&mut self, em: &mut Emitter<'_>, w: &World, t0: i64) {
        let client = self.draw_client(em.rng);
        let (ip, ip_label) = self.session_ip(em.rng, em.org);
        let newbie = t0 < self.new_until && self.is_new();
        let mut base = if newbie { Some(NEW_ENGINEER) } else { ip_label };
        let region = if em.f() < 0.92 {
            em.org.region
        } else {
            em.org.region2
        };
        let focus = self.focus.clone();

        let (mut caller, mut t) = match client {
            Client::Console => {
                let label = Label {
                    benign_novelty: base,
                    ..Label::default()
                };
                self.console_caller(em, w, t0, &ip, label)
            }
            Client::Cli | Client::Boto => {
                let (agent, first_day) = self.api_agent(client, t0, w);
                if first_day && base.is_none() {
                    base = Some(UA_VERSION_BUMP);
                }
                let ident = self.api_ident(em.org, em.rng, t0);
                (self.caller(ident, ip, agent, false), t0)
            }
        };
        caller.region = region;

        let label_for = |rare: bool| Label {
            benign_novelty: base.or(if rare { Some(RARE_SERVICE) } else { None }),
            ..Label::default()
        };
        match client {
            Client::Console => {
                let pages = 1 + geometric(em.rng, 5.0);
                for _ in 0..pages {
                    let (api, rare) = self.pick_action(em.rng);
                    em.emit(Call::new(t, api, &caller, &focus, label_for(rare)));
                    if let Some(companions) = w.pages.get(&api) {
                        for &c in companions {
                            let dt = em.rng.random_range(0..3);
                            em.emit(Call::new(t + dt, c, &caller, &focus, label_for(rare)));
                        }
                    }
                    t += 3 + exponential(em.rng, 25.0) as i64;
                }
            }
            Client::Cli => {
                let n = 1 + geometric(em.rng, 4.0);
                for _ in 0..n {
                    let (api, rare) = self.pick_action(em.rng);
                    em.emit(Call::new(t, api, &caller, &focus, label_for(rare)));
                    t += 2 + exponential(em.rng, 35.0) as i64;
                }
            }
            Client::Boto => {
                let (a, ra) = self.pick_action(em.rng);
                let (b, rb) = self.pick_action(em.rng);
                let n = 5 + geometric(em.rng, 20.0);
                for i in 0..n {
                    let (api, rare) = if i % 3 == 2 { (b, rb) } else { (a, ra) };
                    let mut call = Call::new(t, api, &caller, &focus, label_for(rare));
                    call.nth = i;
                    em.emit(call);
                    t += em.rng.random_range(0..3);
                }
            }
        }
    }
}

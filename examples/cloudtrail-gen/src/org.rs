//! The simulated organisation: accounts, offices and their networks, and the inventory of
//! resources (buckets, instances, secrets, tables, …) that requests name.
//!
//! Everything is drawn once from the seeded RNG when the generator starts; the tables of names
//! below are the raw material.

use rand::Rng as _;
use rand::SeedableRng as _;
use rand::seq::IndexedRandom as _;

use crate::Rng;
use crate::ids;

/// Team of a human, which decides the services they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Team {
    Dev,
    Data,
    Sre,
    Security,
    Finance,
}

impl Team {
    /// All teams, in the order they are staffed.
    pub(crate) const ALL: [Team; 5] = [
        Team::Dev,
        Team::Data,
        Team::Sre,
        Team::Security,
        Team::Finance,
    ];

    /// Share of the head count per team.
    pub(crate) fn weight(self) -> f64 {
        match self {
            Team::Dev => 0.40,
            Team::Data => 0.20,
            Team::Sre => 0.18,
            Team::Security => 0.10,
            Team::Finance => 0.12,
        }
    }

    /// The IAM Identity Center permission set of the team.
    pub(crate) fn permission_set(self) -> &'static str {
        match self {
            Team::Dev => "DeveloperAccess",
            Team::Data => "DataEngineering",
            Team::Sre => "AdministratorAccess",
            Team::Security => "SecurityAudit",
            Team::Finance => "BillingReadOnly",
        }
    }
}

/// An office: a time zone and the public /24s its traffic leaves from.
#[derive(Debug)]
pub(crate) struct Office {
    /// UTC offset in minutes.
    pub tz_min: i32,
    /// First three octets of the office egress /24.
    pub subnet: String,
    /// First three octets of the corporate VPN egress /24.
    pub vpn: String,
}

/// An S3 bucket and some of its object keys.
#[derive(Debug)]
pub(crate) struct Bucket {
    pub name: String,
    /// Team that reads it day to day; `None` for buckets nobody browses.
    pub team: Option<Team>,
    /// Holds data an insider would want (customer or payroll exports).
    pub sensitive: bool,
    pub keys: Vec<String>,
}

/// A Secrets Manager secret.
#[derive(Debug)]
pub(crate) struct Secret {
    pub name: String,
    pub arn: String,
}

const COMPANIES: &[(&str, &str)] = &[
    ("acme", "acme-corp.com"),
    ("globex", "globex.io"),
    ("initech", "initech.com"),
    ("hooli", "hooli.xyz"),
    ("umbrella", "umbrella-labs.com"),
    ("vandelay", "vandelay-industries.com"),
];

const OFFICES: &[(&str, i32)] = &[
    ("New York", -300),
    ("London", 0),
    ("Berlin", 60),
    ("Bangalore", 330),
    ("San Francisco", -480),
    ("Toronto", -300),
];

/// First octets used for office, VPN and other corporate egress addresses.
pub(crate) const CORP_OCTETS: &[u8] = &[
    62, 81, 84, 92, 145, 151, 173, 193, 194, 204, 207, 208, 212, 213, 216, 217,
];
/// First octets of residential and hotel networks.
pub(crate) const HOME_OCTETS: &[u8] = &[24, 47, 67, 68, 71, 73, 76, 82, 86, 98, 99, 108, 174, 188];
/// First octets of hosting providers an attacker rents from.
pub(crate) const VPS_OCTETS: &[u8] = &[
    5, 23, 37, 45, 89, 91, 103, 139, 146, 159, 165, 167, 178, 185, 195,
];
/// First octets of AWS public ranges (Lambda outside a VPC, third-party SaaS on AWS).
pub(crate) const AWS_OCTETS: &[u8] = &[3, 18, 34, 35, 44, 52, 54];
/// First octets of hosted CI runners.
pub(crate) const CI_OCTETS: &[u8] = &[4, 13, 20, 40, 52, 104];

/// Regions attackers sweep during enumeration.
pub(crate) const ALL_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ca-central-1",
    "sa-east-1",
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yasmin",
    "zoe",
    "aditya",
    "bianca",
    "chen",
    "dmitri",
    "elena",
    "farah",
    "gustavo",
    "hana",
    "ingrid",
    "jamal",
    "kenji",
    "leila",
    "marco",
    "nadia",
    "omar",
    "priya",
    "quentin",
    "rosa",
    "sven",
    "tariq",
    "uma",
    "valentina",
    "wei",
    "ximena",
    "yusuf",
    "zara",
    "liam",
    "noah",
    "emma",
    "mia",
    "lucas",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "smith",
    "jones",
    "garcia",
    "miller",
    "davis",
    "martinez",
    "lopez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "thompson",
    "white",
    "harris",
    "clark",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "nguyen",
    "hill",
    "green",
    "adams",
    "baker",
    "nelson",
    "carter",
    "mitchell",
    "perez",
    "roberts",
    "turner",
    "phillips",
    "campbell",
    "parker",
    "evans",
    "edwards",
    "collins",
    "stewart",
    "sanchez",
    "morris",
    "rogers",
    "reed",
    "cook",
    "morgan",
    "bell",
    "murphy",
    "bailey",
    "rivera",
    "cooper",
    "richardson",
    "cox",
    "howard",
    "ward",
    "torres",
    "peterson",
    "gray",
    "ramirez",
    "james",
    "watson",
    "brooks",
    "kelly",
    "sanders",
    "price",
    "bennett",
    "wood",
    "barnes",
    "ross",
    "henderson",
    "coleman",
    "jenkins",
    "perry",
    "powell",
    "long",
    "patterson",
    "hughes",
    "flores",
    "washington",
    "butler",
    "simmons",
    "foster",
    "gonzales",
    "bryant",
    "alexander",
    "russell",
    "griffin",
    "diaz",
    "hayes",
    "kumar",
    "sharma",
    "tanaka",
    "mueller",
];

/// Bucket name suffix, reading team, sensitive, key pattern.
const BUCKETS: &[(&str, Option<Team>, bool, KeyPattern)] = &[
    (
        "prod-app-assets",
        Some(Team::Dev),
        false,
        KeyPattern::Assets,
    ),
    ("web-static", Some(Team::Dev), false, KeyPattern::Assets),
    ("app-uploads", Some(Team::Dev), false, KeyPattern::Uploads),
    (
        "data-lake-raw",
        Some(Team::Data),
        false,
        KeyPattern::Parquet,
    ),
    (
        "data-lake-curated",
        Some(Team::Data),
        false,
        KeyPattern::Parquet,
    ),
    (
        "athena-results",
        Some(Team::Data),
        false,
        KeyPattern::Athena,
    ),
    (
        "ml-training-data",
        Some(Team::Data),
        false,
        KeyPattern::Parquet,
    ),
    (
        "terraform-state",
        Some(Team::Sre),
        false,
        KeyPattern::TfState,
    ),
    ("prod-db-backups", Some(Team::Sre), false, KeyPattern::Dumps),
    (
        "cloudtrail-logs",
        Some(Team::Security),
        false,
        KeyPattern::Trail,
    ),
    (
        "security-findings",
        Some(Team::Security),
        false,
        KeyPattern::Findings,
    ),
    (
        "finance-reports",
        Some(Team::Finance),
        false,
        KeyPattern::Reports,
    ),
    ("payroll-exports", None, true, KeyPattern::Payroll),
    ("customer-exports", None, true, KeyPattern::Customers),
];

#[derive(Debug, Clone, Copy)]
enum KeyPattern {
    Assets,
    Uploads,
    Parquet,
    Athena,
    TfState,
    Dumps,
    Trail,
    Findings,
    Reports,
    Payroll,
    Customers,
}

const SECRETS: &[&str] = &[
    "prod/orders/db-credentials",
    "prod/payments/stripe-api-key",
    "prod/web/session-secret",
    "prod/data/warehouse-password",
    "prod/notifier/slack-webhook",
    "prod/auth/jwt-signing-key",
    "prod/integrations/salesforce-oauth",
    "prod/payments/adyen-hmac",
    "prod/support/zendesk-api",
    "prod/analytics/snowflake-service",
    "staging/orders/db-credentials",
    "prod/ci/dockerhub-token",
    "prod/search/opensearch-master",
    "prod/email/sendgrid-api-key",
];

pub(crate) const FUNCTIONS: &[&str] = &[
    "thumbnail-generator",
    "ingest-clickstream",
    "order-notifier",
    "invoice-pdf-renderer",
    "cost-report-daily",
    "ebs-snapshot-manager",
    "slack-alerts",
    "user-cleanup",
    "etl-trigger",
    "webhook-handler",
    "search-indexer",
    "fraud-scorer",
];

const TABLES: &[&str] = &[
    "orders",
    "sessions",
    "payments-ledger",
    "feature-flags",
    "idempotency-keys",
    "carts",
    "terraform-locks",
];
const QUEUES: &[&str] = &[
    "order-events",
    "email-outbound",
    "thumbnail-jobs",
    "payment-webhooks",
    "orders-dlq",
];
const PARAMETERS: &[&str] = &[
    "/prod/orders/db_host",
    "/prod/orders/feature_flags",
    "/prod/web/api_base_url",
    "/prod/payments/timeout_ms",
    "/prod/common/datadog_site",
    "/prod/common/log_level",
    "/staging/orders/db_host",
    "/prod/data/warehouse_dsn",
];
pub(crate) const ECS_SERVICES: &[&str] = &["orders-api", "payments-api", "web-frontend", "worker"];
const REPOS: &[&str] = &[
    "orders-api",
    "payments-api",
    "web-frontend",
    "worker",
    "base/python",
];
const DB_INSTANCES: &[&str] = &[
    "orders-db-1",
    "orders-db-2",
    "payments-db",
    "analytics-replica",
];
const STACKS: &[&str] = &[
    "network-baseline",
    "datadog-integration",
    "guardduty-setup",
    "sso-permission-sets",
];
const KMS_ALIASES: &[&str] = &[
    "prod-app",
    "data-lake",
    "cloudtrail",
    "secrets",
    "ebs-default",
];
const SERVICE_USERS: &[&str] = &[
    "jenkins-legacy",
    "terraform-bootstrap",
    "s3-uploader",
    "backup-agent",
];

/// The organisation and its inventory.
#[derive(Debug)]
pub(crate) struct Org {
    pub company: &'static str,
    pub domain: &'static str,
    /// The main (production) account: `recipientAccountId` of every event.
    pub account: String,
    /// Other accounts of the same organisation (security tooling, staging, shared services).
    pub other_accounts: Vec<String>,
    /// Home region.
    pub region: &'static str,
    /// Second region with some workloads.
    pub region2: &'static str,
    pub offices: Vec<Office>,
    pub buckets: Vec<Bucket>,
    pub instances: Vec<String>,
    pub volumes: Vec<(String, u32)>,
    pub snapshots: Vec<String>,
    pub amis: Vec<String>,
    pub security_groups: Vec<String>,
    pub vpcs: Vec<String>,
    pub subnets: Vec<String>,
    pub flow_logs: Vec<String>,
    pub secrets: Vec<Secret>,
    pub kms_keys: Vec<(String, &'static str)>,
    pub functions: Vec<String>,
    pub log_groups: Vec<String>,
    pub parameters: Vec<&'static str>,
    pub tables: Vec<&'static str>,
    pub queues: Vec<&'static str>,
    pub clusters: Vec<&'static str>,
    pub ecs_services: Vec<&'static str>,
    pub repos: Vec<&'static str>,
    pub db_instances: Vec<&'static str>,
    pub stacks: Vec<&'static str>,
    pub trails: Vec<&'static str>,
    pub detector_id: String,
    pub hosted_zone: String,
    pub distribution: String,
    pub users: Vec<String>,
    pub roles: Vec<String>,
    /// Prefix of the IAM Identity Center SAML provider (`AWSSSO_<hex>_DO_NOT_DELETE`).
    pub sso_provider: String,
    /// The SAML `NameQualifier` of that provider: AWS derives it from the issuer, the account
    /// and the provider's name, so it is the same in every assertion of the organisation.
    pub saml_qualifier: String,
    /// GitHub organisation name.
    pub github_org: String,
}

fn object_key(p: KeyPattern, rng: &mut Rng, account: &str) -> String {
    let day = rng.random_range(1..=28u32);
    let month = rng.random_range(1..=2u32);
    match p {
        KeyPattern::Assets => {
            let dir = ["static/js", "static/css", "static/img", "fonts"]
                .choose(rng)
                .copied()
                .unwrap_or("static");
            let ext = match dir {
                "static/js" => "js",
                "static/css" => "css",
                "fonts" => "woff2",
                _ => "png",
            };
            format!(
                "{dir}/{}.{}.{ext}",
                ["app", "vendor", "main", "logo", "hero"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("app"),
                ids::hex(rng, 8)
            )
        }
        KeyPattern::Uploads => format!("uploads/{}/original.jpg", ids::uuid(rng)),
        KeyPattern::Parquet => format!(
            "{}/dt=2024-{month:02}-{day:02}/part-{:05}-{}.snappy.parquet",
            ["events/clickstream", "orders", "payments", "sessions"]
                .choose(rng)
                .copied()
                .unwrap_or("events"),
            rng.random_range(0..200u32),
            ids::uuid(rng)
        ),
        KeyPattern::Athena => format!("query-results/{}.csv", ids::uuid(rng)),
        KeyPattern::TfState => format!(
            "env:/{}/{}/terraform.tfstate",
            ["prod", "staging"].choose(rng).copied().unwrap_or("prod"),
            ["network", "ecs", "data", "iam", "dns", "lambda"]
                .choose(rng)
                .copied()
                .unwrap_or("network")
        ),
        KeyPattern::Dumps => format!(
            "pg/{}/2024-{month:02}-{day:02}/{}.dump.gz",
            ["orders", "payments"]
                .choose(rng)
                .copied()
                .unwrap_or("orders"),
            ["full", "schema"].choose(rng).copied().unwrap_or("full")
        ),
        KeyPattern::Trail => format!(
            "AWSLogs/{account}/CloudTrail/us-east-1/2024/{month:02}/{day:02}/{account}_CloudTrail_us-east-1_2024{month:02}{day:02}T{:02}{:02}Z_{}.json.gz",
            rng.random_range(0..24u32),
            rng.random_range(0..60u32) / 5 * 5,
            ids::upper(rng, 16)
        ),
        KeyPattern::Findings => format!(
            "guardduty/2024/{month:02}/{day:02}/{}.jsonl.gz",
            ids::uuid(rng)
        ),
        KeyPattern::Reports => format!(
            "{}/2024-{month:02}/{}",
            ["monthly", "invoices", "forecasts"]
                .choose(rng)
                .copied()
                .unwrap_or("monthly"),
            [
                "revenue-summary.xlsx",
                "aws-cost-breakdown.csv",
                "INV-10023.pdf",
                "vendor-spend.xlsx",
                "budget-vs-actual.xlsx"
            ]
            .choose(rng)
            .copied()
            .unwrap_or("summary.xlsx")
        ),
        KeyPattern::Payroll => {
            format!("payroll/2024-{month:02}/payroll-run-2024-{month:02}-{day:02}.csv")
        }
        KeyPattern::Customers => format!(
            "exports/{}-2024-{month:02}-{day:02}.csv.gz",
            [
                "customers-full",
                "customers-pii",
                "orders-with-addresses",
                "subscriptions"
            ]
            .choose(rng)
            .copied()
            .unwrap_or("customers")
        ),
    }
}

fn subnet24(rng: &mut Rng, octets: &[u8]) -> String {
    let a = octets.choose(rng).copied().unwrap_or(81);
    format!(
        "{a}.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8)
    )
}

impl Org {
    /// Draws an organisation.
    pub(crate) fn new(rng: &mut Rng) -> Self {
        let &(company, domain) = COMPANIES.choose(rng).unwrap_or(&COMPANIES[0]);
        let account = ids::account_id(rng);
        let other_accounts = (0..3).map(|_| ids::account_id(rng)).collect();
        let region = *["us-east-1", "us-east-1", "us-west-2", "eu-west-1"]
            .choose(rng)
            .unwrap_or(&"us-east-1");
        let region2 = if region == "eu-west-1" {
            "eu-central-1"
        } else {
            "eu-west-1"
        };

        let n_offices = rng.random_range(2..=3usize);
        let mut office_pool: Vec<usize> = (0..OFFICES.len()).collect();
        let mut offices = Vec::new();
        for _ in 0..n_offices {
            let i = office_pool.remove(rng.random_range(0..office_pool.len()));
            let (_city, tz_min) = OFFICES[i];
            offices.push(Office {
                tz_min,
                subnet: subnet24(rng, CORP_OCTETS),
                vpn: subnet24(rng, CORP_OCTETS),
            });
        }

        let buckets = BUCKETS
            .iter()
            .map(|&(suffix, team, sensitive, pattern)| {
                let name = match pattern {
                    KeyPattern::Trail | KeyPattern::Athena => {
                        format!("{company}-{suffix}-{account}")
                    }
                    _ => format!("{company}-{suffix}"),
                };
                let keys = (0..24)
                    .map(|_| object_key(pattern, rng, &account))
                    .collect();
                Bucket {
                    name,
                    team,
                    sensitive,
                    keys,
                }
            })
            .collect();

        let secrets = SECRETS
            .iter()
            .map(|name| {
                let arn = format!(
                    "arn:aws:secretsmanager:{region}:{account}:secret:{name}-{}",
                    ids::b64(rng, 6).replace(['+', '/'], "x")
                );
                Secret {
                    name: (*name).to_owned(),
                    arn,
                }
            })
            .collect();

        let functions: Vec<String> = FUNCTIONS.iter().map(|f| (*f).to_owned()).collect();
        let mut log_groups: Vec<String> = functions
            .iter()
            .map(|f| format!("/aws/lambda/{f}"))
            .collect();
        log_groups.extend(ECS_SERVICES.iter().map(|s| format!("/ecs/{s}")));
        log_groups.push("/aws/rds/cluster/orders-db/postgresql".to_owned());
        log_groups.push("vpc-flow-logs".to_owned());
        log_groups.push("/app/web/nginx-access".to_owned());

        let mut users: Vec<String> = SERVICE_USERS.iter().map(|u| (*u).to_owned()).collect();
        users.sort();
        let roles = vec![
            "OrganizationAccountAccessRole".to_owned(),
            "AWSServiceRoleForConfig".to_owned(),
            "AWSServiceRoleForAutoScaling".to_owned(),
            "AWSServiceRoleForTrustedAdvisor".to_owned(),
            "ecsTaskExecutionRole".to_owned(),
            "rds-monitoring-role".to_owned(),
        ];

        let mut org = Org {
            company,
            domain,
            other_accounts,
            region,
            region2,
            offices,
            buckets,
            instances: (0..24).map(|_| ids::ec2_id(rng, "i")).collect(),
            volumes: (0..20)
                .map(|_| {
                    (
                        ids::ec2_id(rng, "vol"),
                        [8, 20, 50, 100, 200, 500]
                            .choose(rng)
                            .copied()
                            .unwrap_or(50),
                    )
                })
                .collect(),
            snapshots: (0..30).map(|_| ids::ec2_id(rng, "snap")).collect(),
            amis: (0..5).map(|_| ids::ec2_id(rng, "ami")).collect(),
            security_groups: (0..10).map(|_| ids::ec2_id(rng, "sg")).collect(),
            vpcs: (0..3).map(|_| ids::ec2_id(rng, "vpc")).collect(),
            subnets: (0..8).map(|_| ids::ec2_id(rng, "subnet")).collect(),
            flow_logs: (0..3).map(|_| ids::ec2_id(rng, "fl")).collect(),
            secrets,
            kms_keys: KMS_ALIASES.iter().map(|a| (ids::uuid(rng), *a)).collect(),
            functions,
            log_groups,
            parameters: PARAMETERS.to_vec(),
            tables: TABLES.to_vec(),
            queues: QUEUES.to_vec(),
            clusters: vec!["prod-cluster", "staging-cluster"],
            ecs_services: ECS_SERVICES.to_vec(),
            repos: REPOS.to_vec(),
            db_instances: DB_INSTANCES.to_vec(),
            stacks: STACKS.to_vec(),
            trails: vec!["org-trail", "security-audit-trail"],
            detector_id: ids::hex(rng, 32),
            hosted_zone: format!("Z0{}", ids::upper(rng, 19)),
            distribution: format!("E{}", ids::upper(rng, 13)),
            users,
            roles,
            sso_provider: format!("AWSSSO_{}_DO_NOT_DELETE", ids::hex(rng, 16)),
            saml_qualifier: String::new(),
            github_org: format!("{company}-eng"),
            account,
        };
        // From the account and the provider's name, not from `rng`: the rest of the
        // organisation is as it was without it.
        let mut from = Rng::seed_from_u64(
            org.account
                .bytes()
                .chain(org.sso_provider.bytes())
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                }),
        );
        org.saml_qualifier = format!("{}=", ids::b64(&mut from, 27).replace(['+', '/'], "A"));
        org
    }

    /// The bucket with this name suffix (`"{company}-{suffix}"`), by index.
    pub(crate) fn bucket_index(&self, suffix: &str) -> Option<usize> {
        self.buckets.iter().position(|b| {
            b.name
                .trim_start_matches(self.company)
                .trim_start_matches('-')
                .starts_with(suffix)
        })
    }

    /// Indices of the buckets a team reads.
    pub(crate) fn team_buckets(&self, team: Team) -> Vec<usize> {
        (0..self.buckets.len())
            .filter(|&i| self.buckets[i].team == Some(team))
            .collect()
    }

    /// A fresh public address outside every office and VPN /24.
    pub(crate) fn foreign_ip(&self, rng: &mut Rng, octets: &[u8]) -> String {
        loop {
            let ip = ids::public_ip(rng, octets);
            let net = &ip[..ip.rfind('.').unwrap_or(ip.len())];
            if self.offices.iter().all(|o| o.subnet != net && o.vpn != net) {
                return ip;
            }
        }
    }

    /// A 12-digit account id that belongs to nobody in the organisation.
    pub(crate) fn foreign_account(&self, rng: &mut Rng) -> String {
        loop {
            let a = ids::account_id(rng);
            if a != self.account && !self.other_accounts.contains(&a) {
                return a;
            }
        }
    }

    /// ARN of a KMS key by index.
    pub(crate) fn kms_arn(&self, i: usize) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.region,
            self.account,
            self.kms_keys[i % self.kms_keys.len()].0
        )
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn org_is_reproducible_and_consistent() {
        let a = Org::new(&mut Rng::seed_from_u64(3));
        let b = Org::new(&mut Rng::seed_from_u64(3));
        assert_eq!(a.account, b.account);
        assert_eq!(a.buckets[0].keys, b.buckets[0].keys);
        assert!(a.bucket_index("customer-exports").is_some());
        assert!(a.bucket_index("terraform-state").is_some());
        assert!(!a.team_buckets(Team::Data).is_empty());
        let mut rng = Rng::seed_from_u64(4);
        let ip = a.foreign_ip(&mut rng, VPS_OCTETS);
        assert!(
            a.offices
                .iter()
                .all(|o| !ip.starts_with(&format!("{}.", o.subnet)))
        );
        assert_ne!(a.foreign_account(&mut rng), a.account);
    }
}

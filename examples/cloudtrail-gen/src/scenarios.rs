//! Attack scenarios as data: who is compromised, which client the attacker uses, and the
//! ordered steps (actions, how many calls, the pause before each call, how often calls are
//! denied). [`crate::stream`] instantiates them against concrete victims at seeded times.
//!
//! Steps are numbered from 1 in table order; every call of a step carries that number in its
//! [`crate::Label`].

/// A known human's long-term access key used from abroad: discovery, snapshot of a volume,
/// share with a foreign account, cover tracks.
pub const EXFIL_CHAIN: &str = "exfil-chain";
/// A stolen key enumerating everything it can, fast and noisily, across regions.
pub const DISCOVERY_BURST: &str = "discovery-burst";
/// A compromised principal creating a backdoor admin user and opening a role's trust policy.
pub const IAM_PERSISTENCE: &str = "iam-persistence";
/// Stopping and blinding CloudTrail, deleting VPC flow logs and GuardDuty.
pub const LOGGING_SABOTAGE: &str = "logging-sabotage";
/// A legitimate user, from their usual address and client, collecting secrets and data.
pub const INSIDER: &str = "insider";
/// An EC2 instance role's temporary credentials used from outside AWS.
pub const ROLE_CREDENTIAL_THEFT: &str = "role-credential-theft";
/// A legitimate user, from their usual address and client, low and slow: a few calls a day
/// over three days (secrets, then data, then a bucket opened to the world).
pub const SLOW_INSIDER: &str = "slow-insider";

// Written after the defaults were chosen and never tuned on (`--scenarios` names them; they
// are not injected otherwise): insiders, from their usual address and client, each doing one
// kind of harm new to them, spread over two working days.

/// An insider snapshotting a volume, then sharing the snapshot with an outside account.
pub const INSIDER_SNAPSHOT: &str = "insider-snapshot";
/// An insider creating an IAM user with administrator rights and an access key for it.
pub const INSIDER_BACKDOOR: &str = "insider-backdoor";
/// An insider letting an outside account assume one of the organisation's roles.
pub const INSIDER_TRUST: &str = "insider-trust";
/// An insider blinding the trail's management events, then deleting VPC flow logs.
pub const INSIDER_COVER: &str = "insider-cover";

/// Seconds from one working day to the next (22 to 26 hours).
const NEXT_DAY: (u32, u32) = (22 * 3600, 26 * 3600);

/// Whose credentials the attack uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Victim {
    /// An IAM user's long-term key (`AKIA…`).
    HumanKey,
    /// An SSO user's role session credentials.
    HumanSso,
    /// A person acting as themselves.
    Insider,
    /// An EC2 instance profile session.
    InstanceRole,
}

/// The attacker's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// aws-cli on a different operating system than the victim's.
    OtherOsCli,
    /// Pacu on Kali.
    Pacu,
    /// aws-cli on a rented Linux server.
    VpsCli,
    /// The victim's own client from the victim's own address.
    Usual,
}

/// One step: `count` calls cycling through `actions`.
#[derive(Debug)]
pub(crate) struct Step {
    pub actions: &'static [&'static str],
    /// Inclusive range of calls.
    pub count: (u32, u32),
    /// Seconds before each call (inclusive range).
    pub gap: (u32, u32),
    /// Probability that a call is denied.
    pub deny: f64,
    /// Regional calls go to random regions (enumeration sweeps).
    pub any_region: bool,
    /// Shuffle the action order.
    pub shuffle: bool,
    /// Made with the backdoor user's new key instead of the victim's credentials.
    pub as_backdoor: bool,
}

const S: Step = Step {
    actions: &[],
    count: (1, 1),
    gap: (5, 40),
    deny: 0.0,
    any_region: false,
    shuffle: false,
    as_backdoor: false,
};

/// A scenario.
#[derive(Debug)]
pub(crate) struct Scenario {
    pub name: &'static str,
    pub victim: Victim,
    pub tool: Tool,
    pub steps: &'static [Step],
}

/// Every scenario, injected at least once when attacks are on.
pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: EXFIL_CHAIN,
        victim: Victim::HumanKey,
        tool: Tool::OtherOsCli,
        steps: &[
            Step {
                actions: &["sts:GetCallerIdentity"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &[
                    "ec2:DescribeInstances",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeRegions",
                ],
                count: (3, 6),
                gap: (10, 90),
                ..S
            },
            Step {
                actions: &["ec2:CreateSnapshot"],
                gap: (60, 240),
                ..S
            },
            Step {
                actions: &["ec2:DescribeSnapshots"],
                count: (2, 4),
                gap: (45, 150),
                ..S
            },
            Step {
                actions: &["ec2:ModifySnapshotAttribute"],
                gap: (20, 90),
                ..S
            },
            Step {
                actions: &["ec2:DeleteSnapshot"],
                gap: (120, 600),
                ..S
            },
        ],
    },
    Scenario {
        name: DISCOVERY_BURST,
        victim: Victim::HumanKey,
        tool: Tool::Pacu,
        steps: &[
            Step {
                actions: &["sts:GetCallerIdentity"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &[
                    "iam:GetUser",
                    "iam:ListAttachedUserPolicies",
                    "iam:ListUserPolicies",
                    "iam:ListGroupsForUser",
                ],
                count: (4, 4),
                gap: (1, 4),
                deny: 0.3,
                ..S
            },
            Step {
                actions: &[
                    "iam:ListUsers",
                    "iam:ListRoles",
                    "iam:ListPolicies",
                    "iam:ListGroups",
                    "iam:GetAccountAuthorizationDetails",
                    "s3:ListBuckets",
                    "ec2:DescribeInstances",
                    "ec2:DescribeRegions",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeImages",
                    "ec2:DescribeKeyPairs",
                    "lambda:ListFunctions20150331",
                    "rds:DescribeDBInstances",
                    "secretsmanager:ListSecrets",
                    "ssm:DescribeParameters",
                    "kms:ListKeys",
                    "dynamodb:ListTables",
                    "sqs:ListQueues",
                    "sns:ListTopics",
                    "cloudtrail:DescribeTrails",
                    "guardduty:ListDetectors",
                    "logs:DescribeLogGroups",
                    "ecs:ListClusters",
                    "ecr:DescribeRepositories",
                    "cloudformation:ListStacks",
                    "route53:ListHostedZones",
                    "organizations:DescribeOrganization",
                    "config:DescribeConfigRules",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "iam:GetAccountSummary",
                ],
                count: (30, 60),
                gap: (0, 6),
                deny: 0.45,
                any_region: true,
                shuffle: true,
                ..S
            },
        ],
    },
    Scenario {
        name: IAM_PERSISTENCE,
        victim: Victim::HumanKey,
        tool: Tool::VpsCli,
        steps: &[
            Step {
                actions: &["sts:GetCallerIdentity"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["iam:ListUsers", "iam:ListRoles"],
                count: (2, 2),
                gap: (10, 40),
                ..S
            },
            Step {
                actions: &["iam:CreateUser"],
                gap: (30, 120),
                ..S
            },
            Step {
                actions: &["iam:CreateAccessKey"],
                gap: (2, 10),
                ..S
            },
            Step {
                actions: &["iam:AttachUserPolicy"],
                gap: (2, 15),
                ..S
            },
            Step {
                actions: &["iam:CreateLoginProfile"],
                gap: (5, 30),
                ..S
            },
            Step {
                actions: &["iam:UpdateAssumeRolePolicy"],
                gap: (30, 180),
                ..S
            },
            Step {
                actions: &["sts:GetCallerIdentity"],
                gap: (60, 300),
                as_backdoor: true,
                ..S
            },
            Step {
                actions: &["s3:ListBuckets", "ec2:DescribeInstances"],
                count: (2, 2),
                gap: (5, 30),
                as_backdoor: true,
                ..S
            },
        ],
    },
    Scenario {
        name: LOGGING_SABOTAGE,
        victim: Victim::HumanSso,
        tool: Tool::OtherOsCli,
        steps: &[
            Step {
                actions: &["cloudtrail:DescribeTrails"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
                count: (2, 2),
                gap: (5, 30),
                ..S
            },
            Step {
                actions: &["cloudtrail:StopLogging"],
                gap: (10, 60),
                ..S
            },
            Step {
                actions: &["cloudtrail:PutEventSelectors"],
                gap: (5, 40),
                ..S
            },
            Step {
                actions: &["cloudtrail:DeleteTrail"],
                gap: (5, 40),
                ..S
            },
            Step {
                actions: &["ec2:DescribeFlowLogs"],
                gap: (20, 90),
                ..S
            },
            Step {
                actions: &["ec2:DeleteFlowLogs"],
                count: (2, 3),
                gap: (2, 10),
                ..S
            },
            Step {
                actions: &["guardduty:ListDetectors"],
                gap: (10, 60),
                ..S
            },
            Step {
                actions: &["guardduty:DeleteDetector"],
                gap: (3, 20),
                ..S
            },
        ],
    },
    Scenario {
        name: INSIDER,
        victim: Victim::Insider,
        tool: Tool::Usual,
        steps: &[
            Step {
                actions: &["secretsmanager:ListSecrets"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["secretsmanager:GetSecretValue"],
                count: (8, 14),
                gap: (4, 40),
                ..S
            },
            Step {
                actions: &["s3:ListObjects"],
                count: (1, 2),
                gap: (30, 180),
                ..S
            },
            Step {
                actions: &["s3:GetObject"],
                count: (10, 25),
                gap: (1, 15),
                ..S
            },
            Step {
                actions: &["s3:DeleteBucketPublicAccessBlock"],
                gap: (60, 400),
                ..S
            },
            Step {
                actions: &["s3:PutBucketPolicy"],
                gap: (5, 60),
                ..S
            },
        ],
    },
    Scenario {
        name: SLOW_INSIDER,
        victim: Victim::Insider,
        tool: Tool::Usual,
        steps: &[
            Step {
                actions: &["secretsmanager:ListSecrets"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["secretsmanager:GetSecretValue"],
                count: (2, 3),
                gap: (60, 900),
                ..S
            },
            Step {
                actions: &["s3:ListObjects"],
                gap: NEXT_DAY,
                ..S
            },
            Step {
                actions: &["s3:GetObject"],
                count: (3, 6),
                gap: (20, 600),
                ..S
            },
            Step {
                actions: &["s3:PutBucketPolicy"],
                gap: NEXT_DAY,
                ..S
            },
        ],
    },
    Scenario {
        name: ROLE_CREDENTIAL_THEFT,
        victim: Victim::InstanceRole,
        tool: Tool::VpsCli,
        steps: &[
            Step {
                actions: &["sts:GetCallerIdentity"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["s3:ListBuckets"],
                gap: (10, 60),
                ..S
            },
            Step {
                actions: &["s3:ListObjects"],
                count: (1, 3),
                gap: (5, 40),
                ..S
            },
            Step {
                actions: &["s3:GetObject"],
                count: (3, 10),
                gap: (1, 10),
                ..S
            },
            Step {
                actions: &["ec2:DescribeInstances", "iam:ListRoles"],
                count: (2, 2),
                gap: (10, 60),
                deny: 0.8,
                ..S
            },
        ],
    },
];

/// Scenarios injected only when named: written after the defaults were chosen, never tuned on.
pub(crate) const UNTUNED: &[Scenario] = &[
    Scenario {
        name: INSIDER_SNAPSHOT,
        victim: Victim::Insider,
        tool: Tool::Usual,
        steps: &[
            Step {
                actions: &["ec2:DescribeVolumes", "ec2:DescribeInstances"],
                count: (2, 4),
                gap: (0, 120),
                ..S
            },
            Step {
                actions: &["ec2:CreateSnapshot"],
                gap: (60, 600),
                ..S
            },
            Step {
                actions: &["ec2:DescribeSnapshots"],
                count: (1, 2),
                gap: NEXT_DAY,
                ..S
            },
            Step {
                actions: &["ec2:ModifySnapshotAttribute"],
                gap: (30, 300),
                ..S
            },
        ],
    },
    Scenario {
        name: INSIDER_BACKDOOR,
        victim: Victim::Insider,
        tool: Tool::Usual,
        steps: &[
            Step {
                actions: &["iam:ListUsers"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["iam:CreateUser"],
                gap: (120, 1800),
                ..S
            },
            Step {
                actions: &["iam:AttachUserPolicy"],
                gap: NEXT_DAY,
                ..S
            },
            Step {
                actions: &["iam:CreateAccessKey"],
                gap: (20, 300),
                ..S
            },
        ],
    },
    Scenario {
        name: INSIDER_TRUST,
        victim: Victim::Insider,
        tool: Tool::Usual,
        steps: &[
            Step {
                actions: &["iam:ListRoles"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["iam:GetRole"],
                count: (1, 3),
                gap: (30, 600),
                ..S
            },
            Step {
                actions: &["iam:UpdateAssumeRolePolicy"],
                gap: NEXT_DAY,
                ..S
            },
        ],
    },
    Scenario {
        name: INSIDER_COVER,
        victim: Victim::Insider,
        tool: Tool::Usual,
        steps: &[
            Step {
                actions: &["cloudtrail:DescribeTrails"],
                gap: (0, 0),
                ..S
            },
            Step {
                actions: &["cloudtrail:PutEventSelectors"],
                gap: (60, 900),
                ..S
            },
            Step {
                actions: &["ec2:DescribeFlowLogs"],
                gap: NEXT_DAY,
                ..S
            },
            Step {
                actions: &["ec2:DeleteFlowLogs"],
                gap: (30, 600),
                ..S
            },
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Catalog;

    #[test]
    fn tables_name_known_actions() {
        let c = Catalog::new();
        for s in SCENARIOS.iter().chain(UNTUNED) {
            assert!(!s.steps.is_empty());
            for st in s.steps {
                assert!(st.count.0 >= 1 && st.count.0 <= st.count.1, "{}", s.name);
                assert!(st.gap.0 <= st.gap.1);
                for a in st.actions {
                    c.id(a);
                }
            }
        }
    }
}

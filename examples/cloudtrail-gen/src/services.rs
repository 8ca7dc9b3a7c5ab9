//! AWS services acting in the account: CloudTrail encrypting its log files with KMS, AWS Config
//! describing resources, and Trusted Advisor's daily checks from "AWS Internal".
//!
//! These identities are `AWSService` (with `invokedBy`) or service-linked roles whose
//! `sourceIPAddress` and `userAgent` are the service's host name.

use rand::Rng as _;

use crate::agents::Agent;
use crate::api::{ApiId, Catalog};
use crate::dist::poisson;
use crate::ids;
use crate::org::Org;
use crate::payload::Focus;
use crate::record::{Call, Caller, Emitter, Ident, SessionAttrs, Tls};
use crate::timefmt::{DAY, HOUR};
use crate::world::World;
use crate::{Label, Rng};

/// What AWS Config describes when it re-records resources.
const CONFIG_READS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVolumes",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:GetPolicy",
    "s3:GetBucketPolicy",
    "s3:GetBucketAcl",
    "s3:GetBucketVersioning",
    "s3:GetBucketEncryption",
    "lambda:GetFunction20150331v2",
    "rds:DescribeDBInstances",
    "kms:DescribeKey",
    "dynamodb:DescribeTable",
];

/// Trusted Advisor's daily sweep.
const ADVISOR_READS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:DescribeSnapshots",
    "ec2:DescribeAddresses",
    "ec2:DescribeSecurityGroups",
    "iam:GetAccountSummary",
    "iam:GetAccountPasswordPolicy",
    "s3:ListBuckets",
    "s3:GetBucketAcl",
    "s3:GetBucketPolicy",
    "rds:DescribeDBInstances",
    "elasticloadbalancing:DescribeLoadBalancers",
    "cloudtrail:DescribeTrails",
    "autoscaling:DescribeAutoScalingGroups",
];

/// The AWS services actor.
#[derive(Debug)]
pub(crate) struct Services {
    cloudtrail: Caller,
    config: Caller,
    advisor: Caller,
    generate_data_key: ApiId,
    config_reads: Vec<ApiId>,
    advisor_reads: Vec<ApiId>,
    trail_focus: Focus,
}

fn linked(
    org: &Org,
    rng: &mut Rng,
    role: &str,
    session: &str,
    host: &str,
    internal: bool,
    created: i64,
) -> Caller {
    let key = ids::access_key(rng, "ASIA");
    let ident = Ident::assumed_role(
        &org.account,
        &format!("/aws-service-role/{host}/"),
        role,
        &ids::unique_id(rng, "AROA"),
        session,
        &key,
        &SessionAttrs {
            creation: created,
            mfa: false,
        },
        Some(host),
    );
    let src = if internal { "AWS Internal" } else { host };
    Caller {
        ident,
        ip: src.into(),
        agent: Agent::plain(src),
        region: org.region,
        console: false,
        vpce: None,
        tls: Tls::None,
        deny_rate: 0.0,
        throttle_rate: 0.0,
    }
}

impl Services {
    pub(crate) fn new(org: &Org, cat: &Catalog, rng: &mut Rng, start: i64) -> Self {
        let cloudtrail = Caller {
            ident: Ident::aws_service("cloudtrail.amazonaws.com"),
            ip: "cloudtrail.amazonaws.com".into(),
            agent: Agent::plain("cloudtrail.amazonaws.com"),
            region: org.region,
            console: false,
            vpce: None,
            tls: Tls::None,
            deny_rate: 0.0,
            throttle_rate: 0.0,
        };
        let config = linked(
            org,
            rng,
            "AWSServiceRoleForConfig",
            "AWSConfig-Describe",
            "config.amazonaws.com",
            false,
            start - 7 * HOUR,
        );
        let advisor_session = format!("TrustedAdvisor_{}_{}", org.account, ids::uuid(rng));
        let advisor = linked(
            org,
            rng,
            "AWSServiceRoleForTrustedAdvisor",
            &advisor_session,
            "trustedadvisor.amazonaws.com",
            true,
            start - 19 * HOUR,
        );
        let trail_focus = Focus {
            kms: org
                .kms_keys
                .iter()
                .position(|k| k.1 == "cloudtrail")
                .into_iter()
                .collect(),
            buckets: org.bucket_index("cloudtrail-logs").into_iter().collect(),
            ..Focus::default()
        };
        Services {
            cloudtrail,
            config,
            advisor,
            generate_data_key: cat.id("kms:GenerateDataKey"),
            config_reads: cat.ids(CONFIG_READS),
            advisor_reads: cat.ids(ADVISOR_READS),
            trail_focus,
        }
    }

    /// Service activity in the hour starting at `h0`.
    pub(crate) fn hour(&mut self, em: &mut Emitter<'_>, _w: &World, h0: i64) {
        // CloudTrail delivers a log file about every five minutes per region and trail.
        let mut t = h0 + em.rng.random_range(0..60);
        while t < h0 + HOUR {
            em.emit(Call::new(
                t,
                self.generate_data_key,
                &self.cloudtrail,
                &self.trail_focus,
                Label::default(),
            ));
            t += 300 + em.rng.random_range(-20..20);
        }
        // AWS Config re-describes resources as they change.
        let none = Focus::default();
        let n = poisson(em.rng, 9.0);
        let mut times: Vec<i64> = (0..n).map(|_| h0 + em.rng.random_range(0..HOUR)).collect();
        times.sort_unstable();
        for t in times {
            let api = self.config_reads[em.rng.random_range(0..self.config_reads.len())];
            em.emit(Call::new(t, api, &self.config, &none, Label::default()));
        }
        // Trusted Advisor refreshes its checks once a day.
        if h0.rem_euclid(DAY) / HOUR == 5 {
            let mut t = h0 + em.rng.random_range(0..1800);
            for i in 0..self.advisor_reads.len() {
                let api = self.advisor_reads[i];
                em.emit(Call::new(t, api, &self.advisor, &none, Label::default()));
                t += em.rng.random_range(0..4);
            }
        }
    }
}

//! CI/CD: GitHub Actions assuming a deploy role through OIDC, running Terraform, docker pushes
//! and aws-cli deploys in bursts during the working day, plus a nightly drift check.
//!
//! Every run starts with `AssumeRoleWithWebIdentity` (a `WebIdentityUser` presenting the
//! `repo:<org>/<repo>:ref:refs/heads/main` subject) and the `GetCallerIdentity` that
//! configure-aws-credentials makes, then works under the `GitHubActions` session. One apply in
//! the middle of the stream introduces services CI never touched before (a queue, a state
//! machine, a new Lambda function and its role): labelled `ci-new-service`.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::Rng as _;
use serde_json::json;

use crate::agents::{self, Agent};
use crate::api::{ApiId, Catalog};
use crate::dist::{between, poisson};
use crate::ids;
use crate::org::{CI_OCTETS, Org};
use crate::payload::Focus;
use crate::record::{Call, Caller, Emitter, Fail, Ident, SessionAttrs, Tls};
use crate::timefmt::{DAY, HOUR, local_hour, weekday};
use crate::world::{Minted, World, assume_payload};
use crate::{Label, Rng};

/// Benign novelty: CI touching services it never used before.
pub const CI_NEW_SERVICE: &str = "ci-new-service";

/// What `terraform plan` refreshes.
const PLAN_READS: &[&str] = &[
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeRouteTables",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeImages",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "s3:GetBucketPolicy",
    "s3:GetBucketVersioning",
    "s3:GetBucketEncryption",
    "s3:GetBucketAcl",
    "s3:GetBucketTagging",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketLogging",
    "lambda:GetFunction20150331v2",
    "lambda:GetPolicy20150331v2",
    "lambda:ListVersionsByFunction20150331",
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "ecs:DescribeClusters",
    "logs:DescribeLogGroups",
    "route53:ListResourceRecordSets",
    "cloudwatch:DescribeAlarms",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "dynamodb:DescribeTable",
    "sqs:GetQueueAttributes",
    "rds:DescribeDBInstances",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "autoscaling:DescribeAutoScalingGroups",
];

/// Changes an ordinary apply makes.
const APPLY_WRITES: &[&str] = &[
    "ecs:RegisterTaskDefinition",
    "lambda:UpdateFunctionConfiguration20150331v2",
    "cloudwatch:PutMetricAlarm",
    "iam:TagRole",
    "ec2:AuthorizeSecurityGroupIngress",
    "route53:ChangeResourceRecordSets",
    "logs:PutRetentionPolicy",
    "ec2:CreateTags",
    "autoscaling:UpdateAutoScalingGroup",
];

/// Everything else CI normally does.
const DEPLOY_ACTIONS: &[&str] = &[
    "sts:GetCallerIdentity",
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListObjects",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecs:UpdateService",
    "lambda:UpdateFunctionCode20150331v2",
    "lambda:GetFunctionConfiguration20150331v2",
    "lambda:PublishVersion20150331",
    "cloudfront:CreateInvalidation",
];

/// The resources the new-service apply creates, in order.
const NEW_SERVICE_STEPS: &[&str] = &[
    "sqs:CreateQueue",
    "sqs:SetQueueAttributes",
    "sqs:GetQueueAttributes",
    "iam:CreateRole",
    "iam:AttachRolePolicy",
    "iam:PutRolePolicy",
    "iam:GetRole",
    "logs:CreateLogGroup",
    "logs:PutRetentionPolicy",
    "lambda:CreateFunction20150331",
    "states:CreateStateMachine",
    "states:DescribeStateMachine",
];

/// What later plans refresh once the new resources exist.
const NEW_SERVICE_READS: &[&str] = &[
    "sqs:GetQueueAttributes",
    "states:DescribeStateMachine",
    "lambda:GetFunction20150331v2",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    TerraformPlan,
    TerraformApply,
    ServiceDeploy,
    LambdaDeploy,
    WebDeploy,
}

/// The GitHub Actions deploy role.
#[derive(Debug)]
pub(crate) struct Ci {
    role: String,
    role_id: String,
    role_arn: String,
    cli: Agent,
    tf: Agent,
    docker: Agent,
    configure: Agent,
    tz_min: i32,
    plan_reads: Vec<ApiId>,
    apply_writes: Vec<ApiId>,
    ids: Ids,
    /// When the apply that introduces the new service runs.
    pub new_service_t: i64,
    new_done: bool,
    new_steps: Vec<ApiId>,
    new_reads: Vec<ApiId>,
    /// New actions (labelled for a day after they first appear).
    novel: BTreeSet<ApiId>,
    state_focus: Focus,
    lock_focus: Focus,
    web_focus: Focus,
    /// Name of the role the new-service apply creates.
    pub new_role: &'static str,
}

#[derive(Debug)]
struct Ids {
    get_object: ApiId,
    put_object: ApiId,
    list_objects: ApiId,
    get_item: ApiId,
    put_item: ApiId,
    delete_item: ApiId,
    ecr_token: ApiId,
    ecr_check: ApiId,
    ecr_init: ApiId,
    ecr_complete: ApiId,
    ecr_put: ApiId,
    ecs_describe_td: ApiId,
    ecs_register: ApiId,
    ecs_update: ApiId,
    ecs_describe: ApiId,
    lambda_update: ApiId,
    lambda_get_cfg: ApiId,
    lambda_publish: ApiId,
    invalidate: ApiId,
}

impl Ci {
    pub(crate) fn new(org: &mut Org, cat: &Catalog, rng: &mut Rng, new_service_t: i64) -> Self {
        let role = "github-actions-deploy".to_owned();
        org.roles.push(role.clone());
        let role_id = ids::unique_id(rng, "AROA");
        let role_arn = format!("arn:aws:iam::{}:role/{role}", org.account);
        let cli = Agent::Cli(
            "aws-cli/2.15.17 Python/3.11.6 Linux/6.5.0-1016-azure exe/x86_64.ubuntu.22 prompt/off"
                .into(),
        );
        let usual: BTreeSet<ApiId> = PLAN_READS
            .iter()
            .chain(APPLY_WRITES)
            .chain(DEPLOY_ACTIONS)
            .map(|a| cat.id(a))
            .collect();
        let new_steps = cat.ids(NEW_SERVICE_STEPS);
        let new_reads = cat.ids(NEW_SERVICE_READS);
        let novel = new_steps
            .iter()
            .chain(&new_reads)
            .copied()
            .filter(|a| !usual.contains(a))
            .collect();
        let state_focus = Focus {
            buckets: org.bucket_index("terraform-state").into_iter().collect(),
            ..Focus::default()
        };
        let lock_focus = Focus {
            tables: org
                .tables
                .iter()
                .position(|t| *t == "terraform-locks")
                .into_iter()
                .collect(),
            ..Focus::default()
        };
        let web_focus = Focus {
            buckets: org.bucket_index("web-static").into_iter().collect(),
            ..Focus::default()
        };
        Ci {
            role,
            role_id,
            role_arn,
            cli,
            tf: agents::terraform(["1.6.6", "1.7.4"][rng.random_range(0..2)], "5.40.0"),
            docker: Agent::plain(agents::DOCKER),
            configure: agents::js_v3(
                "linux#6.5.0-1016-azure",
                "20.11.1",
                "configure-aws-credentials-for-github-actions",
            ),
            tz_min: org.offices[0].tz_min,
            plan_reads: cat.ids(PLAN_READS),
            apply_writes: cat.ids(APPLY_WRITES),
            ids: Ids {
                get_object: cat.id("s3:GetObject"),
                put_object: cat.id("s3:PutObject"),
                list_objects: cat.id("s3:ListObjects"),
                get_item: cat.id("dynamodb:GetItem"),
                put_item: cat.id("dynamodb:PutItem"),
                delete_item: cat.id("dynamodb:DeleteItem"),
                ecr_token: cat.id("ecr:GetAuthorizationToken"),
                ecr_check: cat.id("ecr:BatchCheckLayerAvailability"),
                ecr_init: cat.id("ecr:InitiateLayerUpload"),
                ecr_complete: cat.id("ecr:CompleteLayerUpload"),
                ecr_put: cat.id("ecr:PutImage"),
                ecs_describe_td: cat.id("ecs:DescribeTaskDefinition"),
                ecs_register: cat.id("ecs:RegisterTaskDefinition"),
                ecs_update: cat.id("ecs:UpdateService"),
                ecs_describe: cat.id("ecs:DescribeServices"),
                lambda_update: cat.id("lambda:UpdateFunctionCode20150331v2"),
                lambda_get_cfg: cat.id("lambda:GetFunctionConfiguration20150331v2"),
                lambda_publish: cat.id("lambda:PublishVersion20150331"),
                invalidate: cat.id("cloudfront:CreateInvalidation"),
            },
            new_service_t,
            new_done: false,
            new_steps,
            new_reads,
            novel,
            state_focus,
            lock_focus,
            web_focus,
            new_role: "invoice-reconciler-lambda-role",
        }
    }

    /// Runs starting in the hour beginning at `h0`.
    pub(crate) fn hour(&mut self, em: &mut Emitter<'_>, w: &World, h0: i64) {
        let mut starts = Vec::new();
        let h = local_hour(h0, self.tz_min);
        if weekday(h0, self.tz_min) < 5 && (9.0..19.0).contains(&h) {
            for _ in 0..poisson(em.rng, 0.9) {
                starts.push((h0 + em.rng.random_range(0..HOUR), None));
            }
        }
        if h0.rem_euclid(DAY) / HOUR == 2 {
            starts.push((
                h0 + em.rng.random_range(0..600),
                Some(RunKind::TerraformPlan),
            ));
        }
        if !self.new_done && self.new_service_t >= h0 && self.new_service_t < h0 + HOUR {
            starts.push((self.new_service_t, Some(RunKind::TerraformApply)));
        }
        starts.sort_by_key(|s| s.0);
        for (t, kind) in starts {
            let kind = kind.unwrap_or_else(|| {
                let x: f64 = em.rng.random();
                match x {
                    x if x < 0.25 => RunKind::TerraformPlan,
                    x if x < 0.45 => RunKind::TerraformApply,
                    x if x < 0.75 => RunKind::ServiceDeploy,
                    x if x < 0.88 => RunKind::LambdaDeploy,
                    _ => RunKind::WebDeploy,
                }
            });
            self.run(em, w, t, kind);
        }
    }

    fn label(&self, api: ApiId, t: i64) -> Label {
        let novel = self.new_done && t < self.new_service_t + DAY && self.novel.contains(&api);
        Label {
            benign_novelty: novel.then_some(CI_NEW_SERVICE),
            ..Label::default()
        }
    }

    fn run(&mut self, em: &mut Emitter<'_>, w: &World, t0: i64, kind: RunKind) {
        let org = em.org;
        let repo = match kind {
            RunKind::TerraformPlan | RunKind::TerraformApply => "infrastructure".to_owned(),
            RunKind::ServiceDeploy => {
                org.ecs_services[em.rng.random_range(0..org.ecs_services.len())].to_owned()
            }
            RunKind::LambdaDeploy => "lambdas".to_owned(),
            RunKind::WebDeploy => "web".to_owned(),
        };
        let git_ref = if kind == RunKind::TerraformPlan && em.rng.random::<f64>() < 0.7 {
            "pull_request"
        } else {
            "ref:refs/heads/main"
        };
        let subject = format!("repo:{}/{repo}:{git_ref}", org.github_org);
        let ip: Arc<str> = ids::public_ip(em.rng, CI_OCTETS).into();
        let key = ids::access_key(em.rng, "ASIA");
        let session = "GitHubActions";

        let web = Caller {
            ident: Ident::web_identity(&org.account, &subject),
            ip: ip.clone(),
            agent: self.configure.clone(),
            region: org.region,
            console: false,
            vpce: None,
            tls: Tls::V13,
            deny_rate: 0.0,
            throttle_rate: 0.0,
        };
        let minted = Minted {
            role_arn: &self.role_arn,
            role_id: &self.role_id,
            session,
            key: &key,
            t: t0,
            duration: HOUR,
        };
        let provider = format!(
            "arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com",
            org.account
        );
        let payload = assume_payload(
            org,
            em.rng,
            &minted,
            json!({}),
            json!({"subjectFromWebIdentityToken": subject, "provider": provider, "audience": "sts.amazonaws.com"}),
        );
        let none = Focus::default();
        let mut call = Call::new(t0, w.special.assume_web, &web, &none, Label::default());
        call.fail = Fail::Never;
        call.payload = Some(payload);
        em.emit(call);

        let ident = Ident::assumed_role(
            &org.account,
            "/",
            &self.role,
            &self.role_id,
            session,
            &key,
            &SessionAttrs {
                creation: t0,
                mfa: false,
            },
            None,
        );
        let mut caller = Caller {
            ident,
            agent: self.configure.clone(),
            deny_rate: 0.002,
            throttle_rate: 0.002,
            ..web
        };
        let mut t = t0 + 1;
        em.emit(Call::new(
            t,
            w.special.caller_identity,
            &caller,
            &none,
            Label::default(),
        ));
        t += em.rng.random_range(5..40);

        match kind {
            RunKind::TerraformPlan | RunKind::TerraformApply => {
                caller.agent = self.tf.clone();
                let apply = kind == RunKind::TerraformApply;
                if apply {
                    em.emit(Call::new(
                        t,
                        self.ids.put_item,
                        &caller,
                        &self.lock_focus,
                        Label::default(),
                    ));
                    t += 1;
                }
                em.emit(Call::new(
                    t,
                    self.ids.get_object,
                    &caller,
                    &self.state_focus,
                    Label::default(),
                ));
                t += 1;
                let mut reads = self.plan_reads.clone();
                if self.new_done {
                    reads.extend(&self.new_reads);
                }
                for &api in &reads {
                    for _ in 0..between(em.rng, 1, 3) {
                        let lab = self.label(api, t);
                        em.emit(Call::new(t, api, &caller, &none, lab));
                        t += i64::from(em.rng.random::<f64>() < 0.3);
                    }
                }
                if apply {
                    t += em.rng.random_range(20..90);
                    let is_new = !self.new_done && t0 == self.new_service_t;
                    if is_new {
                        self.new_done = true;
                        let focus = Focus {
                            role: Some(self.new_role.to_owned()),
                            function: Some("invoice-reconciler".to_owned()),
                            log_groups: org
                                .log_groups
                                .iter()
                                .position(|g| g == "/aws/lambda/invoice-pdf-renderer")
                                .into_iter()
                                .collect(),
                            ..Focus::default()
                        };
                        for &api in &self.new_steps.clone() {
                            let lab = Label {
                                benign_novelty: Some(CI_NEW_SERVICE),
                                ..Label::default()
                            };
                            em.emit(Call::new(t, api, &caller, &focus, lab));
                            t += em.rng.random_range(1..6);
                        }
                    } else {
                        for _ in 0..between(em.rng, 1, 3) {
                            let api =
                                self.apply_writes[em.rng.random_range(0..self.apply_writes.len())];
                            em.emit(Call::new(t, api, &caller, &none, Label::default()));
                            t += em.rng.random_range(1..10);
                        }
                    }
                    em.emit(Call::new(
                        t,
                        self.ids.put_object,
                        &caller,
                        &self.state_focus,
                        Label::default(),
                    ));
                    t += 1;
                    em.emit(Call::new(
                        t,
                        self.ids.delete_item,
                        &caller,
                        &self.lock_focus,
                        Label::default(),
                    ));
                } else if em.rng.random::<f64>() < 0.3 {
                    em.emit(Call::new(
                        t,
                        self.ids.get_item,
                        &caller,
                        &self.lock_focus,
                        Label::default(),
                    ));
                }
            }
            RunKind::ServiceDeploy => {
                caller.agent = self.cli.clone();
                em.emit(Call::new(
                    t,
                    self.ids.ecr_token,
                    &caller,
                    &none,
                    Label::default(),
                ));
                t += em.rng.random_range(20..120);
                caller.agent = self.docker.clone();
                let layers = between(em.rng, 3, 9);
                for _ in 0..layers {
                    em.emit(Call::new(
                        t,
                        self.ids.ecr_check,
                        &caller,
                        &none,
                        Label::default(),
                    ));
                    t += i64::from(em.rng.random::<f64>() < 0.5);
                }
                for _ in 0..between(em.rng, 1, layers.min(3)) {
                    em.emit(Call::new(
                        t,
                        self.ids.ecr_init,
                        &caller,
                        &none,
                        Label::default(),
                    ));
                    t += em.rng.random_range(2..25);
                    em.emit(Call::new(
                        t,
                        self.ids.ecr_complete,
                        &caller,
                        &none,
                        Label::default(),
                    ));
                }
                t += 2;
                em.emit(Call::new(
                    t,
                    self.ids.ecr_put,
                    &caller,
                    &none,
                    Label::default(),
                ));
                caller.agent = self.cli.clone();
                t += em.rng.random_range(5..20);
                for api in [
                    self.ids.ecs_describe_td,
                    self.ids.ecs_register,
                    self.ids.ecs_update,
                ] {
                    em.emit(Call::new(t, api, &caller, &none, Label::default()));
                    t += em.rng.random_range(1..4);
                }
                for _ in 0..between(em.rng, 3, 10) {
                    t += 15;
                    em.emit(Call::new(
                        t,
                        self.ids.ecs_describe,
                        &caller,
                        &none,
                        Label::default(),
                    ));
                }
            }
            RunKind::LambdaDeploy => {
                caller.agent = self.cli.clone();
                for _ in 0..between(em.rng, 1, 3) {
                    let f = Focus {
                        functions: vec![em.rng.random_range(0..org.functions.len())],
                        ..Focus::default()
                    };
                    em.emit(Call::new(
                        t,
                        self.ids.lambda_update,
                        &caller,
                        &f,
                        Label::default(),
                    ));
                    for _ in 0..between(em.rng, 1, 4) {
                        t += em.rng.random_range(2..6);
                        em.emit(Call::new(
                            t,
                            self.ids.lambda_get_cfg,
                            &caller,
                            &f,
                            Label::default(),
                        ));
                    }
                    t += 1;
                    em.emit(Call::new(
                        t,
                        self.ids.lambda_publish,
                        &caller,
                        &f,
                        Label::default(),
                    ));
                    t += em.rng.random_range(3..15);
                }
            }
            RunKind::WebDeploy => {
                caller.agent = self.cli.clone();
                em.emit(Call::new(
                    t,
                    self.ids.list_objects,
                    &caller,
                    &self.web_focus,
                    Label::default(),
                ));
                for _ in 0..between(em.rng, 8, 40) {
                    t += i64::from(em.rng.random::<f64>() < 0.4);
                    em.emit(Call::new(
                        t,
                        self.ids.put_object,
                        &caller,
                        &self.web_focus,
                        Label::default(),
                    ));
                }
                t += 2;
                em.emit(Call::new(
                    t,
                    self.ids.invalidate,
                    &caller,
                    &none,
                    Label::default(),
                ));
            }
        }
    }
}

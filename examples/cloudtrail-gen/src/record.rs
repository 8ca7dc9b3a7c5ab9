//! Rendering one CloudTrail record: identities, callers, error decisions and the JSON line.
//!
//! A [`Ident`] (`userIdentity`) is serialised once per credential and spliced into every record
//! made with it, which keeps rendering cheap; a [`Caller`] adds where the request came from and
//! with which client. [`Emitter::emit`] turns one [`Call`] into an [`Event`].

use std::sync::Arc;

use rand::Rng as _;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::agents::{Agent, S3_CONSOLE};
use crate::api::{Api, ApiId, Catalog};
use crate::ids;
use crate::org::Org;
use crate::payload::{Focus, Payload, Px, build};
use crate::timefmt::rfc3339;
use crate::{Event, Label, Rng};

/// A `userIdentity` block, serialised once, plus the principal it names.
#[derive(Debug)]
pub(crate) struct Ident {
    pub json: Box<RawValue>,
    /// ARN (or service or web identity name) used in label files.
    pub principal: Arc<str>,
    /// ARN quoted in AccessDenied messages.
    pub arn: String,
}

/// `userIdentity` in CloudTrail's field order (`type` first, `invokedBy` last).
#[derive(Serialize, Default)]
struct Uid<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "principalId", skip_serializing_if = "Option::is_none")]
    principal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<&'a str>,
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(rename = "accessKeyId", skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(rename = "userName", skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    #[serde(rename = "sessionContext", skip_serializing_if = "Option::is_none")]
    session_context: Option<SessionContext<'a>>,
    #[serde(rename = "invokedBy", skip_serializing_if = "Option::is_none")]
    invoked_by: Option<&'a str>,
    #[serde(rename = "identityProvider", skip_serializing_if = "Option::is_none")]
    identity_provider: Option<&'a str>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize, Default)]
struct Issuer<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(rename = "principalId", skip_serializing_if = "Option::is_none")]
    principal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<&'a str>,
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(rename = "userName", skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Attributes {
    #[serde(rename = "creationDate")]
    creation_date: String,
    #[serde(rename = "mfaAuthenticated")]
    mfa_authenticated: &'static str,
}

#[derive(Serialize)]
struct SessionContext<'a> {
    #[serde(rename = "sessionIssuer")]
    session_issuer: Issuer<'a>,
    #[serde(rename = "webIdFederationData")]
    web_id_federation_data: Empty,
    attributes: Attributes,
}

fn session_context<'a>(issuer: Issuer<'a>, s: &SessionAttrs) -> SessionContext<'a> {
    SessionContext {
        session_issuer: issuer,
        web_id_federation_data: Empty {},
        attributes: Attributes {
            creation_date: rfc3339(s.creation),
            mfa_authenticated: if s.mfa { "true" } else { "false" },
        },
    }
}

fn raw(u: &Uid<'_>) -> Box<RawValue> {
    match serde_json::to_string(u).map(RawValue::from_string) {
        Ok(Ok(r)) => r,
        _ => panic!("userIdentity serialisation cannot fail"),
    }
}

/// How an assumed-role session was created.
#[derive(Debug, Clone)]
pub(crate) struct SessionAttrs {
    pub creation: i64,
    pub mfa: bool,
}

impl Ident {
    fn new(u: &Uid<'_>, principal: String, arn: String) -> Arc<Ident> {
        Arc::new(Ident {
            json: raw(u),
            principal: principal.into(),
            arn,
        })
    }

    /// An IAM user: with a long-term key (`session: None`), a console session, or (empty
    /// `key`) signing in.
    pub(crate) fn iam_user(
        account: &str,
        user: &str,
        user_id: &str,
        key: &str,
        session: Option<&SessionAttrs>,
    ) -> Arc<Ident> {
        let arn = format!("arn:aws:iam::{account}:user/{user}");
        let u = Uid {
            kind: "IAMUser",
            principal_id: Some(user_id),
            arn: Some(&arn),
            account_id: Some(account),
            access_key_id: (!key.is_empty()).then_some(key),
            user_name: Some(user),
            session_context: session.map(|s| session_context(Issuer::default(), s)),
            ..Uid::default()
        };
        Ident::new(&u, arn.clone(), arn.clone())
    }

    /// An assumed-role session. `role_path` is the IAM path (`/` or
    /// `/aws-reserved/sso.amazonaws.com/`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assumed_role(
        account: &str,
        role_path: &str,
        role: &str,
        role_id: &str,
        session: &str,
        key: &str,
        attrs: &SessionAttrs,
        invoked_by: Option<&str>,
    ) -> Arc<Ident> {
        let arn = format!("arn:aws:sts::{account}:assumed-role/{role}/{session}");
        let principal_id = format!("{role_id}:{session}");
        let role_arn = format!("arn:aws:iam::{account}:role{role_path}{role}");
        let issuer = Issuer {
            kind: Some("Role"),
            principal_id: Some(role_id),
            arn: Some(&role_arn),
            account_id: Some(account),
            user_name: Some(role),
        };
        let u = Uid {
            kind: "AssumedRole",
            principal_id: Some(&principal_id),
            arn: Some(&arn),
            account_id: Some(account),
            access_key_id: Some(key),
            session_context: Some(session_context(issuer, attrs)),
            invoked_by,
            ..Uid::default()
        };
        Ident::new(&u, arn.clone(), arn.clone())
    }

    /// An AWS service acting on its own behalf.
    pub(crate) fn aws_service(host: &str) -> Arc<Ident> {
        let u = Uid {
            kind: "AWSService",
            invoked_by: Some(host),
            ..Uid::default()
        };
        Ident::new(&u, host.to_owned(), host.to_owned())
    }

    /// A GitHub Actions OIDC token presented to `AssumeRoleWithWebIdentity`.
    pub(crate) fn web_identity(account: &str, subject: &str) -> Arc<Ident> {
        let provider =
            format!("arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com");
        let principal_id = format!("{provider}:sts.amazonaws.com:{subject}");
        let u = Uid {
            kind: "WebIdentityUser",
            principal_id: Some(&principal_id),
            user_name: Some(subject),
            identity_provider: Some(&provider),
            ..Uid::default()
        };
        Ident::new(&u, subject.to_owned(), subject.to_owned())
    }

    /// A SAML assertion from IAM Identity Center presented to `AssumeRoleWithSAML`.
    pub(crate) fn saml_user(qualifier: &str, email: &str) -> Arc<Ident> {
        let principal_id = format!("{qualifier}:{email}");
        let u = Uid {
            kind: "SAMLUser",
            principal_id: Some(&principal_id),
            user_name: Some(email),
            identity_provider: Some(qualifier),
            ..Uid::default()
        };
        Ident::new(&u, email.to_owned(), email.to_owned())
    }

    /// A principal of another account (a SaaS vendor) calling `AssumeRole` into this one.
    pub(crate) fn aws_account(principal_id: &str, account: &str) -> Arc<Ident> {
        let u = Uid {
            kind: "AWSAccount",
            principal_id: Some(principal_id),
            account_id: Some(account),
            ..Uid::default()
        };
        let root = format!("arn:aws:iam::{account}:root");
        Ident::new(&u, root.clone(), root)
    }
}

/// TLS of the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tls {
    /// No `tlsDetails` (AWS services calling from inside AWS).
    None,
    V12,
    V13,
}

/// Who calls, from where, with which client, and how often their calls fail.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub ident: Arc<Ident>,
    pub ip: Arc<str>,
    pub agent: Agent,
    pub region: &'static str,
    /// Requests made by the AWS console on the user's behalf.
    pub console: bool,
    pub vpce: Option<Arc<str>>,
    pub tls: Tls,
    /// Probability of an AccessDenied on an ordinary call.
    pub deny_rate: f64,
    /// Probability of throttling on an ordinary call.
    pub throttle_rate: f64,
}

/// How a call fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fail {
    /// Draw from the caller's rates and the action's usual errors.
    Auto,
    /// Succeeds.
    Never,
    /// Fails with AccessDenied with this probability, otherwise succeeds.
    DeniedWith(f64),
}

/// One request to render.
#[derive(Debug)]
pub(crate) struct Call<'c> {
    pub t: i64,
    pub api: ApiId,
    pub caller: &'c Caller,
    pub focus: &'c Focus,
    pub fail: Fail,
    pub label: Label,
    /// Overrides the caller's region (enumeration across regions).
    pub region: Option<&'static str>,
    /// A prepared payload (credential-minting calls build their own).
    pub payload: Option<Payload>,
    /// Index within a burst, for sequential resource picks.
    pub nth: u32,
}

impl<'c> Call<'c> {
    /// An ordinary call with automatic errors.
    pub(crate) fn new(
        t: i64,
        api: ApiId,
        caller: &'c Caller,
        focus: &'c Focus,
        label: Label,
    ) -> Self {
        Call {
            t,
            api,
            caller,
            focus,
            fail: Fail::Auto,
            label,
            region: None,
            payload: None,
            nth: 0,
        }
    }
}

#[derive(Serialize)]
struct TlsDetails<'a> {
    #[serde(rename = "tlsVersion")]
    version: &'static str,
    #[serde(rename = "cipherSuite")]
    cipher: &'static str,
    #[serde(rename = "clientProvidedHostHeader")]
    host: &'a str,
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(rename = "eventVersion")]
    event_version: &'static str,
    #[serde(rename = "userIdentity")]
    user_identity: &'a RawValue,
    #[serde(rename = "eventTime")]
    event_time: &'a str,
    #[serde(rename = "eventSource")]
    event_source: &'a str,
    #[serde(rename = "eventName")]
    event_name: &'a str,
    #[serde(rename = "awsRegion")]
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip: &'a str,
    #[serde(rename = "userAgent")]
    user_agent: &'a str,
    #[serde(rename = "errorCode", skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(rename = "errorMessage", skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    #[serde(rename = "requestParameters")]
    request_parameters: &'a Value,
    #[serde(rename = "responseElements")]
    response_elements: &'a Value,
    #[serde(
        rename = "additionalEventData",
        skip_serializing_if = "Option::is_none"
    )]
    additional: Option<&'a Value>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    #[serde(rename = "readOnly")]
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<&'a Value>,
    #[serde(rename = "eventType")]
    event_type: &'static str,
    #[serde(rename = "managementEvent")]
    management_event: bool,
    #[serde(rename = "recipientAccountId")]
    recipient: &'a str,
    #[serde(rename = "vpcEndpointId", skip_serializing_if = "Option::is_none")]
    vpc_endpoint_id: Option<&'a str>,
    #[serde(
        rename = "vpcEndpointAccountId",
        skip_serializing_if = "Option::is_none"
    )]
    vpc_endpoint_account: Option<&'a str>,
    #[serde(rename = "eventCategory")]
    event_category: &'static str,
    #[serde(rename = "tlsDetails", skip_serializing_if = "Option::is_none")]
    tls: Option<TlsDetails<'a>>,
    #[serde(
        rename = "sessionCredentialFromConsole",
        skip_serializing_if = "Option::is_none"
    )]
    from_console: Option<&'static str>,
}

/// Error codes an action returns now and then in normal operation.
fn natural_error(full: &str) -> Option<(f64, &'static str, &'static str)> {
    Some(match full {
        "s3:GetBucketPolicy" => (
            0.4,
            "NoSuchBucketPolicy",
            "The bucket policy does not exist",
        ),
        "s3:GetBucketTagging" => (0.3, "NoSuchTagSet", "The TagSet does not exist"),
        "s3:GetBucketPublicAccessBlock" => (
            0.1,
            "NoSuchPublicAccessBlockConfiguration",
            "The public access block configuration was not found",
        ),
        "iam:GetLoginProfile" => (0.3, "NoSuchEntity", "The user with name cannot be found."),
        "lambda:GetPolicy20150331v2" => (
            0.4,
            "ResourceNotFoundException",
            "The resource you requested does not exist.",
        ),
        "ssm:GetParameter" => (0.01, "ParameterNotFound", "Parameter not found."),
        "secretsmanager:GetSecretValue" => (
            0.003,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ),
        "dynamodb:PutItem" | "dynamodb:UpdateItem" => (
            0.004,
            "ConditionalCheckFailedException",
            "The conditional request failed",
        ),
        "logs:CreateLogStream" => (
            0.02,
            "ResourceAlreadyExistsException",
            "The specified log stream already exists",
        ),
        "logs:CreateLogGroup" => (
            0.2,
            "ResourceAlreadyExistsException",
            "The specified log group already exists",
        ),
        "iam:GetUser" | "iam:GetRole" => (0.01, "NoSuchEntity", "The entity cannot be found."),
        _ => return None,
    })
}

/// Services whose JSON protocol calls the denial `AccessDeniedException`.
const DENIED_EXCEPTION: &[&str] = &[
    "kms",
    "secretsmanager",
    "ssm",
    "logs",
    "ecr",
    "glue",
    "athena",
    "securityhub",
    "guardduty",
    "ce",
    "ecs",
    "states",
    "tagging",
    "config",
    "organizations",
    "elasticache",
];

fn iam_action(api: &Api) -> String {
    let stem = api
        .name
        .find(|c: char| c.is_ascii_digit())
        .map_or(api.name, |i| &api.name[..i]);
    let stem = if api.full == "s3:ListObjects" {
        "ListBucket"
    } else {
        stem
    };
    format!("{}:{stem}", api.svc.key)
}

fn denied(api: &Api, arn: &str, rng: &mut Rng) -> (&'static str, String) {
    let action = iam_action(api);
    match api.svc.key {
        "ec2" => {
            let mut msg = format!(
                "You are not authorized to perform this operation. User: {arn} is not authorized to perform: {action} because no identity-based policy allows the {action} action"
            );
            if !api.read_only {
                msg.push_str(". Encoded authorization failure message: ");
                msg.push_str(&ids::b64(rng, 120));
            }
            ("Client.UnauthorizedOperation", msg)
        }
        "s3" => ("AccessDenied", "Access Denied".to_owned()),
        key => {
            let code = if DENIED_EXCEPTION.contains(&key) {
                "AccessDeniedException"
            } else {
                "AccessDenied"
            };
            (
                code,
                format!(
                    "User: {arn} is not authorized to perform: {action} because no identity-based policy allows the {action} action"
                ),
            )
        }
    }
}

fn throttled(api: &Api) -> (&'static str, &'static str) {
    match api.svc.key {
        "ec2" => ("Client.RequestLimitExceeded", "Request limit exceeded."),
        "kms" => (
            "ThrottlingException",
            "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.",
        ),
        "dynamodb" => (
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        _ => ("ThrottlingException", "Rate exceeded"),
    }
}

/// Renders calls into events.
#[derive(Debug)]
pub(crate) struct Emitter<'a> {
    pub org: &'a Org,
    pub cat: &'a Catalog,
    pub rng: &'a mut Rng,
    pub out: &'a mut Vec<Event>,
    pub seq: &'a mut u64,
}

impl Emitter<'_> {
    /// A uniform float in `[0, 1)`.
    pub(crate) fn f(&mut self) -> f64 {
        self.rng.random()
    }

    /// Renders one call and queues the event.
    pub(crate) fn emit(&mut self, c: Call<'_>) {
        let api = self.cat.get(c.api);
        let caller = c.caller;
        let region = c.region.unwrap_or(if api.svc.global {
            "us-east-1"
        } else {
            caller.region
        });
        let payload = match c.payload {
            Some(p) => p,
            None => build(
                api,
                &mut Px {
                    org: self.org,
                    rng: self.rng,
                    focus: c.focus,
                    t: c.t,
                    region,
                    nth: c.nth,
                },
            ),
        };

        let mut error: Option<(&str, String)> = None;
        match c.fail {
            Fail::Never => {}
            Fail::DeniedWith(p) => {
                if self.rng.random::<f64>() < p {
                    error = Some(denied(api, &caller.ident.arn, self.rng));
                }
            }
            Fail::Auto => {
                let x: f64 = self.rng.random();
                if x < caller.deny_rate {
                    error = Some(denied(api, &caller.ident.arn, self.rng));
                } else if x < caller.deny_rate + caller.throttle_rate {
                    let (code, msg) = throttled(api);
                    error = Some((code, msg.to_owned()));
                } else if let Some((p, code, msg)) = natural_error(api.full)
                    && self.rng.random::<f64>() < p
                {
                    error = Some((code, msg.to_owned()));
                }
            }
        }

        let id_bits: u128 = self.rng.random();
        let event_id = ids::uuid_from(id_bits);
        let console_login = api.full == "signin:ConsoleLogin";
        let request_id = if console_login {
            None
        } else if api.svc.key == "s3" {
            Some(ids::s3_request_id(self.rng))
        } else {
            Some(ids::uuid(self.rng))
        };

        // Requests the console makes for the user: the S3 console has its own client, and some
        // pages call from inside AWS.
        let mut ip: &str = &caller.ip;
        let mut tls = caller.tls;
        let ua_owned;
        let ua: &str = if caller.console && !console_login && api.svc.key == "s3" {
            S3_CONSOLE
        } else if caller.console && !console_login && !api.data && self.rng.random::<f64>() < 0.08 {
            ip = "AWS Internal";
            tls = Tls::None;
            "AWS Internal"
        } else {
            ua_owned = caller.agent.render(api);
            &ua_owned
        };

        let default_host;
        let host: &str = match &payload.host {
            Some(h) => h,
            None => {
                default_host = if console_login {
                    "signin.aws.amazon.com".to_owned()
                } else if api.svc.global {
                    format!("{}.amazonaws.com", api.svc.endpoint)
                } else {
                    format!("{}.{region}.amazonaws.com", api.svc.endpoint)
                };
                &default_host
            }
        };
        let tls_details = match tls {
            Tls::None => None,
            Tls::V12 => Some(TlsDetails {
                version: "TLSv1.2",
                cipher: "ECDHE-RSA-AES128-GCM-SHA256",
                host,
            }),
            Tls::V13 => Some(TlsDetails {
                version: "TLSv1.3",
                cipher: "TLS_AES_128_GCM_SHA256",
                host,
            }),
        };

        let time = rfc3339(c.t);
        let null = Value::Null;
        let rec = Record {
            event_version: "1.08",
            user_identity: &caller.ident.json,
            event_time: &time,
            event_source: api.svc.source,
            event_name: api.name,
            aws_region: region,
            source_ip: ip,
            user_agent: ua,
            error_code: error.as_ref().map(|e| e.0),
            error_message: error.as_ref().map(|e| e.1.as_str()),
            request_parameters: &payload.req,
            response_elements: if error.is_some() {
                &null
            } else {
                &payload.resp
            },
            additional: payload.extra.as_ref(),
            request_id: request_id.as_deref(),
            event_id: &event_id,
            read_only: api.read_only,
            resources: payload.resources.as_ref(),
            event_type: if console_login {
                "AwsConsoleSignIn"
            } else {
                "AwsApiCall"
            },
            management_event: !api.data,
            recipient: &self.org.account,
            vpc_endpoint_id: caller.vpce.as_deref(),
            vpc_endpoint_account: caller.vpce.as_ref().map(|_| self.org.account.as_str()),
            event_category: if api.data { "Data" } else { "Management" },
            tls: tls_details,
            from_console: if caller.console && !console_login {
                Some("true")
            } else {
                None
            },
        };
        let mut buf = Vec::with_capacity(2560);
        let json = match serde_json::to_writer(&mut buf, &rec).map(|()| String::from_utf8(buf)) {
            Ok(Ok(s)) => s,
            _ => panic!("record serialisation cannot fail"),
        };
        *self.seq += 1;
        self.out.push(Event {
            json,
            label: c.label,
            time: c.t,
            seq: *self.seq,
            id: id_bits,
            principal: caller.ident.principal.clone(),
        });
    }
}

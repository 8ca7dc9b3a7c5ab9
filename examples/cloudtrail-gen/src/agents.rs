//! User agents: aws-cli, SDKs, Terraform, browsers, AWS consoles and the attackers' tools.
//!
//! An [`Agent`] is rendered per request because several clients put the operation in the
//! string: aws-cli v2 appends `command/ec2.describe-instances`, the Go and JavaScript SDKs (and so
//! Terraform) append `api/<service>#<version>`.

use std::borrow::Cow;
use std::sync::Arc;

use rand::Rng as _;
use rand::seq::IndexedRandom as _;

use crate::Rng;
use crate::api::Api;

/// A client as it shows up in `userAgent`.
#[derive(Debug, Clone)]
pub(crate) enum Agent {
    /// Sent as is.
    Plain(Arc<str>),
    /// aws-cli v2: `command/<group>.<op>` is appended.
    Cli(Arc<str>),
    /// SDKs with per-service `api/<svc>#<ver>` metadata: `head api/… tail`.
    WithApi {
        head: Arc<str>,
        tail: Arc<str>,
        /// `None`: every service module shares the SDK version (JS v3); `Some(major)`: Go v2
        /// style per-module versions derived from the service name.
        module_major: Option<u32>,
        sdk_version: Arc<str>,
    },
}

fn module_version(key: &str, major: u32) -> String {
    let h = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{major}.{}.{}", 10 + h % 140, (h >> 8) % 12)
}

impl Agent {
    /// A fixed string.
    pub(crate) fn plain(s: impl Into<Arc<str>>) -> Self {
        Agent::Plain(s.into())
    }

    /// The `userAgent` of one request.
    pub(crate) fn render(&self, api: &Api) -> Cow<'_, str> {
        match self {
            Agent::Plain(s) => Cow::Borrowed(s),
            Agent::Cli(base) => Cow::Owned(format!("{base} command/{}", api.cli_command)),
            Agent::WithApi {
                head,
                tail,
                module_major,
                sdk_version,
            } => {
                let ver = match module_major {
                    Some(m) => module_version(api.svc.key, *m),
                    None => sdk_version.to_string(),
                };
                let sep = if tail.is_empty() { "" } else { " " };
                Cow::Owned(format!("{head} api/{}#{ver}{sep}{tail}", api.svc.key))
            }
        }
    }
}

/// Operating system of a workstation, as the CLI and SDKs report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Os {
    Mac,
    Linux,
    Windows,
}

impl Os {
    pub(crate) fn draw(rng: &mut Rng) -> Os {
        let x: f64 = rng.random();
        if x < 0.68 {
            Os::Mac
        } else if x < 0.90 {
            Os::Linux
        } else {
            Os::Windows
        }
    }

    fn cli_token(self, rng: &mut Rng) -> String {
        match self {
            Os::Mac => format!(
                "Darwin/{} exe/{}",
                ["23.3.0", "23.2.0", "22.6.0", "23.4.0"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("23.3.0"),
                ["x86_64", "arm64", "arm64"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("arm64")
            ),
            Os::Linux => format!(
                "Linux/{} exe/x86_64.{}",
                [
                    "6.5.0-21-generic",
                    "6.5.0-25-generic",
                    "6.2.0-39-generic",
                    "6.7.6-arch1-1"
                ]
                .choose(rng)
                .copied()
                .unwrap_or("6.5.0-21-generic"),
                ["ubuntu.22", "ubuntu.22", "arch", "fedora.39"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("ubuntu.22")
            ),
            Os::Windows => "Windows/10 exe/AMD64".to_owned(),
        }
    }

    fn sdk_token(self) -> &'static str {
        match self {
            Os::Mac => "os/macos#23.3.0 md/arch#arm64",
            Os::Linux => "os/linux#6.5.0-21-generic md/arch#x86_64",
            Os::Windows => "os/windows#10 md/arch#amd64",
        }
    }

    /// A browser on this OS.
    pub(crate) fn browser(self, rng: &mut Rng) -> &'static str {
        let list: &[&str] = match self {
            Os::Mac => &[
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:123.0) Gecko/20100101 Firefox/123.0",
            ],
            Os::Linux => &[
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
            ],
            Os::Windows => &[
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.80",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
            ],
        };
        list.choose(rng).copied().unwrap_or(list[0])
    }
}

/// An aws-cli v2 installation.
#[derive(Debug, Clone)]
pub(crate) struct CliInstall {
    os_token: String,
}

impl CliInstall {
    pub(crate) fn new(os: Os, rng: &mut Rng) -> Self {
        CliInstall {
            os_token: os.cli_token(rng),
        }
    }

    /// aws-cli of a given version (`"2.15.30"`), bundling the matching Python.
    pub(crate) fn agent(&self, version: &str) -> Agent {
        let python = if version.starts_with("2.17") {
            "3.11.9"
        } else {
            "3.11.6"
        };
        Agent::Cli(
            format!(
                "aws-cli/{version} Python/{python} {} prompt/off",
                self.os_token
            )
            .into(),
        )
    }
}

/// A workstation Boto3 of a given version (`"1.34.51"`).
pub(crate) fn boto3(version: &str, os: Os) -> Agent {
    Agent::plain(format!(
        "Boto3/{version} md/Botocore#{version} ua/2.0 {} lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/{version}",
        os.sdk_token()
    ))
}

/// aws-cli versions in use before the fleet-wide upgrade.
pub(crate) const CLI_OLD: &[&str] = &[
    "2.13.25", "2.15.10", "2.15.17", "2.15.21", "2.15.30", "2.15.30",
];
/// The version every workstation gets on the upgrade day.
pub(crate) const CLI_NEW: &str = "2.17.4";
/// Boto3 versions before the upgrade.
pub(crate) const BOTO_OLD: &[&str] = &["1.34.34", "1.34.51", "1.34.51", "1.33.13"];
/// Boto3 after the upgrade.
pub(crate) const BOTO_NEW: &str = "1.34.131";

/// The S3 console's own client.
pub(crate) const S3_CONSOLE: &str = "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10.210-178.855.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.372-b08 java/1.8.0_372 vendor/Oracle_Corporation cfg/retry-mode/standard]";

/// Terraform with the AWS provider, as run in CI.
pub(crate) fn terraform(tf: &str, provider: &str) -> Agent {
    Agent::WithApi {
        head: format!(
            "APN/1.0 HashiCorp/1.0 Terraform/{tf} (+https://www.terraform.io) terraform-provider-aws/{provider} (https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64"
        )
        .into(),
        tail: "".into(),
        module_major: Some(1),
        sdk_version: "1.26.1".into(),
    }
}

/// A Go v2 SDK service in a container.
pub(crate) fn go_v2(exec_env: &str) -> Agent {
    Agent::WithApi {
        head: "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.0 md/GOOS#linux md/GOARCH#amd64".into(),
        tail: format!("exec-env/{exec_env}").into(),
        module_major: Some(1),
        sdk_version: "1.25.2".into(),
    }
}

/// The JavaScript v3 SDK (Lambda Node.js runtimes, GitHub Actions).
pub(crate) fn js_v3(os: &str, node: &str, tail: &str) -> Agent {
    Agent::WithApi {
        head: format!("aws-sdk-js/3.515.0 ua/2.0 os/{os} lang/js md/nodejs#{node}").into(),
        tail: tail.into(),
        module_major: None,
        sdk_version: "3.515.0".into(),
    }
}

/// Boto3 inside a Lambda Python runtime.
pub(crate) fn boto3_lambda() -> Agent {
    Agent::plain(
        "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/linux#5.10.209-219.866.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.34",
    )
}

/// The Java v2 SDK on an EC2 instance.
pub(crate) fn java_ec2() -> Agent {
    Agent::plain(
        "aws-sdk-java/2.21.29 Linux/6.1.72-96.166.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    )
}

/// The SSM agent on an instance.
pub(crate) const SSM_AGENT: &str =
    "aws-sdk-go/1.44.260 (go1.20.11; linux; amd64) amazon-ssm-agent/3.2.2222.0";
/// The ECS/Fargate agent pulling images and writing logs.
pub(crate) const ECS_AGENT: &str = "aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)";
/// Docker pushing to ECR from CI.
pub(crate) const DOCKER: &str = "docker/24.0.9 go/go1.20.13 git-commit/fca702d kernel/6.5.0-1016-azure os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.9 \\(linux\\))";
/// A SaaS monitoring integration crawling the account.
pub(crate) const MONITORING_CRAWLER: &str = "aws-sdk-go/1.44.327 (go1.20.12; linux; amd64)";

/// Clients that show up in stolen-credential use.
pub(crate) mod attacker {
    /// Pacu's Boto3 on Kali.
    pub(crate) const PACU: &str =
        "Boto3/1.28.62 Python/3.11.6 Linux/6.5.0-kali3-amd64 Botocore/1.31.62 Pacu";
    /// aws-cli v2 on a rented Ubuntu server.
    pub(crate) const CLI_VPS: &str =
        "aws-cli/2.11.6 Python/3.11.2 Linux/5.15.0-97-generic exe/x86_64.ubuntu.20 prompt/off";
    /// aws-cli v2 on Windows.
    pub(crate) const CLI_WINDOWS: &str =
        "aws-cli/2.9.19 Python/3.9.11 Windows/10 exe/AMD64 prompt/off";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Catalog;

    #[test]
    fn renders_per_operation() {
        let c = Catalog::new();
        let api = c.get(c.id("ec2:DescribeInstances"));
        let cli =
            Agent::Cli("aws-cli/2.15.30 Python/3.11.6 Darwin/23.3.0 exe/arm64 prompt/off".into());
        assert!(
            cli.render(api)
                .ends_with("prompt/off command/ec2.describe-instances")
        );
        let tf = terraform("1.6.6", "5.40.0");
        let r = tf.render(api);
        assert!(r.starts_with("APN/1.0 HashiCorp/1.0 Terraform/1.6.6"));
        assert!(r.contains(" api/ec2#1."), "{r}");
        let js = js_v3("linux#5.10", "20.11.1", "exec-env/AWS_Lambda_nodejs20.x");
        assert!(
            js.render(api)
                .ends_with("api/ec2#3.515.0 exec-env/AWS_Lambda_nodejs20.x")
        );
    }
}

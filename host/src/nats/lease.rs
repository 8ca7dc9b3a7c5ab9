//! A partition's lease: a key in the lease bucket (whose entries expire after [`super::LEASE`]),
//! created by the worker that takes the partition and renewed by compare-and-set on its
//! revision. Two workers never hold one partition: creating fails while the key exists, and a
//! renewal fails once another worker has taken the key after an expiry; the worker then stops
//! scoring that partition before storing anything.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Store;

#[derive(Debug)]
pub struct Lease {
    bucket: Store,
    key: String,
    owner: String,
    revision: u64,
    renewed: Instant,
}

/// The lease was lost (expired and taken, or the bucket unreachable for a lease's length).
#[derive(Debug, thiserror::Error)]
#[error("lost the lease of {key}: {why}")]
pub struct Lost {
    key: String,
    why: String,
}

impl Lease {
    /// Waits until the partition's lease is free, then takes it.
    pub async fn take(bucket: Store, partition: u32, owner: &str) -> Lease {
        let key = format!("partition-{partition}");
        let mut said = false;
        loop {
            match bucket.create(&key, owner.to_owned().into()).await {
                Ok(revision) => {
                    tracing::info!("took the lease of {key}");
                    return Lease {
                        bucket,
                        key,
                        owner: owner.to_owned(),
                        revision,
                        renewed: Instant::now(),
                    };
                }
                Err(e) => {
                    if !said {
                        tracing::info!("waiting for the lease of {key} ({e})");
                        said = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Renews the lease if a third of it has passed.
    pub async fn keep(&mut self) -> Result<(), Lost> {
        if self.renewed.elapsed() < super::LEASE / 3 {
            return Ok(());
        }
        self.renew().await
    }

    /// Renews the lease now (before storing the state: a worker that lost it stores nothing).
    pub async fn renew(&mut self) -> Result<(), Lost> {
        match self
            .bucket
            .update(&self.key, self.owner.clone().into(), self.revision)
            .await
        {
            Ok(revision) => {
                self.revision = revision;
                self.renewed = Instant::now();
                Ok(())
            }
            Err(e) => Err(Lost {
                key: self.key.clone(),
                why: e.to_string(),
            }),
        }
    }

    /// Gives the lease up (a clean stop: another worker may take it at once).
    pub async fn release(self) {
        let _ = self
            .bucket
            .delete_expect_revision(&self.key, Some(self.revision))
            .await;
    }
}

//! `--shard K/N` in the binary: each prepared build's estimate of work, read from the
//! checkout alone (its build context's bytes as the build would send them, its Dockerfile's
//! instructions), so that every runner of a matrix splits the same way — see
//! [`wharf_pusher::shard`].

use crate::error::{Failure, Result};
use anyhow::anyhow;
use std::collections::BTreeSet;
use wharf_builder::service::{ServiceBuild, Source};
use wharf_pusher::shard::{self, Shard, Split, Work};

/// The split of `builds` into `shard.count` shards.
pub fn split(builds: &[ServiceBuild], shard: Shard) -> Result<Split> {
    let mut work = Vec::new();
    for b in builds {
        work.push(Work {
            service: b.service.clone(),
            weight: weight(b)?,
            builds_from: b.after.clone(),
        });
    }
    Ok(shard::split(&work, shard.count))
}

/// The services shard `shard` releases.
pub fn services(builds: &[ServiceBuild], shard: Shard) -> Result<BTreeSet<String>> {
    Ok(split(builds, shard)?.services(shard))
}

/// One build's estimate: a remote context is fetched by the daemon and unknown here, so it
/// counts as its Dockerfile only (nothing, when that is remote too), and every build at
/// least one unit.
fn weight(b: &ServiceBuild) -> Result<u64> {
    let Source::Local(context) = &b.source else {
        return Ok(1);
    };
    let mut bytes = 0u64;
    context
        .for_each_entry(|e| {
            bytes += e.size;
            Ok(())
        })
        .map_err(|e| {
            Failure::config(anyhow!(
                "service `{}`: cannot read its build context: {e}",
                b.service
            ))
        })?;
    let steps = context
        .dockerfile_content()
        .map(|d| shard::dockerfile_steps(&String::from_utf8_lossy(&d)))
        .unwrap_or(0);
    Ok(shard::estimate(bytes, steps).max(1))
}

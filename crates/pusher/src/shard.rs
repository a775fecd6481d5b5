//! `--shard K/N`: which services one of N runners releases.
//!
//! The split must come out the same on every runner of a CI matrix with no coordinator, so it
//! depends only on what each runner reads from the same checkout: the services, an estimate of
//! each one's work, and which services are built `FROM` which. A service and every service
//! built from its image form one group (a shard cannot build on an image another shard has not
//! pushed yet), and groups are dealt out heaviest first, each to the lightest shard so far
//! (ties: the lower shard number; groups of equal weight: by name). Dealt that way, the
//! heaviest and lightest shards differ by at most the weight of one group.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// One shard of N: `K/N`, 1 ≤ K ≤ N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a shard: write K/N with 1 ≤ K ≤ N (e.g. 1/2, 2/2)")]
pub struct ShardError {
    pub given: String,
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let err = || ShardError {
            given: s.escape_debug().to_string(),
        };
        let (k, n) = s.trim().split_once('/').ok_or_else(err)?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(k) || !digits(n) {
            return Err(err());
        }
        let index: usize = k.parse().map_err(|_| err())?;
        let count: usize = n.parse().map_err(|_| err())?;
        if index == 0 || index > count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What the split knows of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub service: String,
    /// The estimate of its work, in units (see [`estimate`]).
    pub weight: u64,
    /// Services whose images its build uses (`FROM` a service image, `service:` contexts).
    pub builds_from: Vec<String>,
}

/// The estimate wharf splits by: one unit per Dockerfile instruction, plus one per started
/// MiB of build context. Both are read from the checkout, so every runner computes the same
/// numbers; neither is a measured time.
pub fn estimate(context_bytes: u64, dockerfile_steps: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    dockerfile_steps + context_bytes.div_ceil(MIB)
}

/// The instructions of a Dockerfile: lines that are neither blank, comments, nor the
/// continuation of the line before (a line ending in `\`). Heredoc bodies count as lines; an
/// estimate needs no more.
pub fn dockerfile_steps(text: &str) -> u64 {
    let mut steps = 0;
    let mut continued = false;
    for line in text.lines() {
        let t = line.trim();
        let starts = !continued && !t.is_empty() && !t.starts_with('#');
        if starts {
            steps += 1;
        }
        if !t.starts_with('#') {
            continued = t.ends_with('\\');
        }
    }
    steps
}

/// A group of services released by one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Sorted by name.
    pub services: Vec<String>,
    pub weight: u64,
}

/// Every shard's groups and total weight, index 0 for shard 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub shards: Vec<Vec<Group>>,
}

impl Split {
    /// The services shard `shard` releases, sorted by name.
    pub fn services(&self, shard: Shard) -> BTreeSet<String> {
        self.shards
            .get(shard.index - 1)
            .into_iter()
            .flatten()
            .flat_map(|g| g.services.iter().cloned())
            .collect()
    }

    pub fn weight(&self, index: usize) -> u64 {
        self.shards[index].iter().map(|g| g.weight).sum()
    }
}

/// Splits `work` into `count` shards (see the module's documentation). A `builds_from` name
/// that is not in `work` (a service not selected) is ignored.
pub fn split(work: &[Work], count: usize) -> Split {
    let count = count.max(1);
    let groups = groups(work);
    let mut ordered: Vec<Group> = groups;
    ordered.sort_by(|a, b| {
        b.weight
            .cmp(&a.weight)
            .then_with(|| a.services.cmp(&b.services))
    });
    let mut shards: Vec<Vec<Group>> = vec![Vec::new(); count];
    let mut loads = vec![0u64; count];
    for g in ordered {
        let lightest = (0..count)
            .min_by_key(|&i| (loads[i], i))
            .expect("at least one shard");
        loads[lightest] += g.weight;
        shards[lightest].push(g);
    }
    Split { shards }
}

/// The connected groups of services, joined by `builds_from` (union-find over names).
fn groups(work: &[Work]) -> Vec<Group> {
    let index: BTreeMap<&str, usize> = work
        .iter()
        .enumerate()
        .map(|(i, w)| (w.service.as_str(), i))
        .collect();
    let mut parent: Vec<usize> = (0..work.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, w) in work.iter().enumerate() {
        for base in &w.builds_from {
            if let Some(&j) = index.get(base.as_str()) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut by_root: BTreeMap<usize, Group> = BTreeMap::new();
    for (i, w) in work.iter().enumerate() {
        let r = root(&mut parent, i);
        let g = by_root.entry(r).or_insert(Group {
            services: Vec::new(),
            weight: 0,
        });
        g.services.push(w.service.clone());
        g.weight += w.weight;
    }
    by_root
        .into_values()
        .map(|mut g| {
            g.services.sort();
            g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(service: &str, weight: u64, builds_from: &[&str]) -> Work {
        Work {
            service: service.into(),
            weight,
            builds_from: builds_from.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn shards_parse_and_refuse_what_is_not_one() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in [
            "0/2", "3/2", "1/0", "junk", "1/", "/2", "-1/2", "1/2/3", "a/b", "1.5/2",
        ] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn dockerfile_steps_count_instructions() {
        let text = "# syntax=docker/dockerfile:1\nFROM busybox\n\nRUN a \\\n  && b \\\n  # note\n  && c\nCOPY x /x\n";
        assert_eq!(dockerfile_steps(text), 3);
        assert_eq!(estimate(0, 3), 3);
        assert_eq!(estimate(1, 3), 4);
        assert_eq!(estimate(3 * 1024 * 1024, 0), 3);
    }

    #[test]
    fn the_split_is_deterministic_whatever_the_order() {
        let mut services: Vec<Work> = (0..20)
            .map(|i| work(&format!("s{i:02}"), (i * 7 % 11) as u64 + 1, &[]))
            .collect();
        let a = split(&services, 3);
        services.reverse();
        let b = split(&services, 3);
        for k in 1..=3 {
            let shard = Shard { index: k, count: 3 };
            assert_eq!(a.services(shard), b.services(shard));
        }
        let all: BTreeSet<String> = (1..=3)
            .flat_map(|k| a.services(Shard { index: k, count: 3 }))
            .collect();
        assert_eq!(all.len(), 20, "every service in exactly one shard");
    }

    #[test]
    fn shards_differ_by_at_most_one_group() {
        let weights = [40, 3, 17, 17, 9, 1, 1, 25, 8, 8, 12, 5, 2, 30, 6];
        let services: Vec<Work> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| work(&format!("svc{i}"), *w, &[]))
            .collect();
        for n in 1..=5 {
            let s = split(&services, n);
            let loads: Vec<u64> = (0..n).map(|i| s.weight(i)).collect();
            let spread = loads.iter().max().unwrap() - loads.iter().min().unwrap();
            assert!(spread <= 40, "{n} shards: {loads:?}");
            assert_eq!(loads.iter().sum::<u64>(), weights.iter().sum::<u64>());
        }
        let even: Vec<Work> = (0..20).map(|i| work(&format!("e{i}"), 4, &[])).collect();
        let s = split(&even, 2);
        assert_eq!((s.weight(0), s.weight(1)), (40, 40));
    }

    #[test]
    fn a_service_stays_with_the_service_it_is_built_from() {
        let services = vec![
            work("base", 10, &[]),
            work("api", 5, &["base"]),
            work("worker", 5, &["base"]),
            work("cron", 1, &["worker"]),
            work("web", 8, &[]),
            work("docs", 7, &[]),
            work("outside", 2, &["not-selected"]),
        ];
        let s = split(&services, 3);
        let shard_of = |name: &str| {
            (1..=3)
                .find(|&k| s.services(Shard { index: k, count: 3 }).contains(name))
                .unwrap()
        };
        let base = shard_of("base");
        for dependent in ["api", "worker", "cron"] {
            assert_eq!(shard_of(dependent), base, "{dependent}");
        }
        let family = s.shards[base - 1]
            .iter()
            .find(|g| g.services.contains(&"base".to_string()))
            .unwrap();
        assert_eq!(family.weight, 21);
        assert_eq!(family.services, vec!["api", "base", "cron", "worker"]);
    }

    #[test]
    fn more_shards_than_groups_leaves_some_empty() {
        let s = split(&[work("only", 3, &[])], 3);
        assert_eq!(s.services(Shard { index: 1, count: 3 }).len(), 1);
        assert!(s.services(Shard { index: 2, count: 3 }).is_empty());
        assert!(s.services(Shard { index: 3, count: 3 }).is_empty());
    }
}

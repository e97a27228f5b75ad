//! The known set: every finding of the last run that checked each target, with its streak,
//! so the next run's diff is exact however many findings there are.
//!
//! Each finding is a 64-bit id (a hash of target and key), the time its streak began, the
//! runs it has been present and its severity: 17 bytes, stored column by column and
//! deflated, so the ids (which don't compress) cost about 8 bytes a finding. The names
//! (check and object) are kept only for the most severe [`NAMED_CAP`] findings: they are
//! what the diff's capped lists of resolved findings show.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;

use crate::api::Severity;

/// Findings whose check and object are always kept, most severe and longest-failing
/// first; more are kept while the set stays within its budget (see [`KnownSet::encode`]).
pub const NAMED_CAP: usize = 500;
/// Findings kept per run; past it the least severe, newest are dropped (and the diff says
/// it is no longer exact).
pub const KNOWN_CAP: usize = 50_000;
const MAGIC: &[u8; 4] = b"MCK2";
/// The most a decoded known set may inflate to: a corrupt or hostile input is refused.
const MAX_DECODED: u64 = 8 << 20;

/// What is known of one finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// When its current streak began (the run that first saw it), in Unix seconds.
    pub since: i64,
    /// Consecutive runs that checked its target and saw it, the latest included.
    pub runs: u32,
    pub severity: Severity,
    /// Check and object, kept for the most severe findings only.
    pub name: Option<(String, String)>,
}

/// The findings of one target, by id.
pub type TargetKnown = HashMap<u64, Known>;

/// Counters a run read from its objects (a container's restarts), by id.
pub type TargetCounters = HashMap<u64, u64>;

/// The known set of a run: per target (by name), its findings and counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnownSet {
    targets: BTreeMap<String, Arc<TargetKnown>>,
    counters: BTreeMap<String, Arc<TargetCounters>>,
    /// When the run that made it started, in Unix seconds (0: unknown).
    pub taken_at: i64,
    /// Findings were dropped to stay within [`KNOWN_CAP`].
    pub truncated: bool,
}

impl KnownSet {
    /// An empty set of the run that started at `taken_at` (Unix seconds).
    pub fn taken(taken_at: i64) -> Self {
        Self { taken_at, ..Self::default() }
    }

    /// The findings known of `target`, or `None` when no run has checked it: then nothing
    /// of it can be called new or resolved.
    pub fn target(&self, target: &str) -> Option<Arc<TargetKnown>> {
        self.targets.get(target).cloned()
    }

    pub fn insert(&mut self, target: String, findings: TargetKnown) {
        self.targets.insert(target, Arc::new(findings));
    }

    /// The counters the previous run read of `target`.
    pub fn counters(&self, target: &str) -> Option<Arc<TargetCounters>> {
        self.counters.get(target).cloned()
    }

    pub fn insert_counters(&mut self, target: String, counters: TargetCounters) {
        if !counters.is_empty() {
            self.counters.insert(target, Arc::new(counters));
        }
    }

    /// When the run that made this set started; `None` for an empty set.
    pub fn taken_at(&self) -> Option<jiff::Timestamp> {
        (self.taken_at != 0).then(|| jiff::Timestamp::from_second(self.taken_at).ok()).flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Findings known across all targets.
    pub fn len(&self) -> usize {
        self.targets.values().map(|t| t.len()).sum()
    }

    /// Every finding, most severe and longest-failing first.
    fn ranked(&self) -> Vec<(String, u64)> {
        let mut order: Vec<(Severity, u32, &str, u64)> = Vec::with_capacity(self.len());
        for (t, f) in &self.targets {
            order.extend(f.iter().map(|(id, k)| (k.severity, k.runs, t.as_str(), *id)));
        }
        order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)).then(a.3.cmp(&b.3)));
        order.into_iter().map(|(_, _, t, id)| (t.to_string(), id)).collect()
    }

    /// Keeps the `keep` first of `ranked`'s findings (`names`: their names).
    fn keep(&mut self, ranked: &[(String, u64)], keep: usize, names: bool) {
        let dropped: std::collections::HashSet<&(String, u64)> = ranked.iter().skip(keep).collect();
        if dropped.is_empty() {
            return;
        }
        for (t, f) in self.targets.iter_mut() {
            let f = Arc::make_mut(f);
            if names {
                f.iter_mut().filter(|(id, _)| dropped.contains(&(t.clone(), **id))).for_each(|(_, k)| k.name = None);
            } else {
                f.retain(|id, _| !dropped.contains(&(t.clone(), *id)));
            }
        }
    }

    /// Keeps at most [`KNOWN_CAP`] findings (the least severe, newest go first).
    pub fn bound(&mut self) {
        if self.len() > KNOWN_CAP {
            let ranked = self.ranked();
            self.keep(&ranked, KNOWN_CAP, false);
            self.truncated = true;
        }
    }

    /// The compact form within `budget` bytes where names allow: every finding's name
    /// while they fit, else those of the most severe (never fewer than [`NAMED_CAP`]).
    pub fn encode_within(&self, budget: usize) -> Vec<u8> {
        let mut bytes = self.encode();
        let ranked = self.ranked();
        let mut named = ranked.len();
        let mut set = self.clone();
        while bytes.len() > budget && named > NAMED_CAP {
            named = (named / 2).max(NAMED_CAP);
            set.keep(&ranked, named, true);
            bytes = set.encode();
        }
        bytes
    }

    /// The compact form: columns per target, deflated.
    pub fn encode(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.len() * 17 + 64);
        raw.extend_from_slice(MAGIC);
        raw.push(u8::from(self.truncated));
        raw.extend_from_slice(&self.taken_at.to_le_bytes());
        put_u32(&mut raw, self.targets.len() as u32);
        for (name, f) in &self.targets {
            put_str(&mut raw, name);
            let mut ids: Vec<(&u64, &Known)> = f.iter().collect();
            ids.sort_unstable_by_key(|(id, _)| **id);
            put_u32(&mut raw, ids.len() as u32);
            ids.iter().for_each(|(id, _)| raw.extend_from_slice(&id.to_le_bytes()));
            ids.iter().for_each(|(_, k)| raw.extend_from_slice(&k.since.to_le_bytes()));
            ids.iter().for_each(|(_, k)| put_u32(&mut raw, k.runs));
            ids.iter().for_each(|(_, k)| raw.push(k.severity as u8));
            let named: Vec<(usize, &(String, String))> =
                ids.iter().enumerate().filter_map(|(i, (_, k))| Some((i, k.name.as_ref()?))).collect();
            put_u32(&mut raw, named.len() as u32);
            for (i, (check, object)) in named {
                put_u32(&mut raw, i as u32);
                put_str(&mut raw, check);
                put_str(&mut raw, object);
            }
        }
        put_u32(&mut raw, self.counters.len() as u32);
        for (name, c) in &self.counters {
            put_str(&mut raw, name);
            let mut ids: Vec<(&u64, &u64)> = c.iter().collect();
            ids.sort_unstable();
            put_u32(&mut raw, ids.len() as u32);
            ids.iter().for_each(|(id, _)| raw.extend_from_slice(&id.to_le_bytes()));
            ids.iter().for_each(|(_, v)| raw.extend_from_slice(&v.to_le_bytes()));
        }
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&raw).expect("deflate into memory");
        z.finish().expect("deflate into memory")
    }

    /// Reads [`KnownSet::encode`]'s form; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut raw = Vec::new();
        flate2::read::DeflateDecoder::new(bytes)
            .take(MAX_DECODED + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("not a known set: {e}"))?;
        if raw.len() as u64 > MAX_DECODED {
            return Err("known set too large".into());
        }
        let mut r = Reader { buf: &raw };
        if r.take(4)? != MAGIC {
            return Err("not a known set: unknown format".into());
        }
        let mut set = KnownSet { truncated: r.take(1)?[0] != 0, taken_at: r.u64()? as i64, ..Default::default() };
        for _ in 0..r.u32()? {
            let name = r.string()?;
            let n = r.u32()? as usize;
            let ids: Vec<u64> = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
            let since: Vec<i64> = (0..n).map(|_| r.u64().map(|v| v as i64)).collect::<Result<_, _>>()?;
            let runs: Vec<u32> = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
            let sev: Vec<Severity> = (0..n).map(|_| r.severity()).collect::<Result<_, _>>()?;
            let mut names: HashMap<usize, (String, String)> = HashMap::new();
            for _ in 0..r.u32()? {
                let i = r.u32()? as usize;
                names.insert(i, (r.string()?, r.string()?));
            }
            let f: TargetKnown = (0..n)
                .map(|i| (ids[i], Known { since: since[i], runs: runs[i], severity: sev[i], name: names.remove(&i) }))
                .collect();
            set.insert(name, f);
        }
        for _ in 0..r.u32()? {
            let name = r.string()?;
            let n = r.u32()? as usize;
            let ids: Vec<u64> = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
            let values: Vec<u64> = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
            set.insert_counters(name, ids.into_iter().zip(values).collect());
        }
        Ok(set)
    }
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, s.len() as u32);
    buf.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err("known set cut short".into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "known set: a name is not UTF-8".to_string())
    }

    fn severity(&mut self) -> Result<Severity, String> {
        match self.take(1)?[0] {
            0 => Ok(Severity::Info),
            1 => Ok(Severity::Warning),
            2 => Ok(Severity::Critical),
            b => Err(format!("known set: unknown severity {b}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u64) -> KnownSet {
        let mut set = KnownSet::default();
        for t in ["prod", "staging"] {
            let f = (0..n)
                .map(|i| {
                    let id = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t.len() as u64;
                    let severity = [Severity::Info, Severity::Warning, Severity::Critical][(i % 3) as usize];
                    let name = (i % 7 == 0).then(|| ("CrashLoopBackOff".to_string(), format!("ns/pod-{i}")));
                    (
                        id,
                        Known {
                            since: 1_764_572_400 - (i % 5) as i64 * 86_400,
                            runs: (i % 9) as u32 + 1,
                            severity,
                            name,
                        },
                    )
                })
                .collect();
            set.insert(t.to_string(), f);
            set.insert_counters(t.to_string(), (0..n / 10).map(|i| (i * 31, i % 40)).collect());
        }
        set.taken_at = 1_764_572_400;
        set
    }

    #[test]
    fn encodes_and_decodes_exactly() {
        let set = sample(1000);
        assert_eq!(KnownSet::decode(&set.encode()).unwrap(), set);
        let empty = KnownSet::default();
        assert_eq!(KnownSet::decode(&empty.encode()).unwrap(), empty);
    }

    /// 15,000 findings, the ids alone incompressible: about 8 bytes a finding.
    #[test]
    fn fifteen_thousand_findings_fit_in_a_fraction_of_a_configmap() {
        let mut set = sample(7_500);
        set.bound();
        let bytes = set.encode_within(160 * 1024);
        assert!(bytes.len() < 160 * 1024, "{} bytes", bytes.len());
        assert_eq!(KnownSet::decode(&bytes).unwrap().len(), 15_000);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(KnownSet::decode(b"").is_err());
        assert!(KnownSet::decode(b"hello world").is_err());
        let mut bytes = sample(10).encode();
        bytes.truncate(bytes.len() / 2);
        assert!(KnownSet::decode(&bytes).is_err());
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"MCK2\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff").unwrap();
        assert!(KnownSet::decode(&z.finish().unwrap()).is_err());
    }

    #[test]
    fn bound_drops_the_least_severe_and_names_go_before_findings() {
        let mut set = KnownSet::default();
        let f = (0..(KNOWN_CAP as u64 + 10))
            .map(|i| {
                let severity = if i < 10 { Severity::Critical } else { Severity::Info };
                let name = Some(("CrashLoopBackOff".into(), format!("namespace-{}/pod-{i:x}", i % 97)));
                (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), Known { since: 0, runs: 1, severity, name })
            })
            .collect();
        set.insert("t".into(), f);
        set.bound();
        assert!(set.truncated);
        assert_eq!(set.len(), KNOWN_CAP);
        // 50,000 ids take about 400 KiB: within 450 KiB not every name fits, the critical
        // ones keep theirs.
        let bytes = set.encode_within(450 * 1024);
        assert!(bytes.len() <= 450 * 1024, "{}", bytes.len());
        let back = KnownSet::decode(&bytes).unwrap();
        let t = back.target("t").unwrap();
        assert_eq!(t.len(), KNOWN_CAP, "names go, findings stay");
        let named = t.values().filter(|k| k.name.is_some()).count();
        assert!((NAMED_CAP..KNOWN_CAP).contains(&named), "{named}");
        assert!(t.values().filter(|k| k.severity == Severity::Critical).all(|k| k.name.is_some()));
        // What fits keeps every name.
        let small = sample(100);
        assert_eq!(KnownSet::decode(&small.encode_within(300 * 1024)).unwrap(), small);
    }
}

//! Admission slots shared by every pass a process runs at once (ARCHITECTURE.md, "Many batches
//! at once"). A user in sync holds one slot of each limit it counts against: its endpoints'
//! `max_concurrent_migrations`, for a later pass also their `max_concurrent_incremental_syncs`,
//! and its tenant's quota — whichever batch the user is in. So two batches on one endpoint
//! together keep to the endpoint's limit, as Microsoft's service does.
//!
//! A free slot goes to the tenant with the fewest users in sync for its weight (ties: the one
//! served longest ago), and within a tenant to its pass served longest ago: a tenant's huge batch
//! cannot starve another tenant's small one, and a tenant's batches take turns.
//!
//! [`Slots`] is the decision alone (no clock, no I/O: the unit tests drive it); [`SharedSlots`]
//! hands its grants to the passes waiting for them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

/// A limit users in sync count against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Limit {
    /// Users in sync against an endpoint (its `max_concurrent_migrations`).
    Migrations { tenant: String, endpoint: String },
    /// Of those, users in an incremental or final sync (its `max_concurrent_incremental_syncs`).
    IncrementalSyncs { tenant: String, endpoint: String },
    /// Users in sync of one tenant, across its batches (its quota).
    Tenant { tenant: String },
}

/// What a pass's users count against, and for whom.
#[derive(Debug, Clone)]
pub struct Claim {
    pub tenant: String,
    /// The tenant's share of free slots relative to other tenants'.
    pub weight: usize,
    /// Each limit with its maximum (at least 1 is used: a limit of 0 would never finish).
    pub limits: Vec<(Limit, usize)>,
}

impl Claim {
    /// One pass alone (`migrate`, `coordinator`): at most `max` of its users at once.
    pub fn alone(max: usize) -> Self {
        Claim {
            tenant: mailfleet_shared::tenancy::DEFAULT_TENANT.to_owned(),
            weight: 1,
            limits: vec![(
                Limit::Tenant {
                    tenant: mailfleet_shared::tenancy::DEFAULT_TENANT.to_owned(),
                },
                max,
            )],
        }
    }
}

/// How full one limit is, for `/status`: `peak` is the most users ever in sync against it at
/// once, so a test (or an operator) sees that the limit held without sampling at the right time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    #[serde(flatten)]
    pub limit: Limit,
    pub max: usize,
    pub in_sync: usize,
    pub peak: usize,
}

pub type PassId = u64;

#[derive(Debug)]
struct Counter {
    max: usize,
    in_sync: usize,
    peak: usize,
}

#[derive(Debug)]
struct TenantShare {
    weight: usize,
    in_sync: usize,
    passes: usize,
    last_grant: u64,
}

#[derive(Debug)]
struct WaitingPass {
    tenant: String,
    limits: Vec<Limit>,
    waiting: usize,
    in_sync: usize,
    last_grant: u64,
}

/// The decision: which waiting pass gets the next free slot.
#[derive(Debug, Default)]
pub struct Slots {
    limits: BTreeMap<Limit, Counter>,
    tenants: BTreeMap<String, TenantShare>,
    passes: BTreeMap<PassId, WaitingPass>,
    /// Counts grants; a pass's or tenant's `last_grant` is this at its latest one.
    clock: u64,
}

impl Slots {
    /// `pass` waits to admit `users` users under `claim`. A limit's maximum is the latest a
    /// pass named (an endpoint edited between passes takes effect with the next pass).
    pub fn join(&mut self, pass: PassId, claim: &Claim, users: usize) {
        for (limit, max) in &claim.limits {
            let counter = self.limits.entry(limit.clone()).or_insert(Counter {
                max: 0,
                in_sync: 0,
                peak: 0,
            });
            counter.max = (*max).max(1);
        }
        let tenant = self
            .tenants
            .entry(claim.tenant.clone())
            .or_insert(TenantShare {
                weight: 1,
                in_sync: 0,
                passes: 0,
                last_grant: 0,
            });
        tenant.weight = claim.weight.max(1);
        tenant.passes += 1;
        self.passes.insert(
            pass,
            WaitingPass {
                tenant: claim.tenant.clone(),
                limits: claim
                    .limits
                    .iter()
                    .map(|(limit, _)| limit.clone())
                    .collect(),
                waiting: users,
                in_sync: 0,
                last_grant: 0,
            },
        );
    }

    /// Grants every slot that is free now, fairly; one entry per slot (a pass may appear more
    /// than once). The caller admits that many users of each pass.
    pub fn grant(&mut self) -> Vec<PassId> {
        let mut granted = Vec::new();
        while let Some(pass) = self.next() {
            self.clock += 1;
            let waiting = self.passes.get_mut(&pass).expect("a chosen pass exists");
            waiting.waiting -= 1;
            waiting.in_sync += 1;
            waiting.last_grant = self.clock;
            for limit in &waiting.limits {
                let counter = self.limits.get_mut(limit).expect("a pass's limit exists");
                counter.in_sync += 1;
                counter.peak = counter.peak.max(counter.in_sync);
            }
            let tenant = self
                .tenants
                .get_mut(&waiting.tenant)
                .expect("a pass's tenant exists");
            tenant.in_sync += 1;
            tenant.last_grant = self.clock;
            granted.push(pass);
        }
        granted
    }

    /// One user of `pass` is finished: its slots are free.
    pub fn release(&mut self, pass: PassId) {
        let Some(waiting) = self.passes.get_mut(&pass) else {
            return;
        };
        if waiting.in_sync == 0 {
            return;
        }
        waiting.in_sync -= 1;
        let (tenant, limits) = (waiting.tenant.clone(), waiting.limits.clone());
        self.free(&tenant, &limits, 1);
    }

    /// `pass` is over (finished or stopped): its users in sync free their slots, and it waits
    /// no more.
    pub fn leave(&mut self, pass: PassId) {
        let Some(waiting) = self.passes.remove(&pass) else {
            return;
        };
        self.free(&waiting.tenant, &waiting.limits, waiting.in_sync);
        if let Some(tenant) = self.tenants.get_mut(&waiting.tenant) {
            tenant.passes -= 1;
            if tenant.passes == 0 {
                self.tenants.remove(&waiting.tenant);
            }
        }
    }

    /// Every limit a pass has named, with its users in sync and its peak.
    pub fn usage(&self) -> Vec<Usage> {
        self.limits
            .iter()
            .map(|(limit, counter)| Usage {
                limit: limit.clone(),
                max: counter.max,
                in_sync: counter.in_sync,
                peak: counter.peak,
            })
            .collect()
    }

    fn free(&mut self, tenant: &str, limits: &[Limit], users: usize) {
        for limit in limits {
            if let Some(counter) = self.limits.get_mut(limit) {
                counter.in_sync -= users;
            }
        }
        if let Some(tenant) = self.tenants.get_mut(tenant) {
            tenant.in_sync -= users;
        }
    }

    /// The pass to serve next: of the passes with a user waiting and room under every limit,
    /// the one whose tenant has the fewest users in sync for its weight, then the one (and
    /// tenant) served longest ago.
    fn next(&self) -> Option<PassId> {
        self.passes
            .iter()
            .filter(|(_, pass)| pass.waiting > 0 && self.has_room(&pass.limits))
            .min_by(|(_, a), (_, b)| {
                let (ta, tb) = (&self.tenants[&a.tenant], &self.tenants[&b.tenant]);
                // in_sync / weight compared without division: a/wa < b/wb ⇔ a·wb < b·wa.
                (ta.in_sync * tb.weight)
                    .cmp(&(tb.in_sync * ta.weight))
                    .then(ta.last_grant.cmp(&tb.last_grant))
                    .then(a.last_grant.cmp(&b.last_grant))
            })
            .map(|(id, _)| *id)
    }

    fn has_room(&self, limits: &[Limit]) -> bool {
        limits
            .iter()
            .all(|limit| self.limits[limit].in_sync < self.limits[limit].max)
    }
}

/// [`Slots`] shared by the passes of a process: each pass [`join`](SharedSlots::join)s and
/// receives its grants as they come.
#[derive(Default)]
pub struct SharedSlots {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    slots: Slots,
    grants: HashMap<PassId, mpsc::UnboundedSender<()>>,
    next_pass: PassId,
}

impl SharedSlots {
    pub fn new() -> Arc<Self> {
        Arc::new(SharedSlots::default())
    }

    /// A pass with `users` to admit under `claim`; its grants come through the handle.
    pub fn join(self: &Arc<Self>, claim: &Claim, users: usize) -> PassSlots {
        let (sender, granted) = mpsc::unbounded_channel();
        let id = self.change(|inner| {
            let id = inner.next_pass;
            inner.next_pass += 1;
            inner.slots.join(id, claim, users);
            inner.grants.insert(id, sender);
            id
        });
        PassSlots {
            shared: self.clone(),
            id,
            granted,
        }
    }

    pub fn usage(&self) -> Vec<Usage> {
        self.lock().slots.usage()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change`, then hands out whatever slots are free now.
    fn change<T>(&self, change: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.lock();
        let result = change(&mut inner);
        for pass in inner.slots.grant() {
            if let Some(sender) = inner.grants.get(&pass) {
                // A pass that went away leaves with its slots (`Drop`); nothing to undo here.
                let _ = sender.send(());
            }
        }
        result
    }
}

/// One pass's place in the [`SharedSlots`]; leaving (dropping it) frees its slots.
pub struct PassSlots {
    shared: Arc<SharedSlots>,
    id: PassId,
    granted: mpsc::UnboundedReceiver<()>,
}

impl PassSlots {
    /// Waits for at least one slot; returns how many were granted (all that have arrived).
    pub async fn granted(&mut self) -> usize {
        if self.granted.recv().await.is_none() {
            return std::future::pending().await;
        }
        let mut count = 1;
        while self.granted.try_recv().is_ok() {
            count += 1;
        }
        count
    }

    /// One of this pass's users is finished.
    pub fn release(&self) {
        self.shared.change(|inner| inner.slots.release(self.id));
    }
}

impl Drop for PassSlots {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.change(|inner| {
            inner.slots.leave(id);
            inner.grants.remove(&id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(name: &str) -> Limit {
        Limit::Migrations {
            tenant: "default".into(),
            endpoint: name.into(),
        }
    }

    fn claim(tenant: &str, weight: usize, limits: &[(Limit, usize)]) -> Claim {
        Claim {
            tenant: tenant.into(),
            weight,
            limits: limits.to_vec(),
        }
    }

    fn count(grants: &[PassId], pass: PassId) -> usize {
        grants.iter().filter(|&&g| g == pass).count()
    }

    #[test]
    fn batches_on_one_endpoint_share_its_limit() {
        let mut slots = Slots::default();
        let shared = [(endpoint("imap"), 2)];
        slots.join(1, &claim("default", 1, &shared), 10);
        slots.join(2, &claim("default", 1, &shared), 10);
        let grants = slots.grant();
        assert_eq!(grants.len(), 2, "two slots in all, not two per batch");
        assert_eq!((count(&grants, 1), count(&grants, 2)), (1, 1), "turns");
        assert!(slots.grant().is_empty(), "full");
        slots.release(1);
        assert_eq!(slots.grant().len(), 1);
        assert_eq!(slots.usage()[0].peak, 2);
    }

    #[test]
    fn a_batch_arriving_late_gets_the_next_free_slot_of_its_tenant() {
        let mut slots = Slots::default();
        let shared = [(endpoint("imap"), 2)];
        slots.join(1, &claim("default", 1, &shared), 3);
        assert_eq!(
            slots.grant(),
            vec![1, 1],
            "the first batch alone takes both slots"
        );
        slots.join(2, &claim("default", 1, &shared), 1);
        slots.release(1);
        assert_eq!(
            slots.grant(),
            vec![2],
            "served before the first batch's third user"
        );
        slots.release(1);
        assert_eq!(slots.grant(), vec![1]);
    }

    #[test]
    fn a_small_tenant_is_not_starved_by_a_huge_batch() {
        let mut slots = Slots::default();
        let shared = [(endpoint("imap"), 4)];
        // The huge batch takes every slot before the small one arrives.
        slots.join(1, &claim("big", 1, &shared), 50_000);
        assert_eq!(slots.grant(), vec![1, 1, 1, 1]);
        slots.join(2, &claim("small", 1, &shared), 3);
        // Every slot that frees goes to the small tenant until both hold the same share.
        for _ in 0..2 {
            slots.release(1);
            assert_eq!(slots.grant(), vec![2]);
        }
        slots.release(1);
        slots.release(2);
        let next = slots.grant();
        assert_eq!(next.len(), 2);
        assert_eq!(count(&next, 2), 1, "the small tenant's last user: {next:?}");
    }

    #[test]
    fn tenants_share_free_slots_by_weight() {
        let mut slots = Slots::default();
        let shared = [(endpoint("imap"), 9)];
        slots.join(1, &claim("heavy", 2, &shared), 100);
        slots.join(2, &claim("light", 1, &shared), 100);
        let grants = slots.grant();
        assert_eq!((count(&grants, 1), count(&grants, 2)), (6, 3));
    }

    #[test]
    fn a_tenant_quota_caps_it_across_its_batches() {
        let mut slots = Slots::default();
        let quota = (
            Limit::Tenant {
                tenant: "acme".into(),
            },
            3,
        );
        slots.join(
            1,
            &claim("acme", 1, &[(endpoint("a"), 10), quota.clone()]),
            10,
        );
        slots.join(2, &claim("acme", 1, &[(endpoint("b"), 10), quota]), 10);
        slots.join(3, &claim("other", 1, &[(endpoint("c"), 10)]), 10);
        let grants = slots.grant();
        assert_eq!(count(&grants, 1) + count(&grants, 2), 3, "{grants:?}");
        assert_eq!(count(&grants, 3), 10, "another tenant is not held back");
    }

    #[test]
    fn a_pass_that_leaves_frees_its_slots_and_its_tenant() {
        let mut slots = Slots::default();
        let shared = [(endpoint("imap"), 2)];
        slots.join(1, &claim("a", 1, &shared), 5);
        slots.grant();
        slots.join(2, &claim("b", 1, &shared), 5);
        assert!(slots.grant().is_empty());
        slots.leave(1);
        assert_eq!(slots.grant(), vec![2, 2]);
        assert!(!slots.tenants.contains_key("a"));
        // Releasing a pass that left changes nothing.
        slots.release(1);
        assert_eq!(slots.usage()[0].in_sync, 2);
    }

    #[tokio::test]
    async fn shared_slots_hand_grants_to_waiting_passes() {
        let shared = SharedSlots::new();
        let limit = [(endpoint("imap"), 1)];
        let mut first = shared.join(&claim("a", 1, &limit), 2);
        let mut second = shared.join(&claim("b", 1, &limit), 2);
        assert_eq!(first.granted().await, 1);
        first.release();
        assert_eq!(second.granted().await, 1, "the other tenant's turn");
        drop(second);
        assert_eq!(first.granted().await, 1, "the slot of a pass that left");
    }
}

//! Bounded best-K lists and the time/cost Pareto front, both mergeable in any order.
//!
//! Each worker thread keeps its own list; merging two lists gives the list of the union, and
//! since plans are totally ordered ([`compare`]) the final result does not depend on how the
//! space was split between threads or shards.

use crate::plan::{compare, Objective, Plan};
use std::cmp::Ordering;

/// The best `k` plans seen so far under one objective, best first.
#[derive(Debug, Clone)]
pub struct TopK {
    objective: Objective,
    k: usize,
    plans: Vec<Plan>,
}

impl TopK {
    /// An empty list keeping the best `k` plans under `objective`.
    pub fn new(objective: Objective, k: usize) -> Self {
        Self {
            objective,
            k,
            plans: Vec::with_capacity(k.min(1024) + 1),
        }
    }

    /// Offers `plan`; it is kept when it ranks among the best `k`.
    #[inline]
    pub fn offer(&mut self, plan: &Plan) {
        if self.k == 0 {
            return;
        }
        if self.plans.len() == self.k {
            // Most plans lose to the current worst: one comparison rejects them.
            if let Some(worst) = self.plans.last() {
                if compare(self.objective, plan, worst) != Ordering::Less {
                    return;
                }
            }
        }
        let at = self
            .plans
            .partition_point(|p| compare(self.objective, p, plan) == Ordering::Less);
        if self.plans.len() == self.k {
            self.plans.pop();
        }
        self.plans.insert(at, *plan);
    }

    /// Merges `other` (same objective and `k`) into `self`.
    pub fn merge(&mut self, other: &TopK) {
        for p in &other.plans {
            self.offer(p);
        }
    }

    /// The plans, best first.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// Consumes the list, returning the plans best first.
    pub fn into_plans(self) -> Vec<Plan> {
        self.plans
    }
}

/// The plans no other plan beats in both training time and cost.
///
/// Kept sorted by time (then cost, then key). Along a front cost strictly decreases as time
/// increases (equal times have equal costs), so the last front plan no slower than a new plan is
/// the cheapest of those that could dominate it: one binary search and one comparison decide.
#[derive(Debug, Clone, Default)]
pub struct ParetoFront {
    plans: Vec<Plan>,
}

impl ParetoFront {
    /// An empty front.
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers `plan`; it joins the front unless a front plan dominates it, and evicts the plans
    /// it dominates.
    #[inline]
    pub fn offer(&mut self, plan: &Plan) {
        let t = plan.train_days;
        let at = self.plans.partition_point(|p| p.train_days <= t);
        if at > 0 && self.plans[at - 1].dominates(plan) {
            return;
        }
        self.insert_undominated(plan);
    }

    /// Inserts a plan no front plan dominates, removing what it dominates (rare: the front
    /// stays small, so a linear pass is fine).
    fn insert_undominated(&mut self, plan: &Plan) {
        self.plans.retain(|p| !plan.dominates(p));
        let at = self
            .plans
            .partition_point(|p| front_order(p, plan) == Ordering::Less);
        self.plans.insert(at, *plan);
    }

    /// Merges `other` into `self`.
    pub fn merge(&mut self, other: &ParetoFront) {
        for p in &other.plans {
            self.offer(p);
        }
    }

    /// The front, fastest first.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// Consumes the front, fastest first.
    pub fn into_plans(self) -> Vec<Plan> {
        self.plans
    }
}

/// Time, then cost, then the canonical key.
fn front_order(a: &Plan, b: &Plan) -> Ordering {
    compare(Objective::Time, a, b)
}

/// The Pareto front of `plans` by brute force (for tests and for merging read-back files).
pub fn pareto_front(plans: &[Plan]) -> Vec<Plan> {
    let mut front: Vec<Plan> = plans
        .iter()
        .filter(|p| !plans.iter().any(|q| q.dominates(p)))
        .copied()
        .collect();
    front.sort_by(front_order);
    front
}

//! Rejection counts by reason, in a fixed-size table so that counting never allocates.

/// Distinct reasons a table holds; `Infeasible` has about a dozen.
const SLOTS: usize = 32;

/// Counts of rejected strategies by reason (`Infeasible::reason` keys and the search's own).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    names: [&'static str; SLOTS],
    tallies: [u64; SLOTS],
    len: usize,
}

impl Counts {
    pub(crate) fn new() -> Self {
        Self {
            names: [""; SLOTS],
            tallies: [0; SLOTS],
            len: 0,
        }
    }

    /// Adds `n` rejections for `reason`.
    #[inline]
    pub(crate) fn add(&mut self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        for i in 0..self.len {
            if self.names[i] == reason {
                self.tallies[i] += n;
                return;
            }
        }
        if self.len < SLOTS {
            self.names[self.len] = reason;
            self.tallies[self.len] = n;
            self.len += 1;
        } else {
            // More distinct reasons than slots cannot happen with today's `Infeasible`; lump
            // any excess into the last slot rather than lose the count.
            self.names[SLOTS - 1] = "other";
            self.tallies[SLOTS - 1] += n;
        }
    }

    pub(crate) fn merge(&mut self, other: &Counts) {
        for i in 0..other.len {
            self.add(other.names[i], other.tallies[i]);
        }
    }

    /// The counts, largest first, ties by name.
    pub(crate) fn sorted(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = (0..self.len)
            .map(|i| (self.names[i], self.tallies[i]))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

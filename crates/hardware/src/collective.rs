//! Time of a collective over a group of ranks placed on a cluster: an alpha-beta model per tier.
//!
//! Bandwidth terms follow NCCL's bus-bandwidth convention (nccl-tests `doc/PERFORMANCE.md`): an
//! all-reduce of `S` bytes over `n` ranks moves `2(n-1)/n · S` through each rank's slowest link,
//! an all-gather or reduce-scatter `(n-1)/n · S` (S = the full, gathered buffer). A group that
//! leaves the scale-up domain is limited by the NICs it can use in parallel: with `k` of its ranks
//! on each node, each rank drives its own rail, so the bus bandwidth is `k` NIC shares (a DGX A100
//! with 8 HDR NICs measures 192 GB/s across nodes, nccl#812), never more than the scale-up links.

use crate::Cluster;
use trainplan_units::{ByteRate, Bytes, Seconds};

/// A collective operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collective {
    /// Sum across ranks, result on every rank.
    AllReduce,
    /// Each rank contributes a shard, every rank ends with the whole buffer.
    AllGather,
    /// Sum across ranks, each rank ends with one shard.
    ReduceScatter,
    /// Each rank sends a distinct shard to every other rank.
    AllToAll,
    /// One rank sends the buffer to one neighbour.
    SendRecv,
}

/// Ranks taking part in a collective: `size` ranks, `stride` apart in the global rank order.
///
/// Megatron orders ranks tp, cp, ep, dp, pp from innermost to outermost, so a tensor-parallel
/// group has stride 1 and a data-parallel group has stride `tp · cp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Ranks in the group.
    pub size: u32,
    /// Distance between consecutive members in global rank order.
    pub stride: u32,
}

/// The slowest link tier a group crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTier {
    /// A single rank: nothing to communicate.
    Local,
    /// Inside the scale-up domain (NVLink/NVSwitch).
    ScaleUp,
    /// Across nodes, over the NICs.
    ScaleOut,
}

impl LinkTier {
    /// Short name for output.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkTier::Local => "local",
            LinkTier::ScaleUp => "scale-up",
            LinkTier::ScaleOut => "scale-out",
        }
    }
}

impl Cluster {
    /// The slowest tier `group` crosses.
    #[inline]
    pub fn tier(&self, group: Group) -> LinkTier {
        if group.size <= 1 {
            return LinkTier::Local;
        }
        // Span of the group in rank order; aligned placement keeps it inside one domain when it fits.
        let span = u64::from(group.size - 1) * u64::from(group.stride.max(1)) + 1;
        if span <= u64::from(self.node.scaleup_domain) {
            LinkTier::ScaleUp
        } else {
            LinkTier::ScaleOut
        }
    }

    /// Members of `group` that share one scale-up domain (a host for HGX, a rack for NVL72), whose
    /// traffic to other domains leaves through their own NIC shares.
    #[inline]
    fn members_per_domain(&self, group: Group) -> u32 {
        let domain = self.node.scaleup_domain.max(self.node.gpus_per_node);
        (domain / group.stride.max(1)).clamp(1, group.size)
    }

    /// Achievable bus bandwidth of `group` and the tier that limits it.
    #[inline]
    pub fn bus_bandwidth(&self, group: Group) -> (ByteRate, LinkTier) {
        let tier = self.tier(group);
        let bw = match tier {
            LinkTier::Local | LinkTier::ScaleUp => self.scaleup_busbw,
            LinkTier::ScaleOut => {
                // Members of the group inside one scale-up domain each drive their own NIC share.
                let per_domain = self.members_per_domain(group);
                (self.scaleout_busbw_per_gpu * f64::from(per_domain)).min(self.scaleup_busbw)
            }
        };
        (bw, tier)
    }

    /// Time of `op` on a buffer of `bytes` over `group` (for all-gather and reduce-scatter,
    /// `bytes` is the full buffer; for send/recv, the message).
    #[inline]
    pub fn collective_time(&self, op: Collective, bytes: Bytes, group: Group) -> Seconds {
        if group.size <= 1 || bytes.get() <= 0.0 {
            return Seconds::ZERO;
        }
        let n = f64::from(group.size);
        let (bw, tier) = self.bus_bandwidth(group);
        let eff = &self.accelerator.efficiency;
        let hop = match tier {
            LinkTier::Local => Seconds::ZERO,
            LinkTier::ScaleUp => eff.scaleup_hop_latency,
            LinkTier::ScaleOut => eff.scaleout_hop_latency,
        };
        // Ring algorithm step counts (Thakur et al. 2005, "Optimization of Collective
        // Communication Operations in MPICH"): 2(n-1) steps for all-reduce, n-1 otherwise.
        let (volume_factor, steps) = match op {
            Collective::AllReduce => (2.0 * (n - 1.0) / n, 2.0 * (n - 1.0)),
            Collective::AllGather | Collective::ReduceScatter | Collective::AllToAll => {
                ((n - 1.0) / n, n - 1.0)
            }
            Collective::SendRecv => (1.0, 1.0),
        };
        let transfer = match (op, tier) {
            // A point-to-point message uses one rank's NIC share.
            (Collective::SendRecv, LinkTier::ScaleOut) => {
                (bytes * volume_factor) / self.scaleout_busbw_per_gpu
            }
            // All-to-all sends a distinct shard to every peer: the shards bound for other nodes
            // leave through the rank's own NIC share, those for node mates go over the scale-up
            // links, both at once.
            (Collective::AllToAll, LinkTier::ScaleOut) => {
                let per_domain = f64::from(self.members_per_domain(group));
                let remote = (n - per_domain) / n;
                let local = (per_domain - 1.0) / n;
                ((bytes * remote) / self.scaleout_busbw_per_gpu)
                    .max((bytes * local) / self.scaleup_busbw)
            }
            _ => (bytes * volume_factor) / bw,
        };
        eff.collective_latency + hop * steps + transfer
    }
}

impl Cluster {
    /// Time of one expert dispatch (or combine) that sends each token across the network once per
    /// destination scale-up domain, not once per expert, and forwards it to the experts there over
    /// the scale-up links (DeepSeek-AI 2024, "DeepSeek-V3 Technical Report", section 3.2.2;
    /// DeepEP). `token_bytes` is one copy of the tokens a rank dispatches; each token goes to
    /// `top_k` of `experts` experts spread evenly over `group`. Inside one domain it is the
    /// plain all-to-all of the `top_k` copies.
    pub fn deduplicated_dispatch_time(
        &self,
        token_bytes: Bytes,
        top_k: u32,
        experts: u32,
        group: Group,
    ) -> Seconds {
        if group.size <= 1 || token_bytes.get() <= 0.0 || top_k == 0 {
            return Seconds::ZERO;
        }
        let copies = token_bytes * f64::from(top_k);
        if self.tier(group) != LinkTier::ScaleOut {
            return self.collective_time(Collective::AllToAll, copies, group);
        }
        let n = f64::from(group.size);
        let per_domain = f64::from(self.members_per_domain(group));
        let domains = (n / per_domain).max(1.0);
        // A domain receives a token unless all top_k experts are drawn from the others
        // (hypergeometric, experts spread evenly).
        let e = f64::from(experts.max(top_k));
        let elsewhere = e - e / domains;
        let mut missed = 1.0;
        for i in 0..top_k {
            missed *= ((elsewhere - f64::from(i)) / (e - f64::from(i))).max(0.0);
        }
        let remote_domains = (domains - 1.0) * (1.0 - missed);
        let remote = (token_bytes * remote_domains) / self.scaleout_busbw_per_gpu;
        // Every copy for another rank crosses the scale-up links once: straight to a node mate,
        // or forwarded by the rank that received it.
        let forwarded = (copies * ((n - 1.0) / n)) / self.scaleup_busbw;
        let eff = &self.accelerator.efficiency;
        eff.collective_latency
            + eff.scaleout_hop_latency * (domains - 1.0)
            + eff.scaleup_hop_latency * (per_domain - 1.0)
            + remote.max(forwarded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::a100_cluster;

    #[test]
    fn tiers_follow_placement() {
        let c = a100_cluster(64);
        assert_eq!(c.tier(Group { size: 1, stride: 1 }), LinkTier::Local);
        assert_eq!(c.tier(Group { size: 8, stride: 1 }), LinkTier::ScaleUp);
        assert_eq!(c.tier(Group { size: 2, stride: 4 }), LinkTier::ScaleUp);
        assert_eq!(c.tier(Group { size: 2, stride: 8 }), LinkTier::ScaleOut);
        assert_eq!(
            c.tier(Group {
                size: 16,
                stride: 1
            }),
            LinkTier::ScaleOut
        );
    }

    #[test]
    fn cross_node_bandwidth_scales_with_ranks_per_node() {
        let c = a100_cluster(64);
        let (one_rail, _) = c.bus_bandwidth(Group { size: 8, stride: 8 });
        let (all_rails, _) = c.bus_bandwidth(Group {
            size: 64,
            stride: 1,
        });
        // 200 Gbit/s HDR at 90% = 22.5 GB/s per rail; 8 rails = 180 GB/s (nccl#812 measures 192).
        assert!((one_rail.gbps() - 22.5).abs() < 1e-9);
        assert!((all_rails.gbps() - 180.0).abs() < 1e-9);
    }

    #[test]
    fn all_reduce_moves_twice_an_all_gather() {
        let c = a100_cluster(8);
        let g = Group { size: 8, stride: 1 };
        let big = Bytes::from_gb(10.0);
        let ar = c.collective_time(Collective::AllReduce, big, g);
        let ag = c.collective_time(Collective::AllGather, big, g);
        let ratio = ar.get() / ag.get();
        assert!((ratio - 2.0).abs() < 0.01, "ratio {ratio}");
        // 10 GB · 2·7/8 over 240 GB/s (80% of 300) ≈ 72.9 ms.
        assert!((ar.get() - 0.0729).abs() < 0.001, "{ar}");
    }

    #[test]
    fn all_to_all_across_nodes_is_bound_by_each_ranks_nic() {
        let c = a100_cluster(64);
        let bytes = Bytes::from_gb(1.0);
        // 16 ranks on 2 nodes: half of each rank's shards leave the node through its own NIC
        // share (22.5 GB/s), while an all-gather of the same group drives all 8 rails.
        let g = Group {
            size: 16,
            stride: 1,
        };
        let a2a = c.collective_time(Collective::AllToAll, bytes, g).get();
        assert!((a2a - 0.5 / 22.5).abs() < 1e-3, "{a2a}");
        let ag = c.collective_time(Collective::AllGather, bytes, g).get();
        assert!(a2a > 3.0 * ag, "{a2a} vs {ag}");
    }

    #[test]
    fn deduplicated_dispatch_sends_each_token_once_per_remote_node() {
        let c = a100_cluster(64);
        let tokens = Bytes::from_gb(1.0);
        // 32 ranks on 4 nodes, 128 experts, top 8: a node misses a token with probability
        // C(96, 8)/C(128, 8), so each token reaches 3·(1 - that) ≈ 2.72 remote nodes, against 6
        // of its 8 expert copies that a plain all-to-all sends off the node.
        let g = Group {
            size: 32,
            stride: 1,
        };
        let missed: f64 = (0..8)
            .map(|i: u32| (96.0 - f64::from(i)) / (128.0 - f64::from(i)))
            .product();
        let remote_nodes = 3.0 * (1.0 - missed);
        assert!((remote_nodes - 2.72).abs() < 0.005, "{remote_nodes}");
        let eff = &c.accelerator.efficiency;
        let latency =
            eff.collective_latency + eff.scaleout_hop_latency * 3.0 + eff.scaleup_hop_latency * 7.0;
        let dedup = c.deduplicated_dispatch_time(tokens, 8, 128, g);
        let expected = latency.get() + remote_nodes / 22.5;
        assert!(
            (dedup.get() - expected).abs() < 1e-9,
            "{dedup} vs {expected}"
        );
        let plain = c.collective_time(Collective::AllToAll, tokens * 8.0, g);
        assert!(dedup.get() < 0.5 * plain.get(), "{dedup} vs {plain}");
        // Inside one node there is nothing to deduplicate.
        let node = Group { size: 8, stride: 1 };
        assert_eq!(
            c.deduplicated_dispatch_time(tokens, 8, 128, node),
            c.collective_time(Collective::AllToAll, tokens * 8.0, node)
        );
        // One expert per token: one copy either way.
        let one = c.deduplicated_dispatch_time(tokens, 1, 128, g).get();
        let plain_one = c.collective_time(Collective::AllToAll, tokens, g).get();
        assert!(one <= plain_one + 1e-12, "{one} vs {plain_one}");
    }

    #[test]
    fn a_rack_scale_domain_drives_every_member_nic() {
        // GB200 NVL72-like: 4 GPUs per host, 72 in the NVLink domain. A group of 18 with stride 8
        // spans two racks with 9 members in each; each member sends through its own NIC share.
        let mut node = a100_cluster(144).node;
        node.gpus_per_node = 4;
        node.scaleup_domain = 72;
        node.nics_per_node = 4;
        let c = Cluster::new(a100_cluster(144).accelerator, node, 144).unwrap();
        let (bw, tier) = c.bus_bandwidth(Group {
            size: 18,
            stride: 8,
        });
        assert_eq!(tier, LinkTier::ScaleOut);
        assert!((bw.gbps() - 9.0 * 22.5).abs() < 1e-9, "{}", bw.gbps());
    }

    #[test]
    fn fewer_gpus_per_host_keep_each_gpus_network_share() {
        let node = a100_cluster(8).node.with_gpus_per_node(4);
        assert_eq!(node.scaleup_domain, 4);
        let c = Cluster::new(a100_cluster(8).accelerator, node, 8).unwrap();
        assert!((c.scaleout_busbw_per_gpu.gbps() - 22.5).abs() < 1e-9);
        assert_eq!(c.tier(Group { size: 8, stride: 1 }), LinkTier::ScaleOut);
    }

    #[test]
    fn single_rank_costs_nothing() {
        let c = a100_cluster(8);
        let t = c.collective_time(
            Collective::AllReduce,
            Bytes(1e9),
            Group { size: 1, stride: 1 },
        );
        assert_eq!(t, Seconds::ZERO);
    }
}

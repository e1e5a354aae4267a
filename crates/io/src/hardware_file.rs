//! The accelerator and node files of `hardware-db/`: their TOML schema, range checks and
//! conversion into `trainplan_hardware` types.
//!
//! Files state raw numbers with their unit in the key (`hbm_gib`, `nic_gbit_s`); the unit
//! newtypes take over at the conversion, so nothing past this module sees a bare number.

use crate::{tomlfile, IoError, Location};
use serde::Deserialize;
use trainplan_hardware::{Accelerator, Efficiency, Node};
use trainplan_units::{ByteRate, Bytes, FlopRate, Seconds};

/// `hardware-db/accelerators/<id>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceleratorFile {
    id: String,
    name: String,
    vendor: String,
    hbm_gib: f64,
    hbm_tbps: f64,
    bf16_tflops: f64,
    fp16_tflops: f64,
    fp8_tflops: Option<f64>,
    scaleup_unidir_gbps: f64,
    tdp_w: f64,
    price_usd_per_gpu_hour: Option<f64>,
    price_basis: Option<String>,
    default_node: String,
    source: String,
    #[allow(dead_code)]
    notes: Option<String>,
    efficiency: EfficiencyFile,
}

/// The `[efficiency]` table: one key per field of [`Efficiency`], latencies in microseconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EfficiencyFile {
    matmul_fraction: f64,
    matmul_half_dim: f64,
    fp8_matmul_fraction: f64,
    attention_fraction: f64,
    /// Optional: 1 (no faster Transformer Engine attention) when absent.
    te_attention_speedup: Option<f64>,
    hbm_fraction: f64,
    /// Optional: files written before the factor existed get the generic starting value.
    overlap_penalty: Option<f64>,
    scaleup_fraction: f64,
    scaleout_fraction: f64,
    collective_latency_us: f64,
    scaleup_hop_latency_us: f64,
    scaleout_hop_latency_us: f64,
}

/// `hardware-db/nodes/<id>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    id: String,
    name: String,
    accelerator: String,
    gpus_per_node: u32,
    scaleup_domain: u32,
    nics_per_node: u32,
    nic_gbit_s: f64,
    source: String,
    #[allow(dead_code)]
    notes: Option<String>,
}

/// An accelerator and where its cross-references were written, for later checks.
#[derive(Debug, Clone)]
pub(crate) struct LoadedAccelerator {
    pub accelerator: Accelerator,
    /// Where `default_node` is, so a dangling id can be reported there.
    pub default_node_at: Location,
}

/// A node and where its accelerator id was written.
#[derive(Debug, Clone)]
pub(crate) struct LoadedNode {
    pub node: Node,
    /// Where `accelerator` is, so a dangling id can be reported there.
    pub accelerator_at: Location,
}

/// Range checks that report the key's line in the file.
pub(crate) struct Checker<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

impl Checker<'_> {
    /// The location of `key` in `[section]` (`""` for the top level).
    pub fn at(&self, section: &str, key: &str) -> Location {
        tomlfile::locate(self.path, self.text, section, key)
    }

    /// A field error at `key`.
    pub fn error(&self, section: &str, key: &str, message: String) -> IoError {
        let field = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        IoError::Field {
            location: self.at(section, key),
            field,
            message,
        }
    }

    /// `value` must be finite and above zero.
    pub fn positive(&self, section: &str, key: &str, value: f64) -> Result<f64, IoError> {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(self.error(
                section,
                key,
                format!("must be a positive number, found {value}"),
            ))
        }
    }

    /// `value` must be finite and not negative.
    pub fn non_negative(&self, section: &str, key: &str, value: f64) -> Result<f64, IoError> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(self.error(section, key, format!("must be zero or more, found {value}")))
        }
    }

    /// `value` must be a fraction in (0, 1].
    pub fn fraction(&self, section: &str, key: &str, value: f64) -> Result<f64, IoError> {
        if value.is_finite() && value > 0.0 && value <= 1.0 {
            Ok(value)
        } else {
            Err(self.error(
                section,
                key,
                format!("must be a fraction in (0, 1], found {value}"),
            ))
        }
    }

    /// `value` must be a speedup in [1, 4]: a faster kernel, not an implausible one.
    pub fn speedup(&self, section: &str, key: &str, value: f64) -> Result<f64, IoError> {
        if value.is_finite() && (1.0..=4.0).contains(&value) {
            Ok(value)
        } else {
            Err(self.error(
                section,
                key,
                format!("must be a speedup between 1 and 4, found {value}"),
            ))
        }
    }

    /// `value` must lie in [0, 1).
    pub fn below_one(&self, section: &str, key: &str, value: f64) -> Result<f64, IoError> {
        if value.is_finite() && (0.0..1.0).contains(&value) {
            Ok(value)
        } else {
            Err(self.error(
                section,
                key,
                format!("must be a fraction in [0, 1), found {value}"),
            ))
        }
    }

    /// `value` must be at least 1.
    pub fn at_least_one(&self, section: &str, key: &str, value: u32) -> Result<u32, IoError> {
        if value >= 1 {
            Ok(value)
        } else {
            Err(self.error(section, key, "must be at least 1, found 0".into()))
        }
    }

    /// Text that must not be blank.
    pub fn non_empty(&self, key: &str, value: &str) -> Result<(), IoError> {
        if value.trim().is_empty() {
            Err(self.error("", key, "must not be empty".into()))
        } else {
            Ok(())
        }
    }

    /// An id a user can type (lower-case letters, digits, `-`, `.`, `_`), equal to the file's stem
    /// so that `<id>.toml` is always where `<id>` lives.
    pub fn id(&self, id: &str) -> Result<(), IoError> {
        let typeable = !id.is_empty()
            && id.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == '_'
            });
        if !typeable {
            return Err(self.error(
                "",
                "id",
                format!("`{id}` must be lower-case letters, digits, `-`, `.` or `_`"),
            ));
        }
        let stem = std::path::Path::new(self.path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if stem != id {
            return Err(self.error(
                "",
                "id",
                format!("`{id}` must match the file name `{stem}.toml`; rename one of them"),
            ));
        }
        Ok(())
    }
}

/// Parses and checks one accelerator file.
pub(crate) fn parse_accelerator(path: &str, text: &str) -> Result<LoadedAccelerator, IoError> {
    let f: AcceleratorFile = tomlfile::parse(path, text)?;
    let c = Checker { path, text };
    c.id(&f.id)?;
    c.non_empty("name", &f.name)?;
    c.non_empty("vendor", &f.vendor)?;
    c.non_empty("default_node", &f.default_node)?;
    c.non_empty("source", &f.source)?;
    let hbm_gib = c.positive("", "hbm_gib", f.hbm_gib)?;
    let hbm_tbps = c.positive("", "hbm_tbps", f.hbm_tbps)?;
    let bf16 = c.positive("", "bf16_tflops", f.bf16_tflops)?;
    let fp16 = c.positive("", "fp16_tflops", f.fp16_tflops)?;
    let fp8 = match f.fp8_tflops {
        Some(v) => Some(FlopRate::from_tflops(c.positive("", "fp8_tflops", v)?)),
        None => None,
    };
    let scaleup = c.positive("", "scaleup_unidir_gbps", f.scaleup_unidir_gbps)?;
    let tdp_w = c.positive("", "tdp_w", f.tdp_w)?;
    let price = match f.price_usd_per_gpu_hour {
        Some(v) => {
            let v = c.positive("", "price_usd_per_gpu_hour", v)?;
            // A price without its basis cannot be refreshed or judged, so both travel together.
            let has_basis = f
                .price_basis
                .as_deref()
                .is_some_and(|b| !b.trim().is_empty());
            if !has_basis {
                return Err(c.error(
                    "",
                    "price_usd_per_gpu_hour",
                    "needs `price_basis` saying where and when the price was read".into(),
                ));
            }
            Some(v)
        }
        None => None,
    };
    let e = &f.efficiency;
    let s = "efficiency";
    let efficiency = Efficiency {
        matmul_fraction: c.fraction(s, "matmul_fraction", e.matmul_fraction)?,
        matmul_half_dim: c.non_negative(s, "matmul_half_dim", e.matmul_half_dim)?,
        fp8_matmul_fraction: c.fraction(s, "fp8_matmul_fraction", e.fp8_matmul_fraction)?,
        attention_fraction: c.fraction(s, "attention_fraction", e.attention_fraction)?,
        te_attention_speedup: c.speedup(
            s,
            "te_attention_speedup",
            e.te_attention_speedup.unwrap_or(1.0),
        )?,
        hbm_fraction: c.fraction(s, "hbm_fraction", e.hbm_fraction)?,
        overlap_penalty: c.below_one(
            s,
            "overlap_penalty",
            e.overlap_penalty
                .unwrap_or(Efficiency::default().overlap_penalty),
        )?,
        scaleup_fraction: c.fraction(s, "scaleup_fraction", e.scaleup_fraction)?,
        scaleout_fraction: c.fraction(s, "scaleout_fraction", e.scaleout_fraction)?,
        collective_latency: Seconds::from_us(c.non_negative(
            s,
            "collective_latency_us",
            e.collective_latency_us,
        )?),
        scaleup_hop_latency: Seconds::from_us(c.non_negative(
            s,
            "scaleup_hop_latency_us",
            e.scaleup_hop_latency_us,
        )?),
        scaleout_hop_latency: Seconds::from_us(c.non_negative(
            s,
            "scaleout_hop_latency_us",
            e.scaleout_hop_latency_us,
        )?),
    };
    Ok(LoadedAccelerator {
        default_node_at: c.at("", "default_node"),
        accelerator: Accelerator {
            id: f.id,
            name: f.name,
            vendor: f.vendor,
            hbm_capacity: Bytes::from_gib(hbm_gib),
            hbm_bandwidth: ByteRate::from_tbps(hbm_tbps),
            bf16_peak: FlopRate::from_tflops(bf16),
            fp16_peak: FlopRate::from_tflops(fp16),
            fp8_peak: fp8,
            scaleup_unidir: ByteRate::from_gbps(scaleup),
            tdp_w,
            price_usd_per_gpu_hour: price,
            default_node: f.default_node,
            efficiency,
        },
    })
}

/// Parses and checks one node file.
pub(crate) fn parse_node(path: &str, text: &str) -> Result<LoadedNode, IoError> {
    let f: NodeFile = tomlfile::parse(path, text)?;
    let c = Checker { path, text };
    c.id(&f.id)?;
    c.non_empty("name", &f.name)?;
    c.non_empty("accelerator", &f.accelerator)?;
    c.non_empty("source", &f.source)?;
    let gpus = c.at_least_one("", "gpus_per_node", f.gpus_per_node)?;
    let domain = c.at_least_one("", "scaleup_domain", f.scaleup_domain)?;
    // Ranks are placed node by node, so a scale-up domain either spans whole nodes (NVL72) or
    // tiles one node exactly (bridged PCIe pairs); anything else has no consistent placement.
    if domain % gpus != 0 && gpus % domain != 0 {
        return Err(c.error(
            "",
            "scaleup_domain",
            format!(
                "{domain} must be a multiple or a divisor of gpus_per_node = {gpus}, \
                 so that domains tile the nodes"
            ),
        ));
    }
    // The planner spans nodes, so a node without a compute fabric could never join a job.
    let nics = c.at_least_one("", "nics_per_node", f.nics_per_node)?;
    let rate = c.positive("", "nic_gbit_s", f.nic_gbit_s)?;
    Ok(LoadedNode {
        accelerator_at: c.at("", "accelerator"),
        node: Node {
            id: f.id,
            name: f.name,
            accelerator: f.accelerator,
            gpus_per_node: gpus,
            scaleup_domain: domain,
            nics_per_node: nics,
            nic_gbit_s: rate,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H100: &str = r#"
id = "h100-sxm"
name = "H100 SXM5 80GB"
vendor = "NVIDIA"
hbm_gib = 79.65
hbm_tbps = 3.35
bf16_tflops = 989.4
fp16_tflops = 989.4
fp8_tflops = 1978.9
scaleup_unidir_gbps = 450
tdp_w = 700
price_usd_per_gpu_hour = 3.78
price_basis = "somewhere, some day"
default_node = "dgx-h100"
source = "a datasheet"

[efficiency]
matmul_fraction = 0.803
matmul_half_dim = 256.0
fp8_matmul_fraction = 0.709
attention_fraction = 0.5
hbm_fraction = 0.85
overlap_penalty = 0.1
scaleup_fraction = 0.82
scaleout_fraction = 0.94
collective_latency_us = 8.4
scaleup_hop_latency_us = 1.9
scaleout_hop_latency_us = 4.0
"#;

    const NODE: &str = r#"
id = "dgx-h100"
name = "DGX H100"
accelerator = "h100-sxm"
gpus_per_node = 8
scaleup_domain = 8
nics_per_node = 8
nic_gbit_s = 400
source = "a reference architecture"
"#;

    /// Parses `text` as `accelerators/h100-sxm.toml` and returns the error text, if any.
    fn check_accelerator(text: &str) -> Option<String> {
        parse_accelerator("db/accelerators/h100-sxm.toml", text)
            .err()
            .map(|e| e.to_string())
    }

    fn check_node(text: &str) -> Option<String> {
        parse_node("db/nodes/dgx-h100.toml", text)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn a_good_accelerator_converts_units() {
        let a = parse_accelerator("db/accelerators/h100-sxm.toml", H100)
            .unwrap()
            .accelerator;
        assert_eq!(a.bf16_peak, FlopRate::from_tflops(989.4));
        assert_eq!(a.scaleup_unidir, ByteRate::from_gbps(450.0));
        assert_eq!(a.hbm_capacity, Bytes::from_gib(79.65));
        assert_eq!(a.efficiency.collective_latency, Seconds::from_us(8.4));
        assert_eq!(a.price_usd_per_gpu_hour, Some(3.78));
        // Absent, Transformer Engine's attention is no faster than FlashAttention-2.
        assert_eq!(a.efficiency.te_attention_speedup, 1.0);
        let faster = H100.replace(
            "attention_fraction = 0.5",
            "attention_fraction = 0.5\nte_attention_speedup = 1.75",
        );
        let a = parse_accelerator("db/accelerators/h100-sxm.toml", &faster)
            .unwrap()
            .accelerator;
        assert_eq!(a.efficiency.te_attention_speedup, 1.75);
    }

    #[test]
    fn accelerator_errors_name_line_and_field() {
        let cases = [
            ("hbm_tbps = 3.35", "hbm_tbps = 0", ":6:1: field `hbm_tbps`"),
            (
                "scaleup_fraction = 0.82",
                "scaleup_fraction = 1.2",
                ":24:1: field `efficiency.scaleup_fraction`: must be a fraction",
            ),
            ("tdp_w = 700", "tdp_watts = 700", "did you mean `tdp_w`?"),
            (
                "id = \"h100-sxm\"",
                "id = \"h100\"",
                "must match the file name",
            ),
            (
                "price_basis = \"somewhere, some day\"",
                "",
                "needs `price_basis`",
            ),
            ("bf16_tflops = 989.4", "bf16_tflops = \"fast\"", ":7:"),
            (
                "attention_fraction = 0.5",
                "attention_fraction = 0.5\nte_attention_speedup = 0.5",
                ":22:1: field `efficiency.te_attention_speedup`: must be a speedup between 1 and 4",
            ),
        ];
        for (from, to, expect) in cases {
            let text = H100.replace(from, to);
            let e = check_accelerator(&text).unwrap_or_default();
            assert!(e.contains(expect), "{from} -> {to}: {e}");
            assert!(e.starts_with("db/accelerators/h100-sxm.toml"), "{e}");
        }
    }

    #[test]
    fn node_checks_counts_and_tiling() {
        assert!(check_node(NODE).is_none());
        let cases = [
            (
                "gpus_per_node = 8",
                "gpus_per_node = 0",
                "must be at least 1",
            ),
            (
                "scaleup_domain = 8",
                "scaleup_domain = 3",
                "multiple or a divisor",
            ),
            ("nic_gbit_s = 400", "nic_gbit_s = -1", "positive"),
            ("nics_per_node = 8", "nics_per_node = -1", ":7:"),
            (
                "name = \"DGX H100\"",
                "name = \"DGX\"\ncolour = 1",
                "unknown field",
            ),
        ];
        for (from, to, expect) in cases {
            let e = check_node(&NODE.replace(from, to)).unwrap_or_default();
            assert!(e.contains(expect), "{from} -> {to}: {e}");
        }
    }
}

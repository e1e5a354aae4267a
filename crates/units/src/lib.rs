//! Physical quantities for trainplan: bytes, FLOPs, seconds and the rates between them.
//!
//! Every quantity in the cost model is one of these newtypes over `f64`, so a byte count can
//! never be added to a FLOP count and a bandwidth always knows it is bytes per second. The
//! types are `Copy`, allocation-free and compile down to plain floating-point arithmetic: the
//! sweep evaluates millions of strategies and pays nothing for the safety.
//!
//! Only the arithmetic that has a physical meaning is implemented: `Flops / FlopRate = Seconds`,
//! `Bytes / ByteRate = Seconds`, sums of like quantities and scaling by a plain factor.

use std::fmt;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// Bytes in one gibibyte (2^30).
pub const GIB: f64 = 1_073_741_824.0;
/// Bytes in one gigabyte (10^9).
pub const GB: f64 = 1e9;
/// FLOP/s in one TFLOP/s (10^12).
pub const TERA: f64 = 1e12;

macro_rules! quantity {
    ($(#[$doc:meta])* $name:ident, $unit:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
        pub struct $name(pub f64);

        impl $name {
            /// The zero quantity.
            pub const ZERO: Self = Self(0.0);

            /// The raw value in the base unit.
            #[inline]
            pub const fn get(self) -> f64 {
                self.0
            }

            /// The larger of two quantities.
            #[inline]
            #[must_use]
            pub fn max(self, other: Self) -> Self {
                Self(self.0.max(other.0))
            }

            /// The smaller of two quantities.
            #[inline]
            #[must_use]
            pub fn min(self, other: Self) -> Self {
                Self(self.0.min(other.0))
            }

            /// True when the value is finite and not negative.
            #[inline]
            pub fn is_valid(self) -> bool {
                self.0.is_finite() && self.0 >= 0.0
            }
        }

        impl Add for $name {
            type Output = Self;
            #[inline]
            fn add(self, rhs: Self) -> Self {
                Self(self.0 + rhs.0)
            }
        }

        impl AddAssign for $name {
            #[inline]
            fn add_assign(&mut self, rhs: Self) {
                self.0 += rhs.0;
            }
        }

        impl Sub for $name {
            type Output = Self;
            #[inline]
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 - rhs.0)
            }
        }

        impl Mul<f64> for $name {
            type Output = Self;
            #[inline]
            fn mul(self, rhs: f64) -> Self {
                Self(self.0 * rhs)
            }
        }

        impl Mul<$name> for f64 {
            type Output = $name;
            #[inline]
            fn mul(self, rhs: $name) -> $name {
                $name(self * rhs.0)
            }
        }

        impl Div<f64> for $name {
            type Output = Self;
            #[inline]
            fn div(self, rhs: f64) -> Self {
                Self(self.0 / rhs)
            }
        }

        /// The ratio of two like quantities is a plain number.
        impl Div for $name {
            type Output = f64;
            #[inline]
            fn div(self, rhs: Self) -> f64 {
                self.0 / rhs.0
            }
        }

        impl std::iter::Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                Self(iter.map(|q| q.0).sum())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.0, $unit)
            }
        }
    };
}

quantity!(
    /// A number of bytes.
    Bytes,
    "B"
);
quantity!(
    /// A number of floating-point operations.
    Flops,
    "FLOP"
);
quantity!(
    /// A duration in seconds.
    Seconds,
    "s"
);
quantity!(
    /// A compute rate in FLOP per second.
    FlopRate,
    "FLOP/s"
);
quantity!(
    /// A bandwidth in bytes per second.
    ByteRate,
    "B/s"
);

impl Bytes {
    /// Bytes from gibibytes (2^30 bytes).
    #[inline]
    pub fn from_gib(gib: f64) -> Self {
        Self(gib * GIB)
    }

    /// Bytes from gigabytes (10^9 bytes).
    #[inline]
    pub fn from_gb(gb: f64) -> Self {
        Self(gb * GB)
    }

    /// The value in gibibytes.
    #[inline]
    pub fn gib(self) -> f64 {
        self.0 / GIB
    }

    /// The value in gigabytes.
    #[inline]
    pub fn gb(self) -> f64 {
        self.0 / GB
    }
}

impl FlopRate {
    /// A rate from TFLOP/s.
    #[inline]
    pub fn from_tflops(tflops: f64) -> Self {
        Self(tflops * TERA)
    }

    /// The rate in TFLOP/s.
    #[inline]
    pub fn tflops(self) -> f64 {
        self.0 / TERA
    }
}

impl ByteRate {
    /// A bandwidth from GB/s (10^9 bytes per second).
    #[inline]
    pub fn from_gbps(gb_per_s: f64) -> Self {
        Self(gb_per_s * GB)
    }

    /// A bandwidth from TB/s (10^12 bytes per second).
    #[inline]
    pub fn from_tbps(tb_per_s: f64) -> Self {
        Self(tb_per_s * TERA)
    }

    /// A bandwidth from a link rate in Gbit/s.
    #[inline]
    pub fn from_gbit_per_s(gbit_per_s: f64) -> Self {
        Self(gbit_per_s * GB / 8.0)
    }

    /// The bandwidth in GB/s.
    #[inline]
    pub fn gbps(self) -> f64 {
        self.0 / GB
    }
}

impl Seconds {
    /// Seconds from microseconds.
    #[inline]
    pub fn from_us(us: f64) -> Self {
        Self(us * 1e-6)
    }

    /// The duration in hours.
    #[inline]
    pub fn hours(self) -> f64 {
        self.0 / 3600.0
    }

    /// The duration in days.
    #[inline]
    pub fn days(self) -> f64 {
        self.0 / 86_400.0
    }
}

impl Div<FlopRate> for Flops {
    type Output = Seconds;
    #[inline]
    fn div(self, rhs: FlopRate) -> Seconds {
        Seconds(self.0 / rhs.0)
    }
}

impl Div<ByteRate> for Bytes {
    type Output = Seconds;
    #[inline]
    fn div(self, rhs: ByteRate) -> Seconds {
        Seconds(self.0 / rhs.0)
    }
}

impl Div<Seconds> for Flops {
    type Output = FlopRate;
    #[inline]
    fn div(self, rhs: Seconds) -> FlopRate {
        FlopRate(self.0 / rhs.0)
    }
}

impl Mul<Seconds> for FlopRate {
    type Output = Flops;
    #[inline]
    fn mul(self, rhs: Seconds) -> Flops {
        Flops(self.0 * rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seventy_billion_bf16_parameters_are_140_gb() {
        // The seed fact of every sizing interview: 2 bytes per parameter in bf16.
        let weights = Bytes(70e9 * 2.0);
        assert_eq!(weights.gb(), 140.0);
        assert!((weights.gib() - 130.385).abs() < 1e-3);
    }

    #[test]
    fn rates_divide_into_seconds() {
        let t = Flops(312e12) / FlopRate::from_tflops(312.0);
        assert_eq!(t, Seconds(1.0));
        let t = Bytes::from_gb(50.0) / ByteRate::from_gbit_per_s(400.0);
        assert_eq!(t, Seconds(1.0));
    }

    #[test]
    fn like_quantities_add_and_compare() {
        let a = Seconds(1.5) + Seconds(0.5);
        assert_eq!(a.get(), 2.0);
        assert_eq!(Seconds(3.0).max(a), Seconds(3.0));
        assert_eq!(Bytes(6.0) / Bytes(3.0), 2.0);
        assert!(!Seconds(f64::NAN).is_valid());
        assert!(!Seconds(-1.0).is_valid());
    }
}

//! Sizes computed with checked arithmetic, and memory checked against a limit before it is
//! allocated.
//!
//! Every size that comes from a file or a flag (a spec's filters, an image's side, a header's
//! dimensions) goes through [`checked_product`] or [`Bytes`] before anything is allocated, so a
//! hostile or mistaken number ends in a one-line error that names the size instead of wrapping
//! modulo 2^64 or aborting in the allocator.

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that overrides the memory limit (bytes, or with a `K`, `M`, `G` or
/// `T` suffix in powers of 1024): `CONVNET_MAX_MEMORY=64G`.
pub const MEMORY_LIMIT_ENV: &str = "CONVNET_MAX_MEMORY";

static LIMIT: OnceLock<u64> = OnceLock::new();

/// Used where the machine's memory cannot be read.
const FALLBACK_LIMIT: u64 = 8 << 30;

/// Why a size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("{what}: {dims} overflows 64-bit arithmetic")]
    Overflow { what: String, dims: String },
    #[error(
        "{what} would need {} (limit {}; set {MEMORY_LIMIT_ENV} to change it)",
        human_bytes(*.bytes),
        human_bytes(*.limit)
    )]
    TooLarge {
        what: String,
        bytes: u128,
        limit: u64,
    },
    #[error("{what} is {value}, above the limit of {limit}")]
    AboveLimit {
        what: String,
        value: u128,
        limit: u128,
    },
}

/// The product of `dims`, or an error naming `what` when it does not fit in a `usize`.
pub fn checked_product(what: &str, dims: &[usize]) -> Result<usize, SizeError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| SizeError::Overflow {
            what: what.to_string(),
            dims: dims_text(dims),
        })
}

/// `a * b` or an overflow error naming `what`.
pub fn checked_mul(what: &str, a: usize, b: usize) -> Result<usize, SizeError> {
    checked_product(what, &[a, b])
}

/// `a + b` or an overflow error naming `what`.
pub fn checked_add(what: &str, a: usize, b: usize) -> Result<usize, SizeError> {
    a.checked_add(b).ok_or_else(|| SizeError::Overflow {
        what: what.to_string(),
        dims: format!("{a} + {b}"),
    })
}

/// `value` itself, or an error when it is above `limit` (a flag's or a header's bound).
pub fn at_most(what: &str, value: usize, limit: usize) -> Result<usize, SizeError> {
    if value > limit {
        return Err(SizeError::AboveLimit {
            what: what.to_string(),
            value: value as u128,
            limit: limit as u128,
        });
    }
    Ok(value)
}

/// A memory need, summed from the buffers one piece of work allocates, then checked against
/// [`memory_limit`] before any of them is allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes(u128);

impl Bytes {
    pub const ZERO: Bytes = Bytes(0);

    /// Values of `bytes_per` bytes each (f32: 4), as many as the product of `dims`. Computed in
    /// 128 bits and saturating, so a product past any memory reads as too large, never wraps.
    pub fn of(dims: &[usize], bytes_per: usize) -> Self {
        let product = dims
            .iter()
            .try_fold(bytes_per as u128, |acc, &d| acc.checked_mul(d as u128));
        Bytes(product.unwrap_or(u128::MAX))
    }

    /// `f32` buffer of shape `dims`.
    pub fn f32s(dims: &[usize]) -> Self {
        Self::of(dims, 4)
    }

    pub fn get(self) -> u128 {
        self.0
    }

    /// Errors when the need is above [`memory_limit`], naming `what` and both sizes.
    pub fn check(self, what: &str) -> Result<Self, SizeError> {
        self.check_against(what, memory_limit())
    }

    /// As [`Bytes::check`] with an explicit limit (tests; callers with their own budget).
    pub fn check_against(self, what: &str, limit: u64) -> Result<Self, SizeError> {
        if self.0 > limit as u128 {
            return Err(SizeError::TooLarge {
                what: what.to_string(),
                bytes: self.0,
                limit,
            });
        }
        Ok(self)
    }
}

impl std::ops::Add for Bytes {
    type Output = Bytes;
    fn add(self, rhs: Bytes) -> Bytes {
        Bytes(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::AddAssign for Bytes {
    fn add_assign(&mut self, rhs: Bytes) {
        *self = *self + rhs;
    }
}

impl std::ops::Mul<usize> for Bytes {
    type Output = Bytes;
    fn mul(self, rhs: usize) -> Bytes {
        Bytes(self.0.saturating_mul(rhs as u128))
    }
}

impl std::iter::Sum for Bytes {
    fn sum<I: Iterator<Item = Bytes>>(iter: I) -> Bytes {
        iter.fold(Bytes::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human_bytes(self.0))
    }
}

/// The most memory one piece of work may ask for: [`MEMORY_LIMIT_ENV`] when set, else the
/// machine's physical memory (Linux), else 8 GiB. Read once.
pub fn memory_limit() -> u64 {
    *LIMIT.get_or_init(|| {
        std::env::var(MEMORY_LIMIT_ENV)
            .ok()
            .and_then(|v| parse_bytes(&v))
            .or_else(physical_memory)
            .unwrap_or(FALLBACK_LIMIT)
    })
}

/// Sets the limit for this process, before anything has read it; returns whether it took
/// effect. For programs that run untrusted inputs under a budget of their own (the fuzz
/// targets), where setting the environment variable would need `unsafe`.
pub fn set_memory_limit(bytes: u64) -> bool {
    LIMIT.set(bytes).is_ok()
}

/// `123`, `512K`, `64M`, `8G`, `1T` (powers of 1024; an optional trailing `B` or `iB`).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (digits, shift) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1u64 << shift).filter(|&b| b > 0)
}

fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `1.5 GiB`, `12 MiB`, `512 B`.
pub fn human_bytes(bytes: impl Into<u128>) -> String {
    let b = bytes.into();
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut value = b as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 1024.0 {
        return format!("{b} B");
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn dims_text(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    parts.join(" x ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn products_overflow_into_errors() {
        assert_eq!(checked_product("x", &[2, 3, 4]), Ok(24));
        assert_eq!(checked_product("x", &[]), Ok(1));
        let e = checked_product("layer 'c1' weights", &[1 << 40, 1 << 40]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer 'c1' weights: 1099511627776 x 1099511627776 overflows 64-bit arithmetic"
        );
    }

    #[test]
    fn memory_is_checked_and_named() {
        let need = Bytes::f32s(&[1_000_000_000, 9]);
        assert_eq!(need.get(), 36_000_000_000);
        let e = need.check_against("conv weights", 8 << 30).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv weights would need 33.5 GiB (limit 8.0 GiB; set CONVNET_MAX_MEMORY to change it)"
        );
        assert!(Bytes::f32s(&[10, 10]).check_against("x", 400).is_ok());
        assert!(Bytes::f32s(&[10, 10]).check_against("x", 399).is_err());
    }

    #[test]
    fn byte_texts() {
        assert_eq!(parse_bytes("64G"), Some(64 << 30));
        assert_eq!(parse_bytes("512kib"), Some(512 << 10));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
        assert_eq!(human_bytes(512u64), "512 B");
        assert_eq!(human_bytes(3u64 << 20), "3.0 MiB");
    }

    proptest! {
        /// The checked product agrees with 128-bit arithmetic: a value when it fits, an error
        /// when it does not, never a wrapped number.
        #[test]
        fn product_never_wraps(dims in proptest::collection::vec(any::<usize>(), 0..6)) {
            let wide = dims.iter().try_fold(1u128, |a, &d| a.checked_mul(d as u128));
            match checked_product("p", &dims) {
                Ok(p) => prop_assert_eq!(Some(p as u128), wide),
                Err(_) => prop_assert!(wide.is_none_or(|w| w > usize::MAX as u128)),
            }
        }

        #[test]
        fn bytes_saturate_not_wrap(dims in proptest::collection::vec(any::<usize>(), 0..6)) {
            let wide = dims.iter().try_fold(4u128, |a, &d| a.checked_mul(d as u128));
            prop_assert_eq!(Bytes::f32s(&dims).get(), wide.unwrap_or(u128::MAX));
        }
    }
}

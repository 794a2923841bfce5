//! Value parsers shared by every flag that sizes work: an image side (`--size`), a batch
//! (`--batch`), a tile. Each states its range, so clap's error names the flag, the value and
//! the limit: `invalid value '32000' for '--size <SIZE>': an image side must be 1 to 8192`.
//!
//! The ranges bound what a flag can ask for before any work starts; memory for a size inside
//! the range is still estimated where the size drives big tensors (style transfer, detection),
//! with `convnet_layers::limits::Bytes`.

/// The largest image side a flag accepts: detection on large aerial photographs runs at 4096 to
/// 8192 pixels; no network in the zoo is meant for more.
pub const MAX_SIDE: usize = 8192;

/// The largest batch a flag accepts: far above what fits in memory for any image model, low
/// enough that `batch × example` arithmetic never nears overflow.
pub const MAX_BATCH: usize = 65_536;

/// The largest tile (one picture in a grid of filters, patches or maps), in pixels.
pub const MAX_TILE: usize = 1024;

/// `--size`: an image side in pixels, 1 to [`MAX_SIDE`].
pub fn image_side(text: &str) -> Result<usize, String> {
    in_range(text, "an image side", 1, MAX_SIDE)
}

/// `--batch` and other per-step example counts, 1 to [`MAX_BATCH`]. Declare the flag with
/// `allow_negative_numbers = true` so `--batch -5` reaches this parser (and its message)
/// instead of being read as an unknown flag.
pub fn batch(text: &str) -> Result<usize, String> {
    in_range(text, "a batch size", 1, MAX_BATCH)
}

/// `--tile`: a tile side in pixels, 1 to [`MAX_TILE`].
pub fn tile(text: &str) -> Result<u32, String> {
    let side = in_range(text, "a tile side", 1, MAX_TILE)?;
    u32::try_from(side).map_err(|_| format!("a tile side must be 1 to {MAX_TILE}"))
}

/// A whole number in `min..=max`; any other text (a fraction, a negative, a number too large
/// for any integer type) gets the same one-line message stating the range.
fn in_range(text: &str, what: &str, min: usize, max: usize) -> Result<usize, String> {
    let range = || format!("{what} must be {min} to {max}");
    let value: i128 = match text.trim().parse() {
        Ok(v) => v,
        Err(_)
            if text
                .trim()
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit()) =>
        {
            return Err(range());
        }
        Err(_) => return Err(format!("expected a whole number; {}", range())),
    };
    usize::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_batches_and_tiles_have_stated_ranges() {
        assert_eq!(image_side("224"), Ok(224));
        assert_eq!(image_side("8192"), Ok(8192));
        assert_eq!(
            image_side("32000").unwrap_err(),
            "an image side must be 1 to 8192"
        );
        assert_eq!(
            image_side("0").unwrap_err(),
            "an image side must be 1 to 8192"
        );
        assert_eq!(batch("-5").unwrap_err(), "a batch size must be 1 to 65536");
        assert_eq!(
            batch("99999999999999999999999999999999999999999").unwrap_err(),
            "a batch size must be 1 to 65536"
        );
        assert_eq!(
            batch("2.5").unwrap_err(),
            "expected a whole number; a batch size must be 1 to 65536"
        );
        assert_eq!(tile("64"), Ok(64));
        assert!(tile("4096").is_err());
    }
}

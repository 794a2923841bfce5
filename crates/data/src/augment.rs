//! Seeded data augmentation: random changes to a training image that keep its label, so the
//! network sees a slightly different picture every epoch and learns the object, not the pixels.
//!
//! Transforms work on one image in `f32` on the `0..1` scale, channels first, and draw all
//! their randomness from the generator they are handed. The [`Loader`](crate::Loader) seeds
//! that generator per `(seed, epoch, example)` ([`example_rng`]), so an augmented epoch is
//! reproducible and independent of threading.

mod colour;
mod geometric;

pub use colour::{ColourShift, PcaColour};
pub use geometric::{RandomCrop, RandomHorizontalFlip, RandomRotation, flip_horizontal, rotate};

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::{DataError, ImageSet};

/// The generator transforms draw from: small, fast, and its output for a seed is fixed by its
/// definition (unlike `StdRng`, which may change between `rand` releases).
pub type AugmentRng = Xoshiro256PlusPlus;

/// The generator for one example's augmentation in one epoch.
pub fn example_rng(seed: u64, epoch: u64, index: usize) -> AugmentRng {
    AugmentRng::seed_from_u64(crate::seed::derive(&[seed, epoch, index as u64, 0xa09]))
}

/// One image, channels first, values on the `0..1` scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `channels * height * width` values: plane after plane, each row-major.
    pub data: Vec<f32>,
}

impl Image {
    /// `None` if `data` does not hold `channels * height * width` values.
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Option<Self> {
        (data.len() == channels * height * width).then_some(Self {
            channels,
            height,
            width,
            data,
        })
    }

    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        }
    }

    /// `u8` pixels of shape `[C, H, W]` divided by 255. Panics if the length does not match
    /// the shape (pixels come from an [`ImageSet`], which guarantees it).
    pub fn from_pixels(pixels: &[u8], [channels, height, width]: [usize; 3]) -> Self {
        assert_eq!(pixels.len(), channels * height * width, "pixels vs shape");
        Self {
            channels,
            height,
            width,
            data: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        }
    }

    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The value at channel `c`, row `y`, column `x`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// Each channel's plane, mutably.
    pub fn planes_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        let plane = (self.height * self.width).max(1);
        self.data.chunks_exact_mut(plane)
    }
}

/// A random change to one image.
pub trait Transform: Send + Sync + std::fmt::Debug {
    /// Changes `image` in place, drawing from `rng` only.
    fn apply(&self, image: &mut Image, rng: &mut AugmentRng);
    /// The transform as written in an `--augment` spec, e.g. `crop=4`.
    fn name(&self) -> String;
}

/// A uniform value in `[-max, max]` that never panics (a range sampler would on a NaN bound).
fn symmetric(rng: &mut AugmentRng, max: f32) -> f32 {
    use rand::RngExt;
    (rng.random::<f32>() * 2.0 - 1.0) * max
}

/// Transforms applied in order.
#[derive(Debug, Default)]
pub struct Augment {
    transforms: Vec<Box<dyn Transform>>,
}

/// What `--augment` accepts, for error messages and help text.
pub const SPEC_HELP: &str = "flip[=P] (default 0.5), crop[=PIXELS] (4), rotate[=DEGREES] (10), \
     shift[=OFFSET] (0.1), pca[=SIGMA] (0.1, RGB only), or none";

impl Augment {
    pub fn new(transforms: Vec<Box<dyn Transform>>) -> Self {
        Self { transforms }
    }

    /// No augmentation.
    pub fn none() -> Self {
        Self::default()
    }

    /// Appends `t`, builder style.
    pub fn with(mut self, t: impl Transform + 'static) -> Self {
        self.transforms.push(Box::new(t));
        self
    }

    pub fn apply(&self, image: &mut Image, rng: &mut AugmentRng) {
        for t in &self.transforms {
            t.apply(image, rng);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty()
    }

    pub fn len(&self) -> usize {
        self.transforms.len()
    }

    /// The transforms as a spec that parses back to the same thing, `none` when empty.
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "none".to_string();
        }
        let names: Vec<String> = self.transforms.iter().map(|t| t.name()).collect();
        names.join(",")
    }

    /// Parses the CLI's `--augment` value: comma-separated `flip`, `flip=0.5`, `crop=4`,
    /// `rotate=10`, `shift=0.1`, `pca`, `pca=0.1`; `none` or an empty string for none. PCA
    /// colour is fitted to `train` here, which is why the set is needed.
    pub fn parse(spec: &str, train: &ImageSet) -> Result<Augment, DataError> {
        let spec = spec.trim();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return Ok(Self::none());
        }
        let mut augment = Self::none();
        for item in spec.split(',').map(str::trim) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let t: Box<dyn Transform> = match name.to_ascii_lowercase().as_str() {
                "flip" => Box::new(RandomHorizontalFlip {
                    p: number(item, value, 0.5, 0.0, 1.0)?,
                }),
                "crop" => Box::new(RandomCrop {
                    padding: match value {
                        None => 4,
                        Some(v) => v
                            .parse()
                            .map_err(|_| bad_value(item, "a whole number of pixels"))?,
                    },
                }),
                "rotate" => Box::new(RandomRotation {
                    max_degrees: number(item, value, 10.0, 0.0, 180.0)? as f32,
                }),
                "shift" => Box::new(ColourShift {
                    max_offset: number(item, value, 0.1, 0.0, 1.0)? as f32,
                }),
                "pca" => Box::new(
                    PcaColour::fit(train)?.with_sigma(number(item, value, 0.1, 0.0, 10.0)? as f32),
                ),
                "none" => {
                    return Err(DataError::Augment(format!(
                        "\"none\" cannot be combined with other augmentations in \"{spec}\""
                    )));
                }
                _ => {
                    return Err(DataError::Augment(format!(
                        "unknown augmentation \"{item}\"; valid: {SPEC_HELP}"
                    )));
                }
            };
            augment.transforms.push(t);
        }
        Ok(augment)
    }
}

fn bad_value(item: &str, wanted: &str) -> DataError {
    DataError::Augment(format!("\"{item}\" needs {wanted}; valid: {SPEC_HELP}"))
}

/// `value` as a number in `[lo, hi]`, or `default` when absent.
fn number(
    item: &str,
    value: Option<&str>,
    default: f64,
    lo: f64,
    hi: f64,
) -> Result<f64, DataError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.parse::<f64>() {
        Ok(x) if (lo..=hi).contains(&x) => Ok(x),
        _ => Err(bad_value(item, &format!("a number from {lo} to {hi}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_set() -> ImageSet {
        ImageSet::new(vec![0; 4], vec![0], [1, 2, 2], vec!["x".into()]).unwrap()
    }

    #[test]
    fn parse_reads_every_transform_and_describes_it_back() {
        let set = grey_set();
        let a = Augment::parse(" flip, crop=2,rotate=15 ,shift=0.05,flip=0.25", &set).unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(
            a.describe(),
            "flip=0.5,crop=2,rotate=15,shift=0.05,flip=0.25"
        );
        let again = Augment::parse(&a.describe(), &set).unwrap();
        assert_eq!(again.describe(), a.describe());
        assert!(Augment::parse("none", &set).unwrap().is_empty());
        assert!(Augment::parse("", &set).unwrap().is_empty());
        assert_eq!(Augment::none().describe(), "none");
    }

    #[test]
    fn parse_errors_list_the_valid_names() {
        let set = grey_set();
        for (spec, says) in [
            ("blur", "unknown augmentation \"blur\""),
            ("flip=2", "a number from 0 to 1"),
            ("crop=-1", "a whole number"),
            ("rotate=abc", "a number from 0 to 180"),
            ("shift=NaN", "a number from 0 to 1"),
            ("flip,none", "cannot be combined"),
        ] {
            let msg = Augment::parse(spec, &set).unwrap_err().to_string();
            assert!(msg.contains(says), "{spec}: {msg}");
            if !spec.contains("none") {
                assert!(
                    msg.contains("flip[=P]") && msg.contains("pca[=SIGMA]"),
                    "{msg}"
                );
            }
        }
        let msg = Augment::parse("pca", &set).unwrap_err().to_string();
        assert!(msg.contains("needs RGB images"), "{msg}");
    }

    #[test]
    fn example_rngs_differ_by_seed_epoch_and_index() {
        use rand::RngExt;
        let draw = |s, e, i| example_rng(s, e, i).random::<u64>();
        assert_eq!(draw(1, 2, 3), draw(1, 2, 3));
        assert_ne!(draw(1, 2, 3), draw(1, 2, 4));
        assert_ne!(draw(1, 2, 3), draw(1, 3, 3));
        assert_ne!(draw(1, 2, 3), draw(2, 2, 3));
    }
}

//! Hand-designed filters, run as convolutions: the course's vertical and horizontal edge
//! detectors, Sobel and Scharr, or any kernel read from a JSON file.
//!
//! As in CNNs, "convolution" here is cross-correlation: the kernel is not flipped, so the
//! vertical filter `[[1, 0, -1], [1, 0, -1], [1, 0, -1]]` responds positively where the image is
//! brighter on the left than on the right.

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use convnet_layers::geometry::window;
use convnet_layers::limits::{Bytes, SizeError, at_most};
use convnet_layers::{Conv2dConfig, Padding, Rounding};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::VisionError;

/// The built-in kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedKernel {
    /// `[[1, 0, -1], [1, 0, -1], [1, 0, -1]]`: the course's vertical edge detector.
    Vertical,
    /// The transpose of `Vertical`: bright above, dark below gives a positive response.
    Horizontal,
    /// `[[1, 0, -1], [2, 0, -2], [1, 0, -1]]`
    SobelX,
    /// The transpose of `SobelX`.
    SobelY,
    /// `[[3, 0, -3], [10, 0, -10], [3, 0, -3]]`
    ScharrX,
    /// The transpose of `ScharrX`.
    ScharrY,
}

impl NamedKernel {
    pub const ALL: [NamedKernel; 6] = [
        NamedKernel::Vertical,
        NamedKernel::Horizontal,
        NamedKernel::SobelX,
        NamedKernel::SobelY,
        NamedKernel::ScharrX,
        NamedKernel::ScharrY,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NamedKernel::Vertical => "vertical",
            NamedKernel::Horizontal => "horizontal",
            NamedKernel::SobelX => "sobel-x",
            NamedKernel::SobelY => "sobel-y",
            NamedKernel::ScharrX => "scharr-x",
            NamedKernel::ScharrY => "scharr-y",
        }
    }

    pub fn kernel(self) -> Kernel {
        // The x kernels, row by row; the y kernels are their transposes.
        let x = |outer: f32, middle: f32| {
            vec![
                vec![outer, 0.0, -outer],
                vec![middle, 0.0, -middle],
                vec![outer, 0.0, -outer],
            ]
        };
        let rows = match self {
            NamedKernel::Vertical | NamedKernel::Horizontal => x(1.0, 1.0),
            NamedKernel::SobelX | NamedKernel::SobelY => x(1.0, 2.0),
            NamedKernel::ScharrX | NamedKernel::ScharrY => x(3.0, 10.0),
        };
        let k = Kernel::from_rows(self.name(), rows).expect("built-in kernels are valid");
        match self {
            NamedKernel::Horizontal | NamedKernel::SobelY | NamedKernel::ScharrY => {
                k.transposed(self.name())
            }
            _ => k,
        }
    }
}

impl FromStr for NamedKernel {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self, KernelError> {
        NamedKernel::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| KernelError::UnknownName(s.to_string()))
    }
}

/// Why a kernel is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    #[error(
        "unknown kernel \"{0}\": expected vertical, horizontal, sobel-x, sobel-y, scharr-x, scharr-y or a .json file"
    )]
    UnknownName(String),
    #[error("cannot read it: {0}")]
    Io(String),
    #[error("expected a 2D array of numbers such as [[1, 0, -1], [1, 0, -1], [1, 0, -1]]: {0}")]
    Json(String),
    #[error("the kernel is empty")]
    Empty,
    #[error(
        "the kernel is not rectangular: row {row} has length {got}, row 1 has length {expected}"
    )]
    Ragged {
        row: usize,
        expected: usize,
        got: usize,
    },
    #[error("row {row}, column {col}: {value} is not a finite 32-bit number")]
    NotFinite { row: usize, col: usize, value: f64 },
    #[error("{0}")]
    Size(#[from] SizeError),
    #[error("the {kernel} kernel is larger than the {image} image")]
    LargerThanImage { kernel: String, image: String },
}

/// The longest side a kernel may have: a kernel this size already costs `side^2` multiply-adds
/// per output pixel; the working memory of a run is checked on top of it (see [`apply`]).
pub const MAX_KERNEL_SIDE: usize = 4096;

/// The largest kernel file read: a full `MAX_KERNEL_SIDE`-square kernel of short numbers fits.
pub const MAX_KERNEL_FILE_BYTES: u64 = 256 << 20;

/// A 2D kernel, `rows x cols`, stored row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

impl Kernel {
    /// A kernel from its rows; they must be non-empty, of one length, and finite as `f32`.
    pub fn from_rows<T: Into<f64> + Copy>(
        name: impl Into<String>,
        rows: Vec<Vec<T>>,
    ) -> Result<Self, KernelError> {
        let cols = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || cols == 0 {
            return Err(KernelError::Empty);
        }
        at_most("kernel rows", rows.len(), MAX_KERNEL_SIDE)?;
        at_most("kernel columns", cols, MAX_KERNEL_SIDE)?;
        let mut values = Vec::with_capacity(rows.len() * cols);
        for (r, row) in rows.iter().enumerate() {
            if row.len() != cols {
                return Err(KernelError::Ragged {
                    row: r + 1,
                    expected: cols,
                    got: row.len(),
                });
            }
            for (c, &v) in row.iter().enumerate() {
                let v: f64 = v.into();
                let single = v as f32;
                if !single.is_finite() {
                    return Err(KernelError::NotFinite {
                        row: r + 1,
                        col: c + 1,
                        value: v,
                    });
                }
                values.push(single);
            }
        }
        Ok(Self {
            name: name.into(),
            rows: rows.len(),
            cols,
            values,
        })
    }

    /// A kernel from JSON text: a 2D array of numbers.
    pub fn from_json(name: impl Into<String>, text: &str) -> Result<Self, KernelError> {
        let rows: Vec<Vec<f64>> =
            serde_json::from_str(text).map_err(|e| KernelError::Json(e.to_string()))?;
        Self::from_rows(name, rows)
    }

    /// A kernel from a JSON file; errors name the file.
    pub fn from_json_file(path: &Path) -> Result<Self, VisionError> {
        let wrap = |source| VisionError::KernelFile {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| wrap(KernelError::Io(e.to_string())))?
            .len();
        at_most(
            "the file's size in bytes",
            usize::try_from(size).unwrap_or(usize::MAX),
            MAX_KERNEL_FILE_BYTES as usize,
        )
        .map_err(|e| wrap(e.into()))?;
        let text =
            std::fs::read_to_string(path).map_err(|e| wrap(KernelError::Io(e.to_string())))?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Self::from_json(name, &text).map_err(wrap)
    }

    /// A built-in kernel's name (`sobel-x`, ...) or the path of a `.json` kernel file.
    pub fn parse(spec: &str) -> Result<Self, VisionError> {
        let path = Path::new(spec);
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            || path.is_file()
        {
            return Self::from_json_file(path);
        }
        Ok(spec.parse::<NamedKernel>()?.kernel())
    }

    /// The value at row `r`, column `c`.
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.values[r * self.cols + c]
    }

    /// The kernel with rows and columns swapped.
    pub fn transposed(&self, name: impl Into<String>) -> Self {
        let values = (0..self.cols)
            .flat_map(|c| (0..self.rows).map(move |r| (r, c)))
            .map(|(r, c)| self.at(r, c))
            .collect();
        Self {
            name: name.into(),
            rows: self.cols,
            cols: self.rows,
            values,
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<String> = self
            .values
            .chunks(self.cols)
            .map(|row| {
                let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                format!("[{}]", cells.join(", "))
            })
            .collect();
        write!(f, "{} [{}]", self.name, rows.join(", "))
    }
}

/// Convolves (cross-correlates) every channel of `image`, `[N, C, H, W]`, with `kernel`:
/// `[N, C, H', W']`, each channel filtered on its own (a depthwise convolution, no bias).
///
/// The work is done by a [`convnet_layers::Conv2d`] whose weight is set to the kernel, so
/// `padding` follows the shared window rule: `valid` gives `H - kh + 1`, `same` keeps `H` (an odd
/// total padding going to the bottom / right), explicit padding pads with zeros.
pub fn apply(
    image: Tensor<4>,
    kernel: &Kernel,
    padding: Padding,
) -> Result<Tensor<4>, VisionError> {
    let [n, channels, h, w] = image.dims();
    if channels == 0 {
        return Err(VisionError::Input(image.dims().to_vec()));
    }
    check_work(kernel, [n, channels, h, w], &padding)?;
    let device = image.device();
    let mut conv = Conv2dConfig::new(channels, [kernel.rows, kernel.cols])
        .with_groups(channels)
        .with_bias(false)
        .with_padding(padding)
        .init(channels, &device)?;
    let weight: Vec<f32> = (0..channels)
        .flat_map(|_| kernel.values.iter().copied())
        .collect();
    conv.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(weight, [channels, 1, kernel.rows, kernel.cols]),
        &device,
    ));
    Ok(conv.forward(image)?)
}

/// Refuses a kernel larger than the image (every output pixel would be mostly padding, or there
/// would be none) and a run whose buffers would not fit the memory limit: the image, its
/// im2col matrix (one column of `kh x kw` values per output pixel, the largest by far), the
/// response and the weights.
fn check_work(
    kernel: &Kernel,
    [n, c, h, w]: [usize; 4],
    padding: &Padding,
) -> Result<(), KernelError> {
    if kernel.rows > h || kernel.cols > w {
        return Err(KernelError::LargerThanImage {
            kernel: format!("{}x{}", kernel.rows, kernel.cols),
            image: format!("{h}x{w}"),
        });
    }
    let [oh, ow] = window(
        [h, w],
        [kernel.rows, kernel.cols],
        [1, 1],
        [1, 1],
        padding,
        Rounding::Floor,
    )
    .map_err(|e| KernelError::LargerThanImage {
        kernel: format!("{}x{} ({e})", kernel.rows, kernel.cols),
        image: format!("{h}x{w}"),
    })?
    .map(|axis| axis.output);
    let need = Bytes::f32s(&[n, c, h, w])
        + Bytes::f32s(&[c, kernel.rows, kernel.cols, oh, ow])
        + Bytes::f32s(&[n, c, oh, ow])
        + Bytes::f32s(&[c, kernel.rows, kernel.cols]);
    need.check(&format!(
        "filtering a {h}x{w} image with a {}x{} kernel ({oh}x{ow} outputs of {} taps each)",
        kernel.rows,
        kernel.cols,
        kernel.rows * kernel.cols
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_kernels_are_the_textbook_ones() {
        let k = NamedKernel::SobelY.kernel();
        assert_eq!(
            k.values,
            vec![1.0, 2.0, 1.0, 0.0, 0.0, 0.0, -1.0, -2.0, -1.0]
        );
        let k = NamedKernel::Horizontal.kernel();
        assert_eq!(
            k.values,
            vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0]
        );
        let k = NamedKernel::ScharrX.kernel();
        assert_eq!(
            k.values,
            vec![3.0, 0.0, -3.0, 10.0, 0.0, -10.0, 3.0, 0.0, -3.0]
        );
        for k in NamedKernel::ALL {
            assert_eq!(k.name().parse::<NamedKernel>().unwrap(), k);
            assert_eq!(k.kernel().values.iter().sum::<f32>(), 0.0, "{}", k.name());
        }
    }

    #[test]
    fn json_kernels_are_validated() {
        let k = Kernel::from_json("k", "[[1, 2, 3], [4, 5, 6]]").unwrap();
        assert_eq!((k.rows, k.cols), (2, 3));
        assert_eq!(k.transposed("t").values, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(Kernel::from_json("k", "[]"), Err(KernelError::Empty));
        assert_eq!(Kernel::from_json("k", "[[]]"), Err(KernelError::Empty));
        assert_eq!(
            Kernel::from_json("k", "[[1, 2], [3]]"),
            Err(KernelError::Ragged {
                row: 2,
                expected: 2,
                got: 1
            })
        );
        assert!(matches!(
            Kernel::from_json("k", "[[1, 1e300]]"),
            Err(KernelError::NotFinite { row: 1, col: 2, .. })
        ));
        assert!(matches!(
            Kernel::from_json("k", "[1, 2, 3]"),
            Err(KernelError::Json(_))
        ));
        assert!(matches!(
            Kernel::from_json("k", "[[1, \"a\"]]"),
            Err(KernelError::Json(_))
        ));
        assert!(matches!(
            Kernel::from_json("k", "[[1, 2]"),
            Err(KernelError::Json(_))
        ));
    }

    #[test]
    fn kernel_sides_are_bounded() {
        let wide = format!("[[{}]]", vec!["0"; MAX_KERNEL_SIDE + 1].join(","));
        assert_eq!(
            Kernel::from_json("k", &wide).unwrap_err().to_string(),
            format!(
                "kernel columns is {}, above the limit of {MAX_KERNEL_SIDE}",
                MAX_KERNEL_SIDE + 1
            )
        );
    }

    fn square(side: usize) -> Kernel {
        Kernel {
            name: "k".into(),
            rows: side,
            cols: side,
            values: vec![0.0; side * side],
        }
    }

    #[test]
    fn kernels_larger_than_the_image_are_refused() {
        let e = check_work(&square(5), [1, 1, 4, 9], &Padding::Same).unwrap_err();
        assert_eq!(e.to_string(), "the 5x5 kernel is larger than the 4x9 image");
        assert!(check_work(&square(4), [1, 1, 4, 9], &Padding::Valid).is_ok());
    }

    #[test]
    fn working_memory_is_checked_before_the_run() {
        // 1200x1200 taps at each of 1300x1300 outputs: 8.9 TiB of im2col matrix.
        let e = check_work(&square(1200), [1, 1, 1300, 1300], &Padding::Same).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("filtering a 1300x1300 image with a 1200x1200 kernel (1300x1300 outputs of 1440000 taps each) would need 8.9 TiB"),
            "{text}"
        );
    }
}

//! The values that flow along a graph's edges while it runs.
//!
//! Floating-point tensors live on the device as Burn tensors of the rank they have (1 to 6;
//! an ONNX scalar is kept as a one-element rank-1 tensor that remembers it is rank 0). Integer
//! and boolean tensors are what CNN graphs compute shapes, indices and masks with: a few
//! numbers each, so they stay on the host.

use burn::tensor::{DType, Device, Shape, Tensor, TensorData};

use crate::GraphError;

/// The largest rank the executor handles (ONNX CNNs use up to 6, e.g. a pixel shuffle).
pub const MAX_RANK: usize = 6;

/// A float tensor of any rank from 0 to [`MAX_RANK`].
#[derive(Debug, Clone)]
pub enum Float {
    R1(Tensor<1>),
    R2(Tensor<2>),
    R3(Tensor<3>),
    R4(Tensor<4>),
    R5(Tensor<5>),
    R6(Tensor<6>),
    /// A rank-0 scalar, held as a `[1]` tensor.
    Scalar(Tensor<1>),
}

/// Applies a rank-generic expression returning a tensor of the same rank.
macro_rules! map_float {
    ($x:expr, |$t:ident| $body:expr) => {
        match $x {
            $crate::onnx::value::Float::R1($t) => $crate::onnx::value::Float::R1($body),
            $crate::onnx::value::Float::R2($t) => $crate::onnx::value::Float::R2($body),
            $crate::onnx::value::Float::R3($t) => $crate::onnx::value::Float::R3($body),
            $crate::onnx::value::Float::R4($t) => $crate::onnx::value::Float::R4($body),
            $crate::onnx::value::Float::R5($t) => $crate::onnx::value::Float::R5($body),
            $crate::onnx::value::Float::R6($t) => $crate::onnx::value::Float::R6($body),
            $crate::onnx::value::Float::Scalar($t) => $crate::onnx::value::Float::Scalar($body),
        }
    };
}

/// Applies a rank-generic expression to two floats already brought to the same rank.
macro_rules! zip_float {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {{
        use $crate::onnx::value::Float as F;
        match ($a, $b) {
            (F::R1($x), F::R1($y)) => F::R1($body),
            (F::R2($x), F::R2($y)) => F::R2($body),
            (F::R3($x), F::R3($y)) => F::R3($body),
            (F::R4($x), F::R4($y)) => F::R4($body),
            (F::R5($x), F::R5($y)) => F::R5($body),
            (F::R6($x), F::R6($y)) => F::R6($body),
            (F::Scalar($x), F::Scalar($y)) => F::Scalar($body),
            _ => unreachable!("zip_float: operands are brought to one rank first"),
        }
    }};
}

pub(crate) use {map_float, zip_float};

impl Float {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Float::R1(t) => t.dims().to_vec(),
            Float::R2(t) => t.dims().to_vec(),
            Float::R3(t) => t.dims().to_vec(),
            Float::R4(t) => t.dims().to_vec(),
            Float::R5(t) => t.dims().to_vec(),
            Float::R6(t) => t.dims().to_vec(),
            Float::Scalar(_) => Vec::new(),
        }
    }

    pub fn rank(&self) -> usize {
        self.dims().len()
    }

    pub fn from_data(data: TensorData, device: &Device) -> Result<Self, GraphError> {
        let dims = data.shape().to_vec();
        let data = data.convert::<f32>();
        Ok(match dims.len() {
            0 => Float::Scalar(Tensor::from_data(
                TensorData::new(data.try_to_vec::<f32>().map_err(data_error)?, [1]),
                device,
            )),
            1 => Float::R1(Tensor::from_data(data, device)),
            2 => Float::R2(Tensor::from_data(data, device)),
            3 => Float::R3(Tensor::from_data(data, device)),
            4 => Float::R4(Tensor::from_data(data, device)),
            5 => Float::R5(Tensor::from_data(data, device)),
            6 => Float::R6(Tensor::from_data(data, device)),
            r => return Err(rank_error(r)),
        })
    }

    /// `[n]` reshaped to `dims` (of any rank up to [`MAX_RANK`]).
    fn from_flat(flat: Tensor<1>, dims: &[usize]) -> Result<Self, GraphError> {
        let shape = Shape::from(dims.to_vec());
        Ok(match dims.len() {
            0 => Float::Scalar(flat.reshape([1])),
            1 => Float::R1(flat.reshape::<1, _>(shape)),
            2 => Float::R2(flat.reshape::<2, _>(shape)),
            3 => Float::R3(flat.reshape::<3, _>(shape)),
            4 => Float::R4(flat.reshape::<4, _>(shape)),
            5 => Float::R5(flat.reshape::<5, _>(shape)),
            6 => Float::R6(flat.reshape::<6, _>(shape)),
            r => return Err(rank_error(r)),
        })
    }

    pub fn flatten(self) -> Tensor<1> {
        let n = self.dims().iter().product::<usize>();
        // Burn reads a 0 in a reshape target as "keep this axis".
        if n == 0 {
            let device = self.device();
            return Tensor::from_data(TensorData::new(Vec::<f32>::new(), [0]), &device);
        }
        match self {
            Float::R1(t) | Float::Scalar(t) => t,
            Float::R2(t) => t.reshape([n]),
            Float::R3(t) => t.reshape([n]),
            Float::R4(t) => t.reshape([n]),
            Float::R5(t) => t.reshape([n]),
            Float::R6(t) => t.reshape([n]),
        }
    }

    /// The same elements as `dims` (their product must match, which callers check).
    pub fn reshape(self, dims: &[usize]) -> Result<Self, GraphError> {
        if self.dims() == dims {
            return Ok(self);
        }
        // Burn reads a 0 in a reshape target as "keep this axis": empty tensors are made anew.
        if dims.contains(&0) {
            let device = self.device();
            return Self::from_data(TensorData::new(Vec::<f32>::new(), dims.to_vec()), &device);
        }
        Self::from_flat(self.flatten(), dims)
    }

    /// Ranks raised to `rank` by leading 1s (numpy broadcasting's alignment).
    pub fn lift(self, rank: usize) -> Result<Self, GraphError> {
        let dims = self.dims();
        if dims.len() >= rank && !dims.is_empty() {
            return Ok(self);
        }
        let mut lifted = vec![1; rank.saturating_sub(dims.len())];
        lifted.extend(&dims);
        if lifted.is_empty() {
            lifted.push(1);
        }
        self.reshape(&lifted)
    }

    pub fn into_data(self) -> TensorData {
        let dims = self.dims();
        let flat = self.flatten().into_data();
        TensorData::new(
            flat.convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default(),
            dims,
        )
    }

    pub fn device(&self) -> Device {
        match self {
            Float::R1(t) | Float::Scalar(t) => t.device(),
            Float::R2(t) => t.device(),
            Float::R3(t) => t.device(),
            Float::R4(t) => t.device(),
            Float::R5(t) => t.device(),
            Float::R6(t) => t.device(),
        }
    }
}

/// Host integers (int64 and the narrower types, widened) or booleans, with their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Ints {
    pub dims: Vec<usize>,
    pub data: Vec<i64>,
    /// The ONNX element type to report (int64, int32, bool...).
    pub dtype: DType,
}

impl Ints {
    pub fn new(dims: Vec<usize>, data: Vec<i64>) -> Self {
        Ints {
            dims,
            data,
            dtype: DType::I64,
        }
    }

    /// Back to the element type the graph declares (values wrap as a cast in C would).
    pub fn into_data(self) -> TensorData {
        let dims = self.dims;
        macro_rules! cast {
            ($t:ty) => {
                TensorData::new(self.data.iter().map(|&v| v as $t).collect::<Vec<_>>(), dims)
            };
        }
        match self.dtype {
            DType::Bool(_) => {
                TensorData::new(self.data.iter().map(|&v| v != 0).collect::<Vec<_>>(), dims)
            }
            DType::I8 => cast!(i8),
            DType::I16 => cast!(i16),
            DType::I32 => cast!(i32),
            DType::U8 => cast!(u8),
            DType::U16 => cast!(u16),
            DType::U32 => cast!(u32),
            DType::U64 => cast!(u64),
            _ => TensorData::new(self.data, dims),
        }
    }
}

/// A value on a graph edge.
// Floats are the common case; boxing them would add an allocation to every node output.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Value {
    Float(Float),
    Int(Ints),
}

impl Value {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Value::Float(f) => f.dims(),
            Value::Int(i) => i.dims.clone(),
        }
    }

    /// A host array as a value: floats go to `device`, integers and booleans stay here.
    pub fn from_data(data: TensorData, device: &Device) -> Result<Self, GraphError> {
        let dims = data.shape().to_vec();
        Ok(match data.dtype() {
            DType::F64 | DType::F32 | DType::F16 | DType::BF16 | DType::Flex32 => {
                Value::Float(Float::from_data(data, device)?)
            }
            DType::Bool(_) => {
                let values = data.try_to_vec::<bool>().map_err(data_error)?;
                Value::Int(Ints {
                    dims,
                    data: values.into_iter().map(i64::from).collect(),
                    dtype: DType::Bool(burn::tensor::BoolStore::Native),
                })
            }
            dtype => {
                let values = data
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .map_err(data_error)?;
                Value::Int(Ints {
                    dims,
                    data: values,
                    dtype,
                })
            }
        })
    }

    pub fn into_data(self) -> TensorData {
        match self {
            Value::Float(f) => f.into_data(),
            Value::Int(i) => i.into_data(),
        }
    }

    /// The value as floats; integers are converted and moved to `device`.
    pub fn float(self, device: &Device) -> Result<Float, GraphError> {
        match self {
            Value::Float(f) => Ok(f),
            Value::Int(i) => {
                let dims = i.dims.clone();
                Float::from_data(
                    TensorData::new(i.data.iter().map(|&v| v as f32).collect::<Vec<_>>(), dims),
                    device,
                )
            }
        }
    }

    /// The value as host integers; floats are read back and truncated (ONNX's Cast).
    pub fn ints(self) -> Result<Ints, GraphError> {
        match self {
            Value::Int(i) => Ok(i),
            Value::Float(f) => {
                let dims = f.dims();
                let data = f.into_data().try_to_vec::<f32>().map_err(data_error)?;
                Ok(Ints::new(
                    dims,
                    data.into_iter().map(|v| v as i64).collect(),
                ))
            }
        }
    }
}

pub fn rank_error(rank: usize) -> GraphError {
    GraphError::invalid(format!(
        "a tensor of rank {rank}: convnet runs tensors of rank 0 to {MAX_RANK}"
    ))
}

pub fn data_error(e: impl std::fmt::Debug) -> GraphError {
    GraphError::invalid(format!("tensor data: {e:?}"))
}

/// Numpy's broadcast of two shapes, or why they do not broadcast.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, GraphError> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], i: usize| -> usize {
        let off = rank - d.len();
        if i < off { 1 } else { d[i - off] }
    };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(GraphError::invalid(format!(
                "shapes {a:?} and {b:?} do not broadcast"
            ))),
        })
        .collect()
}

//! Moving between const-generic ranks that are equal at run time.
//!
//! Layers generic over the tensor rank `D` call Burn's rank-specific ops (`conv1d`, `conv2d`,
//! `conv3d`) in a `match D`; inside each arm the ranks agree, so the reshape is free.

use burn::tensor::{Shape, Tensor};

/// The same tensor seen with rank `B` (`A == B` at run time, or trailing axes merged/split as
/// the caller arranged).
pub(crate) fn rerank<const A: usize, const B: usize>(t: Tensor<A>) -> Tensor<B> {
    let dims = t.dims().to_vec();
    t.reshape::<B, _>(Shape::from(dims))
}

/// A slice of length `N` as an array; the callers pass one value per spatial axis.
pub(crate) fn arr<T: Copy + Default, const N: usize>(v: &[T]) -> [T; N] {
    let mut out = [T::default(); N];
    out.copy_from_slice(&v[..N]);
    out
}

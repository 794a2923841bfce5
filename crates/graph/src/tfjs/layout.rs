//! TensorFlow computes images as NHWC, ONNX's Conv, pools and Resize as NCHW. Rather than a
//! Transpose pair around every spatial node (and a pass to cancel them), each translated
//! value remembers how its stored (physical) tensor is laid out against the TensorFlow one:
//! `physical = transpose(tensorflow, perm)`. A convolution's output stays NCHW; elementwise
//! nodes, concatenations on a mapped axis, reductions that keep their axes and pads follow it
//! in whatever layout it has; a Transpose is written only where a node needs another layout
//! (a Reshape, a graph output), once per value and layout. TensorFlow's own Transpose nodes
//! (NanoDet's, converted from ONNX, wrap every convolution in NCHW↔NHWC pairs) change the
//! recorded layout and write nothing.

/// `transpose(x, perm)` as ONNX defines it: output axis `i` is input axis `perm[i]`.
pub type Perm = [usize; 4];

pub const IDENTITY: Perm = [0, 1, 2, 3];
/// NHWC → NCHW.
pub const TO_NCHW: Perm = [0, 3, 1, 2];

/// `transpose(transpose(x, a), b) = transpose(x, compose(a, b))`.
pub fn compose(a: Perm, b: Perm) -> Perm {
    [a[b[0]], a[b[1]], a[b[2]], a[b[3]]]
}

pub fn inverse(p: Perm) -> Perm {
    let mut inv = [0; 4];
    for (i, &a) in p.iter().enumerate() {
        inv[a] = i;
    }
    inv
}

/// The transpose that turns a physical tensor stored as `have` into one stored as `want`
/// (both against the same TensorFlow tensor).
pub fn between(have: Perm, want: Perm) -> Perm {
    compose(inverse(have), want)
}

/// Where TensorFlow axis `axis` is stored under `perm`.
pub fn physical_axis(perm: Perm, axis: usize) -> usize {
    inverse(perm)[axis]
}

/// A shape (or per-axis list) in TensorFlow order, stored under `perm`.
pub fn permute<T: Copy>(perm: Perm, tf: &[T]) -> Vec<T> {
    perm.iter().map(|&a| tf[a]).collect()
}

/// A 4-D permutation from a TensorFlow perm list, if it is one.
pub fn perm_of(values: &[i64]) -> Option<Perm> {
    let p: Vec<usize> = values
        .iter()
        .map(|&v| usize::try_from(v).ok())
        .collect::<Option<_>>()?;
    let p: Perm = p.try_into().ok()?;
    let mut seen = [false; 4];
    for &a in &p {
        if a >= 4 || std::mem::replace(&mut seen[a], true) {
            return None;
        }
    }
    Some(p)
}

/// Values of a row-major tensor of shape `dims` (rank 4) transposed by `perm`.
pub fn transpose_data<T: Copy>(dims: &[usize], data: &[T], perm: Perm) -> (Vec<usize>, Vec<T>) {
    let out_dims = permute(perm, dims);
    let mut strides = [0usize; 4];
    let mut s = 1;
    for i in (0..4).rev() {
        strides[i] = s;
        s *= dims[i];
    }
    let mut out = Vec::with_capacity(data.len());
    for a in 0..out_dims[0] {
        for b in 0..out_dims[1] {
            for c in 0..out_dims[2] {
                for d in 0..out_dims[3] {
                    let idx = [a, b, c, d];
                    let mut at = 0;
                    for i in 0..4 {
                        at += idx[i] * strides[perm[i]];
                    }
                    out.push(data[at]);
                }
            }
        }
    }
    (out_dims, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhwc_and_nchw_round_trip() {
        let back = inverse(TO_NCHW);
        assert_eq!(back, [0, 2, 3, 1]);
        assert_eq!(compose(TO_NCHW, back), IDENTITY);
        assert_eq!(between(TO_NCHW, TO_NCHW), IDENTITY);
        assert_eq!(between(IDENTITY, TO_NCHW), TO_NCHW);
        assert_eq!(between(TO_NCHW, IDENTITY), back);
        // Channels (TF axis 3) are stored at axis 1 in NCHW.
        assert_eq!(physical_axis(TO_NCHW, 3), 1);
        assert_eq!(permute(TO_NCHW, &[1, 8, 6, 3]), [1, 3, 8, 6]);
    }

    #[test]
    fn transposing_data_moves_values_as_onnx_does() {
        // [1, 2, 2, 3] NHWC with value = h*100 + w*10 + c.
        let dims = [1, 2, 2, 3];
        let data: Vec<i32> = (0..2)
            .flat_map(|h| (0..2).flat_map(move |w| (0..3).map(move |c| h * 100 + w * 10 + c)))
            .collect();
        let (d, t) = transpose_data(&dims, &data, TO_NCHW);
        assert_eq!(d, [1, 3, 2, 2]);
        assert_eq!(t, [0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112]);
        let (d2, back) = transpose_data(&d, &t, inverse(TO_NCHW));
        assert_eq!(d2, dims);
        assert_eq!(back, data);
    }

    #[test]
    fn perms_are_checked() {
        assert_eq!(perm_of(&[0, 2, 3, 1]), Some([0, 2, 3, 1]));
        assert_eq!(perm_of(&[0, 2, 2, 1]), None);
        assert_eq!(perm_of(&[0, 1, 2]), None);
        assert_eq!(perm_of(&[0, 1, 2, 4]), None);
    }
}

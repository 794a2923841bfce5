//! Naive loop-level reference implementations, written for clarity and used as a test oracle.
//!
//! These are the algorithms of the CNN course spelled out with plain loops: pad the input, slide a
//! window over it, and at each position take one "single step" (a sum of products, a max or a
//! mean). Nothing here uses Burn, so the engine can be checked against it (`tests/oracle.rs`).
//!
//! Data is a plain [`Array`]: a row-major `Vec<f32>` with an explicit shape. Layouts are channels
//! first as in PyTorch and Burn: inputs are `[N, C, spatial..]`, convolution weights
//! `[F, C / groups, k..]`, transposed-convolution weights `[C_in, F / groups, k..]`. Every function
//! works for any number of spatial axes (1, 2 or 3 in practice). Sums are accumulated in `f64`.
//!
//! Speed is not a goal: the loops visit every window cell one at a time.

/// A dense row-major array of `f32` with an explicit shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    /// An array of `shape` holding `data` in row-major order.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<f32>) -> Self {
        let shape = shape.into();
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "data of length {} does not fill shape {shape:?}",
            data.len()
        );
        Self { shape, data }
    }

    /// An array of zeros.
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        let len = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; len],
        }
    }

    /// An array whose element at each multi-index is `f(index)`.
    pub fn from_fn(shape: impl Into<Vec<usize>>, mut f: impl FnMut(&[usize]) -> f32) -> Self {
        let shape = shape.into();
        let data = indices(&shape).map(|i| f(&i)).collect();
        Self { shape, data }
    }

    /// A 2D array from its rows.
    pub fn from_rows<const W: usize>(rows: &[[f32; W]]) -> Self {
        Self::new([rows.len(), W], rows.iter().flatten().copied().collect())
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The position of a multi-index in `data`.
    ///
    /// # Panics
    /// If the index has the wrong rank or is out of bounds.
    pub fn offset(&self, index: &[usize]) -> usize {
        offset(&self.shape, index)
    }

    /// The element at a multi-index.
    pub fn get(&self, index: &[usize]) -> f32 {
        self.data[self.offset(index)]
    }

    /// Sets the element at a multi-index.
    pub fn set(&mut self, index: &[usize], value: f32) {
        let at = self.offset(index);
        self.data[at] = value;
    }

    /// The same data with another shape of the same size.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Self {
        Self::new(shape, self.data)
    }

    /// The data, row-major.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// A 1D array.
impl From<Vec<f32>> for Array {
    fn from(data: Vec<f32>) -> Self {
        Self::new([data.len()], data)
    }
}

impl From<Array> for Vec<f32> {
    fn from(a: Array) -> Self {
        a.data
    }
}

/// Row-major position of `index` in an array of `shape`.
fn offset(shape: &[usize], index: &[usize]) -> usize {
    assert_eq!(
        index.len(),
        shape.len(),
        "index {index:?} for shape {shape:?}"
    );
    index.iter().zip(shape).fold(0, |acc, (&i, &n)| {
        assert!(i < n, "index {index:?} out of bounds for shape {shape:?}");
        acc * n + i
    })
}

/// Every multi-index of `shape`, in row-major order (the last axis moves fastest).
///
/// A shape with no axes has one (empty) index; a shape with a zero-length axis has none.
pub fn indices(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + use<> {
    let shape = shape.to_vec();
    let mut next = (!shape.contains(&0)).then(|| vec![0; shape.len()]);
    std::iter::from_fn(move || {
        let current = next.take()?;
        let mut following = current.clone();
        for axis in (0..shape.len()).rev() {
            following[axis] += 1;
            if following[axis] < shape[axis] {
                next = Some(following);
                break;
            }
            following[axis] = 0;
        }
        Some(current)
    })
}

/// An `f64` accumulator shaped like an [`Array`], for sums that should not lose precision.
struct Acc {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Acc {
    fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    fn add(&mut self, index: &[usize], value: f64) {
        let at = offset(&self.shape, index);
        self.data[at] += value;
    }

    fn into_array(self) -> Array {
        Array::new(
            self.shape,
            self.data.into_iter().map(|v| v as f32).collect(),
        )
    }
}

/// `[a, b]` followed by `rest`.
fn cat(a: usize, b: usize, rest: &[usize]) -> Vec<usize> {
    [a, b].into_iter().chain(rest.iter().copied()).collect()
}

/// The spatial axes (after `N` and `C`) of an array.
fn spatial(x: &Array) -> &[usize] {
    assert!(
        x.rank() >= 2,
        "expected [N, C, spatial..], got {:?}",
        x.shape
    );
    &x.shape[2..]
}

/// The effective size of a dilated kernel: `f' = d (f - 1) + 1`.
fn dilated(kernel: usize, dilation: usize) -> usize {
    dilation * (kernel - 1) + 1
}

/// The input position (possibly in the padding: negative or past the end) of kernel tap `k` in
/// window `o`: `o s + k d - p_begin`.
fn tap(o: usize, k: usize, stride: usize, dilation: usize, pad_begin: usize) -> isize {
    (o * stride + k * dilation) as isize - pad_begin as isize
}

/// Zero padding of the spatial axes: `pads[a] = (begin, end)` zeros are added around spatial
/// axis `a`; the batch and channel axes are left alone. The course's `np.pad(x, ((0,0), (0,0),
/// (p,p), (p,p)))`.
pub fn zero_pad(x: &Array, pads: &[(usize, usize)]) -> Array {
    let sp = spatial(x);
    assert_eq!(
        pads.len(),
        sp.len(),
        "one (begin, end) pair per spatial axis"
    );
    let padded: Vec<usize> = sp.iter().zip(pads).map(|(&n, &(b, e))| b + n + e).collect();
    let mut out = Array::zeros(cat(x.shape[0], x.shape[1], &padded));
    for index in indices(&x.shape) {
        let mut to = index.clone();
        for (a, &(b, _)) in pads.iter().enumerate() {
            to[2 + a] += b;
        }
        out.set(&to, x.get(&index));
    }
    out
}

/// The inverse of [`zero_pad`]: drops `pads[a] = (begin, end)` cells around spatial axis `a`.
pub fn crop(x: &Array, pads: &[(usize, usize)]) -> Array {
    let sp = spatial(x);
    assert_eq!(
        pads.len(),
        sp.len(),
        "one (begin, end) pair per spatial axis"
    );
    let inner: Vec<usize> = sp.iter().zip(pads).map(|(&n, &(b, e))| n - b - e).collect();
    Array::from_fn(cat(x.shape[0], x.shape[1], &inner), |index| {
        let mut from = index.to_vec();
        for (a, &(b, _)) in pads.iter().enumerate() {
            from[2 + a] += b;
        }
        x.get(&from)
    })
}

/// One step of a convolution: `Z = sum(a_slice * W) + b`, the sum of the elementwise product of a
/// window of the input and a filter, plus the filter's bias.
pub fn conv_single_step(slice: &[f32], weights: &[f32], bias: f32) -> f32 {
    assert_eq!(slice.len(), weights.len(), "slice and filter sizes differ");
    let s: f64 = slice
        .iter()
        .zip(weights)
        .map(|(&a, &w)| f64::from(a) * f64::from(w))
        .sum();
    (s + f64::from(bias)) as f32
}

/// Output length of a convolution along one axis: `n_out = floor((n + p_b + p_e - f') / s) + 1`
/// with the dilated kernel `f' = d (f - 1) + 1`.
fn conv_output_len(n: usize, (pb, pe): (usize, usize), kernel: usize, s: usize, d: usize) -> usize {
    let padded = n + pb + pe;
    let eff = dilated(kernel, d);
    assert!(
        padded >= eff,
        "kernel {eff} (dilated) is larger than the padded input {padded}"
    );
    (padded - eff) / s + 1
}

/// Shapes of a convolution, checked: `(N, C, F, C / groups, F / groups, kernel)`.
fn conv_dims(
    x: &Array,
    w: &Array,
    groups: usize,
) -> (usize, usize, usize, usize, usize, Vec<usize>) {
    assert_eq!(x.rank(), w.rank(), "x {:?} and w {:?}", x.shape, w.shape);
    let (n, c, f, cg) = (x.shape[0], x.shape[1], w.shape[0], w.shape[1]);
    assert!(
        groups >= 1 && f % groups == 0,
        "{f} filters in {groups} groups"
    );
    assert_eq!(c, cg * groups, "{c} channels, {groups} groups of {cg}");
    (n, c, f, cg, f / groups, w.shape[2..].to_vec())
}

/// The course's `a_slice_prev`: the window of the padded input `xp` that a filter sees at
/// output position `out` — the `C / groups` channels of the filter's group, and in each the
/// kernel taps `o s + k d` — in the layout of one filter `[C / groups, k..]`.
fn conv_window(
    xp: &Array,
    sample: usize,
    first_channel: usize,
    w: &Array,
    out: &[usize],
    stride: &[usize],
    dilation: &[usize],
) -> Vec<f32> {
    let filter_shape = &w.shape[1..];
    indices(filter_shape)
        .map(|fk| {
            let (c, k) = (fk[0], &fk[1..]);
            let mut at = vec![sample, first_channel + c];
            at.extend((0..k.len()).map(|a| out[a] * stride[a] + k[a] * dilation[a]));
            xp.get(&at)
        })
        .collect()
}

/// Forward convolution (cross-correlation, as in every deep-learning library):
///
/// `Z[n, f, o] = b[f] + sum_{c in group(f)} sum_k x_pad[n, c, o s + k d] W[f, c, k]`
///
/// over `n_out = floor((n + p_b + p_e - f') / s) + 1` positions per axis. `x` is `[N, C, ..]`, `w`
/// is `[F, C / groups, k..]` and filter `f` sees the channels of group `f / (F / groups)`.
/// `padding` holds a `(begin, end)` pair per spatial axis.
pub fn conv_forward(
    x: &Array,
    w: &Array,
    b: Option<&[f32]>,
    stride: &[usize],
    padding: &[(usize, usize)],
    dilation: &[usize],
    groups: usize,
) -> Array {
    let (n, _, f, cg, fg, kernel) = conv_dims(x, w, groups);
    let xp = zero_pad(x, padding);
    let out_len: Vec<usize> = (0..kernel.len())
        .map(|a| {
            conv_output_len(
                x.shape[2 + a],
                padding[a],
                kernel[a],
                stride[a],
                dilation[a],
            )
        })
        .collect();
    let filter_len = w.len() / f;
    let mut z = Array::zeros(cat(n, f, &out_len));
    for i in 0..n {
        for filter in 0..f {
            let weights = &w.data[filter * filter_len..(filter + 1) * filter_len];
            let bias = b.map_or(0.0, |b| b[filter]);
            let first_channel = (filter / fg) * cg;
            for o in indices(&out_len) {
                let slice = conv_window(&xp, i, first_channel, w, &o, stride, dilation);
                let mut at = vec![i, filter];
                at.extend(&o);
                z.set(&at, conv_single_step(&slice, weights, bias));
            }
        }
    }
    z
}

/// Backward pass of [`conv_forward`] given the upstream gradient `dout = dL/dZ`; returns
/// `(dx, dw, db)`. The course's loop: for every output cell,
///
/// `dx_pad[n, c, o s + k d] += W[f, c, k] dZ[n, f, o]`,
/// `dW[f, c, k] += x_pad[n, c, o s + k d] dZ[n, f, o]`,
/// `db[f] += dZ[n, f, o]`,
///
/// then `dx` is `dx_pad` without its padding.
pub fn conv_backward(
    dout: &Array,
    x: &Array,
    w: &Array,
    stride: &[usize],
    padding: &[(usize, usize)],
    dilation: &[usize],
    groups: usize,
) -> (Array, Array, Vec<f32>) {
    let (n, _, f, cg, fg, _) = conv_dims(x, w, groups);
    let xp = zero_pad(x, padding);
    assert_eq!(&dout.shape[..2], &[n, f], "dout {:?}", dout.shape);
    let out_len = spatial(dout).to_vec();
    let mut dxp = Acc::zeros(&xp.shape);
    let mut dw = Acc::zeros(&w.shape);
    let mut db = Acc::zeros(&[f]);
    for i in 0..n {
        for filter in 0..f {
            let first_channel = (filter / fg) * cg;
            for o in indices(&out_len) {
                let mut at = vec![i, filter];
                at.extend(&o);
                let dz = f64::from(dout.get(&at));
                for fk in indices(&w.shape[1..]) {
                    let (c, k) = (fk[0], &fk[1..]);
                    let mut xi = vec![i, first_channel + c];
                    xi.extend((0..k.len()).map(|a| o[a] * stride[a] + k[a] * dilation[a]));
                    let mut wi = vec![filter];
                    wi.extend(&fk);
                    dxp.add(&xi, f64::from(w.get(&wi)) * dz);
                    dw.add(&wi, f64::from(xp.get(&xi)) * dz);
                }
                db.add(&[filter], dz);
            }
        }
    }
    let dx = crop(&dxp.into_array(), padding);
    (dx, dw.into_array(), db.into_array().into_vec())
}

/// Output length of a transposed convolution along one axis, as PyTorch:
/// `n_out = (n - 1) s - 2 p + d (f - 1) + output_padding + 1`.
fn conv_transpose_output_len(
    n: usize,
    kernel: usize,
    s: usize,
    p: usize,
    output_padding: usize,
    d: usize,
) -> usize {
    let full = (n - 1) * s + dilated(kernel, d) + output_padding;
    assert!(full > 2 * p, "padding {p} leaves no output");
    full - 2 * p
}

/// Shapes of a transposed convolution, checked: `(N, C_in, F, C_in / groups, F / groups, kernel)`.
fn conv_transpose_dims(
    x: &Array,
    w: &Array,
    groups: usize,
) -> (usize, usize, usize, usize, usize, Vec<usize>) {
    assert_eq!(x.rank(), w.rank(), "x {:?} and w {:?}", x.shape, w.shape);
    let (n, c) = (x.shape[0], x.shape[1]);
    assert_eq!(w.shape[0], c, "w {:?} for {c} input channels", w.shape);
    assert!(
        groups >= 1 && c % groups == 0,
        "{c} channels in {groups} groups"
    );
    let fg = w.shape[1];
    (n, c, fg * groups, c / groups, fg, w.shape[2..].to_vec())
}

/// Transposed convolution ("deconvolution"), with PyTorch's semantics, as a scatter: every input
/// cell paints a copy of its filter, scaled by its value, into the output,
///
/// `Y[n, f, i s + k d - p] += x[n, c, i] W[c, f', k]` (with `f = group(c) F/groups + f'`),
///
/// cells that land outside `0..n_out` being dropped, then `+ b[f]`. The output has
/// `n_out = (n - 1) s - 2 p + d (f - 1) + output_padding + 1` cells per axis: `output_padding` only
/// lengthens the end. `x` is `[N, C_in, ..]`, `w` is `[C_in, F / groups, k..]`. This is the
/// adjoint (the input gradient) of [`conv_forward`] with the same weights.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose_forward(
    x: &Array,
    w: &Array,
    b: Option<&[f32]>,
    stride: &[usize],
    padding: &[usize],
    output_padding: &[usize],
    dilation: &[usize],
    groups: usize,
) -> Array {
    let (n, _, f, cg, fg, kernel) = conv_transpose_dims(x, w, groups);
    let out_len: Vec<usize> = (0..kernel.len())
        .map(|a| {
            conv_transpose_output_len(
                x.shape[2 + a],
                kernel[a],
                stride[a],
                padding[a],
                output_padding[a],
                dilation[a],
            )
        })
        .collect();
    let mut y = Acc::zeros(&cat(n, f, &out_len));
    for xi in indices(&x.shape) {
        let (sample, channel, i) = (xi[0], xi[1], &xi[2..]);
        let value = f64::from(x.get(&xi));
        let first_filter = (channel / cg) * fg;
        for fk in indices(&w.shape[1..]) {
            let (f_in_group, k) = (fk[0], &fk[1..]);
            let mut yi = vec![sample, first_filter + f_in_group];
            for a in 0..k.len() {
                match usize::try_from(tap(i[a], k[a], stride[a], dilation[a], padding[a])) {
                    Ok(o) if o < out_len[a] => yi.push(o),
                    _ => break,
                }
            }
            if yi.len() == 2 + k.len() {
                let mut wi = vec![channel];
                wi.extend(&fk);
                y.add(&yi, value * f64::from(w.get(&wi)));
            }
        }
    }
    if let Some(b) = b {
        for yi in indices(&y.shape.clone()) {
            y.add(&yi, f64::from(b[yi[1]]));
        }
    }
    y.into_array()
}

/// Backward pass of [`conv_transpose_forward`] given `dout = dL/dY`; returns `(dx, dw, db)`. The
/// scatter run backwards, a gather: for every input cell and filter tap landing inside the output,
///
/// `dx[n, c, i] += W[c, f', k] dY[n, f, i s + k d - p]`,
/// `dW[c, f', k] += x[n, c, i] dY[n, f, i s + k d - p]`,
///
/// and `db[f] = sum dY[n, f, ..]`.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose_backward(
    dout: &Array,
    x: &Array,
    w: &Array,
    stride: &[usize],
    padding: &[usize],
    dilation: &[usize],
    groups: usize,
) -> (Array, Array, Vec<f32>) {
    let (n, _, f, cg, fg, _) = conv_transpose_dims(x, w, groups);
    assert_eq!(&dout.shape[..2], &[n, f], "dout {:?}", dout.shape);
    let out_len = spatial(dout);
    let mut dx = Acc::zeros(&x.shape);
    let mut dw = Acc::zeros(&w.shape);
    for xi in indices(&x.shape) {
        let (sample, channel, i) = (xi[0], xi[1], &xi[2..]);
        let first_filter = (channel / cg) * fg;
        for fk in indices(&w.shape[1..]) {
            let (f_in_group, k) = (fk[0], &fk[1..]);
            let mut yi = vec![sample, first_filter + f_in_group];
            for a in 0..k.len() {
                match usize::try_from(tap(i[a], k[a], stride[a], dilation[a], padding[a])) {
                    Ok(o) if o < out_len[a] => yi.push(o),
                    _ => break,
                }
            }
            if yi.len() == 2 + k.len() {
                let mut wi = vec![channel];
                wi.extend(&fk);
                let dy = f64::from(dout.get(&yi));
                dx.add(&xi, f64::from(w.get(&wi)) * dy);
                dw.add(&wi, f64::from(x.get(&xi)) * dy);
            }
        }
    }
    let mut db = vec![0.0f64; f];
    for yi in indices(&dout.shape) {
        db[yi[1]] += f64::from(dout.get(&yi));
    }
    (
        dx.into_array(),
        dw.into_array(),
        db.into_iter().map(|v| v as f32).collect(),
    )
}

/// Which statistic a pooling window takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Output length of a pool along one axis, as PyTorch: `n_out = floor_or_ceil((n + p_b + p_e -
/// f') / s) + 1`, and in ceil mode the last window must start inside the input or the begin pad
/// (`(n_out - 1) s < n + p_b`), otherwise it is dropped.
fn pool_output_len(
    n: usize,
    (pb, pe): (usize, usize),
    kernel: usize,
    s: usize,
    d: usize,
    ceil_mode: bool,
) -> usize {
    let padded = n + pb + pe;
    let eff = dilated(kernel, d);
    assert!(
        padded >= eff,
        "kernel {eff} (dilated) is larger than the padded input {padded}"
    );
    let span = padded - eff;
    let mut out = if ceil_mode {
        span.div_ceil(s)
    } else {
        span / s
    } + 1;
    if ceil_mode && (out - 1) * s >= n + pb {
        out -= 1;
    }
    out
}

/// One pooling window: the input cells it covers (in row-major kernel order, padding left out)
/// and the divisor of its mean.
struct PoolWindow {
    cells: Vec<Vec<usize>>,
    divisor: usize,
}

/// Settings of a pool, shared by [`pool_forward`] and [`pool_backward`].
struct Pool<'a> {
    kernel: &'a [usize],
    stride: &'a [usize],
    padding: &'a [(usize, usize)],
    dilation: &'a [usize],
    ceil_mode: bool,
    count_include_pad: bool,
}

impl Pool<'_> {
    fn output_len(&self, input: &[usize]) -> Vec<usize> {
        (0..input.len())
            .map(|a| {
                pool_output_len(
                    input[a],
                    self.padding[a],
                    self.kernel[a],
                    self.stride[a],
                    self.dilation[a],
                    self.ceil_mode,
                )
            })
            .collect()
    }

    /// The window at output position `out` over spatial input size `input`.
    ///
    /// The divisor is PyTorch's: with `count_include_pad` the window's extent clipped to the
    /// padded input, `prod_a (min(o s - p_b + f, n + p_e) - (o s - p_b))` (padding counts, but not
    /// the cells a ceil-mode window hangs past the padded end); otherwise the number of real cells.
    fn window(&self, input: &[usize], out: &[usize]) -> PoolWindow {
        let nd = input.len();
        let cells: Vec<Vec<usize>> = indices(self.kernel)
            .filter_map(|k| {
                (0..nd)
                    .map(|a| {
                        let t = tap(
                            out[a],
                            k[a],
                            self.stride[a],
                            self.dilation[a],
                            self.padding[a].0,
                        );
                        usize::try_from(t).ok().filter(|&t| t < input[a])
                    })
                    .collect::<Option<Vec<usize>>>()
            })
            .collect();
        let divisor = if self.count_include_pad {
            (0..nd)
                .map(|a| {
                    let start = (out[a] * self.stride[a]) as isize - self.padding[a].0 as isize;
                    let end = (start + self.kernel[a] as isize)
                        .min((input[a] + self.padding[a].1) as isize);
                    (end - start) as usize
                })
                .product()
        } else {
            cells.len()
        };
        PoolWindow { cells, divisor }
    }

    fn check(&self, x: &Array, kind: PoolKind) {
        let nd = spatial(x).len();
        assert!(
            self.kernel.len() == nd
                && self.stride.len() == nd
                && self.padding.len() == nd
                && self.dilation.len() == nd,
            "one kernel, stride, padding and dilation per spatial axis"
        );
        assert!(
            kind == PoolKind::Max || self.dilation.iter().all(|&d| d == 1),
            "average pooling has no dilation"
        );
    }
}

/// Pooling, PyTorch's semantics, over `n_out` positions per axis (see `pool_output_len`):
///
/// - max: `Y[n, c, o] = max_k x_pad[n, c, o s + k d]`, the padding counting as `-inf`;
/// - average: `Y[n, c, o] = sum_k x_pad[n, c, o s + k] / divisor`, the padding counting as 0 and
///   the divisor being the window size clipped to the padded input if `count_include_pad`, else
///   the number of real cells in the window.
///
/// `dilation` applies to max pooling only (pass ones for average pooling).
#[allow(clippy::too_many_arguments)]
pub fn pool_forward(
    x: &Array,
    kind: PoolKind,
    kernel: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
    dilation: &[usize],
    ceil_mode: bool,
    count_include_pad: bool,
) -> Array {
    let pool = Pool {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        count_include_pad,
    };
    pool.check(x, kind);
    let input = spatial(x);
    let out_len = pool.output_len(input);
    let mut y = Array::zeros(cat(x.shape[0], x.shape[1], &out_len));
    for yi in indices(&y.shape.clone()) {
        let window = pool.window(input, &yi[2..]);
        let value = |cell: &Vec<usize>| {
            let mut at = yi[..2].to_vec();
            at.extend(cell);
            x.get(&at)
        };
        let v = match kind {
            PoolKind::Max => window
                .cells
                .iter()
                .map(value)
                .fold(f32::NEG_INFINITY, f32::max),
            PoolKind::Avg => {
                let sum: f64 = window.cells.iter().map(|c| f64::from(value(c))).sum();
                (sum / window.divisor as f64) as f32
            }
        };
        y.set(&yi, v);
    }
    y
}

/// Backward pass of [`pool_forward`] given `dout = dL/dY`; returns `dx`.
///
/// - max: each window's gradient goes to its maximal cell (the first one, in row-major kernel
///   order, on ties): `dx[argmax] += dY`;
/// - average: it is spread evenly over the window's real cells: `dx[cell] += dY / divisor`.
#[allow(clippy::too_many_arguments)]
pub fn pool_backward(
    dout: &Array,
    x: &Array,
    kind: PoolKind,
    kernel: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
    dilation: &[usize],
    ceil_mode: bool,
    count_include_pad: bool,
) -> Array {
    let pool = Pool {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        count_include_pad,
    };
    pool.check(x, kind);
    let input = spatial(x);
    let out_len = pool.output_len(input);
    assert_eq!(
        dout.shape,
        cat(x.shape[0], x.shape[1], &out_len),
        "dout shape"
    );
    let mut dx = Acc::zeros(&x.shape);
    for yi in indices(&dout.shape) {
        let dy = f64::from(dout.get(&yi));
        let window = pool.window(input, &yi[2..]);
        let at = |cell: &Vec<usize>| {
            let mut at = yi[..2].to_vec();
            at.extend(cell);
            at
        };
        match kind {
            PoolKind::Max => {
                let mut best: Option<(Vec<usize>, f32)> = None;
                for cell in &window.cells {
                    let v = x.get(&at(cell));
                    if best.as_ref().is_none_or(|(_, b)| v > *b) {
                        best = Some((at(cell), v));
                    }
                }
                if let Some((argmax, _)) = best {
                    dx.add(&argmax, dy);
                }
            }
            PoolKind::Avg => {
                for cell in &window.cells {
                    dx.add(&at(cell), dy / window.divisor as f64);
                }
            }
        }
    }
    dx.into_array()
}

/// Local response normalisation across channels, AlexNet's formula (Krizhevsky et al. 2012):
///
/// `b[c] = a[c] / (k + alpha * sum_{j = max(0, c - r)}^{min(C - 1, c + r)} a[j]^2)^beta`
///
/// at every batch element and spatial position, `r` being `depth_radius`. Unlike PyTorch's
/// `LocalResponseNorm`, `alpha` is not divided by the window size.
pub fn lrn_forward(x: &Array, depth_radius: usize, k: f32, alpha: f32, beta: f32) -> Array {
    let channels = x.shape[1];
    Array::from_fn(x.shape.clone(), |index| {
        let c = index[1];
        let mut neighbour = index.to_vec();
        let sum_sq: f64 = (c.saturating_sub(depth_radius)..=(c + depth_radius).min(channels - 1))
            .map(|j| {
                neighbour[1] = j;
                f64::from(x.get(&neighbour)).powi(2)
            })
            .sum();
        let scale = (f64::from(k) + f64::from(alpha) * sum_sq).powf(-f64::from(beta));
        (f64::from(x.get(index)) * scale) as f32
    })
}

/// Batch normalisation with given per-channel statistics:
///
/// `y[n, c, ..] = gamma[c] (x[n, c, ..] - mean[c]) / sqrt(var[c] + eps) + beta[c]`.
pub fn batch_norm_forward(
    x: &Array,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> Array {
    let channels = x.shape[1];
    for (what, v) in [
        ("gamma", gamma),
        ("beta", beta),
        ("mean", mean),
        ("var", var),
    ] {
        assert_eq!(
            v.len(),
            channels,
            "{what} has {} values for {channels} channels",
            v.len()
        );
    }
    Array::from_fn(x.shape.clone(), |index| {
        let c = index[1];
        let x_hat = (f64::from(x.get(index)) - f64::from(mean[c]))
            / (f64::from(var[c]) + f64::from(eps)).sqrt();
        (f64::from(gamma[c]) * x_hat + f64::from(beta[c])) as f32
    })
}

/// Per-channel batch statistics over every axis but the channel axis: `mu[c] = mean(x[.., c, ..])`
/// and the biased variance `sigma^2[c] = mean((x[.., c, ..] - mu[c])^2)` (divided by `m`, not
/// `m - 1`), as batch normalisation uses them in training.
pub fn batch_stats(x: &Array) -> (Vec<f32>, Vec<f32>) {
    let channels = x.shape[1];
    let m = (x.len() / channels) as f64;
    let mut sum = vec![0.0f64; channels];
    for index in indices(&x.shape) {
        sum[index[1]] += f64::from(x.get(&index));
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / m).collect();
    let mut sq = vec![0.0f64; channels];
    for index in indices(&x.shape) {
        sq[index[1]] += (f64::from(x.get(&index)) - mean[index[1]]).powi(2);
    }
    (
        mean.iter().map(|&v| v as f32).collect(),
        sq.iter().map(|s| (s / m) as f32).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic fill in `[-1, 1)` (a 64-bit LCG), so the tests need no random crate.
    fn fill(shape: &[usize], seed: u64) -> Array {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Array::from_fn(shape.to_vec(), |_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
    }

    /// `sum(a * b)` in `f64`.
    fn dot(a: &Array, b: &Array) -> f64 {
        assert_eq!(a.shape, b.shape);
        a.data
            .iter()
            .zip(&b.data)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    }

    fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    /// Central finite differences of `loss` at every element of `a`.
    fn numeric_grad(a: &Array, loss: impl Fn(&Array) -> f64) -> Vec<f32> {
        let h = 1e-2f32;
        (0..a.len())
            .map(|i| {
                let (mut plus, mut minus) = (a.clone(), a.clone());
                plus.data[i] += h;
                minus.data[i] -= h;
                ((loss(&plus) - loss(&minus)) / (2.0 * f64::from(h))) as f32
            })
            .collect()
    }

    #[test]
    fn indices_are_row_major() {
        let all: Vec<Vec<usize>> = indices(&[2, 3]).collect();
        assert_eq!(
            all,
            [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]].map(|i| i.to_vec())
        );
        assert_eq!(indices(&[]).count(), 1);
        assert_eq!(indices(&[3, 0]).count(), 0);
        let a = Array::from_fn([2, 3, 4], |i| (i[0] * 100 + i[1] * 10 + i[2]) as f32);
        assert_eq!(a.get(&[1, 2, 3]), 123.0);
        assert_eq!(a.offset(&[1, 2, 3]), 23);
    }

    #[test]
    fn zero_pad_adds_zeros_around_spatial_axes_only() {
        let x = Array::new([1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let p = zero_pad(&x, &[(1, 0), (0, 2)]);
        assert_eq!(p.shape, [1, 1, 3, 4]);
        assert_eq!(
            p.data,
            [0., 0., 0., 0., 1., 2., 0., 0., 3., 4., 0., 0.].to_vec()
        );
        assert_eq!(crop(&p, &[(1, 0), (0, 2)]), x);
    }

    #[test]
    fn single_step_is_sum_of_products_plus_bias() {
        assert_eq!(
            conv_single_step(&[1.0, 2.0, 3.0], &[4.0, -1.0, 0.5], 0.25),
            4.0 - 2.0 + 1.5 + 0.25
        );
    }

    #[test]
    fn vertical_edge_detector_on_the_course_image() {
        // 6x6: 10 in the three left columns, 0 in the right three; the vertical edge filter
        // finds the edge in the middle: 4x4 with 30 in the two middle columns.
        let x = Array::from_fn([1, 1, 6, 6], |i| if i[3] < 3 { 10.0 } else { 0.0 });
        let w = Array::from_rows(&[[1.0, 0.0, -1.0]; 3]).reshape([1, 1, 3, 3]);
        let z = conv_forward(&x, &w, None, &[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1);
        assert_eq!(z.shape, [1, 1, 4, 4]);
        assert_eq!(z.data, [0.0, 30.0, 30.0, 0.0].repeat(4));
        // The dark-to-light image gives -30: the sign tells the direction of the edge.
        let flipped = Array::from_fn([1, 1, 6, 6], |i| if i[3] < 3 { 0.0 } else { 10.0 });
        let z = conv_forward(&flipped, &w, None, &[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1);
        assert_eq!(z.data, [0.0, -30.0, -30.0, 0.0].repeat(4));
    }

    #[test]
    fn output_sizes_follow_the_course_formula() {
        // 7x7 * 3x3, stride 2 -> 3x3; padding 1 keeps 6x6; 3 channels summed into one filter.
        let x = fill(&[2, 3, 7, 7], 1);
        let w = fill(&[4, 3, 3, 3], 2);
        let z = conv_forward(&x, &w, Some(&[0.0; 4]), &[2, 2], &[(0, 0); 2], &[1, 1], 1);
        assert_eq!(z.shape, [2, 4, 3, 3]);
        let x = fill(&[1, 3, 6, 6], 3);
        let z = conv_forward(&x, &w, None, &[1, 1], &[(1, 1); 2], &[1, 1], 1);
        assert_eq!(z.shape, [1, 4, 6, 6]);
        // Dilation 2 makes a 3-tap kernel span 5: 9 -> 5.
        let x = fill(&[1, 1, 9], 4);
        let w = fill(&[1, 1, 3], 5);
        let z = conv_forward(&x, &w, None, &[1], &[(0, 0)], &[2], 1);
        assert_eq!(z.shape, [1, 1, 5]);
        assert!(
            (z.data[0] - conv_single_step(&[x.data[0], x.data[2], x.data[4]], &w.data, 0.0)).abs()
                < 1e-6
        );
    }

    #[test]
    fn groups_keep_channels_apart() {
        // Depthwise: 2 channels, 2 groups, each filter sees its own channel only.
        let x = Array::new([1, 2, 1, 2], vec![1.0, 2.0, 10.0, 20.0]);
        let w = Array::new([2, 1, 1, 1], vec![3.0, -1.0]);
        let z = conv_forward(&x, &w, Some(&[0.5, 0.0]), &[1, 1], &[(0, 0); 2], &[1, 1], 2);
        assert_eq!(z.data, [3.5, 6.5, -10.0, -20.0].to_vec());
    }

    #[test]
    fn max_pool_course_example() {
        // 4x4, f = 2, s = 2: the max of each 2x2 quadrant.
        let x = Array::from_rows(&[
            [1.0, 3.0, 2.0, 1.0],
            [2.0, 9.0, 1.0, 1.0],
            [1.0, 3.0, 2.0, 3.0],
            [5.0, 6.0, 1.0, 2.0],
        ])
        .reshape([1, 1, 4, 4]);
        let pool = |kind, ceil| {
            pool_forward(
                &x,
                kind,
                &[2, 2],
                &[2, 2],
                &[(0, 0); 2],
                &[1, 1],
                ceil,
                true,
            )
        };
        assert_eq!(
            pool(PoolKind::Max, false).data,
            [9.0, 2.0, 6.0, 3.0].to_vec()
        );
        assert_eq!(
            pool(PoolKind::Avg, false).data,
            [3.75, 1.25, 3.75, 2.0].to_vec()
        );
        // The gradient goes to where each max was.
        let dx = pool_backward(
            &Array::new([1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]),
            &x,
            PoolKind::Max,
            &[2, 2],
            &[2, 2],
            &[(0, 0); 2],
            &[1, 1],
            false,
            true,
        );
        assert_eq!(
            dx.data,
            [
                0., 0., 2., 0., 0., 1., 0., 0., 0., 0., 0., 4., 0., 3., 0., 0.
            ]
            .to_vec()
        );
        // 5x5, f = 3, s = 1 -> 3x3 (the course's second example has the same shape rule).
        let x = fill(&[1, 2, 5, 5], 9);
        let y = pool_forward(
            &x,
            PoolKind::Max,
            &[3, 3],
            &[1, 1],
            &[(0, 0); 2],
            &[1, 1],
            false,
            true,
        );
        assert_eq!(y.shape, [1, 2, 3, 3]);
    }

    #[test]
    fn pool_padding_ceil_mode_and_divisors_follow_pytorch() {
        // torch.nn.AvgPool1d(2, 2, padding=1, ceil_mode=True) on [1, 2, 3, 4, 5]: windows start
        // at -1, 1, 3 (not 5: it would start in the end padding). The first window counts its
        // padded cell; the last, [3, 4] at positions 3..5, is all real.
        let x = Array::new([1, 1, 5], vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let avg = |include| {
            pool_forward(
                &x,
                PoolKind::Avg,
                &[2],
                &[2],
                &[(1, 1)],
                &[1],
                true,
                include,
            )
        };
        assert_eq!(avg(true).data, [0.5, 2.5, 4.5].to_vec());
        assert_eq!(avg(false).data, [1.0, 2.5, 4.5].to_vec());
        // Kernel 3, stride 2, ceil mode on length 4: windows at 0, 2; the second hangs past
        // the end and counts only its real cells [3, 4] even with count_include_pad.
        let x = Array::new([1, 1, 4], vec![1.0, 2.0, 3.0, 4.0]);
        let y = pool_forward(&x, PoolKind::Avg, &[3], &[2], &[(0, 0)], &[1], true, true);
        assert_eq!(y.data, [2.0, 3.5].to_vec());
        // Max over padding behaves as -inf: negative inputs stay.
        let x = Array::new([1, 1, 3], vec![-1.0, -2.0, -3.0]);
        let y = pool_forward(&x, PoolKind::Max, &[2], &[1], &[(1, 1)], &[1], false, true);
        assert_eq!(y.data, [-1.0, -1.0, -2.0, -3.0].to_vec());
        // Dilation 2: taps 0 and 2.
        let x = Array::new([1, 1, 4], vec![5.0, 9.0, 1.0, 2.0]);
        let y = pool_forward(&x, PoolKind::Max, &[2], &[1], &[(0, 0)], &[2], false, true);
        assert_eq!(y.data, [5.0, 9.0].to_vec());
    }

    #[test]
    fn conv_backward_matches_finite_differences() {
        let (stride, padding, dilation, groups) = ([2, 1], [(1, 0), (0, 2)], [1, 2], 2);
        let x = fill(&[2, 4, 5, 4], 11);
        let w = fill(&[2, 2, 2, 3], 12);
        let b = [0.3, -0.2];
        let z = conv_forward(&x, &w, Some(&b), &stride, &padding, &dilation, groups);
        let g = fill(&z.shape, 13);
        let (dx, dw, db) = conv_backward(&g, &x, &w, &stride, &padding, &dilation, groups);
        let loss = |x: &Array, w: &Array, b: &[f32]| {
            dot(
                &conv_forward(x, w, Some(b), &stride, &padding, &dilation, groups),
                &g,
            )
        };
        assert_close("dx", &dx.data, &numeric_grad(&x, |x| loss(x, &w, &b)), 1e-3);
        assert_close("dw", &dw.data, &numeric_grad(&w, |w| loss(&x, w, &b)), 1e-3);
        let b_arr = Array::from(b.to_vec());
        assert_close(
            "db",
            &db,
            &numeric_grad(&b_arr, |b| loss(&x, &w, &b.data)),
            1e-3,
        );
    }

    #[test]
    fn conv_transpose_is_the_input_gradient_of_conv() {
        // A convolution u [N, F, len] -> z [N, C, m] has as its input gradient the transposed
        // convolution g [N, C, m] -> [N, F, len] with the same weights, stride, padding and
        // dilation, `output_padding` restoring the `len` that the floor in `m` forgot.
        for (len, k, s, p, d, groups) in
            [(7, 3, 2, 1, 1, 1), (8, 2, 3, 0, 2, 2), (6, 3, 1, 2, 1, 3)]
        {
            let (c, f) = (groups * 2, groups);
            let u = fill(&[2, f, len], 21);
            let w = fill(&[c, 1, k], 22); // conv weight [C_out = c, F / groups = 1, k]
            let z = conv_forward(&u, &w, None, &[s], &[(p, p)], &[d], groups);
            let g = fill(&z.shape, 23);
            let (du, dw, _) = conv_backward(&g, &u, &w, &[s], &[(p, p)], &[d], groups);
            // Same weights, read as a transposed-convolution weight [C_in = c, F / groups, k].
            let base = (z.shape[2] - 1) * s + d * (k - 1) + 1 - 2 * p;
            let op = len - base;
            assert!(op < s.max(d), "output padding {op}");
            let t = conv_transpose_forward(&g, &w, None, &[s], &[p], &[op], &[d], groups);
            assert_eq!(t.shape, u.shape);
            assert_close("transpose vs dx", &t.data, &du.data, 1e-5);
            // <conv(u), g> = <u, conv_t(g)>, and the weight gradients of both agree.
            assert!((dot(&z, &g) - dot(&u, &t)).abs() < 1e-4);
            let (_, dw_t, _) = conv_transpose_backward(&u, &g, &w, &[s], &[p], &[d], groups);
            assert_close("dw of transpose vs dw of conv", &dw_t.data, &dw.data, 1e-5);
        }
    }

    #[test]
    fn conv_transpose_sizes_and_backward() {
        // PyTorch: ConvTranspose2d(k=3, s=2, p=1, output_padding=1) doubles 4x4 to 8x8.
        let x = fill(&[1, 2, 4, 4], 31);
        let w = fill(&[2, 3, 3, 3], 32);
        let y = conv_transpose_forward(
            &x,
            &w,
            Some(&[0.0; 3]),
            &[2, 2],
            &[1, 1],
            &[1, 1],
            &[1, 1],
            1,
        );
        assert_eq!(y.shape, [1, 3, 8, 8]);
        // A 1x1 input with stride 1 and no padding paints the filter itself, plus the bias.
        let one = Array::new([1, 1, 1, 1], vec![2.0]);
        let w = Array::new([1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let y = conv_transpose_forward(
            &one,
            &w,
            Some(&[1.0]),
            &[1, 1],
            &[0, 0],
            &[0, 0],
            &[1, 1],
            1,
        );
        assert_eq!(y.data, [3.0, 5.0, 7.0, 9.0].to_vec());

        let (s, p, op, d, groups) = ([2, 1], [1, 0], [1, 0], [1, 2], 2);
        let x = fill(&[2, 4, 3, 2], 33);
        let w = fill(&[4, 1, 3, 2], 34);
        let b = [0.1, -0.4];
        let y = conv_transpose_forward(&x, &w, Some(&b), &s, &p, &op, &d, groups);
        let g = fill(&y.shape, 35);
        let (dx, dw, db) = conv_transpose_backward(&g, &x, &w, &s, &p, &d, groups);
        let loss = |x: &Array, w: &Array, b: &[f32]| {
            dot(
                &conv_transpose_forward(x, w, Some(b), &s, &p, &op, &d, groups),
                &g,
            )
        };
        assert_close("dx", &dx.data, &numeric_grad(&x, |x| loss(x, &w, &b)), 1e-3);
        assert_close("dw", &dw.data, &numeric_grad(&w, |w| loss(&x, w, &b)), 1e-3);
        let b_arr = Array::from(b.to_vec());
        assert_close(
            "db",
            &db,
            &numeric_grad(&b_arr, |b| loss(&x, &w, &b.data)),
            1e-3,
        );
    }

    #[test]
    fn pool_backward_matches_finite_differences() {
        // Distinct values so every max is unique and the max is differentiable.
        let n = 2 * 2 * 5 * 4;
        let x = Array::new(
            [2, 2, 5, 4],
            (0..n).map(|i| ((i * 37) % n) as f32 * 0.25 - 3.0).collect(),
        );
        for (kind, kernel, stride, padding, dilation, ceil, include) in [
            (
                PoolKind::Max,
                [2, 2],
                [2, 1],
                [(1, 0), (1, 1)],
                [1, 2],
                true,
                true,
            ),
            (
                PoolKind::Avg,
                [3, 2],
                [2, 2],
                [(1, 1), (0, 1)],
                [1, 1],
                true,
                true,
            ),
            (
                PoolKind::Avg,
                [3, 2],
                [2, 2],
                [(1, 1), (0, 1)],
                [1, 1],
                true,
                false,
            ),
        ] {
            let y = pool_forward(
                &x, kind, &kernel, &stride, &padding, &dilation, ceil, include,
            );
            let g = fill(&y.shape, 41);
            let dx = pool_backward(
                &g, &x, kind, &kernel, &stride, &padding, &dilation, ceil, include,
            );
            let numeric = numeric_grad(&x, |x| {
                dot(
                    &pool_forward(
                        x, kind, &kernel, &stride, &padding, &dilation, ceil, include,
                    ),
                    &g,
                )
            });
            assert_close("pool dx", &dx.data, &numeric, 1e-3);
        }
    }

    #[test]
    fn lrn_uses_alexnets_formula() {
        // One pixel, 3 channels [1, 2, 3], r = 1, k = 2, alpha = 1, beta = 1:
        // b0 = 1 / (2 + 1 + 4), b1 = 2 / (2 + 1 + 4 + 9), b2 = 3 / (2 + 4 + 9).
        let x = Array::new([1, 3, 1], vec![1.0, 2.0, 3.0]);
        let y = lrn_forward(&x, 1, 2.0, 1.0, 1.0);
        assert_close("lrn", &y.data, &[1.0 / 7.0, 2.0 / 16.0, 3.0 / 15.0], 1e-6);
        // AlexNet's constants: k = 2, n = 5 (r = 2), alpha = 1e-4, beta = 0.75.
        let y = lrn_forward(&x, 2, 2.0, 1e-4, 0.75);
        let s = 2.0f64 + 1e-4 * 14.0;
        assert_close(
            "alexnet lrn",
            &y.data,
            &[1.0, 2.0, 3.0].map(|a: f64| (a / s.powf(0.75)) as f32),
            1e-6,
        );
    }

    #[test]
    fn batch_norm_normalises_with_batch_statistics() {
        let x = Array::new([2, 2, 2], vec![1.0, 3.0, 10.0, 10.0, 5.0, 7.0, 20.0, 30.0]);
        let (mean, var) = batch_stats(&x);
        assert_eq!(mean, [4.0, 17.5].to_vec());
        // Channel 0: 1, 3, 5, 7 -> biased variance (9 + 1 + 1 + 9) / 4 = 5.
        assert_eq!(var[0], 5.0);
        let y = batch_norm_forward(&x, &[1.0, 2.0], &[0.0, 1.0], &mean, &var, 0.0);
        let (m, v) = batch_stats(&y);
        assert_close("mean", &m, &[0.0, 1.0], 1e-6);
        assert_close("var", &v, &[1.0, 4.0], 1e-5);
    }
}

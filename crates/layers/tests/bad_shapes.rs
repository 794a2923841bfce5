//! Hostile sizes (issue 32): the window rule, spec parsing, building and summaries never panic,
//! and either agree with the same arithmetic done in 128 bits or refuse with an error, never a
//! wrapped number.

use burn::tensor::Device;
use convnet_layers::ModelSpec;
use convnet_layers::geometry::{AxisPadding, Rounding, transpose_axis, window_axis};
use proptest::prelude::*;

/// Mostly small sizes, some near 2^32 and some anywhere in 64 bits: the sizes that multiply past
/// 64 bits and those that do not.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 1usize..64,
        2 => 1usize..=(u32::MAX as usize + 2),
        1 => any::<usize>().prop_map(|v| v.max(1)),
    ]
}

/// The product in 64 bits, or None past them (computed independently of the library).
fn product(factors: &[usize]) -> Option<usize> {
    factors
        .iter()
        .try_fold(1u128, |acc, &f| acc.checked_mul(f as u128))
        .and_then(|p| usize::try_from(p).ok())
}

/// `floor((n + p_b + p_e - d (f - 1) - 1) / s) + 1` in 128 bits, when the window fits.
fn naive_floor(n: usize, f: usize, s: usize, d: usize, pb: usize, pe: usize) -> Option<u128> {
    let padded = n as u128 + pb as u128 + pe as u128;
    let effective = d as u128 * (f as u128 - 1) + 1;
    (padded >= effective).then(|| (padded - effective) / s as u128 + 1)
}

proptest! {
    /// An explicit-padding window agrees with the formula in 128 bits, or errors exactly when
    /// the formula's numbers leave 64 bits or the kernel does not fit.
    #[test]
    fn window_axis_agrees_with_128_bit_arithmetic(
        n in size(), f in size(), s in size(), d in size(), pb in size(), pe in size(),
    ) {
        let got = window_axis(n, f, s, d, AxisPadding::Fixed(pb, pe), Rounding::Floor);
        let padded = n as u128 + pb as u128 + pe as u128;
        let effective = d as u128 * (f as u128 - 1) + 1;
        let fits = padded <= usize::MAX as u128 && effective <= usize::MAX as u128;
        match (got, fits) {
            (Ok(g), true) => {
                prop_assert_eq!(Some(g.output as u128), naive_floor(n, f, s, d, pb, pe));
                prop_assert_eq!((g.pad_begin, g.pad_end), (pb, pe));
            }
            (Err(_), true) => prop_assert!(naive_floor(n, f, s, d, pb, pe).is_none()),
            (Ok(g), false) => prop_assert!(false, "{n} {f} {s} {d} {pb} {pe} gave {g:?}"),
            (Err(_), false) => {}
        }
    }

    /// `same` and ceil mode never panic, and `same` at stride s gives ceil(n / s) when it fits.
    #[test]
    fn same_and_ceil_windows_never_panic(
        n in size(), f in size(), s in size(), d in size(), pb in size(), pe in size(),
    ) {
        if let Ok(g) = window_axis(n, f, s, d, AxisPadding::Same, Rounding::Floor) {
            prop_assert_eq!(g.output, n.div_ceil(s));
        }
        let _ = window_axis(n, f, s, d, AxisPadding::Fixed(pb, pe), Rounding::Ceil);
        let _ = window_axis(n, f, s, d, AxisPadding::Same, Rounding::Ceil);
    }

    /// A transposed axis is `(n - 1) s - 2p + d (f - 1) + op + 1` in 128 bits, or an error.
    #[test]
    fn transpose_axis_agrees_with_128_bit_arithmetic(
        n in size(), f in size(), s in size(), d in size(), p in size(), op in 0usize..4,
    ) {
        // At most (2^64)^2 + (2^64)^2 + 5: the sum may leave 128 bits, so it is checked too.
        let wide = ((n as u128 - 1) * s as u128)
            .checked_add(d as u128 * (f as u128 - 1) + 1 + op as u128);
        let fits = wide.is_some_and(|v| v <= usize::MAX as u128)
            && d as u128 * (f as u128 - 1) < usize::MAX as u128;
        match transpose_axis(n, f, s, d, AxisPadding::Fixed(p, p), op) {
            Ok(t) => {
                prop_assert!(fits);
                prop_assert_eq!(Some(t.output as u128 + 2 * p as u128), wide);
            }
            Err(_) => prop_assert!(
                !fits || wide.is_some_and(|v| v <= 2 * p as u128) || op >= s.max(d)
            ),
        }
    }

    /// Any text at all: parsing returns, and so do building and summarising what parses.
    #[test]
    fn arbitrary_spec_text_never_panics(text in "\\PC{0,400}") {
        if let Ok(spec) = ModelSpec::parse(&text, "fuzz.toml") {
            let _ = spec.summary(&Device::flex());
        }
    }

    /// Spec-shaped text with arbitrary keys and numbers, closer to what parses.
    #[test]
    fn spec_like_text_never_panics(
        input in proptest::collection::vec(any::<u64>(), 0..5),
        layers in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    "conv2d", "conv1d", "max_pool2d", "dense", "flatten", "batch_norm",
                    "conv2d_transpose", "zero_padding2d", "global_avg_pool", "lrn", "se",
                ]),
                prop::sample::select(vec![
                    "filters", "kernel", "stride", "units", "pool", "padding", "dilation",
                    "groups", "depth_radius", "output_padding",
                ]),
                any::<u64>(),
            ),
            0..6,
        ),
    ) {
        let mut text = format!("input = {input:?}\n");
        for (kind, key, value) in layers {
            text += &format!("[[layers]]\ntype = \"{kind}\"\n{key} = {}\n", value % (1 << 63));
        }
        if let Ok(spec) = ModelSpec::parse(&text, "fuzz.toml") {
            let _ = spec.summary(&Device::flex());
        }
    }

    /// conv -> flatten -> dense with extreme sizes: the summary's totals are the 128-bit ones, or
    /// the summary is an error because one of them leaves 64 bits or the kernel does not fit.
    #[test]
    fn summary_counts_agree_with_128_bit_arithmetic(
        c in size(), h in size(), w in size(), f in size(), k in size(), u in size(),
    ) {
        let text = format!(
            "input = [{c}, {h}, {w}]\n[[layers]]\ntype = \"conv2d\"\nfilters = {f}\nkernel = {k}\n\
             [[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = {u}\n"
        );
        let spec = ModelSpec::parse(&text, "x.toml");
        let fits_kernel = k <= h && k <= w;
        let (oh, ow) = (h.saturating_sub(k) + 1, w.saturating_sub(k) + 1);
        // Each count in 64 bits, or None past them.
        let features = product(&[f, oh, ow]);
        let conv_weights = product(&[f, c, k, k]);
        let dense_weights = features.and_then(|n| product(&[n, u]));
        let params = [conv_weights, Some(f), dense_weights, Some(u)]
            .into_iter()
            .try_fold(0usize, |acc, n| acc.checked_add(n?));
        let conv_macs = features.and_then(|n| product(&[n, c, k, k]));
        let macs = conv_macs.zip(dense_weights).and_then(|(a, b)| a.checked_add(b));
        let all_fit = product(&[c, h, w]).is_some()
            && conv_weights.is_some()
            && params.is_some()
            && macs.is_some();
        let summary = spec.map_err(|e| e.to_string()).and_then(|s| {
            s.summary(&Device::flex()).map_err(|e| e.to_string())
        });
        match summary {
            Ok(s) => {
                prop_assert!(fits_kernel && all_fit);
                prop_assert_eq!(Some(s.total_params), params);
                prop_assert_eq!(Some(s.total_macs as usize), macs);
            }
            Err(e) => {
                prop_assert!(!fits_kernel || !all_fit, "{e}");
                prop_assert!(!e.contains("panicked"));
            }
        }
    }
}

#[test]
fn spec_errors_name_the_layer_and_the_sizes() {
    let device = Device::flex();
    let spec = ModelSpec::parse(
        "input = [1, 4294967296, 4]\n[[layers]]\ntype = \"flatten\"\n\
         [[layers]]\ntype = \"dense\"\nunits = 4294967296\n",
        "big.toml",
    )
    .unwrap();
    assert_eq!(
        spec.summary(&device).unwrap_err().to_string(),
        "big.toml:4: layer 'dense_1' (Dense 4294967296 units): weights: 17179869184 x 4294967296 \
         overflows 64-bit arithmetic; input shape (None, 17179869184)"
    );
    let err = ModelSpec::parse(
        "input = [3, 4294967296, 4294967296]\n[[layers]]\ntype = \"relu\"\n",
        "in.toml",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "in.toml: input: 3 x 4294967296 x 4294967296 overflows 64-bit arithmetic"
    );
}

#[test]
fn build_checks_the_weights_against_the_memory_limit_and_summary_does_not() {
    let device = Device::flex();
    let spec = ModelSpec::parse(
        "input = [1, 28, 28]\n[[layers]]\ntype = \"conv2d\"\nfilters = 1000000000\nkernel = 3\n",
        "wide.toml",
    )
    .unwrap();
    // 10^9 x (9 + 1) parameters, counted without allocating them.
    let summary = spec.summary(&device).unwrap();
    assert_eq!(summary.total_params, 10_000_000_000);
    // 40 GB of weights: above any test machine's memory (the limit is physical memory unless
    // CONVNET_MAX_MEMORY says otherwise).
    let limit = convnet_layers::limits::memory_limit();
    if limit < 40_000_000_000 {
        let err = spec.build(&device).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "wide.toml: the weights of 'wide' (10,000,000,000 parameters) would need 37.3 GiB"
            ),
            "{err}"
        );
    }
}

#[test]
fn many_layers_parse_in_linear_time() {
    // 100k layers: quadratic line counting took minutes here; the spec must parse in seconds
    // even in a debug build (not timed: CI would time out instead).
    let text = format!(
        "input = [1, 4]\n{}",
        "[[layers]]\ntype = \"relu\"\n".repeat(100_000)
    );
    let spec = ModelSpec::parse(&text, "deep.toml").unwrap();
    assert_eq!(spec.layers.len(), 100_000);
    assert_eq!(spec.layers[99_999].line, Some(2 + 2 * 99_999));
}

//! Darknet cfgs against darknet itself: `fixtures/darknet/make_shapes.sh` saved the layer tables
//! darknet prints for Debian's yolov2-tiny, yolov2, yolov3 and yolov3-tiny configs.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use convnet_layers::{Mode, Summarize};
use convnet_zoo::darknet::DarknetCfg;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/darknet")
        .join(name)
}

/// The numbers of darknet's `H x W x C` text (`x1024` included).
fn numbers(text: &str) -> Vec<usize> {
    text.replace('x', " ")
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// `(index, input, output)` of a layer, shapes `[C, H, W]`.
type ShapedLayer = (usize, [usize; 3], [usize; 3]);

/// The layer count and each layer darknet printed with shapes.
fn darknet_table(name: &str) -> (usize, Vec<ShapedLayer>) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.layers.txt"))).unwrap();
    let mut layers = 0;
    let mut shaped = Vec::new();
    for line in text.lines().skip(1) {
        let index: usize = line.split_whitespace().next().unwrap().parse().unwrap();
        layers = layers.max(index + 1);
        if let Some((left, right)) = line.split_once("->") {
            // Input: the last three numbers before the arrow; output: the first three after.
            let l = numbers(left);
            let r = numbers(right);
            let k = l.len();
            shaped.push((index, [l[k - 1], l[k - 3], l[k - 2]], [r[2], r[0], r[1]]));
        }
    }
    (layers, shaped)
}

#[test]
fn every_layer_shape_matches_darknet() {
    for name in ["yolov2-tiny", "yolov2", "yolov3", "yolov3-tiny"] {
        let cfg = DarknetCfg::from_file(&fixture(&format!("{name}.cfg"))).unwrap();
        let shapes = cfg.shapes().unwrap();
        let (layers, table) = darknet_table(name);
        assert_eq!(shapes.len(), layers, "{name}: layer count");
        assert!(
            table.len() > layers / 2,
            "{name}: the fixture has too few shaped layers"
        );
        for (i, input, output) in table {
            // After a route, darknet prints the route's output as the next layer's input.
            let ours_in = if i == 0 {
                cfg.input().unwrap()
            } else {
                shapes[i - 1]
            };
            assert_eq!(ours_in, input, "{name} layer {i} input");
            assert_eq!(shapes[i], output, "{name} layer {i} output");
        }
    }
}

#[test]
fn yolov2_tiny_builds_and_runs_and_graphs_are_refused() {
    let cfg = DarknetCfg::from_file(&fixture("yolov2-tiny.cfg")).unwrap();
    let mut spec = cfg.to_spec("yolov2-tiny").unwrap();
    let device = Device::flex();
    let model = spec.build(&device).unwrap();
    assert_eq!(model.output_shape().unwrap().dims(), &[425, 13, 13]);
    // Every weight darknet's yolov2-tiny.weights holds: convolution kernels, biases of the
    // last convolution, and four numbers per batch-normalised filter (scale, bias, mean, var).
    let convs = [
        (3, 16),
        (16, 32),
        (32, 64),
        (64, 128),
        (128, 256),
        (256, 512),
        (512, 1024),
        (1024, 512),
    ];
    let expected: usize =
        convs.iter().map(|&(i, o)| 9 * i * o + 4 * o).sum::<usize>() + 512 * 425 + 425;
    let summary = model.summary().unwrap();
    assert_eq!(summary.total_params, expected);
    // Run at 96 px to keep the test quick: the grid follows (96 / 32 = 3).
    spec.input = vec![3, 96, 96];
    let small = spec.build(&device).unwrap();
    let y = small
        .forward(Tensor::<4>::zeros([1, 3, 96, 96], &device), Mode::Eval)
        .unwrap();
    assert_eq!(y.dims(), vec![1, 425, 3, 3]);
    let v3 = DarknetCfg::from_file(&fixture("yolov3.cfg")).unwrap();
    let err = v3.to_spec("yolov3").unwrap_err().to_string();
    assert!(err.contains("[shortcut]") && err.contains("graph"), "{err}");
}

#[test]
fn graph_configs_build_and_run_with_every_head() {
    let device = Device::flex();
    // Small pictures keep the test quick; the grids follow the strides (32, 16, 8).
    let v3 = DarknetCfg::from_file(&fixture("yolov3.cfg")).unwrap();
    let net = v3.build(Some([3, 64, 64]), &device).unwrap();
    let heads = net
        .forward(Tensor::<4>::zeros([1, 3, 64, 64], &device), Mode::Eval)
        .unwrap();
    let dims: Vec<[usize; 4]> = heads.iter().map(|h| h.dims()).collect();
    assert_eq!(dims, vec![[1, 255, 2, 2], [1, 255, 4, 4], [1, 255, 8, 8]]);
    // At darknet's own size every head has the shape darknet printed (layers 82, 94, 106).
    let shapes = v3.shapes().unwrap();
    assert_eq!(
        [shapes[82], shapes[94], shapes[106]],
        [[255, 19, 19], [255, 38, 38], [255, 76, 76]]
    );
    // yolov2: route 16, 1x1 conv, reorg, route 27 24 into the last convolutions.
    let v2 = DarknetCfg::from_file(&fixture("yolov2.cfg")).unwrap();
    let net = v2.build(Some([3, 64, 64]), &device).unwrap();
    let heads = net
        .forward(Tensor::<4>::zeros([2, 3, 64, 64], &device), Mode::Eval)
        .unwrap();
    assert_eq!(
        heads.iter().map(|h| h.dims()).collect::<Vec<_>>(),
        vec![[2, 425, 2, 2]]
    );
    // A picture of the wrong size is an error, not a panic.
    assert!(
        net.forward(Tensor::<4>::zeros([1, 3, 32, 32], &device), Mode::Eval)
            .is_err()
    );
    // yolov3-tiny: two heads.
    let tiny = DarknetCfg::from_file(&fixture("yolov3-tiny.cfg")).unwrap();
    let net = tiny.build(Some([3, 64, 64]), &device).unwrap();
    let heads = net
        .forward(Tensor::<4>::zeros([1, 3, 64, 64], &device), Mode::Eval)
        .unwrap();
    assert_eq!(
        heads.iter().map(|h| h.dims()).collect::<Vec<_>>(),
        vec![[1, 255, 2, 2], [1, 255, 4, 4]]
    );
}

const NET: &str = "[net]\nwidth=8\nheight=8\nchannels=3\n";

#[test]
fn grouped_convolutions_count_and_run_as_darknet_builds_them() {
    let device = Device::flex();
    // 9 filters of 3x3 over 3 channels in 3 groups: 9 x 1 x 3 x 3 weights + 9 biases.
    let text =
        format!("{NET}[convolutional]\nfilters=9\nsize=3\npad=1\ngroups=3\nactivation=linear\n");
    let cfg = DarknetCfg::parse(&text, "g.cfg").unwrap();
    let net = cfg.build(None, &device).unwrap();
    assert_eq!(net.total_params().unwrap(), 90);
    // Each group sees only its own input channel: a one in channel 0 reaches filters 0-2 only.
    let mut x = vec![0f32; 3 * 64];
    x[4 * 8 + 4] = 1.0;
    let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(x, [1, 3, 8, 8]), &device);
    let y = net.forward(x, Mode::Eval).unwrap().remove(0);
    let bias = |f: usize| {
        let v = y.clone().slice([0..1, f..f + 1, 0..1, 0..1]);
        v.into_data().try_to_vec::<f32>().unwrap()[0]
    };
    let centre = y
        .clone()
        .slice([0..1, 0..9, 3..6, 3..6])
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for f in 3..9 {
        // Filters of the other groups see only zeros: their output is their bias everywhere.
        for v in &centre[f * 9..f * 9 + 9] {
            assert_eq!(*v, bias(f), "filter {f}");
        }
    }
    assert_eq!(
        cfg.to_spec("g")
            .unwrap()
            .summary(&device)
            .unwrap()
            .total_params,
        90
    );
}

#[test]
fn bad_groups_masks_and_classes_are_refused_with_section_and_key() {
    let conv = |extra: &str| format!("{NET}[convolutional]\nfilters=6\nsize=1\n{extra}");
    let yolo = |head: &str| format!("{NET}[convolutional]\nfilters=18\nsize=1\n[yolo]\n{head}");
    let cases = [
        (
            conv("groups=0\n"),
            "c.cfg:5: [convolutional] groups must be positive, not 0",
        ),
        (
            conv("groups=x\n"),
            "c.cfg:5: [convolutional] groups=x is not a whole number",
        ),
        (
            conv("groups=4\n"),
            "[convolutional] groups=4 must divide both the input channels (3) and filters=6",
        ),
        (
            conv("padding=-2\n"),
            "[convolutional] padding=-2 must not be negative",
        ),
        (
            yolo("mask=0,1,3\nnum=3\nclasses=1\n"),
            "c.cfg:8: [yolo] mask=0,1,3: 3 is not one of the num=3 anchors (0 to 2)",
        ),
        (
            yolo("mask=0,-1,2\nnum=3\nclasses=1\n"),
            "[yolo] mask=0,-1,2: -1 is not one of the num=3 anchors",
        ),
        (
            yolo("mask=0,,2\nnum=3\nclasses=1\n"),
            "[yolo] mask=0,,2: '' is not a number",
        ),
        (
            yolo("mask=0,1,2\nnum=3\nclasses=0\n"),
            "[yolo] classes must be positive, not 0",
        ),
        (
            yolo("mask=0,1,2\nnum=3\nclasses=3\n"),
            "[yolo] classes: the layer before gives 18 channels but (classes=3 + 5) x 3 masks needs 24",
        ),
        (
            yolo("mask=0,1,2\nnum=3\nclasses=1\nanchors=1,2,3\n"),
            "[yolo] anchors= has 3 numbers but num=3 needs 6",
        ),
        (
            yolo("mask=0,1,2\nnum=3\nclasses=1\nanchors=1,2,3,4,5,a\n"),
            "[yolo] anchors=1,2,3,4,5,a: 'a' is not a number",
        ),
        (
            format!("{NET}[convolutional]\nfilters=18\nsize=1\n[region]\nclasses=2\nnum=3\n"),
            "[region] classes: the layer before gives 18 channels but num=3 x (classes=2 + coords=4 + 1) needs 21",
        ),
        (
            format!(
                "{NET}[convolutional]\nfilters=4294967296\nsize=1\n[upsample]\nstride=4294967296\n"
            ),
            "[upsample] output size: 4294967296 x 34359738368 x 34359738368 overflows 64-bit arithmetic",
        ),
        (
            format!("{NET}[convolutional]\nsize=1\npadding=9223372036854775807\n"),
            "[convolutional] size=1: length 8 padded by 9223372036854775807 + 9223372036854775807 overflows 64-bit arithmetic",
        ),
    ];
    for (text, expected) in cases {
        let cfg = DarknetCfg::parse(&text, "c.cfg").unwrap();
        let err = cfg.shapes().unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{expected:?} not in {err:?}\n{text}"
        );
        assert!(cfg.build(None, &Device::flex()).is_err());
    }
    let good = DarknetCfg::parse(
        &yolo("mask=0,1,2\nnum=3\nclasses=1\nanchors=1,1,2,2,3,3\n"),
        "c.cfg",
    );
    assert!(good.unwrap().shapes().is_ok());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const KINDS: &[&str] = &[
        "convolutional",
        "maxpool",
        "route",
        "reorg",
        "shortcut",
        "upsample",
        "yolo",
        "region",
        "avgpool",
        "dropout",
    ];
    const KEYS: &[&str] = &[
        "filters", "size", "stride", "pad", "padding", "groups", "layers", "from", "mask", "num",
        "classes", "coords",
        "anchors",
        // No batch_normalize: batch norms allocate their vectors when built, and a random
        // filter count under the memory limit could still take gigabytes.
    ];

    /// Small numbers, huge ones, negative ones and lists.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            (0i64..8).prop_map(|v| v.to_string()),
            any::<i64>().prop_map(|v| v.to_string()),
            (1u64..=u32::MAX as u64 + 1).prop_map(|v| v.to_string()),
            proptest::collection::vec(-3i64..10, 1..4).prop_map(|v| {
                v.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        ]
    }

    fn section() -> impl Strategy<Value = String> {
        (
            prop::sample::select(KINDS),
            proptest::collection::vec((prop::sample::select(KEYS), value()), 0..4),
        )
            .prop_map(|(kind, options)| {
                let mut text = format!("[{kind}]\n");
                for (k, v) in options {
                    text += &format!("{k}={v}\n");
                }
                text
            })
    }

    proptest! {
        /// Any text: parsing returns, and so do the shapes and the table of what parses.
        #[test]
        fn arbitrary_cfg_text_never_panics(text in "\\PC{0,300}") {
            if let Ok(cfg) = DarknetCfg::parse(&text, "fuzz.cfg") {
                let _ = cfg.shapes();
                let _ = cfg.table();
            }
        }

        /// Cfg-shaped text with extreme and inconsistent numbers: shapes, the table, the spec
        /// and an unallocated build return (errors, or shapes that fit in 64 bits).
        #[test]
        fn extreme_cfgs_never_panic(
            side in prop_oneof![1usize..64, 1usize..=u32::MAX as usize],
            sections in proptest::collection::vec(section(), 1..6),
        ) {
            let text = format!("[net]\nwidth={side}\nheight={side}\nchannels=3\n{}", sections.concat());
            let cfg = DarknetCfg::parse(&text, "fuzz.cfg").unwrap();
            if let Ok(shapes) = cfg.shapes() {
                for s in &shapes {
                    prop_assert!(s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some());
                }
                let _ = cfg.table();
                let _ = cfg.to_spec("fuzz");
                if let Ok(net) = cfg.build_unallocated(None, &Device::flex()) {
                    let _ = net.total_params();
                }
            }
        }
    }
}

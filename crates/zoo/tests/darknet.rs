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

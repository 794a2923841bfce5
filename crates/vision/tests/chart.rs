//! Charts: sizes, colours, shading, robustness against odd data, and files on disk.

use std::path::{Path, PathBuf};

use convnet_vision::VisionError;
use convnet_vision::chart::{
    PALETTE, Panel, Series, confusion_accuracy, confusion_png, draw_text, draw_text_up,
    line_chart_png, render_confusion, render_line_chart, series_colour, text_width,
};
use image::{Rgb, RgbImage};

const FASHION: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class {i}")).collect()
}

fn count(img: &RgbImage, colour: Rgb<u8>) -> usize {
    img.pixels().filter(|&&p| p == colour).count()
}

/// Five epochs of training: loss falling 0.9 -> 0.35, accuracy rising 0.70 -> 0.88.
fn curves() -> Vec<Panel> {
    let epochs = [1.0, 2.0, 3.0, 4.0, 5.0];
    let series =
        |label: &str, ys: [f64; 5]| Series::new(label, epochs.iter().copied().zip(ys).collect());
    vec![
        Panel::new(
            "Loss",
            "epoch",
            "loss",
            vec![
                series("train", [0.90, 0.62, 0.49, 0.41, 0.35]),
                series("validation", [0.74, 0.58, 0.50, 0.45, 0.43]),
            ],
        ),
        Panel::new(
            "Accuracy",
            "epoch",
            "accuracy",
            vec![
                series("train", [0.70, 0.78, 0.83, 0.86, 0.88]),
                series("validation", [0.74, 0.79, 0.82, 0.84, 0.85]),
            ],
        ),
    ]
}

/// A plausible Fashion-MNIST test-set confusion matrix (1000 images per class).
fn fashion_matrix() -> Vec<Vec<u64>> {
    vec![
        vec![812, 2, 18, 35, 5, 1, 118, 0, 9, 0],
        vec![4, 958, 2, 26, 5, 0, 3, 0, 2, 0],
        vec![16, 1, 768, 11, 118, 0, 82, 0, 4, 0],
        vec![28, 9, 12, 874, 38, 0, 34, 0, 5, 0],
        vec![1, 1, 96, 32, 810, 0, 57, 0, 3, 0],
        vec![0, 0, 0, 1, 0, 951, 0, 32, 2, 14],
        vec![142, 2, 102, 33, 86, 0, 620, 0, 15, 0],
        vec![0, 0, 0, 0, 0, 22, 0, 951, 0, 27],
        vec![3, 1, 6, 6, 3, 4, 11, 5, 960, 1],
        vec![0, 0, 0, 0, 0, 9, 1, 38, 0, 952],
    ]
}

#[test]
fn line_chart_has_the_requested_size() {
    for (w, h) in [(1200, 450), (640, 480), (300, 200), (17, 9), (1, 1), (0, 0)] {
        let img = render_line_chart(&curves(), w, h);
        assert_eq!(img.dimensions(), (w, h));
    }
}

#[test]
fn each_series_is_drawn_in_its_palette_colour() {
    let img = render_line_chart(&curves(), 1200, 450);
    assert_eq!(series_colour(0), PALETTE[0]);
    for k in 0..2 {
        // Far more than a legend sample: the line itself is in this colour.
        assert!(
            count(&img, series_colour(k)) > 500,
            "series {k}: {} pixels",
            count(&img, series_colour(k))
        );
    }
    assert_eq!(
        count(&img, series_colour(2)),
        0,
        "only two series per panel"
    );
}

#[test]
fn non_finite_points_and_empty_series_do_not_panic() {
    let panels = vec![
        Panel::new(
            "odd",
            "x",
            "y",
            vec![
                Series::new(
                    "nan",
                    vec![
                        (1.0, f64::NAN),
                        (2.0, 0.5),
                        (f64::INFINITY, 1.0),
                        (3.0, f64::NEG_INFINITY),
                        (4.0, 0.7),
                    ],
                ),
                Series::new("empty", vec![]),
                Series::new("all nan", vec![(f64::NAN, f64::NAN)]),
            ],
        ),
        Panel::new("nothing", "x", "y", vec![Series::new("empty", vec![])]),
        Panel::new("no series", "", "", vec![]),
        Panel::new(
            "single point",
            "x",
            "y",
            vec![Series::new("one", vec![(3.0, 2.0)])],
        ),
        Panel::new(
            "constant",
            "x",
            "y",
            vec![Series::new("flat", vec![(0.0, 0.0), (1.0, 0.0)])],
        ),
        Panel::new(
            "extreme",
            "x",
            "y",
            vec![Series::new(
                "huge",
                vec![(-f64::MAX, f64::MAX), (f64::MAX, -f64::MAX), (0.0, 1e-300)],
            )],
        ),
    ];
    let img = render_line_chart(&panels, 1800, 300);
    assert_eq!(img.dimensions(), (1800, 300));
    // The "nan" series still shows its two finite points.
    assert!(count(&img, series_colour(0)) > 50);
    assert!(
        render_line_chart(&[], 200, 100)
            .pixels()
            .any(|p| p.0 != [255; 3])
    );
}

#[test]
fn a_single_point_is_visible() {
    let panel = Panel::new("", "", "", vec![Series::new("one", vec![(1.0, 1.0)])]);
    let img = render_line_chart(&[panel], 300, 200);
    // A marker, not one lonely pixel (the legend sample alone is smaller than this).
    assert!(count(&img, series_colour(0)) > 40);
}

#[test]
fn long_series_are_drawn_without_markers() {
    let points: Vec<(f64, f64)> = (0..500)
        .map(|i| (f64::from(i), (f64::from(i) / 40.0).sin()))
        .collect();
    let img = render_line_chart(
        &[Panel::new("t", "step", "v", vec![Series::new("s", points)])],
        600,
        300,
    );
    assert!(count(&img, series_colour(0)) > 300);
}

#[test]
fn text_is_clipped_at_the_borders() {
    let mut img = RgbImage::from_pixel(20, 10, Rgb([255, 255, 255]));
    let red = Rgb([255, 0, 0]);
    draw_text(&mut img, -5, -3, "Hello, world", 1, red);
    draw_text(&mut img, 15, 6, "clipped", 3, red);
    draw_text(&mut img, i32::MIN, i32::MAX, "far away", u32::MAX, red);
    draw_text(&mut img, i32::MAX, i32::MIN, "far away", 7, red);
    draw_text_up(&mut img, -4, -100, "upwards and away", 2, red);
    draw_text(&mut img, 0, 0, "non-ASCII: é ✓ 日本", 1, red);
    draw_text(&mut img, 0, 0, "", 0, red);
    assert_eq!(img.dimensions(), (20, 10));
    assert!(count(&img, red) > 0);
    assert_eq!(text_width("abc", 2), 48);
}

#[test]
fn text_lands_where_asked() {
    let mut img = RgbImage::from_pixel(40, 40, Rgb([255, 255, 255]));
    let ink = Rgb([0, 0, 0]);
    draw_text(&mut img, 10, 20, "H", 1, ink);
    for (x, y, p) in img.enumerate_pixels() {
        if *p == ink {
            assert!(
                (10..18).contains(&x) && (20..28).contains(&y),
                "stray pixel at {x},{y}"
            );
        }
    }
    assert!(count(&img, ink) > 10);
    let mut up = RgbImage::from_pixel(40, 40, Rgb([255, 255, 255]));
    draw_text_up(&mut up, 5, 3, "HI", 1, ink);
    for (x, y, p) in up.enumerate_pixels() {
        if *p == ink {
            assert!(
                (5..13).contains(&x) && (3..19).contains(&y),
                "stray pixel at {x},{y}"
            );
        }
    }
}

#[test]
fn diagonal_of_a_perfect_matrix_is_darker_than_the_rest() {
    let n = 4;
    let matrix: Vec<Vec<u64>> = (0..n)
        .map(|r| (0..n).map(|c| if r == c { 50 } else { 0 }).collect())
        .collect();
    let img = render_confusion(&matrix, &names(n), "perfect").unwrap();
    let lightness = |p: &Rgb<u8>| p.0.iter().map(|&v| u32::from(v)).sum::<u32>();
    // Cell (0, 0) is the first pixel of the full shade; the next cell along its row is one
    // cell width further right.
    let (x0, y0) = img
        .enumerate_pixels()
        .find(|(_, _, p)| **p == Rgb([8, 48, 107]))
        .map(|(x, y, _)| (x, y))
        .expect("a fully dark diagonal cell");
    let cell = (x0..img.width())
        .take_while(|&x| *img.get_pixel(x, y0) == Rgb([8, 48, 107]))
        .count() as u32
        + 1;
    let diag = img.get_pixel(x0 + 1, y0 + 1);
    let off = img.get_pixel(x0 + cell + 1, y0 + 1);
    assert!(lightness(diag) < lightness(off), "{diag:?} vs {off:?}");
}

#[test]
fn confusion_rejects_bad_shapes() {
    let square = vec![vec![1, 0], vec![0, 1]];
    assert!(matches!(
        render_confusion(&[vec![1, 2, 3], vec![4, 5, 6]], &names(2), "t"),
        Err(VisionError::Data(_))
    ));
    assert!(matches!(
        render_confusion(&square, &names(3), "t"),
        Err(VisionError::Data(_))
    ));
    assert!(render_confusion(&[], &[], "t").is_err());
    // Zero rows and huge counts are fine.
    let odd = vec![vec![0, 0], vec![u64::MAX / 4, 7]];
    assert!(render_confusion(&odd, &names(2), "").is_ok());
    assert_eq!(confusion_accuracy(&square), Some(1.0));
    assert_eq!(confusion_accuracy(&[vec![0]]), None);
}

#[test]
fn confusion_scales_to_many_classes() {
    let n = 100;
    let matrix: Vec<Vec<u64>> = (0..n)
        .map(|r| {
            (0..n)
                .map(|c| u64::from(r == c) * 90 + (r * c % 3) as u64)
                .collect()
        })
        .collect();
    let img = render_confusion(&matrix, &names(n), "CIFAR-100").unwrap();
    assert!(img.width() < 2000 && img.height() < 2000);
}

#[test]
fn pngs_are_written_and_decode_back() {
    let dir = tempfile::tempdir().unwrap();
    let curves_path = dir.path().join("curves.png");
    line_chart_png(&curves_path, &curves(), 800, 300).unwrap();
    let back = image::open(&curves_path).unwrap().to_rgb8();
    assert_eq!(back, render_line_chart(&curves(), 800, 300));

    let names: Vec<String> = FASHION.iter().map(|s| s.to_string()).collect();
    let conf_path = dir.path().join("confusion.png");
    confusion_png(&conf_path, &fashion_matrix(), &names, "Confusion matrix").unwrap();
    let back = image::open(&conf_path).unwrap().to_rgb8();
    assert_eq!(
        back,
        render_confusion(&fashion_matrix(), &names, "Confusion matrix").unwrap()
    );

    // Nothing but the two charts: no temporary file left over.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn writing_into_a_missing_folder_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("curves.png");
    let err = line_chart_png(&path, &curves(), 400, 200).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let err = confusion_png(&path, &[vec![1]], &names(1), "t").unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let not_png = dir.path().join("curves.jpg");
    assert!(matches!(
        line_chart_png(&not_png, &curves(), 400, 200),
        Err(VisionError::OutputFormat { .. })
    ));
}

/// Renders the realistic charts; with `CONVNET_CHART_DEMO=DIR` they are kept in DIR to look at.
#[test]
fn realistic_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::env::var_os("CONVNET_CHART_DEMO")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let (w, h) = convnet_vision::chart::CURVES_SIZE;
    line_chart_png(&dir.join("curves.png"), &curves(), w, h).unwrap();
    let names: Vec<String> = FASHION.iter().map(|s| s.to_string()).collect();
    let matrix = fashion_matrix();
    let accuracy = confusion_accuracy(&matrix).unwrap();
    let title = format!("Confusion matrix (accuracy {:.1}%)", accuracy * 100.0);
    confusion_png(&dir.join("confusion.png"), &matrix, &names, &title).unwrap();
    assert!(Path::new(&dir.join("confusion.png")).exists());

    // Awkward cases, to look at too.
    let odd = vec![
        Panel::new(
            "NaN loss after epoch 3",
            "epoch",
            "loss",
            vec![
                Series::new(
                    "train",
                    vec![(1.0, 2.3), (2.0, 1.1), (3.0, f64::NAN), (4.0, 0.8)],
                ),
                Series::new("validation", vec![]),
            ],
        ),
        Panel::new(
            "Nothing yet",
            "epoch",
            "accuracy",
            vec![Series::new("train", vec![])],
        ),
        Panel::new(
            "One epoch",
            "epoch",
            "accuracy",
            vec![Series::new("train", vec![(1.0, 0.5)])],
        ),
    ];
    line_chart_png(&dir.join("edge-cases.png"), &odd, 1200, 300).unwrap();
    line_chart_png(&dir.join("small.png"), &curves(), 400, 180).unwrap();
    let steps: Vec<(f64, f64)> = (0..2000)
        .map(|i| {
            let t = f64::from(i);
            (t, 2.3 * (-t / 400.0).exp() + 0.05 * (t / 7.0).sin())
        })
        .collect();
    let long = vec![Panel::new(
        "Per-step loss",
        "step",
        "loss",
        vec![Series::new("train", steps)],
    )];
    line_chart_png(&dir.join("steps.png"), &long, 800, 400).unwrap();
    let n = 100;
    let many: Vec<Vec<u64>> = (0..n)
        .map(|r| {
            (0..n)
                .map(|c| u64::from(r == c) * 90 + (r * c % 3) as u64)
                .collect()
        })
        .collect();
    let long_names: Vec<String> = (0..n)
        .map(|i| format!("a rather long class name {i}"))
        .collect();
    confusion_png(&dir.join("many.png"), &many, &long_names, "CIFAR-100").unwrap();
}

//! The HTTP API end to end (`specs/serve-api.md`): servers on ephemeral loopback ports, called
//! over real HTTP, every route and every error status; the answers compared with what the
//! library gives for the same picture.
//!
//! The models load once and are shared by every server here: a LeNet-5 checkpoint and a
//! one-layer segmenter written in a temporary folder, the ONNX classifier and U-Net fixtures,
//! face-api's Tiny Face Detector and its face networks (`scripts/fetch-pretrained.sh face-api`).

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, LazyLock};
use std::time::Duration;

use burn::tensor::Device;
use convnet_apps::catalog::{self, ModelArg, Task};
use convnet_layers::ModelSpec;
use convnet_server::config::{DEFAULT_MAX_PIXELS, Limits};
use convnet_server::{AppState, Models, Settings, router};
use convnet_train::Checkpoint;
use convnet_train::checkpoint::NormalizationMeta;
use image::{DynamicImage, ImageFormat};
use serde_json::Value;

const TOKEN: &str = "s3cret-token";
/// Every request's bound.
const TIMEOUT: Duration = Duration::from_secs(120);

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn face_api(relative: &str) -> PathBuf {
    let path = repo("third_party/face-api").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-pretrained.sh face-api",
        path.display()
    );
    path
}

/// A freshly initialised network of `spec` saved as a checkpoint at `path`.
fn checkpoint(spec: &ModelSpec, classes: &[&str], path: &Path) {
    let model = spec.build(&Device::default()).unwrap();
    let normalization = NormalizationMeta {
        mean: vec![0.5; spec.input[0]],
        std: vec![0.5; spec.input[0]],
    };
    let classes = classes.iter().map(|c| c.to_string()).collect();
    let ckpt = Checkpoint::untrained(spec, &model, classes, normalization).unwrap();
    std::fs::write(path, ckpt.to_bytes().unwrap()).unwrap();
}

struct Fixture {
    models: Arc<Models>,
    /// Holds the checkpoints and galleries.
    dir: tempfile::TempDir,
    /// A photo of face-api's package at 960 x 640, as JPEG.
    photo: Vec<u8>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let lenet = dir.path().join("lenet.ckpt");
    let lenet_spec = ModelSpec::from_file(&repo("specs/lenet5.toml")).unwrap();
    let digits: Vec<String> = (0..10).map(|d| format!("digit {d}")).collect();
    let digits: Vec<&str> = digits.iter().map(String::as_str).collect();
    checkpoint(&lenet_spec, &digits, &lenet);
    let seg = dir.path().join("seg.ckpt");
    let seg_spec = ModelSpec::parse(
        "name = \"tiny-seg\"\ninput = [3, 16, 16]\n[[layers]]\ntype = \"conv2d\"\nfilters = 2\nkernel = 1\n",
        "tiny-seg.toml",
    )
    .unwrap();
    checkpoint(&seg_spec, &["background", "thing"], &seg);
    let onnx = |name: &str| repo(&format!("fixtures/onnx/models/{name}/model.onnx"));
    let args: Vec<ModelArg> = [
        format!("lenet={}", lenet.display()),
        format!("onnxcls={}", onnx("classifier_opset17").display()),
        format!("seg={}", seg.display()),
        format!("unet={}", onnx("unet_opset17").display()),
        "tiny=tiny-face".to_string(),
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let device = Device::default();
    // The Tiny Face Detector's weights are found from the working folder.
    std::env::set_current_dir(repo(".")).unwrap();
    let entries = catalog::open_all(&args, &device).unwrap();
    let face_dir = face_api("model");
    let faces = convnet_apps::faces::load(Some(&face_dir), 0.5, &device).unwrap();
    let models = Arc::new(Models {
        entries,
        faces: Some((faces, catalog::faces_info(&face_dir))),
    });
    let sample = image::open(face_api("demo/sample1.jpg")).unwrap();
    let small = sample.resize(960, 640, image::imageops::FilterType::Triangle);
    let mut photo = Cursor::new(Vec::new());
    small.write_to(&mut photo, ImageFormat::Jpeg).unwrap();
    Fixture {
        models,
        dir,
        photo: photo.into_inner(),
    }
});

/// Serves `models` on a loopback port of its own, on a runtime of its own, until the tests end.
fn start(models: Arc<Models>, settings: Settings) -> String {
    let state = AppState::new(models, settings, Device::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router(state)).await.unwrap();
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    format!("http://{addr}")
}

fn settings(gallery: &str) -> Settings {
    Settings {
        token: Some(TOKEN.into()),
        limits: Limits::default(),
        workers: 2,
        queue: 8,
        gallery: FIXTURE.dir.path().join(gallery),
    }
}

/// The server most tests call: every model, a token, the default limits.
static MAIN: LazyLock<String> =
    LazyLock::new(|| start(Arc::clone(&FIXTURE.models), settings("main.sqlite")));

struct Reply {
    status: u16,
    content_type: String,
    header: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error message, checking the status and that the body is `{"error": "..."}`.
    fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type, "application/json");
        let v = self.json();
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
        v["error"].as_str().unwrap().to_string()
    }

    fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.header
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        // The server may close a connection after refusing a body; never reuse one.
        .max_idle_connections(0)
        .build()
        .into()
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.unwrap();
    let header = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Reply {
        status: response.status().as_u16(),
        content_type,
        header,
        body: response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap(),
    }
}

fn get(url: &str) -> Reply {
    reply(agent().get(url).call())
}

/// POSTs `body` as `content_type` (none when empty), with the token when `token`.
fn post_as(url: &str, content_type: &str, body: &[u8], token: Option<&str>) -> Reply {
    let mut request = agent().post(url);
    if !content_type.is_empty() {
        request = request.header("Content-Type", content_type);
    }
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    reply(request.send(body))
}

fn post(url: &str, content_type: &str, body: &[u8]) -> Reply {
    post_as(url, content_type, body, None)
}

fn delete(url: &str, token: Option<&str>) -> Reply {
    let mut request = agent().delete(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    reply(request.call())
}

/// `picture` in a multipart form's `image` field, with the Content-Type to send it under.
fn form(picture: &[u8], file_name: &str) -> (String, Vec<u8>) {
    let boundary = "convnet-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(picture);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn encode(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A picture of coloured gradients.
fn gradient(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x + y) % 256) as u8,
        ])
    }))
}

fn decode(bytes: &[u8]) -> DynamicImage {
    convnet_vision::image_io::decode_bytes(bytes, Path::new("test")).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()))
}

fn base64(text: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap()
}

#[test]
fn the_page_health_metrics_and_description_are_served() {
    let base = &*MAIN;
    let page = get(&format!("{base}/"));
    assert_eq!(
        (page.status, page.content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&page.body).contains("<title>"));
    for (asset, kind) in [("app.js", "text/javascript"), ("style.css", "text/css")] {
        let r = get(&format!("{base}/assets/{asset}"));
        assert_eq!(r.status, 200);
        assert!(r.content_type.starts_with(kind), "{}", r.content_type);
    }
    let health = get(&format!("{base}/healthz")).ok(200);
    assert_eq!(health, serde_json::json!({"status": "ok", "models": 6}));

    let doc = get(&format!("{base}/openapi.json")).ok(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    for (path, method) in convnet_server::ROUTES {
        assert!(
            doc["paths"][path][method.to_ascii_lowercase()].is_object(),
            "{method} {path}"
        );
    }

    // A request of each outcome, then the series they count in.
    post(&format!("{base}/v1/classify?model=nope"), "image/png", b"x").error(404);
    let metrics = get(&format!("{base}/metrics"));
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("text/plain"));
    let text = String::from_utf8(metrics.body).unwrap();
    for needle in [
        "convnet_requests_total{route=\"/healthz\",status=\"200\"} 1",
        "convnet_requests_total{route=\"/v1/classify\",status=\"404\"}",
        "convnet_request_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1",
        "convnet_request_seconds_count{route=\"/openapi.json\"}",
        "# TYPE convnet_request_seconds histogram",
        "\nconvnet_queue_depth ",
        "\nconvnet_in_flight ",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
}

#[test]
fn unknown_routes_and_methods_answer_json_errors() {
    let base = &*MAIN;
    let err = get(&format!("{base}/v2/nothing")).error(404);
    assert!(err.contains("no route GET /v2/nothing"), "{err}");
    let err = get(&format!("{base}/v1/classify")).error(405);
    assert!(err.contains("does not take GET"), "{err}");
}

#[test]
fn models_are_listed_with_task_input_classes_and_summary() {
    let v = get(&format!("{}/v1/models", *MAIN)).ok(200);
    let models = v["models"].as_array().unwrap();
    let by_name = |n: &str| models.iter().find(|m| m["name"] == n).unwrap().clone();
    let tasks: Vec<(&str, &str)> = models
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["task"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tasks,
        [
            ("lenet", "classify"),
            ("onnxcls", "classify"),
            ("seg", "segment"),
            ("unet", "segment"),
            ("tiny", "detect"),
            ("faces", "faces")
        ]
    );
    let lenet = by_name("lenet");
    assert_eq!(lenet["input"], serde_json::json!([1, 32, 32]));
    assert_eq!(lenet["classes"].as_array().unwrap().len(), 10);
    // LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850 parameters.
    assert_eq!(lenet["summary"]["params"], 61_706);
    let first = &lenet["summary"]["layers"][0];
    assert_eq!(
        (
            first["kind"].as_str(),
            first["output"].as_str(),
            first["params"].as_u64()
        ),
        (Some("Conv2D"), Some("(None, 6, 28, 28)"), Some(156))
    );
    assert_eq!(
        lenet["recipe"]["normalization"]["std"],
        serde_json::json!([0.5])
    );
    let tiny = by_name("tiny");
    assert_eq!(tiny["classes"], serde_json::json!(["face"]));
    assert_eq!(tiny["input"], serde_json::json!([3, 416, 416]));
    assert!(tiny["recipe"].is_object());
    let unet = by_name("unet");
    assert_eq!(unet["input"], serde_json::json!([3, 16, 16]));
    assert!(unet["summary"]["layers"].as_array().unwrap().len() > 3);
    assert!(by_name("faces")["summary"].is_null());
}

#[test]
fn classify_answers_what_the_library_answers() {
    let base = &*MAIN;
    let picture = gradient(40, 30);
    let png = encode(&picture, ImageFormat::Png);
    for name in ["lenet", "onnxcls"] {
        let classifier = FIXTURE
            .models
            .pick(Task::Classify, Some(name))
            .ok()
            .unwrap()
            .model
            .classifier()
            .unwrap();
        let expected = classifier
            .classify(&[decode(&png)], 3, |_| "x".into(), &Device::default())
            .unwrap()
            .remove(0);
        let v = post(
            &format!("{base}/v1/classify?model={name}&top=3"),
            "image/png",
            &png,
        )
        .ok(200);
        assert_eq!(
            (
                v["model"].as_str(),
                v["width"].as_u64(),
                v["height"].as_u64()
            ),
            (Some(name), Some(40), Some(30))
        );
        let got = v["predictions"].as_array().unwrap();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g["index"].as_u64(), Some(e.index as u64));
            assert_eq!(g["class"].as_str(), Some(e.class.as_str()));
            assert!(close(
                &[g["probability"].as_f64().unwrap() as f32],
                &[e.probability]
            ));
        }
        // The same picture as a form field gives the same answer.
        let (ct, body) = form(&png, "grad.png");
        let v2 = post(
            &format!("{base}/v1/classify?model={name}&top=3"),
            &ct,
            &body,
        )
        .ok(200);
        assert_eq!(v2, v);
    }
    // The default top is 5.
    let v = post(
        &format!("{base}/v1/classify?model=lenet"),
        "image/png",
        &png,
    )
    .ok(200);
    assert_eq!(v["predictions"].as_array().unwrap().len(), 5);
}

#[test]
fn detect_answers_what_the_library_answers_and_draws_on_request() {
    let base = &*MAIN;
    let photo = &FIXTURE.photo;
    let detector = FIXTURE
        .models
        .pick(Task::Detect, None)
        .ok()
        .unwrap()
        .model
        .detector()
        .unwrap();
    let options = convnet_apps::DetectOptions {
        score: Some(0.3),
        ..Default::default()
    };
    let expected = detector
        .run(&decode(photo).to_rgb8(), &options, &Device::default())
        .unwrap();
    assert!(
        !expected.is_empty(),
        "the Tiny Face Detector finds the demo photo's faces"
    );
    // No ?model: the only detector.
    let v = post(&format!("{base}/v1/detect?score=0.3"), "image/jpeg", photo).ok(200);
    assert_eq!(
        (
            v["model"].as_str(),
            v["width"].as_u64(),
            v["height"].as_u64()
        ),
        (Some("tiny"), Some(960), Some(640))
    );
    assert_eq!(v["classes"], serde_json::json!(["face"]));
    let got = v["detections"].as_array().unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g["class"], "face");
        assert_eq!(g["class_index"].as_u64(), Some(e.class as u64));
        let b = e.bbox;
        assert!(close(&floats(&g["box"]), &[b.x1, b.y1, b.x2, b.y2]), "{g}");
        assert!(close(&[g["score"].as_f64().unwrap() as f32], &[e.score]));
    }
    let drawn = post(
        &format!("{base}/v1/detect?score=0.3&format=png"),
        "image/jpeg",
        photo,
    );
    assert_eq!(
        (drawn.status, drawn.content_type.as_str()),
        (200, "image/png")
    );
    let drawn = decode(&drawn.body);
    assert_eq!((drawn.width(), drawn.height()), (960, 640));
}

#[test]
fn segment_answers_what_the_library_answers() {
    let base = &*MAIN;
    let png = encode(&gradient(24, 20), ImageFormat::Png);
    for name in ["seg", "unet"] {
        let segmenter = FIXTURE
            .models
            .pick(Task::Segment, Some(name))
            .ok()
            .unwrap()
            .model
            .segmenter()
            .unwrap();
        let expected = segmenter
            .segment(&decode(&png), &Device::default())
            .unwrap();
        let v = post(
            &format!("{base}/v1/segment?model={name}"),
            "image/png",
            &png,
        )
        .ok(200);
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(24), Some(20))
        );
        let present: Vec<(u64, String, u64)> = v["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let fraction = c["fraction"].as_f64().unwrap();
                let pixels = c["pixels"].as_u64().unwrap();
                assert!((fraction - pixels as f64 / 480.0).abs() < 1e-9);
                (
                    c["index"].as_u64().unwrap(),
                    c["class"].as_str().unwrap().to_string(),
                    pixels,
                )
            })
            .collect();
        let want: Vec<(u64, String, u64)> = expected
            .classes
            .iter()
            .zip(&expected.counts)
            .enumerate()
            .filter(|(_, (_, n))| **n > 0)
            .map(|(i, (c, n))| (i as u64, c.clone(), *n))
            .collect();
        assert_eq!(present, want, "{name}");
        let mask = image::load_from_memory(&base64(&v["mask_png"]))
            .unwrap()
            .to_luma8();
        assert_eq!(
            mask, expected.mask,
            "{name}: the mask's pixels are class indices"
        );
        let overlay = image::load_from_memory(&base64(&v["overlay_png"])).unwrap();
        assert!(
            overlay.width() >= 24 && overlay.height() > 20,
            "a legend below the picture"
        );
        let drawn = post(
            &format!("{base}/v1/segment?model={name}&format=png"),
            "image/png",
            &png,
        );
        assert_eq!(
            (drawn.status, drawn.content_type.as_str()),
            (200, "image/png")
        );
        assert_eq!(decode(&drawn.body).to_rgb8(), overlay.to_rgb8());
    }
}

#[test]
fn faces_are_found_enrolled_named_and_removed() {
    let fixture = &*FIXTURE;
    let base = start(Arc::clone(&fixture.models), settings("round-trip.sqlite"));
    let photo = &fixture.photo;
    let (face_models, _) = fixture.models.faces.as_ref().unwrap();
    let expected = face_models.faces(&decode(photo).to_rgb8()).unwrap();
    assert!(!expected.is_empty());

    let v = post(&format!("{base}/v1/faces"), "image/jpeg", photo).ok(200);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(960), Some(640))
    );
    let got = v["faces"].as_array().unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        let b = e.bbox;
        assert!(close(&floats(&g["box"]), &[b.x1, b.y1, b.x2, b.y2]), "{g}");
        assert_eq!(g["landmarks"].as_array().unwrap().len(), 68);
        assert!(close(&floats(&g["encoding"]), &e.encoding.0));
    }
    let drawn = post(&format!("{base}/v1/faces?format=png"), "image/jpeg", photo);
    assert_eq!(
        (drawn.status, drawn.content_type.as_str()),
        (200, "image/png")
    );

    let people = format!("{base}/v1/gallery/people");
    assert_eq!(get(&people).ok(200), serde_json::json!({"people": []}));
    // Nobody enrolled: every face is unknown.
    let v = post(&format!("{base}/v1/faces/identify"), "image/jpeg", photo).ok(200);
    assert_eq!(v["threshold"].as_f64(), Some(f64::from(0.6f32)));
    assert!(
        v["faces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["name"].is_null())
    );

    let (ct, body) = form(photo, "sample1.jpg");
    let v = post_as(&format!("{people}/ada"), &ct, &body, Some(TOKEN)).ok(201);
    assert_eq!(
        v,
        serde_json::json!({"name": "ada", "added": 1, "encodings": 1})
    );
    let v = get(&people).ok(200);
    assert_eq!(v["people"][0]["name"], "ada");
    assert_eq!(v["people"][0]["encodings"], 1);
    assert!(
        v["people"][0]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // The largest face is ada now, at distance 0.
    let largest = convnet_face::pipeline::largest(&expected).unwrap();
    let v = post(
        &format!("{base}/v1/faces/identify?threshold=0.5"),
        "image/jpeg",
        photo,
    )
    .ok(200);
    let named: Vec<&Value> = v["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "ada")
        .collect();
    assert_eq!(named.len(), 1, "{v}");
    let b = largest.bbox;
    assert!(close(&floats(&named[0]["box"]), &[b.x1, b.y1, b.x2, b.y2]));
    assert!(named[0]["distance"].as_f64().unwrap() < 1e-3);
    let drawn = post(
        &format!("{base}/v1/faces/identify?format=png"),
        "image/jpeg",
        photo,
    );
    assert_eq!(
        (drawn.status, drawn.content_type.as_str()),
        (200, "image/png")
    );

    let v = delete(&format!("{people}/ada"), Some(TOKEN)).ok(200);
    assert_eq!(v, serde_json::json!({"name": "ada", "removed": 1}));
    let err = delete(&format!("{people}/ada"), Some(TOKEN)).error(404);
    assert!(err.contains("no person named \"ada\""), "{err}");
    assert_eq!(get(&people).ok(200), serde_json::json!({"people": []}));
}

#[test]
fn bad_pictures_and_bad_queries_are_400() {
    let base = &*MAIN;
    let url = format!("{base}/v1/classify?model=lenet");
    let err = post(&url, "image/jpeg", b"these bytes are no picture").error(400);
    assert!(err.starts_with("cannot read image upload"), "{err}");
    // The form's file name names the picture, as a path does on the command line.
    let (ct, body) = form(b"garbage", "holiday.jpg");
    let err = post(&url, &ct, &body).error(400);
    assert!(err.starts_with("cannot read image holiday.jpg"), "{err}");
    let photo = &FIXTURE.photo;
    let err = post(&url, "image/jpeg", &photo[..photo.len() / 2]).error(400);
    assert!(err.contains("truncated"), "{err}");

    let png = encode(&gradient(8, 8), ImageFormat::Png);
    for (query, needle) in [
        ("/v1/classify?model=lenet&top=0", "top must be at least 1"),
        ("/v1/classify?model=lenet&top=many", "bad value for top"),
        (
            "/v1/classify?model=lenet&topp=1",
            "unknown query parameter 'topp'",
        ),
        (
            "/v1/classify",
            "several classify models are loaded (lenet, onnxcls)",
        ),
        ("/v1/detect?score=1.5", "--score must lie in [0, 1)"),
        ("/v1/detect?iou=0", "--iou in (0, 1]"),
        ("/v1/detect?format=gif", "unknown format 'gif'"),
        ("/v1/segment?model=seg&format=svg", "unknown format 'svg'"),
        (
            "/v1/faces/identify?threshold=-1",
            "--threshold must be a positive distance",
        ),
        ("/v1/gallery/people?x=1", "this route takes none"),
    ] {
        let reply = if query.starts_with("/v1/gallery") {
            get(&format!("{base}{query}"))
        } else {
            post(&format!("{base}{query}"), "image/png", &png)
        };
        let err = reply.error(400);
        assert!(err.contains(needle), "{query}: {err}");
    }
    // Enrolment needs a face.
    let blank = encode(&gradient(64, 64), ImageFormat::Png);
    let err = post_as(
        &format!("{base}/v1/gallery/people/nobody"),
        "image/png",
        &blank,
        Some(TOKEN),
    )
    .error(400);
    assert!(err.contains("no face found"), "{err}");
    // So does a name the gallery takes.
    let err = post_as(
        &format!("{base}/v1/gallery/people/%20"),
        "image/jpeg",
        photo,
        Some(TOKEN),
    )
    .error(400);
    assert!(err.contains("bad name"), "{err}");
}

#[test]
fn gallery_writes_need_the_token() {
    let base = &*MAIN;
    let png = encode(&gradient(8, 8), ImageFormat::Png);
    let url = format!("{base}/v1/gallery/people/eve");
    let missing = post(&url, "image/png", &png);
    assert!(missing.error(401).contains("Authorization: Bearer"));
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        post_as(&url, "image/png", &png, Some("guess")).error(401),
        "wrong token"
    );
    assert_eq!(delete(&url, None).status, 401);
    assert_eq!(delete(&url, Some("guess")).status, 401);

    // A server without a token takes no gallery writes at all.
    let open = start(
        Arc::clone(&FIXTURE.models),
        Settings {
            token: None,
            ..settings("no-token.sqlite")
        },
    );
    let url = format!("{open}/v1/gallery/people/eve");
    assert!(
        post_as(&url, "image/png", &png, Some("any"))
            .error(403)
            .contains("--token")
    );
    delete(&url, Some("any")).error(403);
    // Reading stays open.
    get(&format!("{open}/v1/gallery/people")).ok(200);
}

#[test]
fn unknown_models_people_and_tasks_are_404_and_other_tasks_409() {
    let base = &*MAIN;
    let png = encode(&gradient(8, 8), ImageFormat::Png);
    let err = post(&format!("{base}/v1/classify?model=nope"), "image/png", &png).error(404);
    assert!(
        err.contains("no model named 'nope'; loaded: lenet, onnxcls, seg, unet, tiny"),
        "{err}"
    );
    let err = delete(&format!("{base}/v1/gallery/people/stranger"), Some(TOKEN)).error(404);
    assert!(err.contains("stranger"), "{err}");
    let err = post(&format!("{base}/v1/detect?model=lenet"), "image/png", &png).error(409);
    assert!(
        err.contains("model 'lenet' serves classify, not detect"),
        "{err}"
    );
    post(&format!("{base}/v1/segment?model=tiny"), "image/png", &png).error(409);

    // A server with no models of a task, and no face networks.
    let bare = start(
        Arc::new(Models {
            entries: Vec::new(),
            faces: None,
        }),
        settings("unused.sqlite"),
    );
    for route in ["classify", "detect", "segment"] {
        let err = post(&format!("{bare}/v1/{route}"), "image/png", &png).error(404);
        assert!(err.contains(&format!("no {route} model loaded")), "{err}");
    }
    for route in ["faces", "faces/identify"] {
        let err = post(&format!("{bare}/v1/{route}"), "image/png", &png).error(404);
        assert!(err.contains("--faces"), "{err}");
    }
    get(&format!("{bare}/v1/gallery/people")).error(404);
    assert_eq!(get(&format!("{bare}/healthz")).ok(200)["models"], 0);
}

/// A PNG whose header claims `w` x `h` pixels, with one pixel's data behind it.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = encode(&gradient(1, 1), ImageFormat::Png);
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn bodies_and_pictures_over_the_limits_are_413_and_other_types_415() {
    let base = &*MAIN;
    let url = format!("{base}/v1/classify?model=lenet");
    // 2.5 gigapixels declared: refused from the header, nothing decoded or allocated.
    let err = post(&url, "image/png", &png_claiming(50_000, 50_000)).error(413);
    assert!(
        err.contains("50000 x 50000") && err.contains(&DEFAULT_MAX_PIXELS.to_string()),
        "{err}"
    );
    let (ct, body) = form(&png_claiming(50_000, 50_000), "huge.png");
    post(&url, &ct, &body).error(413);

    // Bodies a little over the limit: small enough that the client has sent them whole when
    // the server refuses, so the refusal reaches it.
    let small = start(
        Arc::clone(&FIXTURE.models),
        Settings {
            limits: Limits {
                max_body: 4 << 10,
                max_pixels: 500_000,
            },
            ..settings("small.sqlite")
        },
    );
    let url = format!("{small}/v1/classify?model=lenet");
    let big = vec![0u8; 12 << 10];
    let (form_type, form_body) = form(&big, "big.png");
    for (content_type, body) in [("image/png", &big), (form_type.as_str(), &form_body)] {
        // Refused from the declared length, then as it arrives when no length is declared.
        let err = post(&url, content_type, body).error(413);
        assert!(
            err.contains("over the limit of 4096 bytes (--max-body)"),
            "{err}"
        );
        let chunked = agent()
            .post(&url)
            .header("Content-Type", content_type)
            .send(ureq::SendBody::from_owned_reader(Cursor::new(body.clone())));
        reply(chunked).error(413);
    }
    let err = post(&url, "image/png", &png_claiming(1000, 1000)).error(413);
    assert!(
        err.contains("1000 x 1000 pixels is over the limit of 500000 pixels (--max-pixels)"),
        "{err}"
    );

    for content_type in ["text/plain", "application/json", ""] {
        let err = post(&url, content_type, b"{}").error(415);
        assert!(
            err.contains("image/jpeg, image/png or multipart/form-data"),
            "{err}"
        );
    }
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_nothing_else_fails() {
    let fixture = &*FIXTURE;
    let base = start(
        Arc::clone(&fixture.models),
        Settings {
            workers: 1,
            queue: 4,
            ..settings("busy.sqlite")
        },
    );
    let clients = 16;
    let barrier = Arc::new(Barrier::new(clients));
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (barrier, base) = (Arc::clone(&barrier), &base);
                s.spawn(move || {
                    barrier.wait();
                    post(&format!("{base}/v1/faces"), "image/jpeg", &fixture.photo)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (mut ok, mut busy) = (0, 0);
    for r in &replies {
        match r.status {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert_eq!(r.header("retry-after"), Some("1"));
                assert!(r.error(503).contains("queue is full"));
            }
            other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    // One running and four waiting are served; the rest arrive to a full queue.
    assert!(ok >= 5, "{ok} served, {busy} refused");
    assert!(busy >= 1, "{ok} served, {busy} refused");
    let metrics = String::from_utf8(get(&format!("{base}/metrics")).body).unwrap();
    assert!(
        metrics.contains(&format!(
            "convnet_requests_total{{route=\"/v1/faces\",status=\"503\"}} {busy}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("\nconvnet_in_flight 0\n"), "{metrics}");
}

//! The page in a real browser: Debian's chromium, driven over WebDriver by chromedriver, loads
//! the page of an in-process server, uploads one of face-api's demo photos, runs it through
//! `detect` (Tiny Face Detector) and `faces`, and must list exactly the boxes the API answers
//! for the same photo. It also saves a screenshot, `target/serve-page.png` (not committed: it
//! shows a third-party photo).
//!
//! Needs `chromium` and `chromedriver` on PATH (`scripts/install-browser.sh`); without them the
//! test fails unless `CONVNET_SKIP_BROWSER=1`. Everything is on loopback and bounded in time.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use convnet_server::{AppState, Models, ServeConfig, Settings, router};
use serde_json::{Value, json};

const SKIP: &str = "CONVNET_SKIP_BROWSER";
/// The longest any one step may take: a browser start, a page load, an inference on 2 cores.
const STEP: Duration = Duration::from_secs(120);
/// How far the page's rounded numbers may be from the API's: scores are shown to 2 decimals
/// and boxes kept to 1.
const SCORE_SLACK: f64 = 0.005 + 1e-9;
const BOX_SLACK: f64 = 0.05 + 1e-9;

fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn http() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(STEP))
            .http_status_as_error(false)
            // Loopback only: a proxy from the environment must not see these requests.
            .proxy(None)
            .build(),
    )
}

fn read_json(response: &mut ureq::http::Response<ureq::Body>) -> Result<Value> {
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()?;
    serde_json::from_str(&text).with_context(|| format!("not JSON: {text:.200}"))
}

// ---- the server ----------------------------------------------------------------------------

/// The server under test, on a runtime of its own: dropping it stops both.
struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

/// `--model tiny=tiny-face --faces`, without a token, on a free loopback port.
fn start_server(gallery: &Path) -> Result<Server> {
    let config = ServeConfig {
        port: 0,
        models: vec!["tiny=tiny-face".parse()?],
        faces: true,
        gallery: gallery.to_path_buf(),
        workers: 2,
        ..ServeConfig::default()
    };
    config.check()?;
    // `tiny-face` and face-api's networks are found under the current folder, as for
    // `convnet serve` started in a checkout; this binary runs one test, so moving is safe.
    std::env::set_current_dir(workspace())?;
    let device = Device::default();
    let models = Models::load(&config, &device)?;
    let state = AppState::new(Arc::new(models), Settings::of(&config), device)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind((config.host, 0)))?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move { axum::serve(listener, router(state)).await });
    Ok(Server {
        addr,
        _runtime: runtime,
    })
}

// ---- the browser ---------------------------------------------------------------------------

/// `name` as found on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| file.is_file())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One chromedriver with one headless chromium session; both end when it drops.
struct Browser {
    driver: Child,
    http: ureq::Agent,
    /// chromedriver's address.
    base: String,
    /// The session's address, once chromium runs.
    session: Option<String>,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path) -> Result<Self> {
        let port = free_port()?;
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let mut browser = Browser {
            driver,
            http: http(),
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            profile: tempfile::tempdir()?,
        };
        browser.wait_for_driver()?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Containers often give /dev/shm 64 MiB, too little for a page with a large canvas.
            "--disable-dev-shm-usage",
            "--window-size=1200,1500",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!(
            "--user-data-dir={}",
            browser.profile.path().display()
        )])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "timeouts": {"script": STEP.as_millis() as u64, "pageLoad": STEP.as_millis() as u64},
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let answer = browser.command("POST", "/session", Some(capabilities))?;
        let id = answer["sessionId"]
            .as_str()
            .context("chromedriver gave no session id")?;
        browser.session = Some(format!("{}/session/{id}", browser.base));
        Ok(browser)
    }

    fn wait_for_driver(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut response) = self.http.get(format!("{}/status", self.base)).call()
                && read_json(&mut response).is_ok_and(|s| s["value"]["ready"] == true)
            {
                return Ok(());
            }
            if let Some(status) = self.driver.try_wait()? {
                bail!("chromedriver exited at start ({status})");
            }
            ensure!(
                Instant::now() < deadline,
                "chromedriver did not start in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver command; `path` is relative to the session (or to the driver before one).
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.session.as_ref().unwrap_or(&self.base));
        let mut response = match (method, body) {
            ("GET", _) => self.http.get(&url).call(),
            ("DELETE", _) => self.http.delete(&url).call(),
            (_, body) => self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        }
        .with_context(|| format!("webdriver {method} {path}"))?;
        let mut answer = read_json(&mut response)?;
        let value = answer["value"].take();
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            bail!("webdriver {method} {path}: {error}: {}", value["message"]);
        }
        Ok(value)
    }

    fn goto(&self, url: &str) -> Result<()> {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    fn find(&self, css: &str) -> Result<String> {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(String::from)
            .with_context(|| format!("no element id for {css}"))
    }

    fn click(&self, css: &str) -> Result<()> {
        let element = self.find(css)?;
        self.command("POST", &format!("/element/{element}/click"), None)
            .map(drop)
    }

    fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let element = self.find(css)?;
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    fn script(&self, body: &str) -> Result<Value> {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": body, "args": []})),
        )
    }

    /// Polls `condition` (a script body returning a value) until it is truthy.
    fn wait_for(&self, what: &str, condition: &str) -> Result<Value> {
        let deadline = Instant::now() + STEP;
        loop {
            let value = self.script(condition)?;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return Ok(value);
            }
            ensure!(
                Instant::now() < deadline,
                "the page did not show {what} in {STEP:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the page's scripts threw or logged as errors (chromedriver's log extension);
    /// refused requests, which the page handles, are network entries and not counted.
    fn script_errors(&self) -> Result<Vec<Value>> {
        let log = self.command("POST", "/se/log", Some(json!({"type": "browser"})))?;
        Ok(log
            .as_array()
            .context("the browser log is not a list")?
            .iter()
            .filter(|e| e["source"] != "network" && e["level"] == "SEVERE")
            .cloned()
            .collect())
    }

    fn screenshot(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        let encoded = self.command("GET", "/screenshot", None)?;
        let text = encoded.as_str().context("the screenshot is not a string")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.is_some() {
            let _ = self.command("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

// ---- the page and the API ------------------------------------------------------------------

/// A label as the page drew it: "name score" and, for boxes, the box.
#[derive(Debug)]
struct Drawn {
    text: String,
    bbox: Option<Vec<f64>>,
}

/// A box as the API answered it.
#[derive(Debug)]
struct Expected {
    name: String,
    score: f64,
    bbox: Vec<f64>,
}

fn expected(items: &Value, name_of: impl Fn(&Value) -> String) -> Result<Vec<Expected>> {
    items
        .as_array()
        .context("no list in the API's answer")?
        .iter()
        .map(|item| {
            let bbox = item["box"]
                .as_array()
                .context("a box is not a list")?
                .iter()
                .map(|v| v.as_f64().context("a box corner is not a number"))
                .collect::<Result<Vec<_>>>()?;
            Ok(Expected {
                name: name_of(item),
                score: item["score"].as_f64().context("a score is not a number")?,
                bbox,
            })
        })
        .collect()
}

fn drawn_labels(browser: &Browser) -> Result<Vec<Drawn>> {
    let labels = browser.script(
        "return [...document.querySelectorAll('#labels li.label')]
            .map(li => [li.textContent, li.dataset.box || null]);",
    )?;
    labels
        .as_array()
        .context("labels are not a list")?
        .iter()
        .map(|pair| {
            let text = pair[0].as_str().context("a label has no text")?.to_string();
            let bbox = match pair[1].as_str() {
                None => None,
                Some(b) => Some(
                    b.split(',')
                        .map(|v| v.parse::<f64>().with_context(|| format!("box {b}")))
                        .collect::<Result<Vec<_>>>()?,
                ),
            };
            Ok(Drawn { text, bbox })
        })
        .collect()
}

/// The page must list the API's boxes, in its order, with the same names and (rounded) numbers.
fn assert_same(task: &str, drawn: &[Drawn], api: &[Expected]) {
    assert_eq!(
        drawn.len(),
        api.len(),
        "{task}: the page lists {drawn:?}, the API answers {api:?}"
    );
    for (d, e) in drawn.iter().zip(api) {
        let (name, score) = d
            .text
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("{task}: label {:?} is not \"name score\"", d.text));
        assert_eq!(name, e.name, "{task}: {d:?} against {e:?}");
        let score: f64 = score.parse().unwrap_or_else(|_| panic!("{task}: {d:?}"));
        assert!(
            (score - e.score).abs() <= SCORE_SLACK,
            "{task}: {d:?} against {e:?}"
        );
        let bbox = d
            .bbox
            .as_ref()
            .unwrap_or_else(|| panic!("{task}: {d:?} has no box"));
        assert_eq!(bbox.len(), 4, "{task}: {d:?}");
        for (a, b) in bbox.iter().zip(&e.bbox) {
            assert!((a - b).abs() <= BOX_SLACK, "{task}: {d:?} against {e:?}");
        }
    }
}

/// Runs `task` from the page (the photo is already chosen) and waits for its answer.
fn run_task(browser: &Browser, task: &str) -> Result<Vec<Drawn>> {
    browser.click(&format!("#task option[value='{task}']"))?;
    browser.click("#send")?;
    let state = browser.wait_for(
        &format!("the {task} answer"),
        &format!(
            "const r = document.getElementById('result');
             if (r.dataset.state === 'error') return 'error: ' + document.getElementById('error').textContent;
             return r.dataset.state === 'done' && r.dataset.task === '{task}' ? 'done' : null;"
        ),
    )?;
    ensure!(state == "done", "{task} on the page: {state}");
    drawn_labels(browser)
}

fn post_photo(http: &ureq::Agent, url: &str, photo: &[u8]) -> Result<(u16, Value)> {
    let mut response = http
        .post(url)
        .header("Content-Type", "image/jpeg")
        .send(photo)?;
    Ok((response.status().as_u16(), read_json(&mut response)?))
}

fn save_screenshot(png: &[u8]) -> Result<PathBuf> {
    ensure!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG"
    );
    let target = workspace().join("target/serve-page.png");
    std::fs::create_dir_all(target.parent().unwrap())?;
    std::fs::write(&target, png)?;
    Ok(target)
}

#[test]
fn the_page_draws_the_apis_boxes() -> Result<()> {
    let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
    else {
        if std::env::var(SKIP).as_deref() == Ok("1") {
            eprintln!("browser test skipped: chromium or chromedriver is missing and {SKIP}=1");
            return Ok(());
        }
        bail!(
            "the page's browser test needs chromium and chromedriver: run scripts/install-browser.sh (or set {SKIP}=1 to skip it)"
        );
    };
    let photo_path = workspace()
        .join("third_party/face-api/demo/sample1.jpg")
        .canonicalize()
        .context("third_party/face-api/demo/sample1.jpg is missing: run scripts/fetch-pretrained.sh face-api")?;
    let photo = std::fs::read(&photo_path)?;
    let gallery = tempfile::tempdir()?;
    let server = start_server(&gallery.path().join("faces.sqlite"))?;
    let base = format!("http://{}", server.addr);
    let http = http();

    // What the API says about the photo: the page must show the same.
    let (status, detect) = post_photo(&http, &format!("{base}/v1/detect?model=tiny"), &photo)?;
    ensure!(status == 200, "detect: {status} {detect}");
    let detect = expected(&detect["detections"], |d| {
        d["class"].as_str().unwrap_or("?").to_string()
    })?;
    let (status, faces) = post_photo(&http, &format!("{base}/v1/faces"), &photo)?;
    ensure!(status == 200, "faces: {status} {faces}");
    let faces = expected(&faces["faces"], |_| "face".to_string())?;
    assert!(!faces.is_empty(), "face-api finds no face in sample1.jpg");
    assert!(!detect.is_empty(), "tiny-face finds no face in sample1.jpg");

    let browser = Browser::start(&chromium, &chromedriver)?;
    browser.goto(&format!("{base}/"))?;
    browser.wait_for(
        "the loaded models",
        "return document.querySelector('#models details[data-model=\"tiny\"] table') !== null;",
    )?;
    browser.type_into("#photo", &photo_path.display().to_string())?;
    browser.wait_for(
        "the chosen photo",
        "return document.getElementById('result').dataset.state === 'ready';",
    )?;

    assert_same("detect", &run_task(&browser, "detect")?, &detect);
    assert_same("faces", &run_task(&browser, "faces")?, &faces);
    let screenshot = save_screenshot(&browser.screenshot()?)?;
    eprintln!("screenshot: {}", screenshot.display());

    // A refused request shows the server's own message, and the page stays usable. The
    // server refuses before it reads the picture, so the API is asked with an empty body: a
    // client still sending a photo it will not read may see the connection close.
    let (status, refused) = post_photo(&http, &format!("{base}/v1/gallery/people/ada"), &[])?;
    ensure!(
        status == 403,
        "enrolling on a server without a token: {status} {refused}"
    );
    browser.type_into("#person", "ada")?;
    browser.click("#enrol")?;
    let shown = browser.wait_for(
        "the refused enrolment",
        "const e = document.getElementById('error'); return e.hidden ? null : e.textContent;",
    )?;
    assert_eq!(
        shown, refused["error"],
        "the page's error is not the server's"
    );
    assert_same("faces", &drawn_labels(&browser)?, &faces);
    let errors = browser.script_errors()?;
    assert!(errors.is_empty(), "the page's scripts failed: {errors:?}");
    Ok(())
}

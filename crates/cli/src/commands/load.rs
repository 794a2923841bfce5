//! `convnet bench serve`: a bounded load test of an HTTP inference server on this machine —
//! `convnet serve` or a peer behind the same routes — at fixed concurrencies for a fixed time:
//! requests per second, p50/p99 latency, failures, and the server's resident memory.
//!
//! The client speaks just enough HTTP/1.1 (keep-alive, `Content-Length` or chunked answers) to
//! post one picture over and over, and it refuses any address that is not loopback: a load test
//! must not reach another machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use serde_json::json;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each level opens CONCURRENCY keep-alive connections, each posting the picture as soon as its last \
answer arrived, for --duration seconds after --warmup seconds. 2xx answers count as done, 503 as \
deliberately shed (the server's queue was full; the connection then waits as its Retry-After \
says, as a well-behaved client does), anything else (or a broken connection) as failed. \
Latencies are of done requests. With --pid, the server's resident memory (VmRSS) is read before \
and after each level; with --requests, one more run at the highest concurrency sends that many \
requests and reports the memory after the first tenth and at the end.")]
pub struct LoadArgs {
    /// The route to post to, e.g. http://127.0.0.1:8080/v1/classify?model=lenet (loopback only).
    #[arg(long)]
    url: String,

    /// The picture posted with every request (PNG or JPEG; its content type from its bytes).
    #[arg(long, value_name = "FILE")]
    image: PathBuf,

    /// Connections at once, one level per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4, 16])]
    concurrency: Vec<usize>,

    /// Seconds each level is measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Seconds each level runs before it is measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,

    /// The server's process id, to read its resident memory.
    #[arg(long)]
    pid: Option<u32>,

    /// Then send this many requests at the highest concurrency and compare the server's memory
    /// after the first tenth with the memory at the end.
    #[arg(long)]
    requests: Option<u64>,

    /// Seconds one request may take before it counts as failed.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,

    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// One level's results.
#[derive(Debug, Serialize)]
struct Level {
    concurrency: usize,
    seconds: f64,
    done: u64,
    shed_503: u64,
    failed: u64,
    requests_per_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    rss_before_mib: Option<f64>,
    rss_after_mib: Option<f64>,
    first_failure: Option<String>,
}

/// The long run's memory.
#[derive(Debug, Serialize)]
struct Soak {
    concurrency: usize,
    requests: u64,
    failed: u64,
    shed_503: u64,
    rss_after_tenth_mib: Option<f64>,
    rss_end_mib: Option<f64>,
    growth_percent: Option<f64>,
}

/// Where requests go: a loopback socket address, the request target and the `Host` header.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: only plain http:// URLs are load-tested"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        ensure!(!host.is_empty(), "{url}: no host");
        let with_port = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .collect();
        let Some(addr) = addrs.iter().copied().find(|a| a.ip().is_loopback()) else {
            bail!("{host} is not a loopback address: load tests only send traffic to this machine");
        };
        if addrs.iter().any(|a| !a.ip().is_loopback()) {
            bail!("{host} also resolves beyond this machine: name a loopback address (127.0.0.1)");
        }
        Ok(Self {
            addr,
            host: host.to_string(),
            path: path.to_string(),
        })
    }
}

/// What a server answered: the status, whether it closes the connection, and how long it asks
/// a refused client to wait.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    close: bool,
    retry_after: Option<Duration>,
}

/// A keep-alive connection that posts one body and reads the answer's status.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(target: &Target, timeout: Duration) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&target.addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Sends `request` (head and body) and returns the answer; its body is read and dropped.
    fn exchange(&mut self, request: &[u8]) -> Result<Answer> {
        self.reader.get_mut().write_all(request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP answer: {:?}", line.trim_end()))?;
        let (mut length, mut chunked, mut close, mut retry_after) = (None, false, false, None);
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the connection closed inside the answer's head");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse::<u64>().ok(),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    "retry-after" => {
                        retry_after = value.parse::<u64>().ok().map(Duration::from_secs);
                    }
                    _ => {}
                }
            }
        }
        if chunked {
            self.skip_chunks()?;
        } else if let Some(n) = length {
            std::io::copy(&mut (&mut self.reader).take(n), &mut std::io::sink())?;
        } else {
            bail!("an answer without Content-Length or chunked encoding");
        }
        Ok(Answer {
            status,
            close,
            retry_after,
        })
    }

    fn skip_chunks(&mut self) -> Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {:?}", line.trim()))?;
            std::io::copy(&mut (&mut self.reader).take(size), &mut std::io::sink())?;
            line.clear();
            self.reader.read_line(&mut line)?;
            if size == 0 {
                return Ok(());
            }
        }
    }
}

/// The content type of a picture from its first bytes.
fn content_type(bytes: &[u8]) -> Result<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Ok("image/png"),
        [0xFF, 0xD8, ..] => Ok("image/jpeg"),
        _ => bail!("the picture is neither PNG nor JPEG"),
    }
}

/// The resident memory of process `pid` in MiB (Linux `/proc`).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Counts and latencies shared by a level's connections.
#[derive(Default)]
struct Tally {
    done: AtomicU64,
    shed: AtomicU64,
    failed: AtomicU64,
    sent: AtomicU64,
    latencies: Mutex<Vec<f64>>,
    first_failure: Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_failure
            .lock()
            .expect("poisoned")
            .get_or_insert(why);
    }
}

/// When a level's connections stop.
#[derive(Clone, Copy)]
enum Stop {
    /// Measure from `warmup` to `end`.
    Time { warmup: Instant, end: Instant },
    /// After this many requests in all (all measured).
    Count(u64),
}

fn drive(
    target: &Target,
    request: &[u8],
    concurrency: usize,
    stop: Stop,
    timeout: Duration,
    tally: &Tally,
    on_request: &(dyn Fn(u64) + Sync),
) {
    let running = AtomicBool::new(true);
    std::thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                let mut conn: Option<Connection> = None;
                while running.load(Ordering::Relaxed) {
                    let measured = match stop {
                        Stop::Time { warmup, end } => {
                            let now = Instant::now();
                            if now >= end {
                                break;
                            }
                            now >= warmup
                        }
                        Stop::Count(n) => {
                            let k = tally.sent.fetch_add(1, Ordering::Relaxed);
                            if k >= n {
                                break;
                            }
                            on_request(k + 1);
                            true
                        }
                    };
                    let start = Instant::now();
                    let answer = match conn.as_mut() {
                        Some(c) => c.exchange(request),
                        None => Connection::open(target, timeout).and_then(|mut c| {
                            let r = c.exchange(request);
                            conn = Some(c);
                            r
                        }),
                    };
                    let elapsed = start.elapsed().as_secs_f64() * 1e3;
                    // A request that began in the warm-up but ended after it is not counted.
                    let wait = match &answer {
                        Ok(a) if a.status == 503 => a.retry_after,
                        _ => None,
                    };
                    if !measured {
                        if !matches!(answer, Ok(Answer { close: false, .. })) {
                            conn = None;
                        }
                    } else {
                        match answer {
                            Ok(a) => {
                                match a.status {
                                    200..=299 => {
                                        tally.done.fetch_add(1, Ordering::Relaxed);
                                        tally.latencies.lock().expect("poisoned").push(elapsed);
                                    }
                                    503 => {
                                        tally.shed.fetch_add(1, Ordering::Relaxed);
                                    }
                                    s => tally.fail(format!("HTTP {s}")),
                                }
                                if a.close {
                                    conn = None;
                                }
                            }
                            Err(e) => {
                                tally.fail(format!("{e:#}"));
                                conn = None;
                            }
                        }
                    }
                    if let Some(wait) = wait {
                        let wait = match stop {
                            Stop::Time { end, .. } => {
                                wait.min(end.saturating_duration_since(Instant::now()))
                            }
                            Stop::Count(_) => wait,
                        };
                        std::thread::sleep(wait);
                    }
                }
                running.store(false, Ordering::Relaxed);
            });
        }
    });
}

/// The `q`-quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

pub fn run(args: LoadArgs) -> Result<()> {
    ensure!(
        args.duration > 0.0 && args.duration <= 600.0 && args.warmup >= 0.0 && args.warmup <= 60.0,
        "--duration must lie in (0, 600] seconds and --warmup in [0, 60]"
    );
    ensure!(
        args.timeout > 0.0 && args.timeout <= 600.0,
        "--timeout must lie in (0, 600] seconds"
    );
    ensure!(
        !args.concurrency.is_empty() && args.concurrency.iter().all(|&c| (1..=256).contains(&c)),
        "--concurrency values must lie in 1..=256"
    );
    ensure!(
        args.requests.is_none_or(|n| (10..=1_000_000).contains(&n)),
        "--requests must lie in 10..=1000000"
    );
    let target = Target::parse(&args.url)?;
    let body = std::fs::read(&args.image)
        .with_context(|| format!("cannot read {}", args.image.display()))?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        target.path,
        target.host,
        content_type(&body)?,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let timeout = Duration::from_secs_f64(args.timeout);
    let rss = |_: ()| args.pid.and_then(rss_mib);
    let mut levels = Vec::new();
    for &c in &args.concurrency {
        let tally = Tally::default();
        let before = rss(());
        let warmup = Instant::now() + Duration::from_secs_f64(args.warmup);
        let end = warmup + Duration::from_secs_f64(args.duration);
        drive(
            &target,
            &request,
            c,
            Stop::Time { warmup, end },
            timeout,
            &tally,
            &|_| {},
        );
        let mut lat = tally.latencies.into_inner().expect("poisoned");
        lat.sort_by(f64::total_cmp);
        let done = tally.done.into_inner();
        let level = Level {
            concurrency: c,
            seconds: args.duration,
            done,
            shed_503: tally.shed.into_inner(),
            failed: tally.failed.into_inner(),
            requests_per_second: done as f64 / args.duration,
            p50_ms: quantile(&lat, 0.5),
            p99_ms: quantile(&lat, 0.99),
            rss_before_mib: before,
            rss_after_mib: rss(()),
            first_failure: tally.first_failure.into_inner().expect("poisoned"),
        };
        if !args.json {
            print_level(&level);
        }
        levels.push(level);
    }
    let soak = args.requests.map(|n| {
        let c = args.concurrency.iter().copied().max().unwrap_or(1);
        let tally = Tally::default();
        let tenth = Mutex::new(None);
        drive(&target, &request, c, Stop::Count(n), timeout, &tally, &|k| {
            if k == n / 10 {
                *tenth.lock().expect("poisoned") = rss(());
            }
        });
        let first = tenth.into_inner().expect("poisoned");
        let end = rss(());
        let soak = Soak {
            concurrency: c,
            requests: n,
            failed: tally.failed.into_inner(),
            shed_503: tally.shed.into_inner(),
            rss_after_tenth_mib: first,
            rss_end_mib: end,
            growth_percent: first.zip(end).map(|(a, b)| 100.0 * (b - a) / a),
        };
        if !args.json {
            println!(
                "{} requests at concurrency {c}: {} failed, {} shed; resident memory {} after the first tenth, {} at the end",
                soak.requests,
                soak.failed,
                soak.shed_503,
                mib(soak.rss_after_tenth_mib),
                mib(soak.rss_end_mib)
            );
        }
        soak
    });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "url": args.url, "image": args.image, "levels": levels, "soak": soak,
            }))?
        );
    }
    Ok(())
}

fn mib(v: Option<f64>) -> String {
    v.map_or("?".into(), |v| format!("{v:.0} MiB"))
}

fn print_level(l: &Level) {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} ms"));
    println!(
        "concurrency {:>3}: {:>8.1} req/s  p50 {:>9}  p99 {:>9}  done {}  shed(503) {}  failed {}  rss {} -> {}",
        l.concurrency,
        l.requests_per_second,
        ms(l.p50_ms),
        ms(l.p99_ms),
        l.done,
        l.shed_503,
        l.failed,
        mib(l.rss_before_mib),
        mib(l.rss_after_mib)
    );
    if let Some(why) = &l.first_failure {
        println!("  first failure: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn only_loopback_targets_are_accepted() {
        let t = Target::parse("http://127.0.0.1:8080/v1/classify?model=a").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.path, "/v1/classify?model=a");
        assert!(Target::parse("http://[::1]:9/").is_ok());
        let err = Target::parse("http://10.1.2.3:8080/")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(Target::parse("https://127.0.0.1/").is_err());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    /// A loopback server that answers every request from a fixed list, in turn, on one
    /// keep-alive connection.
    fn serve(answers: Vec<&'static str>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            for answer in answers {
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
            }
        });
        addr
    }

    #[test]
    fn answers_with_length_or_chunks_are_read_whole_on_one_connection() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nRetry-After: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        ]);
        let target = Target::parse(&format!("http://{addr}/x")).unwrap();
        let mut c = Connection::open(&target, Duration::from_secs(5)).unwrap();
        let req = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        let answer = |status, close, retry_after| Answer {
            status,
            close,
            retry_after,
        };
        assert_eq!(c.exchange(req).unwrap(), answer(200, false, None));
        assert_eq!(
            c.exchange(req).unwrap(),
            answer(503, false, Some(Duration::from_secs(1)))
        );
        assert_eq!(c.exchange(req).unwrap(), answer(200, true, None));
    }

    #[test]
    fn pictures_are_typed_by_their_bytes() {
        assert_eq!(content_type(b"\x89PNG\r\n").unwrap(), "image/png");
        assert_eq!(content_type(&[0xFF, 0xD8, 0xFF]).unwrap(), "image/jpeg");
        assert!(content_type(b"GIF89a").is_err());
    }
}

//! The display of a classic builder's message stream (`POST /build`), shared by `berth build` and `berth compose
//! build`: BuildKit-like steps (`--progress=plain`: numbered steps with their output live, `CACHED`, `DONE 0.3s`;
//! `tty`: one line per step with a running timer and the last lines of the running step's output, collapsed when the
//! step ends, kept when it fails), the classic stream as it comes (`classic`), or nothing (`quiet`). The final lines
//! name the image the daemon reported (`writing image sha256:...`, `naming to ...`), never an intermediate ID.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use crate::StatusError;

/// How the build is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Numbered steps, every line of output as it comes.
    Plain,
    /// A line per step, redrawn with its timer and its last output lines.
    Tty,
    /// The daemon's classic stream (`Step 1/3 : ...`), on stdout.
    Classic,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// `--progress`'s value (`auto`: `tty` on a terminal, else `plain`).
    pub fn parse(progress: &str, quiet: bool) -> Result<Mode> {
        if quiet {
            return Ok(Mode::Quiet);
        }
        Ok(match progress {
            "auto" | "" if std::io::stderr().is_terminal() => Mode::Tty,
            "auto" | "" | "plain" => Mode::Plain,
            "tty" => Mode::Tty,
            "classic" => Mode::Classic,
            "quiet" => Mode::Quiet,
            other => {
                return Err(StatusError::exit(
                    1,
                    format!("invalid progress mode {other:?}: want auto, plain, tty, quiet or classic"),
                ));
            }
        })
    }
}

/// How many of the running step's last output lines `tty` shows.
const LIVE_LINES: usize = 6;

/// The step being run.
struct Step {
    n: usize,
    title: String,
    start: Instant,
    cached: bool,
    out: Vec<String>,
}

/// The state of the display; [`View`] shares it with the timer that redraws it.
struct State {
    mode: Mode,
    /// `[web 2/3]` instead of `[2/3]` (compose's services).
    label: Option<String>,
    start: Instant,
    step: Option<Step>,
    partial: String,
    /// Lines of the live area drawn below the finished lines (`tty`).
    drawn: usize,
    /// The next step number for the final lines.
    last_n: usize,
    out: Box<dyn Write + Send>,
}

impl State {
    /// Erases the live area (`tty`).
    fn clear(&mut self) {
        if self.drawn > 0 {
            let _ = write!(self.out, "\x1b[{}A\r\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    /// Draws the running step with its timer and last output lines (`tty`).
    fn draw(&mut self) {
        if self.mode != Mode::Tty {
            return;
        }
        self.clear();
        let Some(s) = &self.step else { return };
        let mut text = format!(" => {:<60} {:.1}s\n", s.title, s.start.elapsed().as_secs_f64());
        for l in s.out.iter().skip(s.out.len().saturating_sub(LIVE_LINES)) {
            text.push_str(&format!(" => => # {}\n", truncate(l, 100)));
        }
        self.drawn = text.lines().count();
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    fn end_step(&mut self, failed: bool) {
        let Some(s) = self.step.take() else { return };
        let secs = s.start.elapsed().as_secs_f64();
        match self.mode {
            Mode::Plain => {
                let _ = match (s.cached, failed) {
                    (true, _) => writeln!(self.out, "#{} CACHED", s.n),
                    (_, true) => writeln!(self.out, "#{} ERROR {secs:.1}s", s.n),
                    _ => writeln!(self.out, "#{} DONE {secs:.1}s", s.n),
                };
                let _ = writeln!(self.out);
            }
            Mode::Tty => {
                self.clear();
                let status = match (s.cached, failed) {
                    (true, _) => "CACHED".to_string(),
                    (_, true) => "ERROR".into(),
                    _ => format!("{secs:.1}s"),
                };
                let _ = writeln!(self.out, " => {:<60} {status}", s.title);
                if failed {
                    for l in &s.out {
                        let _ = writeln!(self.out, " => => # {l}");
                    }
                }
            }
            _ => {}
        }
        let _ = self.out.flush();
    }

    fn line(&mut self, line: &str) {
        // "Step 3/8 : RUN make" starts a step.
        if let Some(rest) = line.strip_prefix("Step ")
            && let Some((nm, text)) = rest.split_once(" : ")
        {
            self.end_step(false);
            let n = nm.split('/').next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let title = match &self.label {
                Some(l) => format!("[{l} {nm}] {text}"),
                None => format!("[{nm}] {text}"),
            };
            if self.mode == Mode::Plain {
                let _ = writeln!(self.out, "#{n} {title}");
            }
            self.last_n = n;
            self.step = Some(Step { n, title, start: Instant::now(), cached: false, out: Vec::new() });
            self.draw();
            return;
        }
        if line == " ---> Using cache" {
            if let Some(s) = &mut self.step {
                s.cached = true;
            }
            return;
        }
        // The classic builder's bookkeeping: intermediate containers and layer IDs (which are no images one could
        // use), and its summary, replaced by the final lines.
        if line.starts_with(" ---> ")
            || line.starts_with("Removing intermediate container")
            || line.starts_with("Successfully built")
            || line.starts_with("Successfully tagged")
        {
            return;
        }
        match &mut self.step {
            Some(s) => {
                if self.mode == Mode::Plain {
                    let _ = writeln!(self.out, "#{} {:.3} {line}", s.n, s.start.elapsed().as_secs_f64());
                } else {
                    s.out.push(line.to_string());
                    self.draw();
                }
            }
            None => {
                self.clear();
                let _ = writeln!(self.out, "{line}");
            }
        }
        let _ = self.out.flush();
    }

    /// The final lines: the image and its names.
    fn done(&mut self, image: &str, tags: &[String]) {
        self.end_step(false);
        let n = self.last_n + 1;
        let secs = self.start.elapsed().as_secs_f64();
        match self.mode {
            Mode::Plain => {
                let _ = writeln!(self.out, "#{n} exporting to image");
                let _ = writeln!(self.out, "#{n} writing image {image} done");
                for t in tags {
                    let _ = writeln!(self.out, "#{n} naming to {} done", qualified(t));
                }
                let _ = writeln!(self.out, "#{n} DONE {secs:.1}s");
            }
            Mode::Tty => {
                let _ = writeln!(self.out, " => {:<60} {secs:.1}s", "exporting to image");
                let _ = writeln!(self.out, " => => writing image {image}");
                for t in tags {
                    let _ = writeln!(self.out, " => => naming to {}", qualified(t));
                }
            }
            _ => {}
        }
        let _ = self.out.flush();
    }
}

/// `busybox:1` → `docker.io/library/busybox:1`, as BuildKit names it.
fn qualified(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or("");
    let has_domain = tag.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_domain, tag.contains('/')) {
        (true, _) => tag.to_string(),
        (false, true) => format!("docker.io/{tag}"),
        (false, false) => format!("docker.io/library/{tag}"),
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A build's display; with `tty` a timer redraws the running step every 100 ms until [`View::done`]/[`View::fail`].
pub struct View {
    state: Arc<Mutex<State>>,
    timer: Option<tokio::task::JoinHandle<()>>,
    /// The image the daemon reported (`aux.ID`).
    pub image: Option<String>,
    /// The daemon's error, if the build failed.
    pub failure: Option<String>,
}

impl View {
    /// A display on stderr (classic: stdout), steps labelled `[label n/m]` when `label` is given.
    pub fn new(mode: Mode, label: Option<String>) -> View {
        let out: Box<dyn Write + Send> =
            if mode == Mode::Classic { Box::new(std::io::stdout()) } else { Box::new(std::io::stderr()) };
        View::with_output(mode, label, out)
    }

    fn with_output(mode: Mode, label: Option<String>, out: Box<dyn Write + Send>) -> View {
        let state = Arc::new(Mutex::new(State {
            mode,
            label,
            start: Instant::now(),
            step: None,
            partial: String::new(),
            drawn: 0,
            last_n: 0,
            out,
        }));
        let timer = (mode == Mode::Tty && tokio::runtime::Handle::try_current().is_ok()).then(|| {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    if let Ok(mut s) = state.lock() {
                        s.draw();
                    }
                }
            })
        });
        View { state, timer, image: None, failure: None }
    }

    /// One message of the daemon's stream.
    pub fn message(&mut self, v: &Value) {
        if let Some(e) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            self.failure = Some(e.to_string());
        } else if let Some(id) = v["aux"]["ID"].as_str() {
            self.image = Some(id.to_string());
        } else if let Some(s) = v["stream"].as_str() {
            self.stream(s);
        } else if let Some(s) = v["status"].as_str() {
            let id = v["id"].as_str().map(|i| format!("{i}: ")).unwrap_or_default();
            self.stream(&format!("{id}{s}\n"));
        }
    }

    fn stream(&mut self, s: &str) {
        let Ok(mut st) = self.state.lock() else { return };
        match st.mode {
            Mode::Quiet => {}
            Mode::Classic => {
                let _ = st.out.write_all(s.as_bytes());
                let _ = st.out.flush();
            }
            _ => {
                st.partial.push_str(s);
                while let Some(i) = st.partial.find('\n') {
                    let line: String = st.partial.drain(..=i).collect();
                    st.line(line.trim_end_matches('\n'));
                }
            }
        }
    }

    fn stop_timer(&mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
    }

    /// The build failed: the step ends as an error, with its output.
    pub fn fail(&mut self) {
        self.stop_timer();
        let Ok(mut st) = self.state.lock() else { return };
        if !st.partial.is_empty() {
            let p = std::mem::take(&mut st.partial);
            st.line(&p);
        }
        st.end_step(true);
    }

    /// The build succeeded: the last step ends and the image (`image`) and its `tags` are named.
    pub fn done(&mut self, tags: &[String]) {
        self.stop_timer();
        let image = self.image.clone().unwrap_or_default();
        if let Ok(mut st) = self.state.lock() {
            st.done(&image, tags);
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.stop_timer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(d);
            Ok(d.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn feed(v: &mut View, lines: &[&str]) {
        for l in lines {
            v.message(&serde_json::json!({"stream": format!("{l}\n")}));
        }
    }

    const STREAM: &[&str] = &[
        "Step 1/2 : FROM busybox",
        " ---> 0123456789ab",
        "Step 2/2 : RUN echo hello",
        " ---> Running in fedcba987654",
        "hello",
        "Removing intermediate container fedcba987654",
        " ---> 00aa11bb22cc",
        "Successfully built 00aa11bb22cc",
        "Successfully tagged app:1",
    ];

    #[test]
    fn plain_shows_run_output_live_and_names_the_real_image() {
        let buf = Buf::default();
        let mut v = View::with_output(Mode::Plain, Some("web".into()), Box::new(buf.clone()));
        feed(&mut v, &STREAM[..5]);
        // The RUN output is there before the step ends.
        let so_far = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert!(so_far.contains("#2 [web 2/2] RUN echo hello\n"), "{so_far}");
        assert!(so_far.lines().any(|l| l.starts_with("#2 ") && l.ends_with(" hello")), "{so_far}");
        feed(&mut v, &STREAM[5..]);
        v.message(&serde_json::json!({"aux": {"ID": "sha256:feed"}}));
        v.done(&["app:1".into()]);
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert!(text.contains("#1 DONE") && text.contains("#2 DONE"), "{text}");
        assert!(text.contains("#3 writing image sha256:feed done\n"), "{text}");
        assert!(text.contains("#3 naming to docker.io/library/app:1 done\n"), "{text}");
        // No intermediate ID is shown.
        for id in ["0123456789ab", "fedcba987654", "00aa11bb22cc"] {
            assert!(!text.contains(id), "{id} in {text}");
        }
    }

    #[test]
    fn tty_shows_the_running_step_with_its_output_then_collapses_it() {
        let buf = Buf::default();
        let mut v = View::with_output(Mode::Tty, None, Box::new(buf.clone()));
        feed(&mut v, &STREAM[..5]);
        let live = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert!(live.contains(" => => # hello\n"), "{live}");
        feed(&mut v, &STREAM[5..]);
        v.message(&serde_json::json!({"aux": {"ID": "sha256:feed"}}));
        v.done(&[]);
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        // The finished step's line has its time; the live area was erased (cursor up, clear).
        let tail = text.rsplit("\x1b[J").next().unwrap_or("");
        assert!(tail.contains(" => [2/2] RUN echo hello"), "{text:?}");
        assert!(!tail.contains("# hello"), "{text:?}");
        assert!(text.contains("writing image sha256:feed"), "{text}");
    }

    #[test]
    fn names() {
        assert_eq!(qualified("app"), "docker.io/library/app");
        assert_eq!(qualified("me/app:1"), "docker.io/me/app:1");
        assert_eq!(qualified("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(qualified("reg.io/x/app"), "reg.io/x/app");
    }
}

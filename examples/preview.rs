//! `cargo run --example preview [-- --out DIR]`: how the two mails look, in headless Chromium.
//!
//! The mail templates are HTML that mail clients render, and nothing in the test suite looks at
//! them the way a person does. This sends an enrolment and a key through the real `send` code
//! path to a scratch outbox (the shipped `templates/`, no SMTP), takes the HTML part out of each
//! `.eml`, and screenshots it at 600 px (desktop clients) and 375 px (a phone), with images on
//! (the `cid:` QR replaced by the decoded PNG, saved as a file next to the page) and off (the
//! `src` removed, as a client that blocks images shows it), plus each mail at 375 px in dark
//! mode. Everything lands in `target/preview/` (or `--out DIR`), outside the repository.
//!
//! It also checks, from the layout Chromium computed at each width, that the setup key or key
//! reads in the page exactly as the QR code holds it and that no group of it is broken over two
//! lines, and that the text part carries the same key. It fails (exit 1) when not.
//!
//! Needs `chromium` on the PATH (`apt-get install chromium`), or `CHROMIUM=/path/to/chrome`.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use mail_parser::{MessageParser, MimeHeaders, PartType};

const WIDTHS: [u32; 2] = [600, 375];

fn main() {
    if let Err(e) = run() {
        eprintln!("preview: error: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, String>;

fn run() -> Res<()> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = std::env::args().collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => PathBuf::from(args.get(i + 1).ok_or("--out needs a directory")?),
        None => manifest.join("target/preview"),
    };
    let work = out.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    let config = write_config(&work, &manifest.join("templates"))?;
    let mut failures = Vec::new();
    let mut views = Vec::new();
    for (kind, flag, to) in [
        ("otp", "--otp", "Alice Example <alice.example@example.org>"),
        ("key", "--key", "Bob Example <bob@example.org>"),
    ] {
        let mail = send(&config, &work, flag, to)?;
        write_pages(&out, kind, &mail)?;
        if !squash(&mail.text).contains(&squash(&mail.expected_key)) {
            failures.push(format!("{kind}: the text part lacks the key"));
        }
        for width in WIDTHS {
            for images in [true, false] {
                views.push(View {
                    kind,
                    width,
                    images,
                    expected_key: mail.expected_key.clone(),
                    x: 0,
                });
            }
        }
    }
    let board = Board::lay_out(views);
    let measured = board.measure(&out)?;
    let light = board.shoot(&out, false)?;
    let dark = board.shoot(&out, true)?;
    for (view, layout) in board.views.iter().zip(&measured) {
        let name = view.name();
        println!("{name}: {}", layout.summary);
        if let Some(problem) = layout.problem(&view.expected_key) {
            failures.push(format!("{name}: {problem}"));
        }
        for (shot, suffix) in [(&light, ""), (&dark, "-dark")] {
            // Dark mode only with images on: blocked images look the same in the dark.
            if suffix == "-dark" && !view.images {
                continue;
            }
            let png = out.join(format!("{name}{suffix}.png"));
            let height = layout.height.min(shot.height());
            image::imageops::crop_imm(shot, view.x, 0, view.width, height)
                .to_image()
                .save(&png)
                .map_err(|e| format!("{}: {e}", png.display()))?;
            println!("  {}", png.display());
        }
    }
    if failures.is_empty() {
        println!(
            "the key reads unbroken in every layout; screenshots in {}",
            out.display()
        );
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// A config beside the scratch outbox and store, with the repository's templates.
fn write_config(work: &Path, templates: &Path) -> Res<PathBuf> {
    let dir = work.join("config");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let templates = templates
        .to_str()
        .ok_or("the templates path is not UTF-8")?;
    if templates.contains(['\'', '\n']) {
        return Err("the templates path holds a quote or newline".into());
    }
    let text = format!(
        "[sender]\nfrom = \"Example Admin <admin@example.org>\"\n\n[outbox]\ndir = \"../outbox\"\n\n\
         [store]\npath = \"../securemail.db\"\n\n[templates]\ndir = '{templates}'\n\n\
         [otp]\nissuer = \"Example Corp\"\n"
    );
    let path = dir.join("account.toml");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// One mail as sent, taken apart.
struct Sent {
    html: String,
    text: String,
    png: Vec<u8>,
    cid: String,
    /// The key or setup key as the QR code holds it, grouped as the mail shows it.
    expected_key: String,
}

/// `securemail send` through the library's command line, then the new `.eml` decoded.
fn send(config: &Path, work: &Path, flag: &str, to: &str) -> Res<Sent> {
    let before = outbox_files(work);
    let cli = securemail::Cli::try_parse_from([
        "securemail",
        "--config",
        config.to_str().ok_or("config path")?,
        "send",
        flag,
        "--to",
        to,
    ])
    .map_err(|e| e.to_string())?;
    securemail::run(cli, securemail::cli::Printer::new(false, 0)).map_err(|e| e.to_string())?;
    let eml = outbox_files(work)
        .into_iter()
        .find(|p| !before.contains(p))
        .ok_or("no new mail in the outbox")?;
    let raw = std::fs::read(&eml).map_err(|e| format!("{}: {e}", eml.display()))?;
    decode(&raw)
}

fn outbox_files(work: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(work.join("outbox"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn decode(raw: &[u8]) -> Res<Sent> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or("unparsable mail")?;
    let mut sent = Sent {
        html: String::new(),
        text: String::new(),
        png: Vec::new(),
        cid: String::new(),
        expected_key: String::new(),
    };
    for part in &msg.parts {
        match &part.body {
            PartType::Html(h) => sent.html = h.to_string(),
            PartType::Text(t) => sent.text = t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                sent.png = b.to_vec();
                sent.cid = part
                    .content_id()
                    .ok_or("image without Content-ID")?
                    .trim_matches(['<', '>'])
                    .to_string();
            }
            _ => {}
        }
    }
    let qr = decode_qr(&sent.png)?;
    sent.expected_key = match qr.strip_prefix("otpauth://") {
        // The setup key: the `secret` parameter, grouped by four as the mails show it.
        Some(uri) => {
            let secret = uri
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("secret="))
                .ok_or("otpauth URI without a secret")?;
            let groups: Vec<&str> = secret
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            groups.join(" ")
        }
        None => qr,
    };
    Ok(sent)
}

fn decode_qr(png_bytes: &[u8]) -> Res<String> {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("PNG too large")?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (w, h, stride) = (info.width as usize, info.height as usize, info.line_size);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * stride + x]);
    let grids = img.detect_grids();
    let grid = grids.first().ok_or("no QR code in the PNG")?;
    grid.decode().map(|d| d.1).map_err(|e| e.to_string())
}

/// Writes the page with images on (the `cid:` reference pointing at the PNG beside it) and off
/// (no `src`, as a client that blocks images shows it).
fn write_pages(out: &Path, kind: &str, mail: &Sent) -> Res<()> {
    let write = |name: String, body: &[u8]| -> Res<()> {
        let path = out.join(name);
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))
    };
    let cid = format!("cid:{}", mail.cid);
    if !mail.html.contains(&cid) {
        return Err(format!(
            "{kind}: the HTML does not reference its image by {cid}"
        ));
    }
    let png_name = format!("{kind}-qr.png");
    write(png_name.clone(), &mail.png)?;
    write(
        format!("{kind}-images.html"),
        mail.html.replace(&cid, &png_name).as_bytes(),
    )?;
    let off = mail.html.replace(&format!("src=\"{cid}\""), "");
    write(format!("{kind}-noimages.html"), off.as_bytes())
}

/// One mail at one width, with images on or off.
struct View {
    kind: &'static str,
    width: u32,
    images: bool,
    /// The key or setup key as the QR code holds it, grouped as the mail shows it.
    expected_key: String,
    /// Where it sits on the board.
    x: u32,
}

impl View {
    fn name(&self) -> String {
        let images = if self.images { "images" } else { "noimages" };
        format!("{}-{}-{images}", self.kind, self.width)
    }
}

/// Tallest page the board holds.
const BOARD_HEIGHT: u32 = 2400;
/// Space between views on the board.
const GAP: u32 = 40;

/// All views side by side on one page, one iframe each, so that one Chromium run lays out (or
/// photographs) all of them at their own viewport width: Chromium's window cannot be narrower
/// than 500 px, an iframe can.
struct Board {
    views: Vec<View>,
    width: u32,
}

impl Board {
    fn lay_out(mut views: Vec<View>) -> Board {
        let mut x = 0;
        for v in &mut views {
            v.x = x;
            x += v.width + GAP;
        }
        Board { views, width: x }
    }

    fn page(&self, script: &str) -> String {
        let frames: String = self
            .views
            .iter()
            .map(|v| {
                let file = if v.images { "images" } else { "noimages" };
                format!(
                    "<iframe src=\"{}-{file}.html\" style=\"position:absolute;top:0;left:{}px;\
                     width:{}px;height:{BOARD_HEIGHT}px;border:0;\"></iframe>\n",
                    v.kind, v.x, v.width
                )
            })
            .collect();
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>\
             <body style=\"margin:0;background:#808080;\">\n{frames}{script}</body></html>\n"
        )
    }

    /// Lays out every view and reads back what [`MEASURE_JS`] found in each.
    fn measure(&self, out: &Path) -> Res<Vec<Layout>> {
        let page = out.join("board-measure.html");
        std::fs::write(&page, self.page(&format!("<script>{MEASURE_JS}</script>")))
            .map_err(|e| format!("{}: {e}", page.display()))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = chromium(profile.path())
            .arg(format!("--window-size={},{BOARD_HEIGHT}", self.width))
            .arg("--dump-dom")
            .arg(&page)
            .output()
            .map_err(|e| format!("running chromium: {e}"))?;
        let dom = String::from_utf8_lossy(&output.stdout);
        let json = dom
            .split_once("<pre id=\"preview-check\">")
            .and_then(|(_, rest)| rest.split_once("</pre>"))
            .map(|(j, _)| j.replace("&quot;", "\"").replace("&amp;", "&"))
            .ok_or_else(|| {
                format!(
                    "chromium gave no layout (exit {:?}); is it installed? {}",
                    output.status.code(),
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            })?;
        std::fs::write(out.join("layout.json"), &json).map_err(|e| e.to_string())?;
        let values: Vec<serde_json::Value> =
            serde_json::from_str(&json).map_err(|e| e.to_string())?;
        if values.len() != self.views.len() {
            return Err(format!(
                "{} layouts for {} views",
                values.len(),
                self.views.len()
            ));
        }
        self.views
            .iter()
            .zip(values)
            .map(|(v, value)| Layout::new(v, value))
            .collect()
    }

    /// A screenshot of the whole board, in light or dark mode.
    fn shoot(&self, out: &Path, dark: bool) -> Res<image::RgbaImage> {
        let page = out.join("board.html");
        std::fs::write(&page, self.page("")).map_err(|e| format!("{}: {e}", page.display()))?;
        let png = out.join(if dark { "board-dark.png" } else { "board.png" });
        let _ = std::fs::remove_file(&png);
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut cmd = chromium(profile.path());
        if dark {
            cmd.arg("--force-dark-mode")
                .arg("--blink-settings=preferredColorScheme=0");
        }
        let output = cmd
            .arg(format!("--window-size={},{BOARD_HEIGHT}", self.width))
            .arg("--hide-scrollbars")
            .arg(format!("--screenshot={}", png.display()))
            .arg(&page)
            .output()
            .map_err(|e| format!("running chromium: {e}"))?;
        let shot = image::open(&png).map_err(|e| {
            format!(
                "chromium wrote no screenshot ({e}): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
        Ok(shot.to_rgba8())
    }
}

/// Runs once every frame has loaded: per view, its viewport width, its page height, the key
/// element's text, how many line boxes each group of the key takes and its `white-space`, and
/// whether the key overflows its box or the page. Written into the DOM for `--dump-dom`.
const MEASURE_JS: &str = r#"
window.addEventListener('load', function () {
  var all = Array.prototype.map.call(document.querySelectorAll('iframe'), function (f) {
    var doc = f.contentDocument, win = f.contentWindow;
    var r = {
      width: win.innerWidth,
      height: Math.ceil(Math.max(doc.documentElement.getBoundingClientRect().height,
                                 doc.body.getBoundingClientRect().bottom))
    };
    var key = doc.querySelector('.sm-key');
    if (key) {
      r.text = key.textContent;
      var spans = Array.prototype.filter.call(key.children, function (c) {
        return c.tagName !== 'WBR';
      });
      r.groups = spans.map(function (g) {
        return [g.textContent, g.getClientRects().length, win.getComputedStyle(g).whiteSpace];
      });
      var box = key.parentElement;
      // A table grows to fit what does not wrap: the page then scrolls sideways.
      r.overflow = box.scrollWidth > box.clientWidth ||
        doc.documentElement.scrollWidth > win.innerWidth ||
        key.getBoundingClientRect().right > win.innerWidth;
      r.lines = Math.round(key.getBoundingClientRect().height /
        parseFloat(win.getComputedStyle(box).lineHeight));
    }
    return r;
  });
  var pre = document.createElement('pre');
  pre.id = 'preview-check';
  pre.textContent = JSON.stringify(all);
  document.body.appendChild(pre);
});
"#;

/// What Chromium measured in one view.
struct Layout {
    height: u32,
    summary: String,
    value: serde_json::Value,
}

impl Layout {
    fn new(view: &View, value: serde_json::Value) -> Res<Layout> {
        if value["width"].as_u64() != Some(u64::from(view.width)) {
            return Err(format!("{}: laid out at {}", view.name(), value["width"]));
        }
        let height = value["height"].as_u64().unwrap_or(u64::from(BOARD_HEIGHT));
        let height = u32::try_from(height)
            .unwrap_or(BOARD_HEIGHT)
            .min(BOARD_HEIGHT);
        Ok(Layout {
            height,
            summary: format!(
                "key {:?} on {} line(s), page {height} px high",
                value["text"].as_str().unwrap_or_default(),
                value["lines"]
            ),
            value,
        })
    }

    fn problem(&self, expected: &str) -> Option<String> {
        let v = &self.value;
        let text = v["text"].as_str().unwrap_or_default();
        if text != expected {
            return Some(format!(
                "the key element reads {text:?}, the QR holds {expected:?}"
            ));
        }
        let Some(groups) = v["groups"].as_array().filter(|g| !g.is_empty()) else {
            return Some("no key groups found in the page".into());
        };
        for g in groups {
            if g[1].as_u64() != Some(1) || g[2].as_str() != Some("nowrap") {
                return Some(format!("group {} is laid out as {g}", g[0]));
            }
        }
        if v["overflow"].as_bool() != Some(false) {
            return Some("the key overflows its box or the page scrolls sideways".into());
        }
        if self.height >= BOARD_HEIGHT {
            return Some(format!("the page is taller than {BOARD_HEIGHT} px"));
        }
        None
    }
}

/// Headless Chromium with nothing that reaches the network.
fn chromium(profile: &Path) -> Command {
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
        "--virtual-time-budget=2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Whitespace runs as one space, for comparing text that HTML may reflow.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

//! OUTDIR/index.html: every image with its prediction, overlays, charts, contact sheet and raw
//! maps, a grid of every picture x every attention layer, and live attention: the page's
//! script (web/report/report.js, inlined) shows the value under the cursor on any heat map
//! and computes the attention row of a clicked Non-local pixel, with attention_rows.wgsl
//! (inlined) in WebGPU or in plain JavaScript. Self-contained: inline CSS and scripts, and
//! relative links to the files beside it (each picture's data in a classic script, live.js),
//! so it opens from disk with no server and no network; without scripts it is a static page.

use super::chart::escape;
use super::render::ImageReport;
use crate::kernel;
use std::fmt::Write;
use std::path::PathBuf;

/// The page's script (one module with no imports: module loads are refused over file://).
const REPORT_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/report/report.js"));

const STYLE: &str = "body{font-family:sans-serif;margin:24px;background:#fff;color:#222}\
h1{font-size:22px}h2{font-size:18px;margin:0 0 4px}section{border-top:1px solid #ddd;padding:16px 0}\
.meta{color:#555;margin:0 0 10px}.grid{display:flex;flex-wrap:wrap;gap:14px}\
figure{margin:0;max-width:560px}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:13px;color:#444;margin-top:4px}.pred{font-weight:bold}a{color:#1a5fb4}\
nav button{font-size:14px;margin-right:6px}nav button[aria-pressed=true]{font-weight:bold}\
#glimpse-live-status{color:#1a5fb4;font-size:14px}img.clickable{cursor:crosshair}\
.live canvas{max-width:100%;height:auto;border:1px solid #ccc}.live-caption{font-size:13px;color:#1a5fb4;margin:2px 0}\
#glimpse-hover{position:absolute;background:#222;color:#fff;font-size:12px;padding:2px 6px;border-radius:3px;pointer-events:none}\
#grid-view table{border-collapse:collapse}#grid-view td,#grid-view th{border:1px solid #ddd;padding:4px;font-size:12px;vertical-align:top}\
#grid-view{overflow-x:auto}#grid-view img{height:96px;width:auto}\
body[data-view=pictures] #grid-view{display:none}body[data-view=grid] section.picture{display:none}";

/// The report page for `images` mapped with `model` (its name), with one line of `settings`
/// and the inputs `skipped` with their reasons.
pub fn index(model: &str, settings: &str, images: &[ImageReport], skipped: &[(PathBuf, String)]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>glimpse map: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Attention maps of {}</h1>\n<p class=\"meta\">{} image(s); {}</p>\n\
         <nav><button data-view-button=\"pictures\">Pictures</button>\
         <button data-view-button=\"grid\">Grid: every picture x every attention layer</button></nav>\n\
         <p id=\"glimpse-live-status\">Hovering and live attention rows need JavaScript.</p>\n",
        escape(model),
        escape(model),
        images.len(),
        escape(settings)
    );
    s += &grid(images);
    for image in images {
        let prediction = match &image.prediction {
            Some(p) => {
                format!("predicted <span class=\"pred\">{}</span> ({:.1}%)", escape(&p.label), 100.0 * p.probability)
            }
            None => "no class prediction (the network does not end in class scores)".into(),
        };
        let _ = writeln!(
            s,
            "<section class=\"picture\" id=\"{}\"><h2>{}</h2><p class=\"meta\">{prediction} &middot; \
             <a href=\"{}\">contact sheet</a> &middot; <a href=\"{}\">raw maps (.safetensors)</a></p>\
             <div class=\"grid\">",
            escape(&image.name),
            escape(&image.source),
            escape(&image.sheet),
            escape(&image.maps)
        );
        for f in &image.figures {
            let _ = writeln!(
                s,
                "<figure><a href=\"{0}\"><img src=\"{0}\" data-figure=\"{0}\" alt=\"{1}\" loading=\"lazy\"></a>\
                 <figcaption>{1}</figcaption></figure>",
                escape(&f.path),
                escape(&f.caption)
            );
        }
        s += "</div></section>\n";
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "<section id=\"skipped\"><h2>Skipped ({})</h2><ul>", skipped.len());
        for (path, reason) in skipped {
            let _ = writeln!(s, "<li>{}: {}</li>", escape(&path.display().to_string()), escape(reason));
        }
        s += "</ul></section>\n";
    }
    s += "<div id=\"glimpse-hover\" hidden></div>\n";
    for image in images.iter().filter(|i| !i.live.is_empty()) {
        let _ = writeln!(s, "<script src=\"{}\"></script>", escape(&image.live));
    }
    let _ = writeln!(
        s,
        "<script type=\"text/wgsl\" id=\"glimpse-attention-rows\">\n{}</script>",
        kernel!("attention_rows").source
    );
    let _ = writeln!(s, "<script type=\"module\">\n{REPORT_JS}</script>");
    s + "</body></html>\n"
}

/// Every picture x every attention layer: the layer's first figure in each cell.
fn grid(images: &[ImageReport]) -> String {
    let mut layers: Vec<&str> = Vec::new();
    for f in images.iter().flat_map(|i| &i.figures) {
        if !layers.contains(&f.layer.as_str()) {
            layers.push(&f.layer);
        }
    }
    let mut s =
        String::from("<section id=\"grid-view\"><h2>Every picture x every attention layer</h2><table><tr><th></th>");
    for layer in &layers {
        let _ = write!(s, "<th>{}</th>", escape(if layer.is_empty() { "(block)" } else { layer }));
    }
    s += "</tr>\n";
    for image in images {
        let _ = write!(s, "<tr><th><a href=\"#{}\">{}</a></th>", escape(&image.name), escape(&image.name));
        for layer in &layers {
            match image.figures.iter().find(|f| f.layer == *layer) {
                Some(f) => {
                    let _ = write!(
                        s,
                        "<td><img src=\"{0}\" data-figure=\"{0}\" alt=\"{1}\" title=\"{1}\" loading=\"lazy\"></td>",
                        escape(&f.path),
                        escape(&f.caption)
                    );
                }
                None => s += "<td></td>",
            }
        }
        s += "</tr>\n";
    }
    s + "</table></section>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::render::{Figure, Prediction};
    use std::time::Duration;

    #[test]
    fn index_links_every_file_and_escapes_names() {
        let image = ImageReport {
            name: "a".into(),
            source: "in/<a>.png".into(),
            prediction: Some(Prediction { label: "cat".into(), probability: 0.8765 }),
            figures: vec![Figure { path: "a/l.spatial.png".into(), caption: "l spatial".into(), layer: "l".into() }],
            sheet: "a/sheet.png".into(),
            maps: "a/maps.safetensors".into(),
            photo: "a/photo.png".into(),
            photo_size: [4, 3],
            live: "a/live.js".into(),
            render_time: Duration::ZERO,
            write_time: Duration::ZERO,
        };
        let skipped = [(PathBuf::from("in/b.webp"), "unsupported format (.webp)".to_string())];
        let html = index("demo", "colormap turbo", &[image], &skipped);
        for want in ["src=\"a/l.spatial.png\"", "href=\"a/sheet.png\"", "a/maps.safetensors", "in/&lt;a&gt;.png"] {
            assert!(html.contains(want), "{want} in {html}");
        }
        assert!(html.contains("cat</span> (87.7%)"));
        // The grid has the layer's column; the page loads the picture's data and inlines the kernel.
        assert!(html.contains("<th>l</th>") && html.contains("<script src=\"a/live.js\"></script>"));
        assert!(html.contains("fn main(") && html.contains("window.glimpseReport"));
        assert!(html.contains("Skipped (1)") && html.contains("<li>in/b.webp: unsupported format (.webp)</li>"));
    }
}

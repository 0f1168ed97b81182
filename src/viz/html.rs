//! OUTDIR/index.html: every image with its prediction, overlays, charts, contact sheet and raw
//! maps. Self-contained: inline CSS, relative links to the files beside it, no scripts, so it
//! opens from disk with no server and no network.

use super::chart::escape;
use super::render::ImageReport;
use std::fmt::Write;
use std::path::PathBuf;

const STYLE: &str = "body{font-family:sans-serif;margin:24px;background:#fff;color:#222}\
h1{font-size:22px}h2{font-size:18px;margin:0 0 4px}section{border-top:1px solid #ddd;padding:16px 0}\
.meta{color:#555;margin:0 0 10px}.grid{display:flex;flex-wrap:wrap;gap:14px}\
figure{margin:0;max-width:560px}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:13px;color:#444;margin-top:4px}.pred{font-weight:bold}a{color:#1a5fb4}";

/// The report page for `images` mapped with `model` (its name), with one line of `settings`
/// and the inputs `skipped` with their reasons.
pub fn index(model: &str, settings: &str, images: &[ImageReport], skipped: &[(PathBuf, String)]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>glimpse map: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Attention maps of {}</h1>\n<p class=\"meta\">{} image(s); {}</p>\n",
        escape(model),
        escape(model),
        images.len(),
        escape(settings)
    );
    for image in images {
        let prediction = match &image.prediction {
            Some(p) => {
                format!("predicted <span class=\"pred\">{}</span> ({:.1}%)", escape(&p.label), 100.0 * p.probability)
            }
            None => "no class prediction (the network does not end in class scores)".into(),
        };
        let _ = writeln!(
            s,
            "<section id=\"{}\"><h2>{}</h2><p class=\"meta\">{prediction} &middot; \
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
                "<figure><a href=\"{0}\"><img src=\"{0}\" alt=\"{1}\" loading=\"lazy\"></a>\
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
    s + "</body></html>\n"
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
            figures: vec![Figure { path: "a/l.spatial.png".into(), caption: "l spatial".into() }],
            sheet: "a/sheet.png".into(),
            maps: "a/maps.safetensors".into(),
            render_time: Duration::ZERO,
            write_time: Duration::ZERO,
        };
        let skipped = [(PathBuf::from("in/b.webp"), "unsupported format (.webp)".to_string())];
        let html = index("demo", "colormap turbo", &[image], &skipped);
        for want in ["src=\"a/l.spatial.png\"", "href=\"a/sheet.png\"", "a/maps.safetensors", "in/&lt;a&gt;.png"] {
            assert!(html.contains(want), "{want} in {html}");
        }
        assert!(html.contains("cat</span> (87.7%)"));
        assert!(!html.contains("<script"));
        assert!(html.contains("Skipped (1)") && html.contains("<li>in/b.webp: unsupported format (.webp)</li>"));
    }
}

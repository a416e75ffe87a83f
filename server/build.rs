// Embeds the built site (wasm, JS, CSS, public files) into the binary so that the one file is a
// deployment. Compressible files are also embedded brotli- and gzip-compressed (brotli at its
// best quality in release builds, a fast one in debug builds). A missing site directory
// embeds nothing (the server still renders pages, without hydration) and warns.
use std::io::Write;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("wasm") => "application/wasm",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("html") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let site = std::env::var("TOKENTALLY_SITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../target/site"));
    println!("cargo:rerun-if-env-changed=TOKENTALLY_SITE_DIR");
    println!("cargo:rerun-if-changed={}", site.display());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let mut files = Vec::new();
    walk(&site, &mut files);
    files.sort();
    if files.is_empty() {
        println!(
            "cargo:warning=no site assets in {}; build the wasm first (scripts/build.sh) or the dashboard will not hydrate",
            site.display()
        );
    }
    let brotli_quality = if std::env::var("PROFILE").as_deref() == Ok("release") { 11 } else { 5 };
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    // The site's version: a hash of every file's path and bytes (FNV-1a, 64 bits). Pages name
    // the bundle under it (`/pkg/<version>/...`), so a browser may cache those forever.
    let mut version: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, f) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&site).expect("under site").to_string_lossy().replace('\\', "/");
        for b in rel.bytes().chain([0]).chain(std::fs::read(f).expect("readable asset")) {
            version = (version ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let ct = content_type(f);
        let compressible = !matches!(f.extension().and_then(|e| e.to_str()), Some("png" | "ico"));
        let (gz, br) = if compressible {
            let data = std::fs::read(f).expect("readable asset");
            let gz_path = out_dir.join(format!("asset{i}.gz"));
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&data).expect("gzip");
            std::fs::write(&gz_path, enc.finish().expect("gzip")).expect("write gz");
            let br_path = out_dir.join(format!("asset{i}.br"));
            let mut br = Vec::new();
            let params =
                brotli::enc::BrotliEncoderParams { quality: brotli_quality, lgwin: 24, ..Default::default() };
            brotli::BrotliCompress(&mut &data[..], &mut br, &params).expect("brotli");
            std::fs::write(&br_path, br).expect("write br");
            let embed = |p: &Path| format!("Some(include_bytes!({:?}))", p.display().to_string());
            (embed(&gz_path), embed(&br_path))
        } else {
            ("None".to_string(), "None".to_string())
        };
        code.push_str(&format!(
            "    Asset {{ path: \"/{rel}\", content_type: {ct:?}, body: include_bytes!({:?}), gzip: {gz}, brotli: {br} }},\n",
            f.canonicalize().expect("exists").display().to_string()
        ));
    }
    code.push_str("];\n");
    code.push_str(&format!("pub const ASSET_VERSION: &str = \"{version:016x}\";\n"));
    std::fs::write(out_dir.join("assets.rs"), code).expect("write assets.rs");
}

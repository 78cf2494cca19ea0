//! How answers travel: compressed for clients that ask, never stored when they carry a
//! balance, site files revalidated, and the wasm bundle sent as compressed at build time.

use crate::support::get_text;
use crate::support::TestApp;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
};
use std::io::{Read, Write};

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn pages_are_compressed_for_clients_that_ask_and_never_stored() {
    let app = TestApp::spawn().await;
    let client = TestApp::client();
    let plain = client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(header(&plain, CONTENT_ENCODING), "");
    assert_eq!(header(&plain, CACHE_CONTROL), "no-store");
    let page = plain.text().await.unwrap();
    assert!(page.contains("<html"), "{page}");

    let gzipped = client
        .get(app.url("/login"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&gzipped, CONTENT_ENCODING), "gzip");
    assert_eq!(header(&gzipped, CACHE_CONTROL), "no-store");
    let body = gzipped.bytes().await.unwrap();
    assert!(body.len() < page.len(), "{} of {}", body.len(), page.len());
    let read = String::from_utf8(gunzip(&body)).unwrap();
    assert!(read.contains("<html") && read.contains("Sign in"));

    let brotli = client
        .get(app.url("/login"))
        .header(ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&brotli, CONTENT_ENCODING), "br");

    // API answers carry balances too.
    let api = client
        .get(app.url("/api/billing/credits"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&api, CACHE_CONTROL), "no-store");
}

#[tokio::test]
async fn site_files_are_revalidated_and_the_bundle_is_sent_as_compressed_at_build_time() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let wasm: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
    std::fs::write(pkg.join("tally.wasm"), &wasm).unwrap();
    let css = "body { color: black; }\n".repeat(200);
    std::fs::write(pkg.join("tally.css"), &css).unwrap();
    let root = site.path().to_str().unwrap().to_owned();
    let app = TestApp::spawn_with(|c| c.site_root = root.clone()).await;
    let client = TestApp::client();

    // No compressed copy: the bundle goes as it is, never compressed per request.
    let raw = client
        .get(app.url("/pkg/tally.wasm"))
        .header(ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&raw, CONTENT_ENCODING), "");
    assert_eq!(header(&raw, CONTENT_TYPE), "application/wasm");
    assert_eq!(header(&raw, CACHE_CONTROL), "no-cache");
    let modified = header(&raw, reqwest::header::LAST_MODIFIED);
    assert_eq!(raw.bytes().await.unwrap().len(), wasm.len());

    // Unchanged since the browser's copy: 304, no body.
    let again = client
        .get(app.url("/pkg/tally.wasm"))
        .header(reqwest::header::IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // CSS is compressed per request.
    let style = client
        .get(app.url("/pkg/tally.css"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&style, CONTENT_ENCODING), "gzip");
    assert_eq!(gunzip(&style.bytes().await.unwrap()), css.as_bytes());

    // A copy compressed at build time is what a browser that accepts it gets.
    std::fs::write(pkg.join("tally.wasm.gz"), gzip(&wasm)).unwrap();
    let packed = client
        .get(app.url("/pkg/tally.wasm"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&packed, CONTENT_ENCODING), "gzip");
    assert_eq!(header(&packed, CONTENT_TYPE), "application/wasm");
    let body = packed.bytes().await.unwrap();
    assert!(body.len() < wasm.len() / 10);
    assert_eq!(gunzip(&body), wasm);
}

#[tokio::test]
async fn a_compressed_copy_older_than_its_file_is_removed_at_start() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("tally.wasm.gz"), gzip(b"the old bundle")).unwrap();
    std::fs::write(pkg.join("tally.js.gz"), gzip(b"the current script")).unwrap();
    std::fs::write(pkg.join("tally.wasm"), b"the new bundle").unwrap();
    std::fs::write(pkg.join("tally.js"), b"the current script").unwrap();
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3_600);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3_600);
    let set = |name: &str, at| {
        std::fs::File::options()
            .write(true)
            .open(pkg.join(name))
            .unwrap()
            .set_modified(at)
            .unwrap()
    };
    set("tally.wasm.gz", long_ago);
    set("tally.js.gz", later);
    let root = site.path().to_str().unwrap().to_owned();
    let app = TestApp::spawn_with(|c| c.site_root = root.clone()).await;
    assert!(!pkg.join("tally.wasm.gz").exists(), "the stale copy stayed");
    assert!(pkg.join("tally.js.gz").exists(), "a current copy went");
    let bundle = TestApp::client()
        .get(app.url("/pkg/tally.wasm"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.bytes().await.unwrap().as_ref(), b"the new bundle");
}

/// The app serving `site`, with a hash file there naming `tally.Js1.js`, `tally.Wasm2.wasm` and
/// `tally.Css3.css`.
async fn spawn_with_hash_file(site: &std::path::Path) -> TestApp {
    let hash_file = site.join("hash.txt");
    std::fs::write(&hash_file, "js: Js1\nwasm: Wasm2\ncss: Css3\n").unwrap();
    let root = site.to_str().unwrap().to_owned();
    TestApp::spawn_with(|c| {
        c.site_root = root;
        c.hash_file = hash_file;
    })
    .await
}

/// A site folder whose `pkg/` holds the three files the hash file of `spawn_with_hash_file`
/// names, and that folder.
fn site_with_hashed_bundle() -> (tempfile::TempDir, std::path::PathBuf) {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    for name in ["tally.Js1.js", "tally.Wasm2.wasm", "tally.Css3.css"] {
        std::fs::write(pkg.join(name), format!("/* {name} */")).unwrap();
    }
    (site, pkg)
}

#[tokio::test]
async fn hashed_bundle_files_are_kept_for_a_year_and_pages_name_them() {
    let (site, pkg) = site_with_hashed_bundle();
    // A `<style>` element's text is not HTML: it must reach the browser unescaped (`&amp;`
    // would be read as those five characters).
    std::fs::write(
        pkg.join("tally.Css3.css"),
        r#"main > p::after { content: "&" }"#,
    )
    .unwrap();
    std::fs::write(site.path().join("favicon.svg"), "<svg/>").unwrap();
    let app = spawn_with_hash_file(site.path()).await;
    let client = TestApp::client();

    for name in ["tally.Js1.js", "tally.Wasm2.wasm", "tally.Css3.css"] {
        let file = client
            .get(app.url(&format!("/pkg/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(file.status(), 200, "{name}");
        assert_eq!(
            header(&file, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{name}"
        );
    }
    // A hashed name whose file has gone (a site replaced under the running server) is a 404
    // that no browser keeps.
    std::fs::remove_file(pkg.join("tally.Js1.js")).unwrap();
    let gone = client
        .get(app.url("/pkg/tally.Js1.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert_ne!(
        header(&gone, CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );

    // A file whose name does not change with it is still asked about on each use.
    let icon = client.get(app.url("/favicon.svg")).send().await.unwrap();
    assert_eq!(header(&icon, CACHE_CONTROL), "no-cache");

    // Pages name the hashed files, carry the stylesheet itself, and are never stored.
    let page = client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(header(&page, CACHE_CONTROL), "no-store");
    let policy = header(&page, CONTENT_SECURITY_POLICY);
    let html = page.text().await.unwrap();
    for name in ["/pkg/tally.Js1.js", "/pkg/tally.Wasm2.wasm"] {
        assert!(html.contains(name), "{name} not in {html}");
    }
    let nonce = policy
        .split("style-src 'self' 'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the policy lets the page's own stylesheet in");
    assert!(
        html.contains(&format!(
            r#"<style nonce="{nonce}">main > p::after {{ content: "&" }}</style>"#
        )),
        "the stylesheet inline, with the page's nonce: {html}"
    );
    assert!(!html.contains("/pkg/tally.Css3.css"), "{html}");
    assert!(!html.contains("/pkg/tally.css"), "{html}");
    let refusal = client
        .get(app.url("/portal/ptl_unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal.status(), 404);
    assert!(refusal
        .text()
        .await
        .unwrap()
        .contains("/pkg/tally.Css3.css"));
}

#[tokio::test]
async fn pages_name_the_bundle_read_at_start_without_rereading_the_hash_file() {
    let (site, pkg) = site_with_hashed_bundle();
    let app = spawn_with_hash_file(site.path()).await;
    // Once the server runs, the hash file and the stylesheet are not needed: a page render
    // never reads a file.
    std::fs::remove_file(site.path().join("hash.txt")).unwrap();
    std::fs::remove_file(pkg.join("tally.Css3.css")).unwrap();
    let html = get_text(&TestApp::client(), app.url("/login")).await;
    for name in ["/pkg/tally.Js1.js", "/pkg/tally.Wasm2.wasm"] {
        assert!(html.contains(name), "{name} not in {html}");
    }
    assert!(html.contains("/* tally.Css3.css */</style>"), "{html}");
}

#[tokio::test]
async fn pages_ask_for_the_bundle_only_after_their_first_paint() {
    let app = TestApp::spawn().await;
    let html = get_text(&TestApp::client(), app.url("/login")).await;
    let head = &html[..html.find("</head>").expect("a head")];
    // No preload: the script and the wasm must not compete with the page's HTML and
    // stylesheet before the first paint (Lighthouse counts them toward the largest paint).
    assert!(!head.contains("preload"), "{head}");
    let loader = head
        .split("<script")
        .find(|script| script.contains("tally.wasm"))
        .expect("the bundle's loader");
    assert!(loader.contains(r#"type="module""#), "{loader}");
    assert!(
        loader.contains("requestAnimationFrame(() => setTimeout(load, 0))"),
        "the bundle is loaded after the first frame: {loader}"
    );
}

#[tokio::test]
async fn a_hash_file_naming_files_the_site_lacks_falls_back_to_plain_names() {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("pkg")).unwrap();
    let app = spawn_with_hash_file(site.path()).await;
    let html = get_text(&TestApp::client(), app.url("/login")).await;
    assert!(html.contains("/pkg/tally.css"), "{html}");
    assert!(!html.contains("Css3"), "{html}");
}

#[tokio::test]
async fn every_page_describes_itself_to_search_engines_and_link_previews() {
    let app = TestApp::spawn().await;
    let html = get_text(&TestApp::client(), app.url("/login")).await;
    let head = &html[..html.find("</head>").expect("a head")];
    assert!(
        head.contains(r#"<meta name="description" content="Your workspace"#),
        "{head}"
    );
}

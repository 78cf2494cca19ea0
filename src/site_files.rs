//! The browser bundle's file names. A build (`cargo leptos build`, `hash-files = true`) names
//! the script, the wasm and the stylesheet after their contents (`tally.<hash>.wasm`) and
//! writes the hashes to `hash.txt` beside the server binary. A name that changes whenever its
//! file does can be cached for a year without asking again (`immutable`); a new build is a new
//! name, so no browser keeps an old bundle beside a new page.
//!
//! Without a hash file (a test binary, a build made without cargo-leptos) the plain names are
//! used and the files are revalidated on each use, as before.
//!
//! With one, the stylesheet's text is read here too, once at start, for pages to carry inline
//! (see [`INLINE_STYLE_LIMIT`]): a page render never reads a file.

use app::BundleFiles;
pub use app::OUTPUT_NAME;
use std::path::Path;

/// What can be wrong with a hash file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashFileError {
    #[error("line {line} is not `kind: hash`")]
    Malformed { line: usize },
    #[error("the hash of {kind} is not letters, digits, '-' or '_'")]
    BadHash { kind: String },
    #[error("no hash for {kind}")]
    Missing { kind: &'static str },
}

/// The largest stylesheet pages carry inline (bytes, before compression). Inline, a first visit
/// paints without waiting one more round trip for the stylesheet; every page then carries it
/// (about 3 KB compressed for today's 12 KB), where a linked file is cached once.
pub const INLINE_STYLE_LIMIT: usize = 32 * 1024;

/// The bundle's three files as the pages name them, under `/pkg/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteFiles {
    /// The names, as every page gives them to the browser.
    pub bundle: BundleFiles,
    /// Whether the names carry content hashes (and so may be cached for good).
    pub hashed: bool,
}

impl SiteFiles {
    /// The plain names, revalidated on each use.
    pub fn plain() -> SiteFiles {
        SiteFiles {
            bundle: BundleFiles::plain(),
            hashed: false,
        }
    }

    /// The names a hash file gives (`js: …`, `wasm: …`, `css: …` lines; others are ignored).
    pub fn from_hash_file(text: &str) -> Result<SiteFiles, HashFileError> {
        let (mut js, mut wasm, mut css) = (None, None, None);
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (kind, hash) = line
                .split_once(':')
                .ok_or(HashFileError::Malformed { line: index + 1 })?;
            let (kind, hash) = (kind.trim(), hash.trim());
            let well_formed = !hash.is_empty()
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(HashFileError::BadHash { kind: kind.into() });
            }
            let name = |ext: &str| format!("{OUTPUT_NAME}.{hash}.{ext}");
            match kind {
                "js" => js = Some(name("js")),
                "wasm" => wasm = Some(name("wasm")),
                "css" => css = Some(name("css")),
                _ => {}
            }
        }
        Ok(SiteFiles {
            bundle: BundleFiles::new(
                &js.ok_or(HashFileError::Missing { kind: "js" })?,
                &wasm.ok_or(HashFileError::Missing { kind: "wasm" })?,
                &css.ok_or(HashFileError::Missing { kind: "css" })?,
            ),
            hashed: true,
        })
    }

    /// Reads the hash file at `path` when there is one, and checks that the files it names
    /// are in `site_root/pkg`. A missing, unreadable or stale hash file falls back to the plain
    /// names, saying why in the log.
    pub fn find(path: &Path, site_root: &Path) -> SiteFiles {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return SiteFiles::plain(),
            Err(err) => {
                tracing::warn!(file = %path.display(), error = %err, "the hash file cannot be read; using plain file names");
                return SiteFiles::plain();
            }
        };
        let files = match SiteFiles::from_hash_file(&text) {
            Ok(files) => files,
            Err(err) => {
                tracing::warn!(file = %path.display(), error = %err, "the hash file is not understood; using plain file names");
                return SiteFiles::plain();
            }
        };
        let pkg = site_root.join("pkg");
        if let Some(absent) = files.names().find(|name| !pkg.join(name).is_file()) {
            tracing::warn!(file = %path.display(), absent, "the hash file names a file the site does not have (a stale build?); using plain file names");
            return SiteFiles::plain();
        }
        files.with_inline_style(&pkg)
    }

    /// The same files, with the stylesheet's text for pages to carry inline when it is small
    /// enough (see [`INLINE_STYLE_LIMIT`]); otherwise pages link to it.
    fn with_inline_style(mut self, pkg: &Path) -> SiteFiles {
        let file = pkg.join(self.bundle.css());
        match std::fs::read_to_string(&file) {
            Ok(css) if css.len() <= INLINE_STYLE_LIMIT => {
                self.bundle = self.bundle.with_style(&css);
            }
            Ok(css) => {
                tracing::info!(file = %file.display(), bytes = css.len(), "the stylesheet is too large to carry in every page; pages link to it");
            }
            Err(err) => {
                tracing::warn!(file = %file.display(), error = %err, "the stylesheet cannot be read; pages link to it");
            }
        }
        self
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        [self.bundle.js(), self.bundle.wasm(), self.bundle.css()].into_iter()
    }

    /// The stylesheet's address.
    pub fn css_href(&self) -> String {
        format!("/pkg/{}", self.bundle.css())
    }

    /// Whether the address is one of the hashed bundle's, which may be cached for good.
    pub fn is_immutable(&self, path: &str) -> bool {
        self.hashed
            && path
                .strip_prefix("/pkg/")
                .is_some_and(|name| self.names().any(|file| file == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASHES: &str = "js: AbC-12_x\nwasm: Wz9\ncss: Cs5\nmanifest: ignored\n";

    #[test]
    fn a_hash_file_names_each_file_after_its_hash() {
        let files = SiteFiles::from_hash_file(HASHES).unwrap();
        assert_eq!(files.bundle.js(), "tally.AbC-12_x.js");
        assert_eq!(files.bundle.wasm(), "tally.Wz9.wasm");
        assert_eq!(files.bundle.css(), "tally.Cs5.css");
        assert!(files.hashed);
        assert_eq!(files.css_href(), "/pkg/tally.Cs5.css");
        assert!(files.is_immutable("/pkg/tally.Wz9.wasm"));
        assert!(files.is_immutable("/pkg/tally.AbC-12_x.js"));
        assert!(!files.is_immutable("/pkg/tally.wasm"));
        assert!(!files.is_immutable("/tally.Wz9.wasm"));
        assert!(!files.is_immutable("/favicon.svg"));
    }

    #[test]
    fn plain_names_are_never_immutable() {
        let files = SiteFiles::plain();
        assert_eq!(files.css_href(), "/pkg/tally.css");
        assert!(!files.is_immutable("/pkg/tally.css"));
    }

    #[test]
    fn a_hash_that_could_leave_the_folder_is_refused() {
        assert_eq!(
            SiteFiles::from_hash_file("js: ../../etc\nwasm: a\ncss: b"),
            Err(HashFileError::BadHash { kind: "js".into() })
        );
        assert_eq!(
            SiteFiles::from_hash_file("js a\n"),
            Err(HashFileError::Malformed { line: 1 })
        );
        assert_eq!(
            SiteFiles::from_hash_file("js: a\ncss: b\n"),
            Err(HashFileError::Missing { kind: "wasm" })
        );
    }

    #[test]
    fn a_hash_file_naming_absent_files_falls_back_to_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        let hash_file = dir.path().join("hash.txt");
        std::fs::write(&hash_file, HASHES).unwrap();
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        assert_eq!(SiteFiles::find(&hash_file, dir.path()), SiteFiles::plain());
        for name in ["tally.AbC-12_x.js", "tally.Wz9.wasm", "tally.Cs5.css"] {
            std::fs::write(dir.path().join("pkg").join(name), "x").unwrap();
        }
        let found = SiteFiles::find(&hash_file, dir.path());
        assert!(found.hashed);
        assert_eq!(
            found.bundle.style(),
            Some("x"),
            "pages carry the stylesheet"
        );
        assert_eq!(
            SiteFiles::find(&dir.path().join("absent.txt"), dir.path()),
            SiteFiles::plain()
        );
    }

    #[test]
    fn a_stylesheet_too_large_for_every_page_is_linked_instead() {
        let dir = tempfile::tempdir().unwrap();
        let hash_file = dir.path().join("hash.txt");
        std::fs::write(&hash_file, HASHES).unwrap();
        let pkg = dir.path().join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        for name in ["tally.AbC-12_x.js", "tally.Wz9.wasm"] {
            std::fs::write(pkg.join(name), "x").unwrap();
        }
        std::fs::write(pkg.join("tally.Cs5.css"), "a{}".repeat(INLINE_STYLE_LIMIT)).unwrap();
        let found = SiteFiles::find(&hash_file, dir.path());
        assert!(found.hashed);
        assert_eq!(found.bundle.style(), None);
        assert_eq!(found.css_href(), "/pkg/tally.Cs5.css");
    }
}

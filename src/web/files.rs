//! The static files of `web_root`, served by tower-http's `ServeDir` (types, `HEAD`,
//! `Last-Modified`, ranges, `index.html` for folders, no listings, 405 for other
//! methods), plus the one check it leaves out: a symlink inside the root that points
//! out of it is answered 404, like a path with `..`.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use percent_encoding::percent_decode_str;
use tower_http::services::ServeDir;

use super::WebBody;

/// Serves `req` from `root`.
pub async fn serve<B>(root: &Path, req: Request<B>) -> Response<WebBody> {
    let requested = req.uri().path().to_owned();
    if leaves_root(root, &requested).await {
        return not_found();
    }
    let (parts, _) = req.into_parts();
    let req = Request::from_parts(parts, http_body_util::Empty::<Bytes>::new());
    match ServeDir::new(root)
        .append_index_html_on_directories(true)
        .try_call(req)
        .await
    {
        Ok(resp) => resp.map(Either::Right),
        Err(_) => not_found(),
    }
}

fn not_found() -> Response<WebBody> {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from_static(b"not found\n"))));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// Whether the file `uri_path` names (or its `index.html`) exists but resolves, through
/// a symlink, to somewhere outside `root`. Paths `ServeDir` refuses itself (`..`,
/// absolute, not UTF-8) are left to it.
async fn leaves_root(root: &Path, uri_path: &str) -> bool {
    let Some(relative) = relative_path(uri_path) else {
        return false;
    };
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || {
        let Ok(root) = std::fs::canonicalize(&root) else {
            return true;
        };
        let target = root.join(&relative);
        let resolved = match std::fs::canonicalize(&target) {
            Ok(path) if path.is_dir() => std::fs::canonicalize(path.join("index.html")).ok(),
            Ok(path) => Some(path),
            Err(_) => None,
        };
        // The folder itself must stay inside too (a symlinked folder with an inside
        // index.html is still outside).
        let folder_outside = std::fs::canonicalize(&target).is_ok_and(|p| !p.starts_with(&root));
        folder_outside || resolved.is_some_and(|p| !p.starts_with(&root))
    })
    .await
    .unwrap_or(true)
}

/// The path below the root, as `ServeDir` builds it; `None` where it refuses the path.
fn relative_path(uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(uri_path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let mut relative = PathBuf::new();
    for component in Path::new(&*decoded).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relative_path_is_decoded_and_parent_or_absolute_parts_are_left_to_serve_dir() {
        assert_eq!(relative_path("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(relative_path("/%61/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path("/"), Some(PathBuf::new()));
        assert_eq!(relative_path("/a/%2e%2e/b"), None);
        assert_eq!(relative_path("/..%2fetc"), None);
        assert_eq!(
            relative_path("//etc/passwd"),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(relative_path("/%ff"), None);
    }
}

//! The web page at `GET /`: a single-page app (`web/` at the repository root) embedded in the
//! binary, so there is nothing else to deploy and nothing is fetched from the internet. The
//! page renders everything from the JSON API in the browser; the server only hands out these
//! files.
//!
//! Each asset is served with its `Content-Type`, an `ETag` (revalidation answers 304), gzip
//! when the client accepts it (compressed once, at the best level, on first use; never
//! brotli) and `X-Content-Type-Options: nosniff`. The page itself carries a strict
//! Content-Security-Policy: scripts, styles and fetches only from this server, no inline code,
//! no framing. The one exception is the CDN: the player (hls.js) fetches segments straight from
//! the domains that hold them, so the configured domains' origins are added to `connect-src`
//! and `media-src`, computed from the domain list in force for each request (a reload that adds
//! a domain applies at the next page load).
//!
//! hls.js is vendored at a pinned version (`web/vendor/README.md`) under a file name that
//! carries the version, so it is cached as immutable; the page's own script and style are
//! revalidated on every load (`no-cache`), which costs a 304 on a LAN.

use super::handlers::{ApiError, Reply, accepts_gzip, etag_matches};
use sha1::{Digest, Sha1};
use std::io::Write;
use std::sync::OnceLock;

/// The vendored hls.js build; its version is part of the served file name.
pub const HLS_FILE: &str = "hls-1.7.4.light.min.js";

/// One embedded file.
struct Asset {
    /// The name under `/web/`, or "" for the page itself at `/`.
    name: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    body: &'static [u8],
}

const REVALIDATE: &str = "no-cache";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

const ASSETS: [Asset; 4] = [
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        cache_control: REVALIDATE,
        body: include_bytes!("../../web/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        cache_control: REVALIDATE,
        body: include_bytes!("../../web/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        cache_control: REVALIDATE,
        body: include_bytes!("../../web/app.css"),
    },
    Asset {
        name: HLS_FILE,
        content_type: "text/javascript; charset=utf-8",
        cache_control: IMMUTABLE,
        body: include_bytes!("../../web/vendor/hls.light.min.js"),
    },
];

/// An asset with its gzip form and validator, computed once.
struct Prepared {
    gzip: Vec<u8>,
    hash: String,
}

fn prepared() -> &'static [Prepared] {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    PREPARED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha1::digest(asset.body);
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                // Writing to a Vec cannot fail; an empty body would only cost the gzip form.
                let gzip = encoder
                    .write_all(asset.body)
                    .and_then(|()| encoder.finish())
                    .unwrap_or_default();
                Prepared {
                    gzip,
                    hash: digest[..12].iter().map(|byte| format!("{byte:02x}")).collect(),
                }
            })
            .collect()
    })
}

/// The Content-Security-Policy of the page. `cdn_origins` (e.g. `https://vod.example.net`)
/// may serve media segments and playlists to the player.
pub fn content_security_policy(cdn_origins: &[String]) -> String {
    let mut cdn = String::new();
    for origin in cdn_origins {
        cdn.push(' ');
        cdn.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self' blob:{cdn}; connect-src 'self'{cdn}; worker-src 'self' blob:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// `scheme://host[:port]` of a domain URL, or `None` when it is not a plain http(s) URL whose
/// host is safe to write into a policy (letters, digits, `.`, `-`, `:`, brackets for IPv6).
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if authority.is_empty() || authority.contains('@') || !authority.chars().all(safe) {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

/// What an asset request carries.
pub struct AssetRequest<'a> {
    /// The name under `/web/`, or "" for `/`.
    pub name: &'a str,
    pub accept_encoding: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    /// Origins of the configured CDN domains, for the page's policy.
    pub cdn_origins: &'a [String],
}

pub fn asset(request: &AssetRequest<'_>) -> Result<Reply, ApiError> {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == request.name) else {
        return Err(ApiError::not_found(format!(
            "no file {:?} in the web page; it is served at /",
            request.name
        )));
    };
    let asset = &ASSETS[index];
    let prepared = &prepared()[index];
    let gzip = accepts_gzip(request.accept_encoding) && !prepared.gzip.is_empty();
    let etag = if gzip {
        format!("\"{}-gz\"", prepared.hash)
    } else {
        format!("\"{}\"", prepared.hash)
    };
    let mut headers = vec![
        ("etag", etag.clone()),
        ("vary", "Accept-Encoding".to_string()),
        ("cache-control", asset.cache_control.to_string()),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if asset.name.is_empty() {
        headers.push((
            "content-security-policy",
            content_security_policy(request.cdn_origins),
        ));
        headers.push(("referrer-policy", "no-referrer".to_string()));
        headers.push(("x-frame-options", "DENY".to_string()));
    }
    if etag_matches(request.if_none_match, &etag) {
        return Ok(Reply {
            status: 304,
            content_type: asset.content_type,
            headers,
            body: Vec::new(),
        });
    }
    let body = if gzip {
        headers.push(("content-encoding", "gzip".to_string()));
        prepared.gzip.clone()
    } else {
        asset.body.to_vec()
    };
    Ok(Reply {
        status: 200,
        content_type: asset.content_type,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(name: &str, accept_encoding: Option<&str>, if_none_match: Option<&str>) -> Reply {
        asset(&AssetRequest {
            name,
            accept_encoding,
            if_none_match,
            cdn_origins: &["https://vod.example.net".to_string()],
        })
        .expect("asset")
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn origins_are_scheme_and_host_only() {
        let check = |url: &str, expected: Option<&str>| {
            assert_eq!(origin_of(url).as_deref(), expected, "{url}");
        };
        check(
            "https://d2nvs31859zcd8.cloudfront.net/",
            Some("https://d2nvs31859zcd8.cloudfront.net"),
        );
        check("http://127.0.0.1:4000/prefix/", Some("http://127.0.0.1:4000"));
        check("HTTPS://Vod.Example.NET", Some("https://vod.example.net"));
        check("http://[::1]:8080/", Some("http://[::1]:8080"));
        check("ftp://example.net/", None);
        check("https://a b/", None);
        check("https://x;script-src *;/", None);
        check("https://user@host/", None);
        check("https:///", None);
    }

    #[test]
    fn the_page_has_a_strict_policy_naming_the_cdn() {
        let page = get("", None, None);
        assert_eq!(page.status, 200);
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        let policy = header(&page, "content-security-policy").expect("policy");
        assert!(policy.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"));
        assert!(policy.contains("connect-src 'self' https://vod.example.net;"));
        assert!(policy.contains("media-src 'self' blob: https://vod.example.net;"));
        assert!(!policy.contains("unsafe"));
        assert!(header(&get("app.js", None, None), "content-security-policy").is_none());
    }

    #[test]
    fn gzip_and_etags_are_negotiated() {
        let plain = get("app.js", None, None);
        let gzip = get("app.js", Some("br, gzip"), None);
        assert_eq!(header(&gzip, "content-encoding"), Some("gzip"));
        assert!(header(&plain, "content-encoding").is_none());
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzip.body[..]), &mut unzipped)
            .expect("gunzip");
        assert_eq!(unzipped, plain.body);
        let etag = header(&gzip, "etag").expect("etag").to_string();
        assert_ne!(Some(etag.as_str()), header(&plain, "etag"));
        let again = get("app.js", Some("gzip"), Some(&etag));
        assert_eq!((again.status, again.body.len()), (304, 0));
        assert_eq!(get("app.js", None, Some(&etag)).status, 200);
    }

    #[test]
    fn the_page_links_only_embedded_assets() {
        let html = String::from_utf8_lossy(ASSETS[0].body);
        for asset in &ASSETS[1..] {
            assert!(html.contains(&format!("/web/{}", asset.name)), "{}", asset.name);
        }
        // No inline script or style: the policy would block them.
        assert!(!html.contains("<script>") && !html.contains("style="), "{html}");
        assert!(
            asset(&AssetRequest {
                name: "../Cargo.toml",
                accept_encoding: None,
                if_none_match: None,
                cdn_origins: &[],
            })
            .is_err()
        );
    }
}

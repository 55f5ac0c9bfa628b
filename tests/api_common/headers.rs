//! Header checks the Deltacloud and CIMI header tests share: a document
//! reply (typed, tagged, not cached), a bodiless one, and a HEAD that
//! answers what the GET answers. Each takes the dialect's own check of
//! the headers every reply carries (`stamped`).

use super::Resp;

/// A `status` reply with a body of `ct`: stamped, typed, tagged, not
/// cached.
#[track_caller]
pub fn document(r: &Resp, status: u16, ct: &str, stamped: fn(&Resp)) {
    assert_eq!(r.status, status, "{}", r.text);
    stamped(r);
    assert_eq!(r.header("content-type"), Some(ct));
    let etag = r.header("etag").expect("etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(
        r.header("cache-control"),
        Some("max-age=0, private, must-revalidate")
    );
}

/// A `status` reply without a body: stamped, no type, no tag, and (but
/// for a 204) a zero content length.
#[track_caller]
pub fn bodiless(r: &Resp, status: u16, stamped: fn(&Resp)) {
    assert_eq!(r.status, status, "{}", r.text);
    stamped(r);
    assert!(r.text.is_empty(), "{}", r.text);
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.header("etag"), None);
    if status != 204 {
        assert_eq!(r.header("content-length"), Some("0"));
    }
}

/// HEAD `h` of `path` answered 200 as its GET `g` did, stamped, without a
/// body, with the GET's type, tag, caching and length.
#[track_caller]
pub fn head_like_get(h: &Resp, g: &Resp, path: &str, stamped: fn(&Resp)) {
    assert_eq!(h.status, 200, "{path}");
    stamped(h);
    assert!(h.text.is_empty(), "{path}: {}", h.text);
    for name in ["content-type", "etag", "cache-control", "content-length"] {
        assert_eq!(h.header(name), g.header(name), "{path}: {name}");
    }
}

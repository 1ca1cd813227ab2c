//! Shared by the fuzz targets: turning fuzzer bytes into header maps.
#![allow(dead_code)]

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// One `name` header per line of `data`; lines `HeaderValue` refuses (control characters) are
/// dropped, as hyper would refuse the request before tessera sees it.
pub fn headers(name: &'static str, data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    append(&mut map, name, data);
    map
}

pub fn append(map: &mut HeaderMap, name: &'static str, data: &[u8]) {
    let name = HeaderName::from_static(name);
    for line in data.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            map.append(name.clone(), value);
        }
    }
}

/// Splits `data` at the first `0xff` byte (which no header value or UTF-8 text contains):
/// lets one input carry two independent parts.
pub fn split2(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

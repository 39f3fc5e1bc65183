//! A small `multipart/form-data` reader (RFC 7578), for uploads.

/// One part of a form: its field name, file name (for files) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
    pub(crate) data: &'a [u8],
}

impl Part<'_> {
    /// The part's bytes as text (invalid UTF-8 replaced).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(self.data).into_owned()
    }
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut params = split_params(content_type).into_iter();
    let kind = params.next()?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(|p| param(&p, "boundary"))
        .find(|b| !b.is_empty() && b.len() <= 200)
}

/// The parts of `body`. Err: the body is not a well-formed form with this boundary.
pub(crate) fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, &'static str> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter may follow a preamble.
    let mut at = find_delimiter(body, delimiter, 0).ok_or("no boundary")? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the end of the delimiter line.
        let head_start = find(body, b"\n", at).ok_or("unterminated boundary line")? + 1;
        let (head_end, data_start) = match (
            find(body, b"\r\n\r\n", head_start),
            find(body, b"\n\n", head_start),
        ) {
            (Some(crlf), Some(lf)) if lf < crlf => (lf, lf + 2),
            (Some(crlf), _) => (crlf, crlf + 4),
            (None, Some(lf)) => (lf, lf + 2),
            (None, None) => return Err("a part without the end of its headers"),
        };
        let head = String::from_utf8_lossy(&body[head_start..head_end]);
        let next = find_delimiter(body, delimiter, data_start).ok_or("a part without an end")?;
        let mut data = &body[data_start..next];
        data = data.strip_suffix(b"\n").unwrap_or(data);
        data = data.strip_suffix(b"\r").unwrap_or(data);
        let (name, filename) = disposition(&head).ok_or("a part without a name")?;
        parts.push(Part {
            name,
            filename,
            data,
        });
        at = next + delimiter.len();
    }
}

/// The next delimiter from `from`: at the start of a line, followed by `--` (the last one)
/// or by the end of its line (after optional padding).
fn find_delimiter(body: &[u8], delimiter: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = find(body, delimiter, from)?;
        let after = &body[at + delimiter.len()..];
        let line = after.split(|&b| b == b'\n').next().unwrap_or_default();
        let starts_line = at == 0 || body[at - 1] == b'\n';
        let ends_well = after.starts_with(b"--")
            || (line.len() < after.len() && line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')));
        if starts_line && ends_well {
            return Some(at);
        }
        from = at + 1;
    }
}

/// The first position of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The field name and file name of a part's `Content-Disposition: form-data; name=…`.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let value = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then(|| value.trim().to_owned())
    })?;
    let params = split_params(&value);
    let name = params.iter().find_map(|p| param(p, "name"))?;
    let filename = params.iter().find_map(|p| param(p, "filename"));
    Some((name, filename))
}

/// `key=value` or `key="value"` as `value`, when `p` is the parameter `key`.
fn param(p: &str, key: &str) -> Option<String> {
    let (k, v) = p.split_once('=')?;
    if !k.trim().eq_ignore_ascii_case(key) {
        return None;
    }
    let v = v.trim();
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(quoted) => {
            let mut out = String::with_capacity(quoted.len());
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            Some(out)
        }
        None => Some(v.to_owned()),
    }
}

/// A header value split at the `;` outside quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        let current = out.last_mut();
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(current) = current {
            current.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_quoted_or_not() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b;c\"").as_deref(),
            Some("a b;c")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn fields_and_files() {
        let body = b"preamble\r\n--XY\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\necho\r\n--XY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--XY-not\r\n\x00\x01\r\n--XY--\r\n";
        let parts = parse(body, "XY").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "model");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[0].text(), "echo");
        assert_eq!(parts[1].name, "file");
        assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".wav"));
        assert_eq!(parts[1].data, b"RIFF\r\n--XY-not\r\n\x00\x01");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"--XY",
            b"--XY\r\n",
            b"--XY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            b"--XY\r\nContent-Type: text/plain\r\n\r\nx\r\n--XY--",
            b"--XYjunk\r\n",
            b"--XY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--XYjunk",
        ] {
            assert!(parse(body, "XY").is_err(), "{body:?}");
        }
        assert_eq!(parse(b"--XY--\r\n", "XY"), Ok(Vec::new()));
    }
}

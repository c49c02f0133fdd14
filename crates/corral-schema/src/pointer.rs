//! JSON pointers (RFC 6901) inside `$ref` fragments, and building pointers for errors.
use serde_json::Value;

/// Escape one reference token for use in a JSON pointer (`~` → `~0`, `/` → `~1`).
pub(crate) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `base` + `/` + escaped `token` (built for every property of every schema: one
/// allocation when nothing needs escaping).
pub(crate) fn join(base: &str, token: &str) -> String {
    let mut out = String::with_capacity(base.len() + 1 + token.len());
    out.push_str(base);
    out.push('/');
    if token.contains(['~', '/']) {
        out.push_str(&escape_token(token));
    } else {
        out.push_str(token);
    }
    out
}

/// Decode `%XX` escapes (URI fragments are percent-encoded).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Resolve a URI-fragment JSON pointer such as `/definitions/a~1b` or `/$defs/x%25y`
/// against `root`. The empty pointer is the root.
pub(crate) fn resolve<'a>(root: &'a Value, fragment: &str) -> Option<&'a Value> {
    let fragment = percent_decode(fragment)?;
    if fragment.is_empty() {
        return Some(root);
    }
    let rest = fragment.strip_prefix('/')?;
    let mut node = root;
    for raw in rest.split('/') {
        let token = raw.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Object(map) => map.get(&token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_escaped_tokens() {
        let root = json!({"$defs": {"a/b": 1, "c~d": 2, "e%f": 3, "list": [4, 5]}});
        assert_eq!(resolve(&root, "/$defs/a~1b"), Some(&json!(1)));
        assert_eq!(resolve(&root, "/$defs/c~0d"), Some(&json!(2)));
        assert_eq!(resolve(&root, "/$defs/e%25f"), Some(&json!(3)));
        assert_eq!(resolve(&root, "/$defs/list/1"), Some(&json!(5)));
        assert_eq!(resolve(&root, ""), Some(&root));
        assert_eq!(resolve(&root, "/missing"), None);
        assert_eq!(join("#/properties", "a/b~"), "#/properties/a~1b~0");
    }
}

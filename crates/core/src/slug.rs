//! URL slugs, as Django's `slugify` makes them.

/// Lower-case ASCII letters and digits joined by single hyphens.
///
/// Non-ASCII letters are dropped rather than transliterated, like Django without
/// `allow_unicode`.
pub fn slugify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_dash = false;
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(ch.to_ascii_lowercase());
        } else if ch.is_whitespace() || ch == '-' || ch == '_' {
            pending_dash = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn makes_django_like_slugs() {
        assert_eq!(slugify("Jazz Night: Live!"), "jazz-night-live");
        assert_eq!(slugify("  A -- B__c "), "a-b-c");
        assert_eq!(slugify("Café del Mar"), "caf-del-mar");
        assert_eq!(slugify("!!!"), "");
    }
}

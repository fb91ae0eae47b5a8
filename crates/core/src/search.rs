//! Turning a visitor's search box text into a safe PostgreSQL `tsquery`.
//!
//! Raw input must never reach `to_tsquery` (its syntax errors would be 500s), so the text is
//! reduced to alphanumeric words, each matched as a prefix (`jaz` finds "jazz"), all required.

/// Longest query kept, in words; more words only make the query slower, not better.
pub const MAX_WORDS: usize = 8;

/// Builds a prefix `tsquery` such as `jazz:* & night:*`, or `None` if nothing searchable remains.
pub fn prefix_tsquery(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    if words.is_empty() {
        None
    } else {
        Some(words.join(" & "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tsquery_syntax() {
        assert_eq!(
            prefix_tsquery("Jazz  night!").as_deref(),
            Some("jazz:* & night:*")
        );
        assert_eq!(
            prefix_tsquery("a&b|!c:*(d)").as_deref(),
            Some("a:* & b:* & c:* & d:*")
        );
        assert_eq!(prefix_tsquery("  ' & | !"), None);
    }

    #[test]
    fn caps_word_count() {
        let q = prefix_tsquery("a b c d e f g h i j k").unwrap_or_default();
        assert_eq!(q.matches(":*").count(), MAX_WORDS);
    }
}

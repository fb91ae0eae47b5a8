//! Decoding of Stripe's form bodies (`a[b][0][c]=v`) into a JSON tree, and typed accessors that
//! report problems as Stripe-shaped [`ApiError`]s naming the parameter in bracket notation.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A decoded request body: nested objects and arrays whose leaves are strings.
#[derive(Debug, Clone, Default)]
pub struct Form(Value);

impl Form {
    /// Decodes an `application/x-www-form-urlencoded` body with bracket notation.
    ///
    /// `a[0][b]=1&a[1][b]=2` becomes `{"a":[{"b":"1"},{"b":"2"}]}`; `x[]=1&x[]=2` appends.
    pub fn parse(body: &[u8]) -> Self {
        let mut root = Value::Object(Map::new());
        for (key, value) in form_urlencoded::parse(body) {
            let segments = split_key(&key);
            insert(&mut root, &segments, value.into_owned());
        }
        Self(arrayify(root))
    }

    /// The decoded tree.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// A view of a nested field, e.g. `form.at("line_items")`.
    pub fn field(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.0, |v, seg| match v {
            Value::Object(m) => m.get(*seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    }

    /// An optional string parameter; empty strings count as absent (Stripe treats them as unset).
    pub fn str(&self, path: &[&str]) -> Option<String> {
        match self.field(path) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// An optional URL parameter (`http://` or `https://`), refused with Stripe's
    /// "Not a valid URL" otherwise.
    pub fn url(&self, path: &[&str]) -> Result<Option<String>, ApiError> {
        match self.str(path) {
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                Err(ApiError::invalid(&param(path), "Not a valid URL"))
            }
            other => Ok(other),
        }
    }

    /// A required string parameter.
    pub fn required_str(&self, path: &[&str]) -> Result<String, ApiError> {
        match self.field(path) {
            Some(Value::String(s)) if s.is_empty() => Err(ApiError::invalid_empty(&param(path))),
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(ApiError::missing(&param(path))),
        }
    }

    /// An optional integer parameter.
    pub fn int(&self, path: &[&str]) -> Result<Option<i64>, ApiError> {
        match self.str(path) {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid_integer(&param(path), &s)),
        }
    }

    /// An optional boolean parameter (`true`/`false`).
    pub fn bool(&self, path: &[&str]) -> Result<Option<bool>, ApiError> {
        match self.str(path).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(
                &param(path),
                format!("Invalid boolean: {other}"),
            )),
        }
    }

    /// A `metadata[...]`-style map of strings; non-string values are ignored.
    pub fn string_map(&self, path: &[&str]) -> serde_json::Map<String, Value> {
        match self.field(path) {
            Some(Value::Object(m)) => m
                .iter()
                .filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Map::new(),
        }
    }

    /// The `expand[]` parameter: field names whose ids should be replaced by objects.
    pub fn expand(&self) -> Vec<String> {
        match self.field(&["expand"]) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// Number of elements of an array parameter (0 if absent or not an array).
    pub fn len(&self, path: &[&str]) -> usize {
        match self.field(path) {
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        }
    }
}

/// Renders a path the way Stripe names parameters: `line_items[0][quantity]`.
pub fn param(path: &[&str]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        if i == 0 {
            out.push_str(seg);
        } else {
            out.push('[');
            out.push_str(seg);
            out.push(']');
        }
    }
    out
}

/// `a[b][0]` -> `["a", "b", "0"]`; `x[]` -> `["x", ""]` (append).
fn split_key(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else {
        return vec![key.to_owned()];
    };
    let mut segs = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        match stripped.find(']') {
            Some(close) => {
                segs.push(stripped[..close].to_owned());
                rest = &stripped[close + 1..];
            }
            None => {
                // Unbalanced bracket: keep the remainder literally, like a lenient parser would.
                segs.push(stripped.to_owned());
                rest = "";
            }
        }
    }
    segs
}

fn insert(node: &mut Value, segments: &[String], value: String) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if !node.is_object() {
        // A key used both as a leaf and as a container: the container wins.
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else {
        return;
    };
    // `[]` appends: use the next free numeric index so arrayify() turns it into an array.
    let key = if first.is_empty() {
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        map.insert(key, Value::String(value));
    } else {
        let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
        insert(child, rest, value);
    }
}

/// Turns objects whose keys are all integers into arrays ordered by index.
fn arrayify(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let all_numeric = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if all_numeric {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, arrayify(v))))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrayify(v))).collect())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_bracket_notation() {
        let f = Form::parse(
            b"mode=payment&line_items[0][price_data][currency]=usd&line_items[1][quantity]=2\
              &line_items[0][quantity]=1&metadata[order_id]=o%201&expand[]=a&expand[]=b",
        );
        assert_eq!(
            f.value(),
            &json!({
                "mode": "payment",
                "line_items": [
                    {"price_data": {"currency": "usd"}, "quantity": "1"},
                    {"quantity": "2"}
                ],
                "metadata": {"order_id": "o 1"},
                "expand": ["a", "b"]
            })
        );
        assert_eq!(f.int(&["line_items", "1", "quantity"]).unwrap(), Some(2));
        assert_eq!(f.len(&["line_items"]), 2);
        assert_eq!(
            param(&["line_items", "0", "quantity"]),
            "line_items[0][quantity]"
        );
    }

    #[test]
    fn typed_accessors_report_stripe_errors() {
        let f = Form::parse(b"a=&n=x");
        assert_eq!(
            f.required_str(&["a"]).unwrap_err().code,
            Some("parameter_invalid_empty")
        );
        assert_eq!(
            f.required_str(&["b"]).unwrap_err().code,
            Some("parameter_missing")
        );
        assert_eq!(
            f.int(&["n"]).unwrap_err().code,
            Some("parameter_invalid_integer")
        );
        assert_eq!(f.int(&["zz"]).unwrap(), None);
    }
}

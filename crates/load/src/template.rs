//! `{{ ... }}` templates used in paths, headers, bodies and `set` values.
//!
//! Templates are compiled once when the plan is loaded, so a request only walks a small list of
//! parts. Supported expressions:
//!
//! | expression                 | value                                                    |
//! |----------------------------|----------------------------------------------------------|
//! | `{{name}}`, `{{show.id}}`, `{{show/id}}` | a per-user variable, optionally walked by field/index or JSON pointer |
//! | `{{pick shows /id}}`       | a random element of the array variable `shows`, then `/id` |
//! | `{{random.email}}`, `{{random.name}}`, `{{random.first_name}}`, `{{random.last_name}}` | fake data |
//! | `{{random.uuid}}`, `{{random.int 1 5}}`, `{{random.float 0 1}}`, `{{random.choice a b c}}` | random values |
//! | `{{now_iso}}`, `{{now_iso +2d}}`, `{{today}}`, `{{now_unix}}`, `{{now_ms}}` | clock values (UTC) |
//! | `{{user_id}}`, `{{iteration}}` | the simulated user's number and its task counter |
//!
//! A template that refers to a variable the user does not have fails with
//! [`RenderError::Missing`]; the engine then skips the step and counts it (the Locust idiom
//! `if hasattr(self, 'shows')`).

use std::collections::HashMap;
use std::sync::Arc;

use fake::Fake;
use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::Value;

/// Per-user state a template can read.
pub struct Ctx<'a> {
    /// The user's variables (plan vars, `--var`s, captures, `set`s); a large captured value
    /// (a whole response) is shared with every user that captured the same body.
    pub vars: &'a Vars,
    /// The user's random number generator.
    pub rng: &'a mut SmallRng,
    /// 0-based number of the simulated user.
    pub user_id: u64,
    /// How many tasks this user has started.
    pub iteration: u64,
}

/// A user's variables.
pub type Vars = HashMap<String, Arc<Value>>;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template refers to a variable this user does not have (yet).
    #[error("variable `{0}` is not set")]
    Missing(String),
    /// `pick` was applied to something that is not a non-empty array.
    #[error("`pick {0}`: not a non-empty array")]
    NotArray(String),
    /// The rendered request is not valid HTTP (a URL or header a value made invalid).
    #[error("{0}")]
    Invalid(String),
}

/// A compiled template: literal text interleaved with expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Var { name: String, pointer: String },
    Pick { name: String, pointer: String },
    Email,
    Name,
    FirstName,
    LastName,
    Uuid,
    Int(i64, i64),
    Float(f64, f64),
    Choice(Vec<String>),
    NowIso(i64),
    Today,
    NowUnix,
    NowMs,
    UserId,
    Iteration,
}

impl Template {
    /// Compiles `source`; the error message says which expression is wrong.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in template `{source}`"))?;
            parts.push(Part::Expr(parse_expr(after[..close].trim())?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    /// The text as written in the plan.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template has no expressions at all.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Names of the variables this template reads (for validation).
    pub fn refs(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(Expr::Var { name, .. } | Expr::Pick { name, .. }) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Renders to a string (strings are inserted raw, other JSON values as JSON text).
    pub fn render(&self, ctx: &mut Ctx<'_>) -> Result<String, RenderError> {
        // Fast path: most paths are literal.
        if let [Part::Lit(s)] = self.parts.as_slice() {
            return Ok(s.clone());
        }
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => match eval(e, ctx)? {
                    Value::String(s) => out.push_str(&s),
                    Value::Null => {}
                    v => out.push_str(&v.to_string()),
                },
            }
        }
        Ok(out)
    }

    /// Renders to a JSON value: a template that is exactly one expression keeps the value's type
    /// (so `"{{show_id}}"` in a body stays a number), anything else becomes a string.
    pub fn render_value(&self, ctx: &mut Ctx<'_>) -> Result<Value, RenderError> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => eval(e, ctx),
            _ => self.render(ctx).map(Value::String),
        }
    }
}

/// A JSON body whose strings may contain templates.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    /// A value with no templates, sent as is.
    Const(Value),
    /// A templated string.
    Str(Template),
    /// An array whose items may be templated.
    Array(Vec<BodyTemplate>),
    /// An object whose values may be templated (keys are literal).
    Object(Vec<(String, BodyTemplate)>),
}

impl BodyTemplate {
    /// Compiles every string inside `value`.
    pub fn compile(value: &Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => {
                let t = Template::parse(s)?;
                if t.is_literal() {
                    BodyTemplate::Const(value.clone())
                } else {
                    BodyTemplate::Str(t)
                }
            }
            Value::Array(items) => BodyTemplate::Array(
                items
                    .iter()
                    .map(BodyTemplate::compile)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => BodyTemplate::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), BodyTemplate::compile(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => BodyTemplate::Const(other.clone()),
        })
    }

    /// Variables read anywhere in the body.
    pub fn refs(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            BodyTemplate::Const(_) => {}
            BodyTemplate::Str(t) => out.extend(t.refs()),
            BodyTemplate::Array(items) => items.iter().for_each(|i| i.collect_refs(out)),
            BodyTemplate::Object(fields) => fields.iter().for_each(|(_, v)| v.collect_refs(out)),
        }
    }

    /// Renders the body to a JSON value.
    pub fn render(&self, ctx: &mut Ctx<'_>) -> Result<Value, RenderError> {
        Ok(match self {
            BodyTemplate::Const(v) => v.clone(),
            BodyTemplate::Str(t) => t.render_value(ctx)?,
            BodyTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(ctx))
                    .collect::<Result<_, _>>()?,
            ),
            BodyTemplate::Object(fields) => {
                let mut map = serde_json::Map::with_capacity(fields.len());
                for (k, v) in fields {
                    map.insert(k.clone(), v.render(ctx)?);
                }
                Value::Object(map)
            }
        })
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits `show.tickets.0.id` or `show/tickets/0/id` into (`show`, `/tickets/0/id`).
fn parse_var_ref(s: &str) -> Result<(String, String), String> {
    let split = s.find(['.', '/']).unwrap_or(s.len());
    let (name, rest) = s.split_at(split);
    if !is_ident(name) {
        return Err(format!("`{s}` is not a variable name"));
    }
    let pointer = if let Some(dotted) = rest.strip_prefix('.') {
        dotted.split('.').fold(String::new(), |mut acc, seg| {
            acc.push('/');
            acc.push_str(seg);
            acc
        })
    } else {
        rest.to_string()
    };
    Ok((name.to_string(), pointer))
}

fn parse_num<T: std::str::FromStr>(expr: &str, s: Option<&str>) -> Result<T, String> {
    s.and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("`{expr}` needs two numbers, e.g. `random.int 1 5`"))
}

/// Parses `+2d`, `-30m`, `+3600s`, `+1h` into seconds.
fn parse_offset(s: &str) -> Result<i64, String> {
    let bad = || format!("bad time offset `{s}` (use e.g. +2d, -1h, +30m, +10s)");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let unit = rest.chars().last().ok_or_else(bad)?;
    let n: i64 = rest[..rest.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let mult = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    Ok(sign * n * mult)
}

fn parse_expr(expr: &str) -> Result<Expr, String> {
    let mut words = expr.split_whitespace();
    let head = words.next().ok_or("empty `{{ }}` expression")?;
    let args: Vec<&str> = words.collect();
    let no_args = |e: Expr| {
        if args.is_empty() {
            Ok(e)
        } else {
            Err(format!("`{head}` takes no arguments"))
        }
    };
    match head {
        "random.email" => no_args(Expr::Email),
        "random.name" => no_args(Expr::Name),
        "random.first_name" => no_args(Expr::FirstName),
        "random.last_name" => no_args(Expr::LastName),
        "random.uuid" => no_args(Expr::Uuid),
        "random.int" => {
            let (a, b) = (
                parse_num(expr, args.first().copied())?,
                parse_num(expr, args.get(1).copied())?,
            );
            if a > b {
                return Err(format!("`{expr}`: min is greater than max"));
            }
            Ok(Expr::Int(a, b))
        }
        "random.float" => {
            let (a, b) = (
                parse_num(expr, args.first().copied())?,
                parse_num(expr, args.get(1).copied())?,
            );
            if a > b {
                return Err(format!("`{expr}`: min is greater than max"));
            }
            Ok(Expr::Float(a, b))
        }
        "random.choice" if !args.is_empty() => {
            Ok(Expr::Choice(args.iter().map(|s| s.to_string()).collect()))
        }
        "random.choice" => Err("`random.choice` needs at least one word".to_string()),
        "now_iso" => match args.as_slice() {
            [] => Ok(Expr::NowIso(0)),
            [off] => Ok(Expr::NowIso(parse_offset(off)?)),
            _ => Err(format!("`{expr}`: at most one offset")),
        },
        "today" => no_args(Expr::Today),
        "now_unix" => no_args(Expr::NowUnix),
        "now_ms" => no_args(Expr::NowMs),
        "user_id" => no_args(Expr::UserId),
        "iteration" => no_args(Expr::Iteration),
        "pick" => match args.as_slice() {
            [var] | [var, _] => {
                let (name, mut pointer) = parse_var_ref(var)?;
                if !pointer.is_empty() {
                    return Err(format!("`{expr}`: write `pick VAR /pointer`"));
                }
                if let Some(p) = args.get(1) {
                    if !p.starts_with('/') {
                        return Err(format!("`{expr}`: the pointer must start with `/`"));
                    }
                    pointer = p.to_string();
                }
                Ok(Expr::Pick { name, pointer })
            }
            _ => Err(format!("`{expr}`: write `pick VAR` or `pick VAR /pointer`")),
        },
        h if h.starts_with("random.") => Err(format!(
            "unknown generator `{h}` (random.email, random.name, random.first_name, \
             random.last_name, random.uuid, random.int A B, random.float A B, random.choice ...)"
        )),
        _ => {
            if !args.is_empty() {
                return Err(format!("unknown function `{head}`"));
            }
            let (name, pointer) = parse_var_ref(head)?;
            Ok(Expr::Var { name, pointer })
        }
    }
}

fn lookup<'v>(vars: &'v Vars, name: &str, pointer: &str) -> Result<&'v Value, RenderError> {
    vars.get(name)
        .and_then(|v| v.pointer(pointer))
        .filter(|v| !v.is_null())
        .ok_or_else(|| RenderError::Missing(name.to_string()))
}

fn eval(e: &Expr, ctx: &mut Ctx<'_>) -> Result<Value, RenderError> {
    Ok(match e {
        Expr::Var { name, pointer } => lookup(ctx.vars, name, pointer)?.clone(),
        Expr::Pick { name, pointer } => {
            let arr = match lookup(ctx.vars, name, "")? {
                Value::Array(a) if !a.is_empty() => a,
                _ => return Err(RenderError::NotArray(name.clone())),
            };
            let item = &arr[ctx.rng.random_range(0..arr.len())];
            item.pointer(pointer)
                .filter(|v| !v.is_null())
                .cloned()
                .ok_or_else(|| RenderError::Missing(format!("{name}{pointer}")))?
        }
        Expr::Email => Value::String(fake::faker::internet::en::SafeEmail().fake()),
        Expr::Name => Value::String(fake::faker::name::en::Name().fake()),
        Expr::FirstName => Value::String(fake::faker::name::en::FirstName().fake()),
        Expr::LastName => Value::String(fake::faker::name::en::LastName().fake()),
        Expr::Uuid => {
            // A v4 UUID from the user's own RNG (no global lock on the hot path).
            let bits: u128 = ctx.rng.random();
            let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
            let h = format!("{bits:032x}");
            Value::String(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        Expr::Int(a, b) => Value::from(ctx.rng.random_range(*a..=*b)),
        Expr::Float(a, b) => Value::from(if a == b {
            *a
        } else {
            ctx.rng.random_range(*a..*b)
        }),
        Expr::Choice(words) => Value::String(words[ctx.rng.random_range(0..words.len())].clone()),
        Expr::NowIso(off) => {
            let t = chrono::Utc::now() + chrono::Duration::seconds(*off);
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }
        Expr::Today => Value::String(chrono::Utc::now().format("%Y-%m-%d").to_string()),
        Expr::NowUnix => Value::from(chrono::Utc::now().timestamp()),
        Expr::NowMs => Value::from(chrono::Utc::now().timestamp_millis()),
        Expr::UserId => Value::from(ctx.user_id),
        Expr::Iteration => Value::from(ctx.iteration),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    fn render(t: &str, vars: &Vars) -> Result<String, RenderError> {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut ctx = Ctx {
            vars,
            rng: &mut rng,
            user_id: 3,
            iteration: 0,
        };
        Template::parse(t).unwrap().render(&mut ctx)
    }

    #[test]
    fn variables_pointers_and_pick() {
        let mut vars = HashMap::new();
        vars.insert(
            "show".into(),
            Arc::new(json!({"id": 7, "tickets": [{"id": 9}]})),
        );
        vars.insert("shows".into(), Arc::new(json!([{"id": 1}, {"id": 1}])));
        assert_eq!(render("/s/{{show.id}}/", &vars).unwrap(), "/s/7/");
        assert_eq!(render("{{show/tickets/0/id}}", &vars).unwrap(), "9");
        assert_eq!(render("{{show.tickets.0.id}}", &vars).unwrap(), "9");
        assert_eq!(render("{{ pick shows /id }}", &vars).unwrap(), "1");
        assert_eq!(render("u{{user_id}}", &vars).unwrap(), "u3");
        assert_eq!(
            render("{{nope}}", &vars),
            Err(RenderError::Missing("nope".into()))
        );
    }

    #[test]
    fn generators_render() {
        let vars = HashMap::new();
        assert!(render("{{random.email}}", &vars).unwrap().contains('@'));
        let n: i64 = render("{{random.int 1 5}}", &vars)
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=5).contains(&n));
        assert_eq!(render("{{random.uuid}}", &vars).unwrap().len(), 36);
        assert!(render("{{now_iso +1d}}", &vars).unwrap().ends_with('Z'));
    }

    #[test]
    fn bad_templates_are_rejected() {
        assert!(Template::parse("{{random.int 5}}").is_err());
        assert!(Template::parse("{{random.nope}}").is_err());
        assert!(Template::parse("/x/{{id").is_err());
        assert!(Template::parse("{{9bad}}").is_err());
    }

    #[test]
    fn body_keeps_types_of_single_expressions() {
        let mut vars = HashMap::new();
        vars.insert("id".into(), Arc::new(json!(5)));
        let body =
            BodyTemplate::compile(&json!({"show_id": "{{id}}", "label": "show {{id}}", "n": 2}))
                .unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut ctx = Ctx {
            vars: &vars,
            rng: &mut rng,
            user_id: 0,
            iteration: 0,
        };
        assert_eq!(
            body.render(&mut ctx).unwrap(),
            json!({"show_id": 5, "label": "show 5", "n": 2})
        );
        assert_eq!(body.refs(), vec!["id", "id"]);
    }
}

//! Collection queries: `$filter` and `$first`/`$last`.
//!
//! `$filter` is a conjunction of comparisons `attr=value` or `attr!=value`
//! joined by `and` (any case); a value is bare (up to the next blank) or
//! quoted with `'` or `"` (a doubled quote inside stands for one). It is
//! compared with the text of a top-level scalar attribute (`name`,
//! `state`, `capacity`, `bootable`...); a resource without the attribute
//! matches no `=` and every `!=`. `$first` and `$last` are 1-based and
//! inclusive, applied after the filter. Malformed queries are 400.

use super::doc::Doc;
use super::views::{to_doc, Resource};
use crate::error::{ApiError, Result};
use crate::http::Request;

/// Longest `$filter` accepted.
const MAX_FILTER: usize = 4096;

/// One comparison.
#[derive(Debug, PartialEq)]
struct Cmp {
    attr: String,
    negate: bool,
    value: String,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// Parses a `$filter` expression.
fn parse_filter(s: &str) -> Result<Vec<Cmp>> {
    if s.len() > MAX_FILTER {
        return Err(bad(format!("$filter is longer than {MAX_FILTER} bytes.")));
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        let start = i;
        while chars
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            i += 1;
        }
        if start == i {
            return Err(bad(format!(
                "Malformed $filter '{}': expected an attribute name.",
                s.escape_debug()
            )));
        }
        let attr: String = chars[start..i].iter().collect();
        skip_ws(&mut i);
        let negate = match (chars.get(i), chars.get(i + 1)) {
            (Some('='), _) => {
                i += 1;
                false
            }
            (Some('!'), Some('=')) => {
                i += 2;
                true
            }
            _ => {
                return Err(bad(format!(
                    "Malformed $filter '{}': expected = or != after {attr}.",
                    s.escape_debug()
                )))
            }
        };
        skip_ws(&mut i);
        let mut value = String::new();
        match chars.get(i) {
            Some(&q) if q == '\'' || q == '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(bad(format!(
                                "Malformed $filter '{}': unterminated string.",
                                s.escape_debug()
                            )))
                        }
                        Some(&c) if c == q => {
                            if chars.get(i + 1) == Some(&q) {
                                value.push(q);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while let Some(&c) = chars.get(i) {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    i += 1;
                }
                if value.is_empty() {
                    return Err(bad(format!(
                        "Malformed $filter '{}': expected a value after {attr}.",
                        s.escape_debug()
                    )));
                }
            }
        }
        out.push(Cmp {
            attr,
            negate,
            value,
        });
        skip_ws(&mut i);
        if i >= chars.len() {
            return Ok(out);
        }
        let word: String = chars[i..].iter().take(3).collect();
        let after = chars.get(i + 3);
        if word.eq_ignore_ascii_case("and") && after.is_some_and(|c| c.is_whitespace()) {
            i += 3;
        } else {
            return Err(bad(format!(
                "Malformed $filter '{}': expected 'and' between comparisons.",
                s.escape_debug()
            )));
        }
    }
}

fn position(req: &Request, name: &str) -> Result<Option<usize>> {
    match req.query_param(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            _ => Err(bad(format!(
                "{name} must be a positive integer (1-based), got '{}'.",
                v.escape_debug()
            ))),
        },
    }
}

/// The query of one collection request.
#[derive(Debug)]
pub(crate) struct Query {
    filter: Vec<Vec<Cmp>>,
    first: Option<usize>,
    last: Option<usize>,
}

impl Query {
    /// Reads `$filter` (each occurrence must hold), `$first` and `$last`.
    pub fn of(req: &Request) -> Result<Query> {
        let filter = req
            .query
            .iter()
            .filter(|(k, _)| k == "$filter")
            .map(|(_, v)| parse_filter(v))
            .collect::<Result<Vec<_>>>()?;
        Ok(Query {
            filter,
            first: position(req, "$first")?,
            last: position(req, "$last")?,
        })
    }

    /// True when `d` passes the filter.
    fn matches(&self, d: &Doc) -> bool {
        self.filter.iter().flatten().all(|c| {
            let v = d.scalar(&c.attr);
            (v.as_deref() == Some(c.value.as_str())) != c.negate
        })
    }

    /// The filtered resources (compared on their document tree) and
    /// their number before `$first`/`$last`.
    pub fn apply<T: Resource>(&self, all: Vec<T>) -> (Vec<T>, usize) {
        self.apply_by(all, to_doc)
    }

    fn apply_by<T>(&self, all: Vec<T>, doc: impl Fn(&T) -> Doc) -> (Vec<T>, usize) {
        let hits: Vec<T> = all.into_iter().filter(|d| self.matches(&doc(d))).collect();
        let count = hits.len();
        let first = self.first.unwrap_or(1);
        let last = self.last.unwrap_or(usize::MAX);
        let page = hits
            .into_iter()
            .enumerate()
            .filter(|(i, _)| {
                let pos = i + 1;
                pos >= first && pos <= last
            })
            .map(|(_, d)| d)
            .collect();
        (page, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cimi::doc::Node;

    fn cmp(attr: &str, negate: bool, value: &str) -> Cmp {
        Cmp {
            attr: attr.into(),
            negate,
            value: value.into(),
        }
    }

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter("name='a b'").unwrap(),
            vec![cmp("name", false, "a b")]
        );
        assert_eq!(
            parse_filter(" name = x AND state!=\"A\"\"B\" and n='it''s'").unwrap(),
            vec![
                cmp("name", false, "x"),
                cmp("state", true, "A\"B"),
                cmp("n", false, "it's")
            ]
        );
        for bad in [
            "",
            "=x",
            "name",
            "name=",
            "name='x",
            "a=1 or b=2",
            "a=1 andb=2",
            "a<1",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages() {
        let docs: Vec<Doc> = (1..=5u64)
            .map(|i| {
                Doc::resource("Volume")
                    .with("n", Node::Int(i))
                    .with("odd", Node::Bool(i % 2 == 1))
            })
            .collect();
        let q = Query {
            filter: vec![parse_filter("odd=true").unwrap()],
            first: Some(2),
            last: Some(3),
        };
        let (page, count) = q.apply_by(docs.clone(), Doc::clone);
        assert_eq!(count, 3);
        let ns: Vec<_> = page.iter().map(|d| d.scalar("n").unwrap()).collect();
        assert_eq!(ns, ["3", "5"]);
        let q = Query {
            filter: vec![],
            first: Some(4),
            last: Some(2),
        };
        assert!(q.apply_by(docs, Doc::clone).0.is_empty());
    }
}

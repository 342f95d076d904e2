//! Docker's `--format` for lists (`ps`, `images`, `history`, ...): the default table, `table TEMPLATE` (a header
//! row from the columns' names, then rows, aligned by the tab writer), `json` (one object per line), or a plain
//! template (one line per row, no alignment).

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::table::TabWriter;
use crate::template::Template;

/// A list's columns: each row field and its header (`("ID", "CONTAINER ID")`).
pub type Headers = &'static [(&'static str, &'static str)];

/// Docker's `--format` preprocessing: `\t` and `\n` escapes become real ones, surrounding spaces go.
fn prepare(t: &str) -> String {
    t.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n")
}

/// Row fields that docker's formatters offer as methods taking an argument (`{{.Label "k"}}`): they are not
/// part of a row's JSON.
const METHOD_FIELDS: &[&str] = &["Label"];

/// The header of a column made by a method call: docker names it after the argument (`.Label "com.x.tier"` →
/// `tier`).
fn method_header(_name: &str, args: &[Value]) -> Option<Value> {
    let arg = args.first().and_then(Value::as_str)?;
    let last = arg.rsplit('.').next().unwrap_or(arg);
    Some(Value::String(last.replace(['-', '_'], " ")))
}

/// Parses a template, with docker's message for a bad one.
pub fn parse(text: &str) -> Result<Template> {
    Template::parse(text).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))
}

/// Renders `rows` as `format` says (`""` or `table` → `default_table`).
pub fn render(format: &str, default_table: &str, headers: Headers, rows: &[Value]) -> Result<String> {
    let format = if format.is_empty() || format == "table" { default_table } else { format };
    if format == "json" {
        let mut out = String::new();
        for r in rows {
            let mut r = r.clone();
            if let Some(m) = r.as_object_mut() {
                for f in METHOD_FIELDS {
                    m.remove(*f);
                }
            }
            // Go's json.Marshal escapes HTML characters (they can only occur inside strings).
            let text = serde_json::to_string(&r).context("encode row")?;
            out.push_str(&text.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"));
            out.push('\n');
        }
        return Ok(out);
    }
    if let Some(rest) = format.strip_prefix("table") {
        let tmpl = parse(&prepare(rest))?;
        let header =
            Value::Object(headers.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect());
        let mut tw = TabWriter::docker();
        tw.push(&tmpl.execute_with(&header, &method_header)?);
        tw.push("\n");
        for r in rows {
            tw.push(&tmpl.execute(r)?);
            tw.push("\n");
        }
        return Ok(tw.finish());
    }
    let tmpl = parse(&prepare(format))?;
    let mut out = String::new();
    for r in rows {
        out.push_str(&tmpl.execute(r)?);
        out.push('\n');
    }
    Ok(out)
}

/// The order of Go's `sortorder.NaturalLess`, which docker sorts lists with: runs of digits compare by value
/// (fewer leading zeros first on a tie), digits sort before other bytes, the rest bytewise.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da { Ordering::Less } else { Ordering::Greater };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let ord = (i - nz_a).cmp(&(j - nz_b)).then_with(|| a[nz_a..i].cmp(&b[nz_b..j])).then(nz_a.cmp(&nz_b));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn natural_order() {
        let mut v = vec!["net10", "bridge", "net9", "Host", "net09", "a", "80/tcp -> x", "9/tcp -> x", ""];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["", "9/tcp -> x", "80/tcp -> x", "Host", "a", "bridge", "net9", "net09", "net10"]);
        assert_eq!(natural_cmp("abc", "abc"), std::cmp::Ordering::Equal);
        assert_eq!(natural_cmp("ab", "abc"), std::cmp::Ordering::Less);
    }

    const H: Headers = &[("ID", "CONTAINER ID"), ("Names", "NAMES")];

    #[test]
    fn table_plain_and_json() {
        let rows = vec![json!({"ID": "0123456789ab", "Names": "web"}), json!({"ID": "ba9876543210", "Names": "db"})];
        let t = render("", "table {{.ID}}\t{{.Names}}", H, &rows).expect("table");
        assert_eq!(t, "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   db\n");
        assert_eq!(render("{{.Names}}", "", H, &rows).expect("plain"), "web\ndb\n");
        assert_eq!(
            render("{{.ID}}\\t{{.Names}}", "", H, &rows).expect("escapes"),
            "0123456789ab\tweb\nba9876543210\tdb\n"
        );
        assert_eq!(render("json", "", H, &rows[..1]).expect("json"), "{\"ID\":\"0123456789ab\",\"Names\":\"web\"}\n");
        assert_eq!(render("table {{.Names}}", "", H, &[]).expect("empty"), "NAMES\n");
        let labelled = vec![json!({"Names": "web", "Label": {"com.x.tier": "front"}})];
        assert_eq!(
            render("table {{.Names}}\t{{.Label \"com.x.tier\"}}", "", H, &labelled).expect("label"),
            "NAMES     tier\nweb       front\n"
        );
        assert_eq!(render("json", "", H, &labelled).expect("json"), "{\"Names\":\"web\"}\n");
        assert_eq!(
            render("json", "", H, &[json!({"Tag": "<none>"})]).expect("json"),
            "{\"Tag\":\"\\u003cnone\\u003e\"}\n"
        );
        assert!(render("{{.Names", "", H, &rows).expect_err("bad").to_string().starts_with("template parsing error"));
    }
}

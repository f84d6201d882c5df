//! `-o human|json|yaml`. JSON and YAML print what the server returned; human output
//! shows chosen fields as a table (lists) or aligned key/value lines (one object).

use clap::ValueEnum;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub(crate) enum Format {
    #[default]
    Human,
    Json,
    Yaml,
}

/// A column: header and JSON pointer into each object.
pub(crate) type Col = (&'static str, &'static str);

fn cell(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub(crate) fn print_list(fmt: Format, items: &[Value], cols: &[Col]) -> anyhow::Result<()> {
    match fmt {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&items)?),
        Format::Yaml => out!("{}", serde_yaml_ng::to_string(&items)?),
        Format::Human => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| cols.iter().map(|(_, p)| cell(i, p)).collect())
                .collect();
            let widths: Vec<usize> = cols
                .iter()
                .enumerate()
                .map(|(c, (h, _))| {
                    rows.iter()
                        .map(|r| r[c].chars().count())
                        .chain([h.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |vals: Vec<String>| {
                let s: Vec<String> = vals
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v:<w$}"))
                    .collect();
                outln!("  {}", s.join(" | ").trim_end());
            };
            line(cols.iter().map(|(h, _)| h.to_string()).collect());
            outln!(
                "  {}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("-+-")
            );
            for r in rows {
                line(r);
            }
        }
    }
    Ok(())
}

pub(crate) fn print_object(fmt: Format, v: &Value, cols: &[Col]) -> anyhow::Result<()> {
    match fmt {
        Format::Json => outln!("{}", serde_json::to_string_pretty(v)?),
        Format::Yaml => out!("{}", serde_yaml_ng::to_string(v)?),
        Format::Human => {
            let w = cols.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
            for (h, p) in cols {
                outln!("  {h:<w$}  {}", cell(v, p));
            }
        }
    }
    Ok(())
}

pub(crate) fn print_done(fmt: Format, message: &str, v: &Value) -> anyhow::Result<()> {
    match fmt {
        Format::Human => outln!("{message}"),
        _ => print_object(fmt, v, &[])?,
    }
    Ok(())
}

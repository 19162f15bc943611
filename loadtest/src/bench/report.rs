//! How a benchmark shows its figures: an aligned table on stdout and a JSON file with the same
//! rows plus the machine they were measured on.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Prints `rows` (label, value) under `title` and writes them to `target/loadtest/{name}.json`.
pub fn publish(name: &str, title: &str, rows: &[(&str, Value)]) -> anyhow::Result<PathBuf> {
    println!("\n{title}");
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in rows {
        let shown = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        println!("  {label:<width$}  {shown}");
    }
    let mut document = serde_json::Map::new();
    document.insert("benchmark".into(), json!(name));
    document.insert("machine".into(), machine());
    for (label, value) in rows {
        document.insert((*label).to_owned(), value.clone());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/loadtest");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&Value::Object(document))?,
    )?;
    println!("  (written to {})", path.display());
    Ok(path)
}

/// CPU model and count, memory: enough to compare figures from different machines.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_gib": memory_gib,
    })
}

/// `value` rounded to `digits` decimals, as a JSON number.
pub fn rounded(value: f64, digits: i32) -> Value {
    let scale = 10f64.powi(digits);
    json!((value * scale).round() / scale)
}

//! End-to-end: runs the `corral-bench` binary on small MaskBench files with the peer
//! engines, with the Llama 3 tokenizer vendored at `tests/data/tokenizers/llama-3` (or
//! `$CORRAL_BENCH_TOKENIZER`); a missing tokenizer fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn tokenizer() -> PathBuf {
    let path = std::env::var_os("CORRAL_BENCH_TOKENIZER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/tokenizers/llama-3/tokenizer.json")
        });
    assert!(path.is_file(), "tokenizer not found: {}", path.display());
    path
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corral-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    dir
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn maskbench_end_to_end() {
    let tok = tokenizer();
    let dir = scratch("e2e");
    let data = dir.join("data");
    // A simple schema (property order b, a kept): valid, invalid (wrong type), invalid
    // (missing required property).
    write(
        &data,
        "a_simple.json",
        r#"{"schema": {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "string"}},
             "required": ["b", "a"], "additionalProperties": false},
           "tests": [{"data": {"b": 1, "a": "é"}, "valid": true},
                     {"data": {"b": "x", "a": "y"}, "valid": false},
                     {"data": {"b": 1}, "valid": false}]}"#,
    );
    write(&data, "b_not_json.json", "{\"schema\": ");
    write(&data, "c_no_tests.json", r#"{"schema": {}}"#);
    write(&data, "ignored.txt", "not a schema");
    let out = dir.join("results.jsonl");
    let summary = dir.join("summary.json");
    let res = Command::new(env!("CARGO_BIN_EXE_corral-bench"))
        .args([
            "maskbench",
            "--quiet",
            "--engine",
            "llguidance",
            "--engine",
            "outlines",
        ])
        .arg("--tokenizer")
        .arg(&tok)
        .arg("--out")
        .arg(&out)
        .arg("--summary")
        .arg(&summary)
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(stdout.contains("TBM µs"), "{stdout}");

    let rows = rows(&out);
    assert_eq!(rows.len(), 6, "3 files × 2 engines");
    for r in &rows {
        let file = r["file"].as_str().unwrap();
        let status = r["status"].as_str().unwrap();
        if file.ends_with("a_simple.json") {
            assert_eq!(status, "passing", "{r}");
            let tests = r["tests"].as_array().unwrap();
            assert_eq!(tests.len(), 3);
            // A valid instance ends in an accepting state; invalid ones are rejected.
            assert_eq!(tests[0]["accepting"], Value::Bool(true), "{r}");
            for t in tests {
                assert_eq!(t["outcome"], "ok", "{r}");
            }
            assert!(r["ttfm_us"].as_f64().unwrap() > 0.0);
            assert_eq!(
                r["num_tokens"].as_u64().unwrap() as usize,
                r["tbm_us"].as_array().unwrap().len()
            );
        } else {
            assert_eq!(status, "file_error", "{r}");
            assert!(r["error"].as_str().is_some());
        }
    }

    let summary_json: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let engines = summary_json.as_array().unwrap();
    assert_eq!(engines.len(), 2);
    for s in engines {
        assert_eq!(s["schemas"], 3);
        assert_eq!(s["passing"], 1);
        assert_eq!(s["file_error"], 2);
        assert!(s["tokens"].as_u64().unwrap() > 0);
        for key in ["p50", "p75", "p90", "p99", "max"] {
            assert!(s["tbm_us"][key].as_f64().is_some());
            assert!(s["ttfm_us"][key].as_f64().is_some());
        }
    }

    // The table can be recomputed from the results file.
    let again = dir.join("again.json");
    let res = Command::new(env!("CARGO_BIN_EXE_corral-bench"))
        .arg("summarize")
        .arg(&out)
        .arg("--summary")
        .arg(&again)
        .output()
        .unwrap();
    assert!(res.status.success());
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(
        again,
        serde_json::from_str::<Value>(&std::fs::read_to_string(&summary).unwrap()).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn timeout_kills_the_worker_and_the_run_goes_on() {
    let tok = tokenizer();
    let dir = scratch("timeout");
    let data = dir.join("data");
    // outlines-core needs seconds to index "any value" schemas over a 128k vocabulary.
    write(
        &data,
        "a_slow.json",
        r#"{"schema": {"type": "object", "properties": {"x": {}, "y": {}}, "required": ["x", "y"]},
           "tests": [{"data": {"x": 1, "y": 2}, "valid": true}]}"#,
    );
    write(
        &data,
        "b_fast.json",
        r#"{"schema": {"type": "integer"}, "tests": [{"data": 12, "valid": true}, {"data": "12", "valid": false}]}"#,
    );
    let out = dir.join("results.jsonl");
    let res = Command::new(env!("CARGO_BIN_EXE_corral-bench"))
        .args([
            "maskbench",
            "--quiet",
            "--engine",
            "outlines",
            "--timeout-s",
            "2",
        ])
        .arg("--tokenizer")
        .arg(&tok)
        .arg("--out")
        .arg(&out)
        .arg("--summary")
        .arg(dir.join("summary.json"))
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let rows = rows(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "timeout", "{}", rows[0]);
    assert_eq!(rows[1]["status"], "passing", "{}", rows[1]);
    let _ = std::fs::remove_dir_all(&dir);
}

//! JSON-Schema-Test-Suite (draft 2020-12): every instance of every schema corral
//! compiles is accepted iff it is valid. Accepting an invalid instance fails the test;
//! rejecting a valid one is reported (the engine may generate a subset).
mod common;

use std::fs;

use corral_index::Index;
use corral_schema::{compile, Options};
use serde_json::Value;

#[derive(Default, Debug)]
struct Row {
    groups: usize,
    compiled: usize,
    unsupported: usize,
    correct: usize,
    wrongly_accepted: usize,
    wrongly_rejected: usize,
}

fn suite_files() -> Vec<std::path::PathBuf> {
    let root = common::data("json-schema-test-suite/draft2020-12");
    let mut files = Vec::new();
    for dir in [
        root.clone(),
        root.join("optional"),
        root.join("optional/format"),
    ] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn json_schema_test_suite() {
    suite(&Options::default());
}

/// Members in any order: the same suite, 0 invalid instances accepted, and fewer valid
/// ones rejected than in `properties` order.
#[test]
fn json_schema_test_suite_any_property_order() {
    let in_order = suite(&Options::default());
    let any_order = suite(&Options {
        any_property_order: true,
        ..Options::default()
    });
    assert!(
        any_order.wrongly_rejected < in_order.wrongly_rejected,
        "in order {in_order:?}, any order {any_order:?}"
    );
}

/// Runs the suite with `options`: prints a table, fails on any invalid instance
/// accepted; returns the totals.
fn suite(options: &Options) -> Row {
    let root = common::data("json-schema-test-suite/draft2020-12");
    let vocab = common::byte_vocabulary();
    let mut total = Row::default();
    let mut failures = Vec::new();
    println!(
        "{:<48} {:>6} {:>8} {:>11} {:>8} {:>8} {:>8}",
        "file", "groups", "compiled", "unsupported", "correct", "wr.acc", "wr.rej"
    );
    for path in suite_files() {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let groups: Vec<Value> = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let mut row = Row::default();
        for group in &groups {
            row.groups += 1;
            let schema = &group["schema"];
            if std::env::var("CORRAL_TRACE").is_ok() {
                eprintln!("{name}: {}", group["description"]);
            }
            // optional/format presumes format *assertion*; formats corral treats as
            // annotations (reported in `ignored`) are skipped there.
            let asserts_formats = name.starts_with("optional/format");
            let index = compile(schema, options)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    if asserts_formats && c.ignored.iter().any(|i| i.contains("/format:")) {
                        return Err("format annotation".to_string());
                    }
                    Index::from_program(c.program, &vocab).map_err(|e| e.to_string())
                });
            let index = match index {
                Ok(index) => index,
                Err(_) => {
                    row.unsupported += 1;
                    continue;
                }
            };
            row.compiled += 1;
            for test in group["tests"].as_array().unwrap() {
                let data = &test["data"];
                let valid = test["valid"].as_bool().unwrap();
                let texts = [
                    serde_json::to_string(data).unwrap(),
                    common::python_dumps(data),
                ];
                let accepted: Vec<bool> =
                    texts.iter().map(|t| common::accepts(&index, t)).collect();
                if accepted.iter().any(|&a| a) && !valid {
                    row.wrongly_accepted += 1;
                    failures.push(format!(
                        "{name}: `{}` / `{}` accepted {}",
                        group["description"], test["description"], texts[0]
                    ));
                } else if accepted.iter().any(|&a| !a) && valid {
                    row.wrongly_rejected += 1;
                } else {
                    row.correct += 1;
                }
            }
        }
        println!(
            "{:<48} {:>6} {:>8} {:>11} {:>8} {:>8} {:>8}",
            name,
            row.groups,
            row.compiled,
            row.unsupported,
            row.correct,
            row.wrongly_accepted,
            row.wrongly_rejected
        );
        total.groups += row.groups;
        total.compiled += row.compiled;
        total.unsupported += row.unsupported;
        total.correct += row.correct;
        total.wrongly_accepted += row.wrongly_accepted;
        total.wrongly_rejected += row.wrongly_rejected;
    }
    println!(
        "{:<48} {:>6} {:>8} {:>11} {:>8} {:>8} {:>8}",
        "TOTAL",
        total.groups,
        total.compiled,
        total.unsupported,
        total.correct,
        total.wrongly_accepted,
        total.wrongly_rejected
    );
    assert!(
        total.compiled > total.groups / 2,
        "fewer than half of the schemas compiled"
    );
    assert!(
        failures.is_empty(),
        "invalid instances accepted:\n{}",
        failures.join("\n")
    );
    total
}

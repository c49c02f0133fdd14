//! Where time-to-first-mask goes: schema → automaton (program), program → index (lazy DFA),
//! first mask.
//!
//! `cargo run --release --example ttfm_breakdown -- <tokenizer.json> <maskbench files>…`
use std::time::{Duration, Instant};

use corral_index::{Index, Vocabulary};
use corral_schema::{compile, Options, Whitespace};

/// (whitespace option, program states, schema → program, program → index, first mask)
type Row = (&'static str, usize, Duration, Duration, Duration);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let vocab = Vocabulary::from_tokenizer_file(args.next().ok_or("tokenizer.json path")?)?;
    let mut rows: Vec<Row> = Vec::new();
    for path in args {
        let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        for (label, options) in [
            ("pretty", Options::default()),
            (
                "compact",
                Options {
                    whitespace: Whitespace::Compact,
                    ..Options::default()
                },
            ),
        ] {
            let t0 = Instant::now();
            let Ok(compiled) = compile(&file["schema"], &options) else {
                continue;
            };
            let t1 = Instant::now();
            let states = compiled.program.states().len();
            let Ok(index) = Index::from_program(compiled.program, &vocab) else {
                continue;
            };
            let t2 = Instant::now();
            if index.mask(index.start()).is_err() {
                continue;
            }
            let t3 = Instant::now();
            if std::env::var_os("VERBOSE").is_some() {
                println!(
                    "{label} {path}: {states} states, compile {:?}, index {:?}, first mask {:?}",
                    t1 - t0,
                    t2 - t1,
                    t3 - t2
                );
            }
            rows.push((label, states, t1 - t0, t2 - t1, t3 - t2));
        }
    }
    for label in ["pretty", "compact"] {
        let mut r: Vec<_> = rows.iter().filter(|r| r.0 == label).collect();
        if r.is_empty() {
            continue;
        }
        r.sort_by_key(|r| r.2 + r.3 + r.4);
        let med = r[r.len() / 2];
        let sum = |f: &dyn Fn(&&Row) -> f64| r.iter().map(f).sum::<f64>() / r.len() as f64;
        println!(
            "{label}: n={} median total: {} program states, compile {:?}, index {:?}, first mask {:?}; mean compile {:.2}ms index {:.2}ms mask {:.2}ms",
            r.len(), med.1, med.2, med.3, med.4,
            sum(&|r| r.2.as_secs_f64() * 1e3), sum(&|r| r.3.as_secs_f64() * 1e3), sum(&|r| r.4.as_secs_f64() * 1e3)
        );
    }
    Ok(())
}

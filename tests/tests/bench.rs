//! The benchmark in the dev profile with tiny sizes: every figure is present and positive in its
//! JSON, and the README's Measuring table lists exactly the benchmark's figures, in its order.
//! No timing is asserted (performance is read from the release benchmark's figures).
use std::process::Command;

use shelfguard_e2e::bench::FIGURES;

/// The first cell of each row of the table between the bench markers in README.md.
fn readme_labels() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- bench:begin -->")
        .expect("README.md has a <!-- bench:begin --> marker");
    let end = readme
        .find("<!-- bench:end -->")
        .expect("README.md has a <!-- bench:end --> marker");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| figure |"))
        .map(|l| {
            l.split(" | ").next().unwrap_or_default()[2..]
                .trim()
                .to_owned()
        })
        .collect()
}

#[test]
fn readme_table_has_the_benchmarks_figures() {
    let labels: Vec<String> = FIGURES.iter().map(|f| f.1.to_owned()).collect();
    assert_eq!(
        readme_labels(),
        labels,
        "README's Measuring table (between the bench markers) must list the benchmark's figures: \
         paste the table of a release run of `cargo run --release -p shelfguard-e2e --bin bench`"
    );
}

#[test]
fn every_figure_is_present_and_positive() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--keys", "2000", "--runs", "2", "--lines", "200", "--echo", "200", "--json",
        ])
        .output()
        .expect("running bench");
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench prints JSON");
    let figures = json["figures"].as_array().expect("figures");
    assert_eq!(figures.len(), FIGURES.len());
    for (f, (key, label, unit, of)) in figures.iter().zip(FIGURES) {
        assert_eq!(f["key"], *key);
        assert_eq!(f["label"], *label);
        assert_eq!(f["unit"], *unit);
        let v = f["value"].as_f64();
        assert!(
            v.is_some_and(|v| v.is_finite() && v > 0.0),
            "{key} is missing or not positive: {}",
            f["value"]
        );
        if of.is_some() {
            let r = f["vs_raw"]["ratio"].as_f64();
            assert!(
                r.is_some_and(|r| r.is_finite() && r > 0.0),
                "{key}: no ratio to {of:?}"
            );
        }
    }
    assert_eq!(json["profile"], "dev");
    assert!(json["machine"].as_str().is_some_and(|m| !m.is_empty()));
}

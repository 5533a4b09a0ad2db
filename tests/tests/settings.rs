//! The README's settings tables against the binaries' `--help`: every environment variable each
//! binary accepts is listed, with the default it really has, and the README lists nothing else.
//!
//! Tables (found by the line before them, in README.md):
//! - "Shared ones:": `| variable | default | meaning |`, settings of several services;
//! - "Service policies": `| service | variable | default | meaning |`, a row wins over the
//!   shared table for its service;
//! - "floor-channel settings": `| variable | default | meaning |`, wins for floor-channel;
//! - "Command 1 settings": `| variable | default | meaning |`, what command 1 has on its own or
//!   with another default than the services; every other setting of command 1 must be in the
//!   tables above with command 1's default.
use std::collections::{BTreeMap, BTreeSet};

use clap::{Command, CommandFactory, Parser};

/// Not flags: read by the logging set-up, listed in the shared table all the same.
const NOT_FLAGS: &[&str] = &["RUST_LOG", "LOG_FORMAT"];

/// Settings without a clap default whose README default describes how it is derived.
const DERIVED: &[(&str, &str)] = &[("KAFKA_GROUP_ID", "TOPIC_PREFIX +")];

/// The simulator binary's settings, as its `main.rs` declares them.
#[derive(Parser)]
#[command(name = "simulator")]
struct Simulator {
    #[command(flatten)]
    kafka: shelfguard_runtime::KafkaArgs,
    #[command(flatten)]
    sim: shelfguard_simulator::SimConfig,
}

#[derive(Debug, Clone)]
struct Setting {
    /// As the README writes it: the value, `(empty)` or `(unset)`.
    default: String,
    secret: bool,
}

/// Visible settings of a command by environment variable (each must appear once).
fn settings(cmd: &Command) -> BTreeMap<String, Setting> {
    let mut out = BTreeMap::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(env) = arg.get_env() else { continue };
        let env = env.to_string_lossy().into_owned();
        let values: Vec<_> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = match values.as_slice() {
            [] => "(unset)".to_owned(),
            [v] if v.is_empty() => "(empty)".to_owned(),
            _ => values.join(","),
        };
        let setting = Setting {
            default,
            secret: arg.is_hide_env_values_set(),
        };
        assert!(
            out.insert(env.clone(), setting).is_none(),
            "{}: {env} is defined by two visible arguments",
            cmd.get_name()
        );
    }
    out
}

fn binaries() -> Vec<(&'static str, Command)> {
    vec![
        ("inventory", shelfguard_inventory::Config::command()),
        (
            "stockout-detector",
            shelfguard_stockout_detector::Config::command(),
        ),
        (
            "offer-generator",
            shelfguard_offer_generator::Config::command(),
        ),
        ("floor-channel", shelfguard_floor_channel::Config::command()),
        ("simulator", Simulator::command()),
    ]
}

/// One row of a README table.
#[derive(Debug, Clone)]
struct Row {
    envs: Vec<String>,
    default: String,
    meaning: String,
    line: usize,
}

fn cells(line: &str) -> Vec<String> {
    // `\|` inside a cell is a literal bar.
    line.trim()
        .trim_matches('|')
        .replace("\\|", "\u{0}")
        .split('|')
        .map(|c| c.trim().replace('\u{0}', "|"))
        .collect()
}

/// The backticked upper-case names of a cell (`LOG_FORMAT=json` counts as `LOG_FORMAT`).
fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(|n| n.split('=').next().unwrap_or_default().to_owned())
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

/// The table after the first line starting with `anchor`: rows keyed by the cell under
/// `group_col` (if any), each with the variables, default and meaning.
fn table(readme: &str, anchor: &str, grouped: bool) -> Vec<(String, Row)> {
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(anchor))
        .unwrap_or_else(|| panic!("README.md has no line with {anchor:?}"));
    let mut rows = Vec::new();
    let mut in_table = false;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        if !in_table {
            in_table = true; // the header
            let header = cells(line);
            let want: &[&str] = if grouped {
                &["service", "variable", "default", "meaning"]
            } else {
                &["variable", "default", "meaning"]
            };
            assert_eq!(header, want, "README.md line {}: table header", i + 1);
            continue;
        }
        if line.starts_with("|---") {
            continue;
        }
        let c = cells(line);
        let (group, rest) = if grouped {
            (c[0].clone(), &c[1..])
        } else {
            (String::new(), &c[..])
        };
        assert_eq!(rest.len(), 3, "README.md line {}: {line}", i + 1);
        rows.push((
            group,
            Row {
                envs: names(&rest[0]),
                default: rest[1].replace('`', "").trim().to_owned(),
                meaning: rest[2].clone(),
                line: i + 1,
            },
        ));
    }
    assert!(!rows.is_empty(), "README.md: no table after {anchor:?}");
    rows
}

fn by_env(rows: &[(String, Row)]) -> BTreeMap<(String, String), Row> {
    let mut out = BTreeMap::new();
    for (group, row) in rows {
        for env in &row.envs {
            let dup = out.insert((group.clone(), env.clone()), row.clone());
            assert!(
                dup.is_none(),
                "README.md line {}: {env} listed twice in one table",
                row.line
            );
        }
    }
    out
}

/// Whether the README's `documented` default says what clap's `actual` is.
fn agrees(env: &str, actual: &Setting, documented: &str) -> bool {
    match DERIVED.iter().find(|(e, _)| *e == env) {
        Some((_, derived)) if actual.default == "(unset)" => documented.starts_with(derived),
        _ => documented == actual.default,
    }
}

fn expected_row(env: &str, s: &Setting, service: Option<&str>) -> String {
    let secret = if s.secret { "**secret**: " } else { "" };
    match service {
        Some(service) => format!("| {service} | `{env}` | {} | {secret}… |", s.default),
        None => format!("| `{env}` | {} | {secret}… |", s.default),
    }
}

/// Checks one documented setting; the problem, if any.
fn check(env: &str, actual: &Setting, row: &Row, what: &str, expected: String) -> Option<String> {
    if !agrees(env, actual, &row.default) {
        return Some(format!(
            "README.md line {}: {what}: {env} defaults to {:?}, the README says {:?}; expected {expected}",
            row.line, actual.default, row.default
        ));
    }
    if actual.secret != row.meaning.contains("**secret**") {
        return Some(format!(
            "README.md line {}: {what}: {env} is {}a secret (hidden from --help) but the README {} it **secret**",
            row.line,
            if actual.secret { "" } else { "not " },
            if actual.secret {
                "does not mark"
            } else {
                "marks"
            },
        ));
    }
    None
}

#[test]
fn readme_tables_list_every_setting_with_its_default() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let shared = by_env(&table(&readme, "Shared ones:", false));
    let policies = by_env(&table(&readme, "Service policies", true));
    let floor = by_env(&table(&readme, "floor-channel settings (see", false));
    let local = by_env(&table(&readme, "Command 1 settings:", false));
    let mut problems = Vec::new();
    let mut used_shared = BTreeSet::new();
    let mut all: BTreeMap<&str, BTreeMap<String, Setting>> = BTreeMap::new();

    for (service, cmd) in binaries() {
        let settings = settings(&cmd);
        for (env, actual) in &settings {
            let key = |g: &str| (g.to_owned(), env.clone());
            let found = if service == "floor-channel" && floor.contains_key(&key("")) {
                Some((&floor[&key("")], "floor-channel table"))
            } else if let Some(row) = policies.get(&key(service)) {
                Some((row, "service policies"))
            } else if let Some(row) = shared.get(&key("")) {
                used_shared.insert(env.clone());
                Some((row, "shared table"))
            } else {
                None
            };
            match found {
                None => problems.push(format!(
                    "README.md lacks {env} of {service}; expected a row {} (service policies or shared table)",
                    expected_row(env, actual, Some(service))
                )),
                Some((row, what)) => {
                    let service_col = (what == "service policies").then_some(service);
                    problems.extend(check(
                        env,
                        actual,
                        row,
                        &format!("{service} ({what})"),
                        expected_row(env, actual, service_col),
                    ));
                }
            }
        }
        all.insert(service, settings);
    }

    // Nothing listed that no binary has.
    for ((_, env), row) in &shared {
        if !used_shared.contains(env) && !NOT_FLAGS.contains(&env.as_str()) {
            problems.push(format!(
                "README.md line {}: the shared table lists {env}, which no binary takes from it (none has it, or each has its own row)",
                row.line
            ));
        }
    }
    for ((service, env), row) in &policies {
        match all.get(service.as_str()) {
            None => problems.push(format!(
                "README.md line {}: no binary named {service:?}",
                row.line
            )),
            Some(s) if !s.contains_key(env) => problems.push(format!(
                "README.md line {}: {service} has no setting {env}",
                row.line
            )),
            Some(_) => {}
        }
    }
    for ((_, env), row) in &floor {
        if !all["floor-channel"].contains_key(env) {
            problems.push(format!(
                "README.md line {}: floor-channel has no setting {env}",
                row.line
            ));
        }
    }

    // Command 1: its own table, else the services' rows with the same default.
    let cmd1 = settings(&shelfguard_local::cli::Cli::command());
    for (env, actual) in &cmd1 {
        if let Some(row) = local.get(&(String::new(), env.clone())) {
            problems.extend(check(
                env,
                actual,
                row,
                "command 1",
                expected_row(env, actual, None),
            ));
            continue;
        }
        let elsewhere: Vec<&Row> = shared
            .iter()
            .chain(&policies)
            .chain(&floor)
            .filter(|((_, e), _)| e == env)
            .map(|(_, r)| r)
            .collect();
        if elsewhere.is_empty() {
            problems.push(format!(
                "README.md lacks {env} of command 1; expected a row {} in the command 1 table",
                expected_row(env, actual, None)
            ));
        }
        for row in elsewhere {
            if let Some(p) = check(
                env,
                actual,
                row,
                "as used by command 1",
                format!("{} in the command 1 table", expected_row(env, actual, None)),
            ) {
                problems.push(p);
            }
        }
    }
    for ((_, env), row) in &local {
        if !cmd1.contains_key(env) {
            problems.push(format!(
                "README.md line {}: command 1 has no setting {env}",
                row.line
            ));
        }
    }

    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Secrets never show in `--help`, whatever the environment holds, in every binary.
#[test]
fn secrets_stay_hidden() {
    let mut cmds = binaries();
    cmds.push(("shelfguard-local", shelfguard_local::cli::Cli::command()));
    for (name, cmd) in cmds {
        for env in ["KAFKA_OPTIONS", "STORE_TOKENS", "WEBHOOKS"] {
            for arg in cmd.get_arguments() {
                if arg.get_env().is_some_and(|e| e == env) {
                    assert!(arg.is_hide_env_values_set(), "{name}: {env} is shown");
                }
            }
        }
    }
}

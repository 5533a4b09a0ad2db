//! The conformance kit (services/conformance) against the real services on the embedded broker:
//! every check must pass. Its output is kept in `target/e2e-artifacts/conformance.txt`, and the
//! examples of it in docs/integrating.md and the README must equal it up to run ids, ports,
//! topic prefix, redemption codes and durations (`SHELFGUARD_UPDATE_DOCS=1` rewrites them from
//! this run instead of failing).
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser as _;
use shelfguard_conformance::{CHECKS, Config, Verdict};
use shelfguard_e2e::{Env, artifacts_dir, free_port, wait_http};

const STORE: &str = "CK-E2E";
const TOKEN: &str = "token-of-the-conformance-store";
/// Marks the example blocks in the docs (the fenced block right after it).
const MARKER: &str = "<!-- conformance-output";

#[tokio::test(flavor = "multi_thread")]
async fn the_conformance_kit_passes_against_the_services_and_the_docs_show_its_output() -> Result<()>
{
    let env = Env::start("conformance").await?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let tokens = format!("{STORE}={TOKEN}");
    let _services = [
        env.spawn("inventory", &[])?,
        env.spawn("stockout-detector", &[])?,
        env.spawn("offer-generator", &[])?,
        env.spawn(
            "floor-channel",
            &[("HTTP_ADDR", &addr), ("STORE_TOKENS", &tokens)],
        )?,
    ];
    let floor = format!("http://{addr}");
    wait_http(&format!("{floor}/stores/{STORE}"), Duration::from_secs(60)).await?;

    let mut config = Config::parse_from([
        "shelfguard-conformance",
        "--bootstrap-servers",
        &env.broker.bootstrap,
        "--topic-prefix",
        &env.kafka.topic_prefix,
        "--floor-url",
        &floor,
        "--store",
        STORE,
        // Generous for CI on 2 shared cores; the default is 30.
        "--timeout-secs",
        "90",
    ]);
    config.store_token = Some(TOKEN.into());
    let report = shelfguard_conformance::run(&config, &mut |line| println!("{line}")).await?;
    std::fs::write(artifacts_dir()?.join("conformance.txt"), &report.text)?;
    assert!(
        !report.text.contains(TOKEN),
        "the token must never be printed"
    );
    let verdicts: Vec<(String, Verdict)> = report.results.clone();
    let want: Vec<(String, Verdict)> = CHECKS
        .iter()
        .map(|(id, _)| ((*id).to_owned(), Verdict::Pass))
        .collect();
    assert_eq!(verdicts, want, "every check passes:\n{}", report.text);
    assert!(
        report
            .text
            .contains("cleanup: declined 2 offers, retired 9 products"),
        "{}",
        report.text
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("no workspace root")?
        .to_path_buf();
    check_example(&root.join("docs/integrating.md"), &report.text)?;
    check_example(&root.join("README.md"), &report.text)?;
    Ok(())
}

/// The example after [`MARKER`] in `doc` must be `output` up to what changes between runs.
fn check_example(doc: &PathBuf, output: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let (before, shown, after) = split_example(&text)
        .with_context(|| format!("{}: no ```text block after {MARKER}", doc.display()))?;
    if normalise(shown) == normalise(output) {
        return Ok(());
    }
    if std::env::var_os("SHELFGUARD_UPDATE_DOCS").is_some() {
        std::fs::write(doc, format!("{before}{output}{after}"))?;
        return Ok(());
    }
    bail!(
        "{} shows another output than the kit's (normalised):\n--- shown\n{}\n--- now\n{}\n\
         (run this test with SHELFGUARD_UPDATE_DOCS=1 to take the current output)",
        doc.display(),
        normalise(shown),
        normalise(output)
    )
}

/// (text up to the block's content, the content, the rest from its closing fence).
fn split_example(text: &str) -> Option<(&str, &str, &str)> {
    let m = text.find(MARKER)?;
    let open = m + text[m..].find("```text\n")? + "```text\n".len();
    let close = open + text[open..].find("\n```")? + 1;
    Some((&text[..open], &text[open..close], &text[close..]))
}

/// Replaces what differs between runs: the run id (8 hex digits after `run `, `CK` or `CK-`),
/// ports of 127.0.0.1, the random topic prefix (`t` + 8 hex digits, after `"` or a space),
/// redemption codes and durations.
fn normalise(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let hex8 = |i: usize| {
        b.len() >= i + 8
            && b[i..i + 8].iter().all(u8::is_ascii_hexdigit)
            && b.get(i + 8).is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &s[i..];
        let mut matched = false;
        for (p, with) in [
            ("run ", "run <run>"),
            ("CK-", "CK-<run>"),
            ("CK", "CK<run>"),
            ("\"t", "\"<prefix>"),
            (" t", " <prefix>"),
        ] {
            if rest.starts_with(p) && hex8(i + p.len()) {
                out.push_str(with);
                i += p.len() + 8;
                matched = true;
                break;
            }
        }
        if matched {
            continue;
        }
        for p in ["127.0.0.1:", "code ", "Code "] {
            if let Some(after) = rest.strip_prefix(p) {
                let n = after.bytes().take_while(u8::is_ascii_alphanumeric).count();
                if n > 0 {
                    out.push_str(p);
                    out.push('#');
                    i += p.len() + n;
                    matched = true;
                    break;
                }
            }
        }
        if matched {
            continue;
        }
        // "(12.3 s)" → "(# s)"
        if let Some(after) = rest.strip_prefix('(') {
            let n = after
                .bytes()
                .take_while(|c| c.is_ascii_digit() || *c == b'.')
                .count();
            if n > 0 && after[n..].starts_with(" s)") {
                out.push_str("(# s)");
                i += 1 + n + 3;
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[test]
fn normalise_hides_only_what_changes_between_runs() {
    let a = "run 0a1b2c3d: store CK-E2E, topic prefix \"t1234abcd.\", bootstrap 127.0.0.1:40101\n\
             PASS a. x (3.2 s)\n     CK0a1b2c3d-COCO-28 free, code 7F3K; Code 7F3K at the till";
    let b = "run ffffffff: store CK-E2E, topic prefix \"tdeadbeef.\", bootstrap 127.0.0.1:5\n\
             PASS a. x (10.0 s)\n     CKffffffff-COCO-28 free, code K4E3; Code K4E3 at the till";
    assert_eq!(normalise(a), normalise(b));
    assert_ne!(normalise(a), normalise(&a.replace("COCO-28", "COCO-20")));
    assert_ne!(normalise(a), normalise(&a.replace("PASS", "FAIL")));
}

/// The webhook signature example in docs/integrating.md is what HMAC-SHA256 gives for its inputs.
#[test]
fn the_signature_example_in_the_docs_is_right() -> Result<()> {
    use hmac::{Hmac, Mac};
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/integrating.md"),
    )?;
    let line = doc
        .lines()
        .find(|l| l.starts_with("<!-- signature-example:"))
        .context("no signature-example marker")?;
    let field = |k: &str| -> Result<String> {
        let v = line
            .split(&format!("{k}="))
            .nth(1)
            .context("missing field")?;
        Ok(v.split(' ').next().unwrap_or_default().to_owned())
    };
    let (secret, ts, body) = (field("secret")?, field("timestamp")?, field("body")?);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(format!("{ts}.{body}").as_bytes());
    let hex = hex::encode(mac.finalize().into_bytes());
    assert!(
        doc.contains(&format!("SHA2-256(stdin)= {hex}")),
        "the openssl output shown should be {hex}"
    );
    assert!(
        doc.contains(&format!("X-Shelfguard-Signature: sha256={hex}`")),
        "the header shown should be sha256={hex}"
    );
    assert!(doc.contains(&format!(
        "printf '{ts}.{body}' | openssl dgst -sha256 -hmac '{secret}'"
    )));
    Ok(())
}

//! ssh-audit (PyPI, in the venv `.ci/run` makes) against the `portcullis` binary: the hardened
//! preset gets no failure and no warning; on the defaults every finding is one that
//! `portcullis.example.toml` documents with its reason.

use std::path::PathBuf;
use std::process::Command;

use crate::clients::{server, venv_python};
use crate::git_server::Server;

/// (level, section, algorithm, text) of every `fail` and `warn` finding, and the CVE list.
fn audit(s: &Server) -> (Vec<(String, String, String, String)>, serde_json::Value) {
    let python = venv_python();
    let tool: PathBuf = python.with_file_name("ssh-audit");
    assert!(
        tool.exists(),
        "{} missing: the PyPI package ssh-audit belongs in the test venv (`bash .ci/run` installs it)",
        tool.display()
    );
    let out = Command::new(&tool)
        .args([
            "-j",
            "--skip-rate-test",
            "-t",
            "20",
            "-p",
            &s.port.to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ssh-audit printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut findings = Vec::new();
    for section in ["kex", "key", "enc", "mac"] {
        for entry in report[section].as_array().into_iter().flatten() {
            let alg = entry["algorithm"].as_str().unwrap_or_default();
            for level in ["fail", "warn"] {
                for text in entry["notes"][level].as_array().into_iter().flatten() {
                    findings.push((
                        level.to_owned(),
                        section.to_owned(),
                        alg.to_owned(),
                        text.as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }
    (findings, report["cves"].clone())
}

#[test]
fn ssh_audit_grades_the_hardened_preset_clean() {
    let (s, _, _) = server("preset = \"hardened\"\n");
    let (findings, cves) = audit(&s);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(cves, serde_json::json!([]));
}

#[test]
fn every_ssh_audit_finding_on_the_defaults_is_documented() {
    let (s, _, _) = server("");
    let (findings, cves) = audit(&s);
    assert_eq!(cves, serde_json::json!([]));
    // The documented block: "#   audit LEVEL: alg, alg, … — reason", continued on "#     " lines.
    let mut documented: Vec<(String, Vec<String>)> = Vec::new();
    for line in portcullis::config::DEFAULT.lines() {
        if let Some(rest) = line.strip_prefix("#   audit ") {
            let (level, rest) = rest.split_once(':').unwrap();
            documented.push((level.to_owned(), vec![rest.to_owned()]));
        } else if let (Some(rest), Some(last)) =
            (line.strip_prefix("#     "), documented.last_mut())
        {
            last.1.push(rest.to_owned());
        }
    }
    assert!(
        !documented.is_empty(),
        "no `#   audit` lines in portcullis.example.toml"
    );
    let covers = |level: &str, alg: &str| {
        documented.iter().any(|(l, text)| {
            let text = text.join(" ");
            let names = text.split(" — ").next().unwrap_or_default();
            l == level && names.split(',').any(|n| n.trim() == alg)
        })
    };
    let missing: Vec<_> = findings
        .iter()
        .filter(|(level, _, alg, _)| !covers(level, alg))
        .collect();
    assert!(
        missing.is_empty(),
        "findings portcullis.example.toml does not document: {missing:#?}"
    );
    // And the defaults still draw findings (else the block is stale and should go).
    assert!(!findings.is_empty());
}

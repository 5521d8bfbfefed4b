//! The fuzz corpus as a regression test: every input committed under `fuzz/corpus/<target>/`
//! (the seeds, and any input that once made a target fail) runs through that target's entry
//! point, as `cargo fuzz run <target>` would; none may panic. Every target in
//! `fuzz/fuzz_targets/` has a corpus and an entry here.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("client_assertion", signet_core::fuzzing::client_assertion),
    ("access_token", signet_core::fuzzing::access_token),
    ("jwk", signet_core::fuzzing::jwk),
    ("pem_key", signet_core::fuzzing::pem_key),
    ("certificate", signet_core::fuzzing::certificate),
    ("certificate_pem", signet_core::fuzzing::certificate_pem),
    ("csr", signet_core::fuzzing::csr),
    ("binding", signet_core::fuzzing::binding),
    ("agent_secret", signet_core::fuzzing::agent_secret),
    ("token_form", signet_http::fuzzing::token_form),
    ("basic_header", signet_http::fuzzing::basic_header),
    ("admin_json", signet_http::fuzzing::admin_json),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn names_in(dir: &Path, strip: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .map(|n| n.trim_end_matches(strip).to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_target_has_a_corpus_and_an_entry_here() {
    let mut listed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(names_in(&fuzz_dir().join("fuzz_targets"), ".rs"), listed);
    assert_eq!(names_in(&fuzz_dir().join("corpus"), ""), listed);
}

#[test]
fn every_corpus_input_runs_without_a_panic() {
    let mut failures = Vec::new();
    let mut inputs = 0;
    for (name, target) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("corpus input");
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(path.display().to_string());
            }
            count += 1;
        }
        assert!(count > 0, "no corpus for {name}");
        inputs += count;
    }
    assert!(
        failures.is_empty(),
        "{} of {inputs} inputs panicked: {failures:?}",
        failures.len()
    );
}

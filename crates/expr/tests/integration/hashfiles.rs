//! hashFiles() against testdata/oracles/hashfiles.json (GitHub's algorithm).

use gantry_expr::{Contexts, Value, eval_str, hash_files};

use crate::support::{load, oracle_path};

#[test]
fn hash_files_matches_github_for_every_case() {
    let file = load("hashfiles.json");
    let workspace = oracle_path("hashfiles-testdata");
    let mut failures = Vec::new();
    let cases = file["cases"].as_array().expect("cases array");
    for case in cases {
        let id = case["id"].as_str().unwrap_or_default();
        let expected = case["github_expected"].as_str().expect("github_expected");
        let patterns: Vec<String> = case["patterns"]
            .as_array()
            .expect("patterns")
            .iter()
            .map(|p| p.as_str().unwrap_or_default().to_owned())
            .collect();
        match hash_files(&workspace, &patterns) {
            Ok(h) if h == expected => {}
            other => failures.push(format!("{id}: expected {expected:?}, got {other:?}")),
        }
        // The same through the expression.
        let ctx = Contexts::new().with_workspace(&workspace);
        let expr = case["expr"].as_str().expect("expr");
        match eval_str(expr, &ctx) {
            Ok(Value::String(h)) if h == expected => {}
            other => failures.push(format!("{id} via {expr}: got {other:?}")),
        }
    }
    let failed_ids: std::collections::BTreeSet<&str> = failures
        .iter()
        .filter_map(|f| f.split(':').next())
        .collect();
    println!(
        "hashfiles.json: {}/{} github_expected cases passed",
        cases.len() - failed_ids.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "hashFiles mismatches:\n{}",
        failures.join("\n")
    );
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut outer = Sha256::new();
    for p in parts {
        outer.update(Sha256::digest(p));
    }
    hex::encode(outer.finalize())
}

#[test]
fn hash_files_walks_depth_first_sorted_and_applies_negations_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ws = dir.path();
    std::fs::create_dir_all(ws.join("a/b")).expect("mkdir");
    std::fs::write(ws.join("a/b/x.lock"), "1").expect("write");
    std::fs::write(ws.join("a-z.lock"), "2").expect("write");
    std::fs::write(ws.join("a/y.lock"), "3").expect("write");
    std::fs::write(ws.join(".hidden.lock"), "4").expect("write");
    let p = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    // Depth first, names in byte order: ".hidden.lock", "a/" (a/b/x, a/y), "a-z.lock".
    assert_eq!(
        hash_files(ws, &p(&["**/*.lock"])),
        Ok(sha256_hex(&[b"4", b"1", b"3", b"2"]))
    );
    // A later negation removes, a later positive pattern adds back.
    assert_eq!(
        hash_files(ws, &p(&["**/*.lock", "!a/**", "a/y.lock"])),
        Ok(sha256_hex(&[b"4", b"3", b"2"]))
    );
    // A directory pattern matches everything below it; `dir/` alone matches no file.
    assert_eq!(hash_files(ws, &p(&["a"])), Ok(sha256_hex(&[b"1", b"3"])));
    assert_eq!(hash_files(ws, &p(&["a/"])), Ok(sha256_hex(&[b"1", b"3"])));
    // Several patterns in one argument, comments and blank lines skipped.
    assert_eq!(
        hash_files(ws, &p(&["# lock files\n\n  a-z.lock  \n"])),
        Ok(sha256_hex(&[b"2"]))
    );
    // Files outside the workspace never count.
    let outside = format!(
        "{}/**",
        ws.parent().expect("temp dir has a parent").display()
    );
    assert_eq!(
        hash_files(&ws.join("a"), &p(&["../*.lock"])).map_err(|e| e.stage),
        Err(gantry_expr::Stage::Evaluation)
    );
    assert_eq!(
        hash_files(&ws.join("a/b"), &[outside]),
        Ok(sha256_hex(&[b"1"]))
    );
    assert_eq!(hash_files(ws, &p(&["nothing-*"])), Ok(String::new()));
}

#[cfg(unix)]
#[test]
fn hash_files_does_not_descend_into_symlinked_directories() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ws = dir.path();
    std::fs::create_dir_all(ws.join("real")).expect("mkdir");
    std::fs::write(ws.join("real/f.txt"), "content").expect("write");
    std::os::unix::fs::symlink(ws.join("real"), ws.join("linkdir")).expect("symlink");
    std::os::unix::fs::symlink(ws.join("real/f.txt"), ws.join("linkfile.txt")).expect("symlink");
    let all = vec!["**".to_owned()];
    // linkdir is not walked; linkfile.txt is hashed with its target's content.
    assert_eq!(
        hash_files(ws, &all),
        Ok(sha256_hex(&[b"content", b"content"]))
    );
    assert_eq!(
        hash_files(ws, &["linkdir/**".to_owned()]),
        Ok(String::new())
    );
}

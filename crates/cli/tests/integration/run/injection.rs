//! Hostile text reaching a job (RELIABILITY H2, H3): event fields full of shell syntax passed
//! through `env:` stay data, and workflow commands that GitHub disabled (`::set-env`,
//! `::add-path`) printed on stdout cannot change the next step's environment or `PATH`.

use super::repo_with;

#[test]
fn event_fields_with_shell_syntax_passed_through_env_stay_text() {
    let repo = repo_with(
        r#"on: pull_request
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - env:
          TITLE: ${{ github.event.pull_request.title }}
          BRANCH: ${{ github.head_ref }}
        run: |
          printf 'title=[%s]\n' "$TITLE"
          printf 'branch=[%s]\n' "$BRANCH"
          test ! -e pwned
"#,
    );
    let title = r#"fix"; touch pwned; echo "$(touch pwned)`touch pwned`"#;
    let branch = "a$(touch${IFS}pwned)";
    repo.write(
        "event.json",
        &serde_json::json!({
            "action": "opened",
            "number": 7,
            "pull_request": {
                "title": title,
                "head": {"ref": branch},
                "base": {"ref": "main"}
            }
        })
        .to_string(),
    );
    let run = repo.gantry(&[
        "run",
        "--event",
        "pull_request",
        "--payload",
        "event.json",
        "--workspace-here",
    ]);
    let out = run.stdout();
    assert_eq!(run.code(), 0, "{out}\n{}", run.stderr());
    assert!(out.contains(&format!("title=[{title}]")), "{out}");
    assert!(out.contains(&format!("branch=[{branch}]")), "{out}");
    assert!(
        !repo.path().join("pwned").exists(),
        "no command of the title ran"
    );
}

#[test]
fn disabled_commands_on_stdout_change_neither_env_nor_path() {
    let repo = repo_with(
        r#"on: push
jobs:
  inject:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo '::set-env name=INJECTED::evil'
          echo '::add-path::/tmp/evil-bin'
          echo '##[set-env name=INJECTED2;]evil'
      - if: always()
        run: |
          printf 'injected=[%s] [%s]\n' "${INJECTED:-}" "${INJECTED2:-}"
          case ":$PATH:" in *:/tmp/evil-bin:*) echo 'path was changed'; exit 1;; esac
"#,
    );
    let run = repo.gantry(&["run"]);
    let out = run.stdout();
    assert_eq!(
        run.code(),
        1,
        "the step printing disabled commands fails: {out}"
    );
    assert!(out.contains("injected=[] []"), "{out}");
    assert!(!out.contains("path was changed"), "{out}");
    assert!(
        out.contains("set-env") && out.contains("disabled"),
        "the user is told why: {out}"
    );
}

//! Webhooks from GitHub, Gitea and GitLab: every fixture in testdata/fixtures/webhooks parses to
//! the event it shows, signatures computed here verify and every kind of forgery fails, and no
//! input panics. Commit statuses are checked against a fake forge (wiremock).

use axum::http::{HeaderMap, HeaderValue};
use gantry_server::forge::{
    self, EventKind, Forge, ForgeEvent, PayloadError, PullRequest, Push, SignatureError,
    parse_webhook, read_delivery, verify_gitea_signature, verify_github_signature,
    verify_gitlab_token, verify_signature,
};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/fixtures/webhooks"
);
const SECRET: &[u8] = b"It's a Secret to Everybody";
const ZERO: &str = "0000000000000000000000000000000000000000";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The event header a fixture was delivered with (see the fixtures' README).
fn event_header(forge: Forge, file: &str) -> String {
    let stem = file.split('.').next().expect("file name");
    match forge {
        Forge::GitLab => match stem {
            "push" => "Push Hook".into(),
            "tag_push" => "Tag Push Hook".into(),
            "merge_request" => "Merge Request Hook".into(),
            other => panic!("no header known for gitlab/{other}"),
        },
        _ => stem.to_owned(),
    }
}

fn dir_of(forge: Forge) -> &'static str {
    match forge {
        Forge::GitHub => "github",
        Forge::Gitea => "gitea",
        Forge::GitLab => "gitlab",
    }
}

/// Every fixture file of a forge, sorted.
fn fixture_files(forge: Forge) -> Vec<String> {
    let dir = format!("{FIXTURES}/{}", dir_of(forge));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    files
}

fn parse_fixture(forge: Forge, file: &str) -> ForgeEvent {
    let body = fixture(&format!("{}/{file}", dir_of(forge)));
    parse_webhook(forge, &event_header(forge, file), &body)
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir_of(forge)))
}

fn push_of(event: &ForgeEvent) -> &Push {
    match &event.kind {
        EventKind::Push(push) | EventKind::TagPush(push) => push,
        other => panic!("expected a push, got {other:?}"),
    }
}

fn pr_of(event: &ForgeEvent) -> &PullRequest {
    match &event.kind {
        EventKind::PullRequest(pr) => pr,
        other => panic!("expected a pull request, got {other:?}"),
    }
}

fn other(name: &str, action: Option<&str>) -> EventKind {
    EventKind::Other {
        name: name.into(),
        action: action.map(Into::into),
    }
}

/// What one fixture must parse to.
enum Expect {
    Ping,
    Push {
        tag_push: bool,
        git_ref: &'static str,
        before: &'static str,
        after: &'static str,
        created: bool,
        deleted: bool,
        changed: Option<&'static [&'static str]>,
    },
    Pr {
        action: &'static str,
        number: u64,
        head: (&'static str, &'static str, Option<&'static str>),
        base: (&'static str, Option<&'static str>, &'static str),
        from_fork: bool,
        merge_commit: Option<&'static str>,
    },
    Other(&'static str, Option<&'static str>),
}

struct Case {
    forge: Forge,
    file: &'static str,
    repo: &'static str,
    clone_url: &'static str,
    sender: Option<&'static str>,
    expect: Expect,
}

const GH_REPO: &str = "Codertocat/Hello-World";
const GH_CLONE: &str = "https://github.com/Codertocat/Hello-World.git";
const GH_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const GH_BASE: &str = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
const GH_TAGGED: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const GITEA_CLONE: &str = "http://localhost:3000/example/example.git";

fn gh_pr(action: &'static str, merge_commit: Option<&'static str>) -> Expect {
    Expect::Pr {
        action,
        number: 2,
        head: ("changes", GH_HEAD, Some(GH_REPO)),
        base: ("master", Some(GH_BASE), GH_REPO),
        from_fork: false,
        merge_commit,
    }
}

fn cases() -> Vec<Case> {
    use Forge::*;
    let gh = |file, expect| Case {
        forge: GitHub,
        file,
        repo: GH_REPO,
        clone_url: GH_CLONE,
        sender: Some("Codertocat"),
        expect,
    };
    let gitea = |file, expect| Case {
        forge: Gitea,
        file,
        repo: "example/example",
        clone_url: GITEA_CLONE,
        sender: Some("example"),
        expect,
    };
    vec![
        gh("create.json", Expect::Other("create", None)),
        gh("delete.json", Expect::Other("delete", None)),
        Case {
            repo: "octo-org/octo-repo",
            clone_url: "https://github.com/octo-org/octo-repo.git",
            ..gh(
                "merge_group.checks_requested.json",
                Expect::Other("merge_group", Some("checks_requested")),
            )
        },
        Case {
            repo: "Octocoders/Hello-World",
            clone_url: "https://github.com/Octocoders/Hello-World.git",
            ..gh("ping.json", Expect::Ping)
        },
        gh(
            "pull_request.closed.json",
            gh_pr("closed", Some("c4295bd74fb0f4fda03689c3df3f2803b658fd85")),
        ),
        gh("pull_request.opened.json", gh_pr("opened", None)),
        gh("pull_request.reopened.json", gh_pr("reopened", None)),
        gh("pull_request.synchronize.json", gh_pr("synchronize", None)),
        gh(
            "push.branch-created.json",
            Expect::Push {
                tag_push: false,
                git_ref: "refs/heads/master",
                before: ZERO,
                after: GH_TAGGED,
                created: true,
                deleted: false,
                changed: Some(&["README.md"]),
            },
        ),
        Case {
            clone_url: "https://octocoders.github.io/Codertocat/Hello-World.git",
            ..gh(
                "push.tag-created.json",
                Expect::Push {
                    tag_push: false,
                    git_ref: "refs/tags/simple-tag",
                    before: ZERO,
                    after: GH_TAGGED,
                    created: true,
                    deleted: false,
                    changed: Some(&[]),
                },
            )
        },
        gh(
            "push.tag-deleted.json",
            Expect::Push {
                tag_push: false,
                git_ref: "refs/tags/simple-tag",
                before: GH_TAGGED,
                after: ZERO,
                created: false,
                deleted: true,
                changed: Some(&[]),
            },
        ),
        gh(
            "release.published.json",
            Expect::Other("release", Some("published")),
        ),
        Case {
            repo: "octo-org/octo-repo",
            clone_url: "https://github.com/octo-org/octo-repo.git",
            ..gh(
                "workflow_dispatch.json",
                Expect::Other("workflow_dispatch", None),
            )
        },
        gitea("create.json", Expect::Other("create", None)),
        gitea("delete.json", Expect::Other("delete", None)),
        Case {
            sender: Some("example2"),
            ..gitea(
                "pull_request.opened.json",
                Expect::Pr {
                    action: "opened",
                    number: 2,
                    head: (
                        "master",
                        "48e773f892a831faa47c0a160d1b7f0cd369ae2a",
                        Some("example2/example"),
                    ),
                    base: (
                        "master",
                        Some("67b56589a45103f891bdee7c0546e5d40bc02001"),
                        "example/example",
                    ),
                    from_fork: true,
                    merge_commit: None,
                },
            )
        },
        gitea(
            "push.branch-created.json",
            Expect::Push {
                tag_push: false,
                git_ref: "refs/heads/master",
                before: ZERO,
                after: "67b56589a45103f891bdee7c0546e5d40bc02001",
                created: true,
                deleted: false,
                changed: Some(&["example"]),
            },
        ),
        Case {
            repo: "gitea/webhooks",
            clone_url: "http://localhost:3000/gitea/webhooks.git",
            sender: Some("gitea"),
            ..gitea(
                "push.docs-example.json",
                Expect::Push {
                    tag_push: false,
                    git_ref: "refs/heads/develop",
                    before: "28e1879d029cb852e4844d9c718537df08844e03",
                    after: "bffeb74224043ba2feb48d137756c8a9331c449a",
                    created: false,
                    deleted: false,
                    // Its commit lists no added/modified/removed.
                    changed: None,
                },
            )
        },
        gitea(
            "release.published.json",
            Expect::Other("release", Some("published")),
        ),
        Case {
            forge: GitLab,
            file: "merge_request.open.json",
            repo: "gitlabhq/gitlab-test",
            clone_url: "http://example.com/gitlabhq/gitlab-test.git",
            sender: Some("root"),
            expect: Expect::Pr {
                action: "opened",
                number: 1,
                head: (
                    "ms-viewport",
                    "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                    Some("awesome_space/awesome_project"),
                ),
                base: ("master", None, "awesome_space/awesome_project"),
                from_fork: false,
                merge_commit: None,
            },
        },
        Case {
            forge: GitLab,
            file: "push.json",
            repo: "mike/diaspora",
            clone_url: "http://example.com/mike/diaspora.git",
            sender: Some("jsmith"),
            expect: Expect::Push {
                tag_push: false,
                git_ref: "refs/heads/master",
                before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
                after: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                created: false,
                deleted: false,
                // 2 of `total_commits_count: 4` commits are listed: incomplete.
                changed: None,
            },
        },
        Case {
            forge: GitLab,
            file: "tag_push.json",
            repo: "jsmith/example",
            clone_url: "http://example.com/jsmith/example.git",
            // Only `user_name` (a display name), no `user_username`.
            sender: None,
            expect: Expect::Push {
                tag_push: true,
                git_ref: "refs/tags/v1.0.0",
                before: ZERO,
                after: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
                created: true,
                deleted: false,
                changed: Some(&[]),
            },
        },
    ]
}

#[test]
fn every_fixture_has_a_case() {
    let cases = cases();
    for forge in [Forge::GitHub, Forge::Gitea, Forge::GitLab] {
        let files = fixture_files(forge);
        let covered: Vec<_> = cases
            .iter()
            .filter(|c| c.forge == forge)
            .map(|c| c.file.to_owned())
            .collect();
        assert_eq!(files, covered, "fixtures of {forge} without a case");
    }
}

#[test]
fn every_fixture_parses_to_its_event() {
    for case in cases() {
        let name = format!("{}/{}", dir_of(case.forge), case.file);
        let event = parse_fixture(case.forge, case.file);
        assert_eq!(event.forge, case.forge, "{name}");
        assert_eq!(event.repository.full_name, case.repo, "{name}");
        assert_eq!(event.repository.clone_url, case.clone_url, "{name}");
        assert_eq!(event.sender.as_deref(), case.sender, "{name}");
        match case.expect {
            Expect::Ping => assert_eq!(event.kind, EventKind::Ping, "{name}"),
            Expect::Other(kind, action) => assert_eq!(event.kind, other(kind, action), "{name}"),
            Expect::Push {
                tag_push,
                git_ref,
                before,
                after,
                created,
                deleted,
                changed,
            } => {
                assert_eq!(
                    matches!(event.kind, EventKind::TagPush(_)),
                    tag_push,
                    "{name}"
                );
                let push = push_of(&event);
                assert_eq!(push.git_ref, git_ref, "{name}");
                assert_eq!(push.before, before, "{name}");
                assert_eq!(push.after, after, "{name}");
                assert_eq!((push.created, push.deleted), (created, deleted), "{name}");
                assert!(!push.forced, "{name}");
                let changed = changed.map(|files| files.iter().map(|f| f.to_string()).collect());
                assert_eq!(push.changed_files, changed, "{name}");
            }
            Expect::Pr {
                action,
                number,
                head,
                base,
                from_fork,
                merge_commit,
            } => {
                let pr = pr_of(&event);
                assert_eq!(pr.action, action, "{name}");
                assert_eq!(pr.number, number, "{name}");
                assert_eq!(
                    (
                        pr.head.git_ref.as_str(),
                        pr.head.sha.as_str(),
                        pr.head.repo_full_name.as_deref()
                    ),
                    head,
                    "{name}"
                );
                assert_eq!(
                    (
                        pr.base.git_ref.as_str(),
                        pr.base.sha.as_deref(),
                        pr.base.repo_full_name.as_str()
                    ),
                    base,
                    "{name}"
                );
                assert_eq!(pr.from_fork, from_fork, "{name}");
                assert!(!pr.merged, "{name}: none of the fixtures is merged");
                assert_eq!(pr.merge_commit.as_deref(), merge_commit, "{name}");
            }
        }
    }
}

#[test]
fn pull_request_details() {
    let gh = parse_fixture(Forge::GitHub, "pull_request.opened.json");
    let pr = pr_of(&gh);
    assert_eq!(pr.title, "Update the README with new information.");
    assert_eq!(pr.head.clone_url.as_deref(), Some(GH_CLONE));

    let gitea = parse_fixture(Forge::Gitea, "pull_request.opened.json");
    let pr = pr_of(&gitea);
    assert_eq!(pr.title, "update");
    assert_eq!(
        pr.head.clone_url.as_deref(),
        Some("http://localhost:3000/example2/example.git")
    );

    let gitlab = parse_fixture(Forge::GitLab, "merge_request.open.json");
    let pr = pr_of(&gitlab);
    assert_eq!(pr.title, "MS-Viewport");
    assert_eq!(
        pr.head.clone_url.as_deref(),
        Some("http://example.com/awesome_space/awesome_project.git")
    );
    assert_eq!(
        gitlab.repository.html_url,
        "http://example.com/gitlabhq/gitlab-test"
    );
    assert_eq!(gitlab.repository.default_branch.as_deref(), Some("master"));
}

#[test]
fn trigger_events_for_the_planner() {
    let pr = parse_fixture(Forge::GitHub, "pull_request.synchronize.json").to_trigger_event();
    assert_eq!(pr.name, "pull_request");
    assert_eq!(pr.action.as_deref(), Some("synchronize"));
    assert_eq!(pr.git_ref.as_deref(), Some("refs/pull/2/merge"));
    assert_eq!(pr.base_ref.as_deref(), Some("master"));
    assert_eq!(pr.changed_paths, None);

    let fork = parse_fixture(Forge::Gitea, "pull_request.opened.json").to_trigger_event();
    assert_eq!(
        (fork.name.as_str(), fork.git_ref.as_deref()),
        ("pull_request", Some("refs/pull/2/merge"))
    );

    let mr = parse_fixture(Forge::GitLab, "merge_request.open.json").to_trigger_event();
    assert_eq!(mr.action.as_deref(), Some("opened"));
    assert_eq!(mr.git_ref.as_deref(), Some("refs/pull/1/merge"));
    assert_eq!(mr.base_ref.as_deref(), Some("master"));

    let push = parse_fixture(Forge::GitHub, "push.branch-created.json").to_trigger_event();
    assert_eq!(push.name, "push");
    assert_eq!(push.action, None);
    assert_eq!(push.git_ref.as_deref(), Some("refs/heads/master"));
    assert_eq!(push.base_ref, None);
    assert_eq!(
        push.changed_paths, None,
        "the server computes them from git"
    );

    // A GitLab tag push is a push of refs/tags/* like GitHub's.
    let tag = parse_fixture(Forge::GitLab, "tag_push.json").to_trigger_event();
    assert_eq!(
        (tag.name.as_str(), tag.git_ref.as_deref()),
        ("push", Some("refs/tags/v1.0.0"))
    );

    let ping = parse_fixture(Forge::GitHub, "ping.json").to_trigger_event();
    assert_eq!((ping.name.as_str(), ping.git_ref), ("ping", None));

    let release = parse_fixture(Forge::Gitea, "release.published.json").to_trigger_event();
    assert_eq!(
        (release.name.as_str(), release.action.as_deref()),
        ("release", Some("published"))
    );
}

#[test]
fn head_sha_is_the_commit_to_check_out() {
    let cases = [
        (Forge::GitHub, "push.branch-created.json", Some(GH_TAGGED)),
        (Forge::GitHub, "push.tag-deleted.json", None),
        (Forge::GitHub, "pull_request.opened.json", Some(GH_HEAD)),
        (Forge::GitHub, "ping.json", None),
        (
            Forge::GitLab,
            "merge_request.open.json",
            Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
        ),
    ];
    for (forge, file, sha) in cases {
        assert_eq!(parse_fixture(forge, file).head_sha(), sha, "{file}");
    }
}

fn raw(forge: Forge, file: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("{}/{file}", dir_of(forge)))).expect("fixture JSON")
}

#[test]
fn github_and_gitea_payloads_reach_workflows_unchanged() {
    for (forge, file) in [
        (Forge::GitHub, "pull_request.opened.json"),
        (Forge::GitHub, "push.tag-created.json"),
        (Forge::Gitea, "push.branch-created.json"),
    ] {
        let raw = raw(forge, file);
        let event = parse_fixture(forge, file);
        assert_eq!(event.github_payload(&raw), raw, "{file}");
    }
}

#[test]
fn gitlab_push_payload_is_github_shaped() {
    let raw = raw(Forge::GitLab, "push.json");
    let payload = parse_fixture(Forge::GitLab, "push.json").github_payload(&raw);
    assert_eq!(payload["ref"], "refs/heads/master");
    assert_eq!(
        payload["before"],
        "95790bf891e76fee5e1747ab589903a6a1f80f22"
    );
    assert_eq!(payload["after"], "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    assert_eq!(payload["created"], false);
    assert_eq!(payload["deleted"], false);
    assert_eq!(payload["repository"]["full_name"], "mike/diaspora");
    assert_eq!(payload["repository"]["name"], "diaspora");
    assert_eq!(payload["repository"]["owner"]["login"], "mike");
    assert_eq!(
        payload["repository"]["clone_url"],
        "http://example.com/mike/diaspora.git"
    );
    assert_eq!(payload["repository"]["default_branch"], "master");
    assert_eq!(payload["sender"]["login"], "jsmith");
    assert_eq!(payload["pusher"]["name"], "John Smith");
    assert_eq!(payload["commits"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        payload["head_commit"]["id"],
        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    );
    assert_eq!(payload["head_commit"]["message"], "fixed readme");
    assert_eq!(payload["gitlab"]["object_kind"], "push");
    assert!(payload.get("pull_request").is_none());
}

#[test]
fn gitlab_merge_request_payload_is_github_shaped() {
    let raw = raw(Forge::GitLab, "merge_request.open.json");
    let payload = parse_fixture(Forge::GitLab, "merge_request.open.json").github_payload(&raw);
    assert_eq!(payload["action"], "opened");
    assert_eq!(payload["number"], 1);
    let pr = &payload["pull_request"];
    assert_eq!(pr["number"], 1);
    assert_eq!(pr["title"], "MS-Viewport");
    assert_eq!(pr["state"], "open");
    assert_eq!(pr["merged"], false);
    assert_eq!(pr["head"]["ref"], "ms-viewport");
    assert_eq!(
        pr["head"]["sha"],
        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    );
    assert_eq!(
        pr["head"]["repo"]["full_name"],
        "awesome_space/awesome_project"
    );
    assert_eq!(pr["base"]["ref"], "master");
    assert_eq!(pr["base"]["sha"], Value::Null);
    assert_eq!(
        pr["html_url"],
        "http://example.com/diaspora/merge_requests/1"
    );
    assert_eq!(payload["repository"]["full_name"], "gitlabhq/gitlab-test");
    assert_eq!(payload["repository"]["owner"]["login"], "gitlabhq");
    assert_eq!(payload["sender"]["login"], "root");
    assert_eq!(payload["gitlab"]["object_kind"], "merge_request");
}

#[test]
fn gitlab_tag_push_payload_is_github_shaped() {
    let raw = raw(Forge::GitLab, "tag_push.json");
    let payload = parse_fixture(Forge::GitLab, "tag_push.json").github_payload(&raw);
    assert_eq!(payload["ref"], "refs/tags/v1.0.0");
    assert_eq!(payload["created"], true);
    assert_eq!(payload["head_commit"], Value::Null);
    assert_eq!(payload["sender"], Value::Null);
    assert_eq!(payload["repository"]["full_name"], "jsmith/example");
}

// ---- repository lookup and delivery headers ----

#[test]
fn repository_name_is_read_without_the_whole_event() {
    for case in cases() {
        let body = fixture(&format!("{}/{}", dir_of(case.forge), case.file));
        assert_eq!(
            forge::repository_name(case.forge, &body).expect("named"),
            case.repo,
            "{}",
            case.file
        );
    }
    assert!(matches!(
        forge::repository_name(Forge::GitHub, b"{\"zen\": \"x\"}"),
        Err(PayloadError::MissingField { field }) if field == "repository.full_name"
    ));
    assert!(forge::repository_name(Forge::GitLab, b"[1").is_err());
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).expect("test header"));
    }
    map
}

#[test]
fn delivery_headers_per_forge() {
    let body = fixture("github/push.branch-created.json");
    let info = read_delivery(
        Forge::GitHub,
        &headers(&[
            ("X-GitHub-Event", "push".into()),
            ("X-GitHub-Delivery", "d-1".into()),
        ]),
        &body,
    )
    .expect("valid");
    assert_eq!(
        (info.event.as_str(), info.delivery_id.as_str()),
        ("push", "d-1")
    );

    // Gitea also sends X-GitHub-Event; its own header comes first.
    let info = read_delivery(
        Forge::Gitea,
        &headers(&[
            ("X-Gitea-Event", "pull_request".into()),
            ("X-GitHub-Event", "pull_request".into()),
            ("X-Gitea-Delivery", "g-1".into()),
        ]),
        &body,
    )
    .expect("valid");
    assert_eq!(
        (info.event.as_str(), info.delivery_id.as_str()),
        ("pull_request", "g-1")
    );

    // GitLab without Idempotency-Key: the body's hash, stable for a retry of the same body.
    let body = fixture("gitlab/push.json");
    let gitlab = headers(&[("X-Gitlab-Event", "Push Hook".into())]);
    let info = read_delivery(Forge::GitLab, &gitlab, &body).expect("valid");
    assert_eq!(info.delivery_id, forge::body_id(&body));
    assert!(info.delivery_id.starts_with("sha256:"));
    assert_eq!(info.delivery_id.len(), "sha256:".len() + 64);
    let event = parse_webhook(Forge::GitLab, &info.event, &body).expect("parses");
    assert!(matches!(event.kind, EventKind::Push(_)));
}

// ---- signatures ----

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The headers a forge would send for `body` signed with `secret`.
fn signed_headers(forge: Forge, secret: &[u8], body: &[u8]) -> HeaderMap {
    let digest = hmac_hex(secret, body);
    match forge {
        Forge::GitHub => headers(&[("X-Hub-Signature-256", format!("sha256={digest}"))]),
        Forge::Gitea => headers(&[
            ("X-Gitea-Signature", digest.clone()),
            ("X-Hub-Signature-256", format!("sha256={digest}")),
        ]),
        Forge::GitLab => headers(&[(
            "X-Gitlab-Token",
            String::from_utf8(secret.to_vec()).expect("text secret"),
        )]),
    }
}

#[test]
fn every_fixture_verifies_with_its_signature_and_fails_when_tampered() {
    for forge in [Forge::GitHub, Forge::Gitea, Forge::GitLab] {
        for file in fixture_files(forge) {
            let name = format!("{}/{file}", dir_of(forge));
            let body = fixture(&name);
            let signed = signed_headers(forge, SECRET, &body);
            assert_eq!(
                verify_signature(forge, SECRET, &signed, &body),
                Ok(()),
                "{name}"
            );

            // Wrong secret.
            let other = signed_headers(forge, b"another secret", &body);
            assert!(
                matches!(
                    verify_signature(forge, SECRET, &other, &body),
                    Err(SignatureError::Mismatch { .. })
                ),
                "{name}"
            );

            // Missing header.
            assert!(
                matches!(
                    verify_signature(forge, SECRET, &HeaderMap::new(), &body),
                    Err(SignatureError::Missing { .. })
                ),
                "{name}"
            );

            // No secret configured: never accepted, even with a header computed over an empty key.
            assert_eq!(
                verify_signature(forge, b"", &signed_headers(forge, b"x", &body), &body),
                Err(SignatureError::NoSecret),
                "{name}"
            );

            if forge != Forge::GitLab {
                // Tampered body: one byte changed, one byte dropped, re-serialised JSON.
                let mut changed = body.clone();
                let middle = changed.len() / 2;
                changed[middle] ^= 0x01;
                let dropped = &body[..body.len() - 1];
                let reserialised = serde_json::to_vec(
                    &serde_json::from_slice::<Value>(&body).expect("fixture JSON"),
                )
                .expect("serialises");
                assert_ne!(reserialised, body, "{name}: the fixture is pretty-printed");
                for tampered in [&changed[..], dropped, &reserialised[..]] {
                    assert!(
                        matches!(
                            verify_signature(forge, SECRET, &signed, tampered),
                            Err(SignatureError::Mismatch { .. })
                        ),
                        "{name}"
                    );
                }
            }
        }
    }
}

#[test]
fn github_signature_header_forms() {
    let body = fixture("github/push.branch-created.json");
    let digest = hmac_hex(SECRET, &body);
    let check = |header: &str| verify_github_signature(SECRET, &body, Some(header));
    let malformed = |reason_part: &str, result: Result<(), SignatureError>| match result {
        Err(SignatureError::Malformed { header, reason }) => {
            assert_eq!(header, "X-Hub-Signature-256");
            assert!(reason.contains(reason_part), "{reason}");
        }
        other => panic!("expected malformed ({reason_part}), got {other:?}"),
    };

    assert_eq!(check(&format!("sha256={digest}")), Ok(()));
    assert_eq!(check(&format!("sha256={}", digest.to_uppercase())), Ok(()));
    malformed("SHA-1", check(&format!("sha1={digest}")));
    malformed("sha256", check(&format!("md5={digest}")));
    malformed("`sha256=`", check(&digest));
    malformed("64 hex digits", check(&format!("sha256={}", &digest[1..])));
    malformed("64 hex digits", check(&format!("sha256={digest}00")));
    malformed("hexadecimal", check(&format!("sha256={}zz", &digest[2..])));
    assert_eq!(
        check("sha256="),
        Err(SignatureError::Missing {
            header: "X-Hub-Signature-256"
        })
    );
    assert_eq!(
        verify_github_signature(SECRET, &body, None),
        Err(SignatureError::Missing {
            header: "X-Hub-Signature-256"
        })
    );

    // Only the legacy SHA-1 header: refused, and the log says why.
    let sha1_only = headers(&[("X-Hub-Signature", "sha1=0123".into())]);
    assert!(matches!(
        verify_signature(Forge::GitHub, SECRET, &sha1_only, &body),
        Err(SignatureError::Malformed {
            header: "X-Hub-Signature",
            ..
        })
    ));
    // Messages for the log.
    assert_eq!(
        check(&format!("sha1={digest}"))
            .expect_err("refused")
            .to_string(),
        "the X-Hub-Signature-256 header is malformed: it is a SHA-1 signature (`sha1=`); only `sha256=` signatures are accepted"
    );
}

#[test]
fn gitea_signature_header_forms() {
    let body = fixture("gitea/pull_request.opened.json");
    let digest = hmac_hex(SECRET, &body);
    assert_eq!(verify_gitea_signature(SECRET, &body, Some(&digest)), Ok(()));
    assert_eq!(
        verify_gitea_signature(SECRET, &body, Some("")),
        Err(SignatureError::Missing {
            header: "X-Gitea-Signature"
        })
    );
    assert!(matches!(
        verify_gitea_signature(SECRET, &body, Some(&digest[..63])),
        Err(SignatureError::Malformed { .. })
    ));

    // Forgejo's own header alone, and Gitea's with an empty X-Hub-Signature-256 (no secret on
    // the forge side sends `sha256=`).
    let forgejo = headers(&[("X-Forgejo-Signature", digest.clone())]);
    assert_eq!(
        verify_signature(Forge::Gitea, SECRET, &forgejo, &body),
        Ok(())
    );
    let gitea = headers(&[
        ("X-Hub-Signature-256", "sha256=".into()),
        ("X-Gitea-Signature", digest.clone()),
    ]);
    assert_eq!(
        verify_signature(Forge::Gitea, SECRET, &gitea, &body),
        Ok(())
    );
    let unsigned = headers(&[
        ("X-Hub-Signature-256", "sha256=".into()),
        ("X-Gitea-Signature", String::new()),
    ]);
    assert_eq!(
        verify_signature(Forge::Gitea, SECRET, &unsigned, &body),
        Err(SignatureError::Missing {
            header: "X-Gitea-Signature"
        })
    );
    // GitHub's header alone (a Gitea configured as a GitHub-type hook).
    let hub = headers(&[("X-Hub-Signature-256", format!("sha256={digest}"))]);
    assert_eq!(verify_signature(Forge::Gitea, SECRET, &hub, &body), Ok(()));
}

#[test]
fn gitlab_token_forms() {
    let body = fixture("gitlab/push.json");
    let token = headers(&[("X-Gitlab-Token", "s3cret-token".into())]);
    assert_eq!(
        verify_signature(Forge::GitLab, b"s3cret-token", &token, &body),
        Ok(())
    );
    assert_eq!(
        verify_signature(Forge::GitLab, b"s3cret-tokeN", &token, &body),
        Err(SignatureError::Mismatch {
            header: "X-Gitlab-Token"
        })
    );
    // An HMAC header is not a GitLab token.
    let hub = signed_headers(Forge::GitHub, b"s3cret-token", &body);
    assert_eq!(
        verify_signature(Forge::GitLab, b"s3cret-token", &hub, &body),
        Err(SignatureError::Missing {
            header: "X-Gitlab-Token"
        })
    );
    assert!(verify_gitlab_token(b"abc", Some("abcd")).is_err());
}

#[test]
fn thirty_mib_body_is_just_bytes_here() {
    // The 25 MiB limit is the handler's; these functions take whatever they are given.
    let mut body = fixture("github/push.branch-created.json");
    let filler = format!("{{\"padding\": \"{}\", ", "x".repeat(30 * 1024 * 1024));
    body.splice(0..1, filler.into_bytes());
    assert!(body.len() > 30 * 1024 * 1024);
    let signed = signed_headers(Forge::GitHub, SECRET, &body);
    assert_eq!(
        verify_signature(Forge::GitHub, SECRET, &signed, &body),
        Ok(())
    );
    let event = parse_webhook(Forge::GitHub, "push", &body).expect("still a push");
    assert_eq!(push_of(&event).after, GH_TAGGED);

    let garbage = vec![b'{'; 30 * 1024 * 1024];
    assert!(matches!(
        parse_webhook(Forge::GitHub, "push", &garbage),
        Err(PayloadError::NotJson { .. })
    ));
}

// ---- malformed payloads ----

#[test]
fn malformed_payloads_name_what_is_wrong() {
    let cases: Vec<(Forge, &str, Vec<u8>, &str)> = vec![
        (
            Forge::GitHub,
            "push",
            b"".to_vec(),
            "the body is not valid JSON",
        ),
        (
            Forge::GitHub,
            "push",
            b"{\"ref\": ".to_vec(),
            "the body is not valid JSON",
        ),
        (
            Forge::GitHub,
            "push",
            b"[1, 2]".to_vec(),
            "the body is JSON but not an object",
        ),
        (
            Forge::GitHub,
            "push",
            b"payload=%7B%7D".to_vec(),
            "set the webhook's content type to application/json",
        ),
        (
            Forge::GitHub,
            "push",
            b"{}".to_vec(),
            "the payload has no `repository`",
        ),
        (
            Forge::GitLab,
            "Push Hook",
            b"{\"project\": 5}".to_vec(),
            "`project` is a number, expected an object",
        ),
    ];
    for (forge, event, body, message) in cases {
        let err = parse_webhook(forge, event, &body).expect_err("malformed");
        assert!(
            err.to_string().contains(message),
            "{:?}: {err}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// Removes `pointer` from a fixture and returns the error of parsing the rest.
fn without(forge: Forge, file: &str, pointer: &str) -> PayloadError {
    let mut value = raw(forge, file);
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object")
        .remove(key)
        .expect("field present");
    let body = serde_json::to_vec(&value).expect("serialises");
    parse_webhook(forge, &event_header(forge, file), &body).expect_err("field missing")
}

#[test]
fn missing_fields_are_named() {
    let cases = [
        (Forge::GitHub, "push.branch-created.json", "/after", "after"),
        (Forge::GitHub, "push.branch-created.json", "/ref", "ref"),
        (
            Forge::GitHub,
            "pull_request.opened.json",
            "/pull_request/head/sha",
            "pull_request.head.sha",
        ),
        (
            Forge::GitHub,
            "pull_request.opened.json",
            "/repository/clone_url",
            "repository.clone_url",
        ),
        (
            Forge::Gitea,
            "pull_request.opened.json",
            "/pull_request/base/ref",
            "pull_request.base.ref",
        ),
        (
            Forge::GitLab,
            "merge_request.open.json",
            "/object_attributes/last_commit",
            "object_attributes.last_commit",
        ),
        (
            Forge::GitLab,
            "push.json",
            "/project/path_with_namespace",
            "project.path_with_namespace",
        ),
    ];
    for (forge, file, pointer, field) in cases {
        let err = without(forge, file, pointer);
        assert_eq!(err.field(), Some(field), "{file} without {pointer}: {err}");
        assert!(matches!(err, PayloadError::MissingField { .. }), "{err}");
    }
}

#[test]
fn wrong_values_are_refused() {
    let mut value = raw(Forge::GitHub, "push.branch-created.json");
    value["after"] = json!("HEAD");
    let err = parse_webhook(
        Forge::GitHub,
        "push",
        &serde_json::to_vec(&value).expect("serialises"),
    )
    .expect_err("not a sha");
    assert_eq!(
        err.to_string(),
        "`after` is not valid: \"HEAD\" is not a commit id (40 or 64 hex digits)"
    );

    let mut value = raw(Forge::GitHub, "push.branch-created.json");
    value["ref"] = json!("master");
    let err = parse_webhook(
        Forge::GitHub,
        "push",
        &serde_json::to_vec(&value).expect("serialises"),
    )
    .expect_err("short ref");
    assert_eq!(err.field(), Some("ref"));

    // A legal (if hostile) branch name is kept verbatim: keeping it out of scripts is the
    // runner's job. A name git itself refuses, or one that reads as an option, is refused.
    let mut value = raw(Forge::GitHub, "pull_request.opened.json");
    value["pull_request"]["head"]["ref"] = json!("zzz\";echo${IFS}pwned;#");
    let event = parse_webhook(
        Forge::GitHub,
        "pull_request",
        &serde_json::to_vec(&value).expect("serialises"),
    )
    .expect("a legal branch name");
    assert_eq!(pr_of(&event).head.git_ref, "zzz\";echo${IFS}pwned;#");
    for bad in ["--upload-pack=touch pwned", "a..b", "x y"] {
        value["pull_request"]["head"]["ref"] = json!(bad);
        let err = parse_webhook(
            Forge::GitHub,
            "pull_request",
            &serde_json::to_vec(&value).expect("serialises"),
        )
        .expect_err("not a ref name");
        assert_eq!(err.field(), Some("pull_request.head.ref"), "{bad}");
    }

    let mut value = raw(Forge::GitHub, "pull_request.opened.json");
    value["number"] = json!(-2);
    let err = parse_webhook(
        Forge::GitHub,
        "pull_request",
        &serde_json::to_vec(&value).expect("serialises"),
    )
    .expect_err("negative");
    assert_eq!(err.field(), Some("number"));
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let mut body = "[".repeat(200_000).into_bytes();
    body.extend("]".repeat(200_000).into_bytes());
    assert!(parse_webhook(Forge::GitHub, "push", &body).is_err());
    let mut object = b"{\"repository\": ".to_vec();
    object.extend("{\"a\":".repeat(100_000).into_bytes());
    assert!(parse_webhook(Forge::GitLab, "Push Hook", &object).is_err());
    assert!(forge::repository_name(Forge::GitHub, &object).is_err());
}

#[test]
fn unknown_events_are_accepted_as_other() {
    let body = fixture("github/push.branch-created.json");
    let event = parse_webhook(Forge::GitHub, "star", &body).expect("accepted");
    assert_eq!(event.kind, other("star", None));
    let body = fixture("gitlab/push.json");
    let event = parse_webhook(Forge::GitLab, "Pipeline Hook", &body).expect("accepted");
    assert_eq!(event.kind, other("pipeline", None));
}

// ---- no input panics ----

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            ".{0,50}".prop_map(Value::String),
            "[0-9a-f]{40}".prop_map(Value::String),
            "refs/(heads|tags)/[a-z./-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every JSON pointer of a value.
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    pointers(child, format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    pointers(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }

    fn all_fixtures() -> Vec<(Forge, String, Value, Vec<String>)> {
        let mut out = Vec::new();
        for forge in [Forge::GitHub, Forge::Gitea, Forge::GitLab] {
            for file in fixture_files(forge) {
                let value = raw(forge, &file);
                let mut ptrs = Vec::new();
                pointers(&value, String::new(), &mut ptrs);
                out.push((forge, event_header(forge, &file), value, ptrs));
            }
        }
        out
    }

    fn exercise(forge: Forge, event: &str, body: &[u8], header: &str) {
        if let Ok(parsed) = parse_webhook(forge, event, body) {
            let raw: Value = serde_json::from_slice(body).expect("parsed before");
            let _ = parsed.to_trigger_event();
            let _ = parsed.github_payload(&raw);
            let _ = parsed.head_sha();
        }
        let _ = forge::repository_name(forge, body);
        let _ = verify_github_signature(SECRET, body, Some(header));
        let _ = verify_gitea_signature(SECRET, body, Some(header));
        let _ = verify_gitlab_token(SECRET, Some(header));
        let mut map = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(header.as_bytes()) {
            for name in [
                "X-GitHub-Event",
                "X-GitHub-Delivery",
                "X-Gitea-Event",
                "X-Gitlab-Event",
                "Idempotency-Key",
                "X-Hub-Signature-256",
                "X-Gitea-Signature",
                "X-Gitlab-Token",
            ] {
                map.insert(name, value.clone());
            }
        }
        let _ = verify_signature(forge, SECRET, &map, body);
        let _ = read_delivery(forge, &map, body);
    }

    fn any_forge() -> impl Strategy<Value = Forge> {
        prop_oneof![Just(Forge::GitHub), Just(Forge::Gitea), Just(Forge::GitLab)]
    }

    fn any_event() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("push".to_owned()),
            Just("pull_request".to_owned()),
            Just("ping".to_owned()),
            Just("Push Hook".to_owned()),
            Just("Tag Push Hook".to_owned()),
            Just("Merge Request Hook".to_owned()),
            Just("System Hook".to_owned()),
            ".{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_and_headers(
            forge in any_forge(),
            event in any_event(),
            body in prop::collection::vec(any::<u8>(), 0..512),
            header in ".{0,80}",
        ) {
            exercise(forge, &event, &body, &header);
        }

        #[test]
        fn arbitrary_json(forge in any_forge(), event in any_event(), value in any_json()) {
            let body = serde_json::to_vec(&value).expect("serialises");
            exercise(forge, &event, &body, "sha256=00");
        }

        /// A fixture with one field (or one whole subtree) replaced by arbitrary JSON.
        #[test]
        fn fixtures_with_one_field_replaced(
            pick in any::<prop::sample::Index>(),
            field in any::<prop::sample::Index>(),
            replacement in any_json(),
        ) {
            let fixtures = all_fixtures();
            let (forge, event, mut value, ptrs) = fixtures[pick.index(fixtures.len())].clone();
            let pointer = &ptrs[field.index(ptrs.len())];
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = replacement;
            }
            let body = serde_json::to_vec(&value).expect("serialises");
            exercise(forge, &event, &body, "sha256=00");
        }
    }
}

// ---- commit statuses against a fake forge ----

mod status {
    use super::*;
    use gantry_server::forge::status::{
        CommitState, STATUS_USER_AGENT, StatusClient, StatusError, StatusUpdate, http_client,
    };
    use std::time::Duration;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SHA: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";

    fn update(repo: &str, state: CommitState) -> StatusUpdate {
        StatusUpdate {
            repo: repo.into(),
            sha: SHA.into(),
            state,
            context: "gantry/ci.yml/test".into(),
            description: Some("3 of 4 jobs passed".into()),
            target_url: Some("https://ci.example/runs/run_1".into()),
        }
    }

    #[tokio::test]
    async fn github_status_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/repos/octo/hello/statuses/{SHA}")))
            .and(header("Authorization", "Bearer gh-token"))
            .and(header("Accept", "application/vnd.github+json"))
            .and(header("User-Agent", STATUS_USER_AGENT))
            .and(header("X-GitHub-Api-Version", "2022-11-28"))
            .and(body_json(json!({
                "state": "failure",
                "context": "gantry/ci.yml/test",
                "description": "3 of 4 jobs passed",
                "target_url": "https://ci.example/runs/run_1",
            })))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let client = StatusClient::new(Forge::GitHub, &server.uri(), "gh-token").expect("client");
        client
            .send(&update("octo/hello", CommitState::Failure))
            .await
            .expect("sent");
    }

    #[tokio::test]
    async fn github_enterprise_base_path_is_kept() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/api/v3/repos/octo/hello/statuses/{SHA}")))
            .and(body_json(json!({
                "state": "pending",
                "context": "gantry/ci.yml/test",
                "description": "3 of 4 jobs passed",
                "target_url": "https://ci.example/runs/run_1",
            })))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let base = format!("{}/api/v3", server.uri());
        let client = StatusClient::new(Forge::GitHub, &base, "t").expect("client");
        // GitHub has no running state: pending.
        client
            .send(&update("octo/hello", CommitState::Running))
            .await
            .expect("sent");
    }

    #[tokio::test]
    async fn gitea_status_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!(
                "/api/v1/repos/example/example/statuses/{SHA}"
            )))
            .and(header("Authorization", "token gitea-token"))
            .and(header("Accept", "application/json"))
            .and(header("User-Agent", STATUS_USER_AGENT))
            .and(body_json(json!({
                "state": "success",
                "context": "gantry/ci.yml/test",
                "target_url": "https://ci.example/runs/run_1",
            })))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let client = StatusClient::new(Forge::Gitea, &server.uri(), "gitea-token").expect("client");
        let mut update = update("example/example", CommitState::Success);
        update.description = None;
        client.send(&update).await.expect("sent");
    }

    #[tokio::test]
    async fn gitlab_status_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!(
                "/api/v4/projects/group%2Fsub%2Fproject/statuses/{SHA}"
            )))
            .and(header("Authorization", "Bearer glpat-token"))
            .and(header("Accept", "application/json"))
            .and(header("User-Agent", STATUS_USER_AGENT))
            .and(body_json(json!({
                "state": "running",
                "name": "gantry/ci.yml/test",
                "description": "3 of 4 jobs passed",
                "target_url": "https://ci.example/runs/run_1",
            })))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let client =
            StatusClient::new(Forge::GitLab, &server.uri(), "glpat-token").expect("client");
        client
            .send(&update("group/sub/project", CommitState::Running))
            .await
            .expect("sent");
    }

    #[tokio::test]
    async fn gitlab_states() {
        let server = MockServer::start().await;
        for state in ["pending", "success", "failed", "canceled"] {
            Mock::given(method("POST"))
                .and(body_json(json!({
                    "state": state,
                    "name": "gantry/ci.yml/test",
                    "description": "3 of 4 jobs passed",
                    "target_url": "https://ci.example/runs/run_1",
                })))
                .respond_with(ResponseTemplate::new(201))
                .expect(1)
                .mount(&server)
                .await;
        }
        let client = StatusClient::new(Forge::GitLab, &server.uri(), "t").expect("client");
        for state in [
            CommitState::Pending,
            CommitState::Success,
            CommitState::Failure,
            CommitState::Canceled,
        ] {
            client
                .send(&update("g/p", state))
                .await
                .unwrap_or_else(|e| panic!("{state:?}: {e}"));
        }
    }

    #[tokio::test]
    async fn server_error_then_created_is_retryable_then_sent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let client = StatusClient::new(Forge::GitHub, &server.uri(), "t").expect("client");
        let update = update("o/r", CommitState::Success);
        let first = client.send(&update).await.expect_err("500");
        assert!(first.is_retryable(), "{first}");
        assert_eq!(first.http_status(), Some(500));
        assert!(matches!(first, StatusError::Server { status: 500, ref body } if body == "oops"));
        // The caller (the status outbox) retries.
        client.send(&update).await.expect("second attempt");
    }

    async fn answer(template: ResponseTemplate) -> StatusError {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(template)
            .mount(&server)
            .await;
        let client = StatusClient::new(Forge::GitHub, &server.uri(), "t").expect("client");
        client
            .send(&update("o/r", CommitState::Success))
            .await
            .expect_err("refused")
    }

    #[tokio::test]
    async fn client_errors_are_permanent_and_say_why() {
        let cases = [
            (401, "the token is missing, invalid or expired"),
            (403, "the token lacks permission"),
            (404, "the repository or commit was not found"),
            (422, "the forge could not process the status"),
            (302, "the API base URL redirects"),
        ];
        for (code, reason) in cases {
            let error = answer(
                ResponseTemplate::new(code)
                    .set_body_string("{\"message\": \"Bad credentials\"}")
                    .insert_header("Location", "https://elsewhere.example/"),
            )
            .await;
            assert!(!error.is_retryable(), "{code}: {error}");
            assert_eq!(error.http_status(), Some(code));
            let text = error.to_string();
            assert!(text.contains(reason), "{code}: {text}");
            assert!(text.contains("Bad credentials"), "{code}: {text}");
        }
    }

    #[tokio::test]
    async fn rate_limits_are_retryable() {
        let error = answer(ResponseTemplate::new(429).insert_header("Retry-After", "7")).await;
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));

        let error =
            answer(ResponseTemplate::new(403).insert_header("x-ratelimit-remaining", "0")).await;
        assert!(error.is_retryable(), "{error}");
        assert!(matches!(
            error,
            StatusError::RateLimited { status: 403, .. }
        ));

        let error = answer(ResponseTemplate::new(503)).await;
        assert!(error.is_retryable());
    }

    #[tokio::test]
    async fn timeouts_and_unreachable_forges_are_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let http = http_client(Duration::from_millis(200), Duration::from_millis(200))
            .expect("http client");
        let client =
            StatusClient::with_http_client(http.clone(), Forge::GitHub, &server.uri(), "t")
                .expect("client");
        let error = client
            .send(&update("o/r", CommitState::Success))
            .await
            .expect_err("too slow");
        assert!(matches!(error, StatusError::Timeout(_)), "{error}");
        assert!(error.is_retryable());

        // Nothing listens on a port that was just released.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let client = StatusClient::with_http_client(
            http,
            Forge::GitHub,
            &format!("http://127.0.0.1:{port}"),
            "t",
        )
        .expect("client");
        let error = client
            .send(&update("o/r", CommitState::Success))
            .await
            .expect_err("refused");
        assert!(error.is_retryable(), "{error}");
    }

    #[tokio::test]
    async fn invalid_updates_are_refused_before_sending() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        let client = StatusClient::new(Forge::GitHub, &server.uri(), "t").expect("client");
        let mut bad_sha = update("o/r", CommitState::Success);
        bad_sha.sha = "main".into();
        let mut bad_repo = update("o/r/../../admin", CommitState::Success);
        bad_repo.sha = SHA.into();
        let mut no_context = update("o/r", CommitState::Success);
        no_context.context = " ".into();
        for update in [bad_sha, bad_repo, no_context] {
            let error = client.send(&update).await.expect_err("invalid");
            assert!(matches!(error, StatusError::InvalidUpdate(_)), "{error}");
            assert!(!error.is_retryable());
        }
    }
}

//! Secrets at rest: sealed values open only with the right key and the right row, keys rotate,
//! and the key file and `GANTRY_SECRET_KEY` are checked with messages an operator can act on.

use gantry_server::secret::{
    KEY_ENV, KeyOrigin, KeyRing, MIN_SEALED_LEN, NONCE_LEN, SecretError, SecretKey, open,
    repository_field_aad, seal, sealed_aad, sealed_key_version, secret_aad,
};
use std::os::unix::fs::PermissionsExt;

const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes([byte; 32])
}

#[test]
fn round_trip() {
    let key = key(1);
    for plaintext in [
        &b""[..],
        b"hunter2",
        &[0u8; 4096][..],
        "çà et là 🔑".as_bytes(),
    ] {
        let aad = secret_aad(Some("repo_0123"), "DEPLOY_TOKEN");
        let sealed = seal(&key, &aad, plaintext);
        assert_eq!(sealed.len(), MIN_SEALED_LEN + plaintext.len());
        assert_eq!(open(&key, &aad, &sealed).expect("opens"), plaintext);
    }
}

#[test]
fn any_changed_byte_is_refused() {
    let key = key(2);
    let aad = secret_aad(None, "NPM_TOKEN");
    let sealed = seal(&key, &aad, b"npm_abcdef");
    for i in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x80;
        let error = open(&key, &aad, &tampered).expect_err("tampered");
        if i == 0 {
            // The version byte: the key it names is not there.
            assert!(
                matches!(error, SecretError::UnknownKeyVersion(0x81)),
                "{error}"
            );
        } else {
            assert!(matches!(error, SecretError::Open), "byte {i}: {error}");
        }
    }
    // Cut short, or with a byte appended.
    assert!(matches!(
        open(&key, &aad, &sealed[..sealed.len() - 1]),
        Err(SecretError::Open)
    ));
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(open(&key, &aad, &longer), Err(SecretError::Open)));
    assert!(matches!(
        open(&key, &aad, &sealed[..MIN_SEALED_LEN - 1]),
        Err(SecretError::Truncated(40))
    ));
    assert!(matches!(
        open(&key, &aad, &[]),
        Err(SecretError::Truncated(0))
    ));
}

#[test]
fn a_value_moved_to_another_row_does_not_open() {
    let key = key(3);
    let sealed = seal(&key, &secret_aad(Some("repo_a"), "TOKEN"), b"value");
    for aad in [
        secret_aad(Some("repo_b"), "TOKEN"),
        secret_aad(Some("repo_a"), "OTHER"),
        secret_aad(None, "TOKEN"),
        secret_aad(Some("repo_a"), "token"),
        b"repo_a\0TOKEN\0".to_vec(),
        repository_field_aad("repo_a", "TOKEN"),
        Vec::new(),
    ] {
        assert!(
            matches!(open(&key, &aad, &sealed), Err(SecretError::Open)),
            "{:?}",
            String::from_utf8_lossy(&aad)
        );
    }
    // A sealed webhook secret cannot become a job secret.
    let webhook = seal(
        &key,
        &repository_field_aad("repo_a", "webhook_secret"),
        b"whsec",
    );
    assert!(
        open(
            &key,
            &secret_aad(Some("repo_a"), "webhook_secret"),
            &webhook
        )
        .is_err()
    );
}

#[test]
fn aad_layout() {
    assert_eq!(secret_aad(Some("repo_1f"), "TOKEN"), b"repo_1f\0TOKEN");
    assert_eq!(secret_aad(None, "TOKEN"), b"global\0TOKEN");
    assert_eq!(
        repository_field_aad("repo_1f", "status_token"),
        b"repositories\0repo_1f\0status_token"
    );
}

#[test]
fn wrong_key_is_refused() {
    let aad = secret_aad(None, "X");
    let sealed = seal(&key(4), &aad, b"value");
    assert!(matches!(
        open(&key(5), &aad, &sealed),
        Err(SecretError::Open)
    ));
    // Same bytes, other version: refused before trying.
    let other_version = key(4).with_version(2).expect("version");
    assert!(matches!(
        open(&other_version, &aad, &sealed),
        Err(SecretError::UnknownKeyVersion(1))
    ));
}

#[test]
fn keys_rotate_through_the_ring() {
    let old = key(6);
    let new = key(7).with_version(2).expect("version");
    let aad = secret_aad(Some("repo_a"), "TOKEN");
    let sealed_old = seal(&old, &aad, b"v1 secret");
    assert_eq!(sealed_key_version(&sealed_old), Some(1));

    let ring = KeyRing::new(new.clone())
        .with_old_key(old.clone())
        .expect("distinct versions");
    assert_eq!(ring.open(&aad, &sealed_old).expect("old key"), b"v1 secret");
    assert!(ring.needs_reseal(&sealed_old));

    let resealed = ring
        .reseal(&aad, &sealed_old)
        .expect("opens")
        .expect("moved to the current key");
    assert_eq!(sealed_key_version(&resealed), Some(2));
    assert!(!ring.needs_reseal(&resealed));
    assert_eq!(ring.reseal(&aad, &resealed).expect("opens"), None);

    // Once every value is resealed, the old key can go.
    let new_only = KeyRing::new(new);
    assert_eq!(new_only.open(&aad, &resealed).expect("opens"), b"v1 secret");
    assert!(matches!(
        new_only.open(&aad, &sealed_old),
        Err(SecretError::UnknownKeyVersion(1))
    ));
    // Resealing does not launder a value into another row.
    assert!(
        ring.reseal(&secret_aad(Some("repo_b"), "TOKEN"), &sealed_old)
            .is_err()
    );

    // New values use the current key.
    assert_eq!(sealed_key_version(&ring.seal(&aad, b"x")), Some(2));
    assert!(matches!(
        KeyRing::new(key(8)).with_old_key(key(9)),
        Err(SecretError::DuplicateVersion(1))
    ));
}

// ---- GANTRY_SECRET_KEY ----

#[test]
fn env_key_formats() {
    let expected: Vec<u8> = (0u8..32).collect();
    let bytes: [u8; 32] = expected.clone().try_into().expect("32 bytes");
    let from_bytes = SecretKey::from_bytes(bytes);
    let base64_std = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let base64_url_no_pad = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    for text in [
        HEX_KEY.to_owned(),
        HEX_KEY.to_uppercase(),
        format!("  {HEX_KEY}\n"),
        base64_std.to_owned(),
        base64_url_no_pad.to_owned(),
    ] {
        let parsed = SecretKey::parse(&text, KEY_ENV).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(parsed, from_bytes, "{text:?}");
    }
    // URL-safe alphabet with `-` and `_`.
    let url_safe = "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8=";
    assert!(SecretKey::parse(url_safe, KEY_ENV).is_ok());

    let (loaded, origin) =
        SecretKey::load(Some(HEX_KEY), std::path::Path::new("/nonexistent/key")).expect("env");
    assert_eq!(origin, KeyOrigin::Env);
    assert_eq!(loaded.version(), 1);
    // A sealed value opens with the same key given in another format.
    let sealed = seal(&loaded, b"a", b"b");
    let again = SecretKey::parse(base64_std, KEY_ENV).expect("base64");
    assert_eq!(open(&again, b"a", &sealed).expect("opens"), b"b");
}

#[test]
fn malformed_env_keys_say_what_is_expected_without_echoing() {
    let cases = [
        ("", "it is empty"),
        ("   ", "it is empty"),
        (
            &HEX_KEY[..62],
            "it has 62 hex digits; the key must be exactly 64 hex digits",
        ),
        (
            "AAECAwQFBgcICQoLDA0ODw==",
            "it is base64 of 16 bytes; the key must be exactly 32 bytes",
        ),
        (
            "correct horse battery staple!",
            "neither 64 hex digits nor base64",
        ),
    ];
    for (text, message) in cases {
        let error = SecretKey::parse(text, KEY_ENV).expect_err("malformed");
        let rendered = error.to_string();
        assert!(
            rendered.starts_with("GANTRY_SECRET_KEY is malformed: "),
            "{rendered}"
        );
        assert!(rendered.contains(message), "{text:?}: {rendered}");
        if text.trim().len() > 8 {
            assert!(
                !rendered.contains(text.trim()),
                "the key leaked: {rendered}"
            );
        }
    }
    let error = SecretKey::load(Some("nope"), std::path::Path::new("/nonexistent/key"))
        .expect_err("malformed env wins over the file");
    assert!(matches!(error, SecretError::MalformedKey { .. }));
}

// ---- key file ----

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn key_file_is_created_once_with_mode_0600() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data").join("secret.key");

    let (created, origin) = SecretKey::load(None, &path).expect("created");
    assert_eq!(origin, KeyOrigin::Created(path.clone()));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read(&path).expect("read").len(), 32);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["secret.key"]);

    let (again, origin) = SecretKey::load(None, &path).expect("read back");
    assert_eq!(origin, KeyOrigin::File(path.clone()));
    assert_eq!(again, created);
    let sealed = seal(&created, b"aad", b"survives a restart");
    assert_eq!(
        open(&again, b"aad", &sealed).expect("opens"),
        b"survives a restart"
    );

    // Two servers' keys differ.
    let other = dir.path().join("other.key");
    let (different, _) = SecretKey::read_or_create_file(&other).expect("created");
    assert_ne!(different, created);
}

#[test]
fn readable_key_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("secret.key");
    SecretKey::read_or_create_file(&path).expect("created");
    for bad in [0o644, 0o640, 0o604, 0o660, 0o602] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).expect("chmod");
        let error = SecretKey::load(None, &path).expect_err("refused");
        assert!(
            matches!(error, SecretError::KeyFilePermissions { mode, .. } if mode == bad),
            "{bad:o}: {error}"
        );
        let text = error.to_string();
        assert!(text.contains(&format!("mode 0{bad:o}")), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    assert!(
        SecretKey::read_file(&path).is_ok(),
        "read-only by the owner is fine"
    );
}

#[test]
fn key_file_contents_are_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    };
    // The key as text, as `openssl rand -hex 32 > key` writes it.
    let hex = write("hex.key", format!("{HEX_KEY}\n").as_bytes());
    assert_eq!(
        SecretKey::read_file(&hex).expect("hex text"),
        SecretKey::parse(HEX_KEY, KEY_ENV).expect("hex")
    );
    let short = write("short.key", &[0xff; 31]);
    let error = SecretKey::read_file(&short).expect_err("31 bytes");
    assert!(error.to_string().contains("it holds 31 bytes"), "{error}");
    let empty = write("empty.key", b"");
    let error = SecretKey::read_file(&empty).expect_err("empty");
    assert!(
        error.to_string().contains("is malformed: it is empty"),
        "{error}"
    );

    let missing = dir.path().join("missing.key");
    assert!(matches!(
        SecretKey::read_file(&missing),
        Err(SecretError::KeyFileIo { .. })
    ));
}

#[test]
fn nonces_do_not_repeat() {
    let key = key(10);
    let mut nonces = std::collections::HashSet::new();
    for _ in 0..10_000 {
        let sealed = seal(&key, b"", b"");
        assert!(nonces.insert(sealed[1..1 + NONCE_LEN].to_vec()));
    }
}

/// Writes a key file (or previous-keys file) with mode 0600.
fn write_private(path: &std::path::Path, text: &str) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, text).expect("write key file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A server state on `dir`, as `gantry server` opens it.
async fn open_state(
    dir: &std::path::Path,
) -> anyhow::Result<std::sync::Arc<gantry_server::app::AppState>> {
    let config = gantry_server::config::ServerConfig::new(dir);
    let (state, _) = gantry_server::app::AppState::open(config).await?;
    Ok(state)
}

/// Stores a repository with a sealed webhook secret and a global secret.
async fn store_sealed_values(state: &gantry_server::app::AppState) {
    use gantry_server::store::NewRepository;
    let repo = state
        .db
        .insert_repository(
            &NewRepository {
                name: "owner/app".into(),
                clone_url: "file:///nowhere".into(),
                forge: gantry_server::forge::Forge::GitHub,
                webhook_secret: None,
                allow_unsigned: false,
                status_url: None,
                status_token: None,
            },
            1,
        )
        .await
        .expect("repository");
    let id = repo.id.to_string();
    let hook = state
        .keys
        .seal(&repository_field_aad(&id, "webhook_secret"), b"hook-secret");
    let update = gantry_server::store::RepositoryUpdate {
        webhook_secret: Some(Some(hook)),
        ..Default::default()
    };
    state
        .db
        .update_repository(&repo.id, &update)
        .await
        .expect("webhook secret");
    let sealed = state
        .keys
        .seal(&secret_aad(None, "DEPLOY_TOKEN"), b"token-value");
    state
        .db
        .upsert_secret(None, "DEPLOY_TOKEN", &sealed, 1)
        .await
        .expect("secret");
}

/// The plaintexts of the stored values, opened with the state's keys, and their key versions.
async fn opened_values(state: &gantry_server::app::AppState) -> Vec<(String, Option<u8>)> {
    let mut out = Vec::new();
    for value in state.db.list_sealed_values().await.expect("list") {
        let plain = state
            .keys
            .open(&sealed_aad(&value.at), &value.sealed)
            .expect("opens");
        out.push((
            String::from_utf8(plain).expect("utf-8"),
            sealed_key_version(&value.sealed),
        ));
    }
    out.sort();
    out
}

#[tokio::test]
async fn keys_rotate_at_start_and_the_old_key_is_then_no_longer_needed() {
    let dir = tempfile::tempdir().expect("data dir");
    let state = open_state(dir.path()).await.expect("first start");
    store_sealed_values(&state).await;
    state.db.close().await;
    drop(state);
    let key_file = dir.path().join("secret.key");
    let old = SecretKey::read_file(&key_file).expect("the created key");

    // The operator rotates: a new key with version 2, the old one as a previous key.
    let old_hex = std::fs::read(&key_file).expect("key bytes");
    assert_eq!(old_hex.len(), 32, "the created key file holds 32 raw bytes");
    write_private(
        &dir.path().join("secret.key.previous"),
        &format!("# retired 2026-12-07\n{}\n", hex::encode(&old_hex)),
    );
    write_private(&key_file, &format!("v2:{}\n", "ab".repeat(32)));
    let state = open_state(dir.path())
        .await
        .expect("start with the new key");
    assert_eq!(
        opened_values(&state).await,
        [
            ("hook-secret".to_owned(), Some(2)),
            ("token-value".to_owned(), Some(2))
        ]
    );
    state.db.close().await;
    drop(state);

    // Without the old key: everything still opens, and nothing is sealed with it any more.
    std::fs::remove_file(dir.path().join("secret.key.previous")).expect("retire");
    let state = open_state(dir.path())
        .await
        .expect("start without the old key");
    let values = opened_values(&state).await;
    assert_eq!(values.len(), 2);
    for value in state.db.list_sealed_values().await.expect("list") {
        assert!(
            open(&old, &sealed_aad(&value.at), &value.sealed).is_err(),
            "the old key opens nothing"
        );
    }
}

#[tokio::test]
async fn a_start_with_the_wrong_or_a_missing_key_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("data dir");
    let state = open_state(dir.path()).await.expect("first start");
    store_sealed_values(&state).await;
    state.db.close().await;
    drop(state);
    let key_file = dir.path().join("secret.key");
    let original = std::fs::read(&key_file).expect("key bytes");

    // A new key with a new version, but the old one not given.
    write_private(&key_file, &format!("v2:{}", "cd".repeat(32)));
    let error = format!("{:#}", open_state(dir.path()).await.err().expect("refused"));
    assert!(
        error.contains("sealed with key version 1, which is not configured")
            && error.contains("GANTRY_SECRET_KEY_PREVIOUS"),
        "{error}"
    );

    // Another key under the same version: it opens nothing.
    write_private(&key_file, &"ef".repeat(32));
    let error = format!("{:#}", open_state(dir.path()).await.err().expect("refused"));
    assert!(
        error.contains("opens none of the 2 stored secret values"),
        "{error}"
    );

    // The same version twice.
    write_private(&key_file, &hex::encode(&original));
    write_private(&dir.path().join("secret.key.previous"), &"01".repeat(32));
    let error = format!("{:#}", open_state(dir.path()).await.err().expect("refused"));
    assert!(error.contains("two keys have version 1"), "{error}");
    std::fs::remove_file(dir.path().join("secret.key.previous")).expect("remove");

    // The key file lost: a new one would be created, and the server refuses to use it.
    std::fs::remove_file(&key_file).expect("lose the key");
    let error = format!("{:#}", open_state(dir.path()).await.err().expect("refused"));
    assert!(
        error.contains("holds sealed secrets but the key that sealed them is missing"),
        "{error}"
    );

    // The original key back: the server starts and its values open.
    write_private(&key_file, &hex::encode(&original));
    open_state(dir.path())
        .await
        .expect("start with the right key");
}

#[test]
fn key_versions_are_read_from_a_prefix() {
    let key = SecretKey::parse(&format!("v7:{HEX_KEY}"), "test").expect("versioned");
    assert_eq!(key.version(), 7);
    assert_eq!(
        SecretKey::parse(HEX_KEY, "test").expect("plain").version(),
        1
    );
    for bad in ["v0:", "v256:", "vx:"] {
        let error = SecretKey::parse(&format!("{bad}{HEX_KEY}"), "test")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("expected v1 to v255"), "{bad}: {error}");
        assert!(!error.contains(HEX_KEY), "the key is not echoed: {error}");
    }
    let previous = SecretKey::load_previous(
        Some(&format!("v2:{HEX_KEY}, {}", "11".repeat(32))),
        std::path::Path::new("/nonexistent/secret.key.previous"),
    )
    .expect("two previous keys");
    assert_eq!(
        previous.iter().map(SecretKey::version).collect::<Vec<_>>(),
        [2, 1]
    );
}

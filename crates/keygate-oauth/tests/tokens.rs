//! The token rules, one row per bad token: each is refused, for the stated reason,
//! and the good tokens of every accepted algorithm pass.

mod support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keygate_oauth::{
    AuthError, Directory, Filter, Identity, Jwks, PoolEntry, ProviderEntry, StsKey, TokenError,
    MAX_TOKEN_BYTES,
};
use serde_json::{json, Value};
use support::*;

const ISS: &str = "http://127.0.0.1:3000";
const OTHER_ISS: &str = "http://127.0.0.1:3001";
const KEYGATE: &str = "http://127.0.0.1:8080";
const NOW: i64 = 1_800_000_000;

struct World {
    dir: Directory,
    rsa: TestKey,
    ec: TestKey,
    ed: TestKey,
    other: TestKey,
    sts: StsKey,
    retired: StsKey,
}

fn pool(id: &str, provider: &str, filter: &str, enabled: bool) -> PoolEntry {
    PoolEntry {
        id: id.into(),
        provider_id: provider.into(),
        identity_claim: "claims.sub".into(),
        filter: Filter::compile(filter).expect("filter"),
        enabled,
    }
}

fn world() -> World {
    let rsa = rsa("rsa-1", Algorithm::RS256, 1);
    let ec = es256("ec-1", 2);
    let ed = ed25519("ed-1", 3);
    let other = ed25519("other-1", 4);
    let sts = StsKey::derive("kgk-1", [7; 32]).expect("sts key");
    let retired = StsKey::derive("kgk-0", [6; 32]).expect("sts key");
    let providers = [
        ProviderEntry {
            id: "op-main".into(),
            issuer: ISS.into(),
            jwks: Jwks::parse(&jwks(&[&rsa, &ec, &ed])).expect("jwks"),
            enabled: true,
        },
        ProviderEntry {
            id: "op-other".into(),
            issuer: OTHER_ISS.into(),
            jwks: Jwks::parse(&jwks(&[&other])).expect("jwks"),
            enabled: true,
        },
        ProviderEntry {
            id: "op-off".into(),
            issuer: "http://127.0.0.1:3002".into(),
            jwks: Jwks::parse(&jwks(&[&other])).expect("jwks"),
            enabled: false,
        },
    ];
    let pools = [
        pool(
            "pool-pay",
            "op-main",
            r#"claims.aud == "kafka" && "payments" in claims.groups"#,
            true,
        ),
        pool("pool-all", "op-main", r#"claims.aud == "kafka""#, true),
        pool("pool-off", "op-main", "true", false),
        pool("pool-else", "op-other", "true", true),
    ];
    let mut sts_keys = Jwks::default();
    sts_keys.keys.push(sts.public().clone());
    World {
        dir: Directory::new(providers, pools, KEYGATE.into(), sts_keys, 30),
        rsa,
        ec,
        ed,
        other,
        sts,
        retired,
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "client-7", "aud": "kafka", "groups": ["payments"], "iat": NOW - 10, "exp": NOW + 300})
}

fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().expect("object") {
        if v.is_null() {
            base.as_object_mut().expect("object").remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

#[test]
fn every_accepted_algorithm_authenticates() {
    let w = world();
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
    ] {
        let t = sign_as(&w.rsa, alg, &claims());
        let id = w
            .dir
            .authenticate(&t, Some("pool-pay"), NOW, false)
            .expect("valid");
        assert_eq!(id.subject, "client-7", "{alg:?}");
    }
    for key in [&w.ec, &w.ed] {
        let t = sign(key, &claims());
        assert!(w.dir.authenticate(&t, Some("pool-pay"), NOW, false).is_ok());
    }
    // ES384 through its own provider key set.
    let k384 = es384("ec384", 9);
    let set = Jwks::parse(&jwks(&[&k384])).expect("jwks");
    let claims = keygate_oauth::verify(&sign(&k384, &claims()), &set, ISS, NOW, 0).expect("es384");
    assert_eq!(claims["sub"], "client-7");
}

#[test]
fn without_a_pool_every_matching_pool_applies() {
    let w = world();
    let t = sign(&w.ed, &claims());
    let id = w.dir.authenticate(&t, None, NOW, false).expect("valid");
    assert_eq!(
        id,
        Identity {
            pools: vec!["pool-all".into(), "pool-pay".into()],
            subject: "client-7".into(),
            expires_at: NOW + 300,
            sts: false
        }
    );
    let t = sign(&w.ed, &with(claims(), json!({"groups": []})));
    assert_eq!(
        w.dir
            .authenticate(&t, None, NOW, false)
            .expect("valid")
            .pools,
        ["pool-all"]
    );
}

#[test]
fn sts_tokens_verify_against_keygates_keys() {
    let w = world();
    let t = w
        .sts
        .issue(KEYGATE, "pool-pay", "client-7", "org-1", NOW, 600, "j1")
        .expect("issue");
    let id = w.dir.authenticate(&t, None, NOW + 10, true).expect("valid");
    assert!(id.sts && id.pools == ["pool-pay"] && id.expires_at == NOW + 600);
    // Not accepted where STS tokens are not (they are keygate's, not an IdP's).
    assert_eq!(
        w.dir.authenticate(&t, None, NOW, false).err(),
        Some(AuthError::UnknownIssuer)
    );
    // Lifetime is capped at 900 s.
    let long = w
        .sts
        .issue(KEYGATE, "pool-pay", "c", "org-1", NOW, 100_000, "j2")
        .expect("issue");
    assert_eq!(
        w.dir.authenticate(&long, None, NOW + 900 + 31, true).err(),
        Some(AuthError::Token(TokenError::Expired))
    );
}

fn hmac_with_public_key(w: &World) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rsa-1".into());
    jsonwebtoken::encode(
        &h,
        &claims(),
        &EncodingKey::from_secret(w.rsa.public_pem.as_bytes()),
    )
    .expect("encode")
}

#[test]
fn bad_tokens_are_refused_for_the_right_reason() {
    let w = world();
    let good = sign(&w.ed, &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let header = |h: Value| format!("{}.{}.{}", b64(&h), parts[1], parts[2]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with(claims(), json!({"sub": "admin"}))),
        parts[2]
    );
    let sts_expired = w
        .sts
        .issue(KEYGATE, "pool-pay", "c", "org-1", NOW - 2000, 900, "j")
        .expect("issue");
    let sts_retired = w
        .retired
        .issue(KEYGATE, "pool-pay", "c", "org-1", NOW, 900, "j")
        .expect("issue");
    let impostor = ed25519("ed-1", 99); // same kid, another key
    use AuthError as A;
    use TokenError as T;
    #[rustfmt::skip]
    let table: Vec<(&str, String, Option<&str>, bool, AuthError)> = vec![
        ("alg none", format!("{}.{}.", b64(&json!({"alg":"none"})), parts[1]), None, false, A::Token(T::Unsigned)),
        ("alg none with a signature", header(json!({"alg":"none","kid":"ed-1"})), None, false, A::Token(T::Unsigned)),
        ("HS256 with the provider's public key as secret", hmac_with_public_key(&w), None, false, A::Token(T::Hmac("HS256".into()))),
        ("HS512", header(json!({"alg":"HS512"})), None, false, A::Token(T::Hmac("HS512".into()))),
        ("unknown algorithm", header(json!({"alg":"XX999"})), None, false, A::Token(T::AlgorithmNotAllowed("XX999".into()))),
        ("expired", sign(&w.ed, &with(claims(), json!({"exp": NOW - 31}))), None, false, A::Token(T::Expired)),
        ("not yet valid", sign(&w.ed, &with(claims(), json!({"nbf": NOW + 31}))), None, false, A::Token(T::NotYetValid)),
        ("no exp", sign(&w.ed, &with(claims(), json!({"exp": null}))), None, false, A::Token(T::MissingExpiry)),
        ("issuer with a trailing slash", sign(&w.ed, &with(claims(), json!({"iss": format!("{ISS}/")}))), None, false, A::UnknownIssuer),
        ("no issuer", sign(&w.ed, &with(claims(), json!({"iss": null}))), None, false, A::Token(T::WrongIssuer)),
        ("unknown kid", sign(&ed25519("ed-new", 5), &claims()), None, false, A::UnknownKey { provider_id: "op-main".into(), kid: "ed-new".into() }),
        ("tampered payload", tampered, None, false, A::Token(T::BadSignature)),
        ("another key with the same kid", sign(&impostor, &claims()), None, false, A::Token(T::BadSignature)),
        ("EC key named by an RS256 header", header(json!({"alg":"RS256","kid":"ec-1"})), None, false, A::Token(T::KeyAlgorithmMismatch("RS256".into()))),
        ("header not base64url", format!("!!!.{}.{}", parts[1], parts[2]), None, false, A::Token(T::Malformed("segment is not base64url"))),
        ("header not JSON", format!("{}.{}.{}", base64_raw(b"not json"), parts[1], parts[2]), None, false, A::Token(T::Malformed("segment is not JSON"))),
        ("payload not JSON", format!("{}.{}.{}", parts[0], base64_raw(b"{"), parts[2]), None, false, A::Token(T::Malformed("segment is not JSON"))),
        ("two segments", format!("{}.{}", parts[0], parts[1]), None, false, A::Token(T::Malformed("not three segments"))),
        ("empty", String::new(), None, false, A::Token(T::Malformed("not three segments"))),
        ("JWE", format!("{}.a.b.c.d", b64(&json!({"alg":"RSA-OAEP","enc":"A256GCM"}))), None, false, A::Token(T::Encrypted)),
        ("critical extension", header(json!({"alg":"EdDSA","kid":"ed-1","crit":["x"]})), None, false, A::Token(T::Malformed("critical header extensions"))),
        ("over 16 KiB", sign(&w.ed, &with(claims(), json!({"pad": "x".repeat(MAX_TOKEN_BYTES)}))), None, false, A::Token(T::TooLarge)),
        ("missing identity claim", sign(&w.ed, &with(claims(), json!({"sub": null}))), Some("pool-pay"), false, A::MissingIdentityClaim("claims.sub".into())),
        ("filter false", sign(&w.ed, &with(claims(), json!({"groups": ["other"]}))), Some("pool-pay"), false, A::FilterFalse("pool-pay".into())),
        ("no pool matches", sign(&w.ed, &with(claims(), json!({"aud": "web"}))), None, false, A::NoPoolMatches),
        ("disabled pool", sign(&w.ed, &claims()), Some("pool-off"), false, A::PoolDisabled("pool-off".into())),
        ("pool of another provider", sign(&w.ed, &claims()), Some("pool-else"), false, A::PoolOfOtherProvider("pool-else".into())),
        ("pool that does not exist", sign(&w.ed, &claims()), Some("pool-nope"), false, A::PoolNotFound("pool-nope".into())),
        ("disabled provider", sign(&w.other, &with(claims(), json!({"iss": "http://127.0.0.1:3002"}))), None, false, A::ProviderDisabled("op-off".into())),
        ("STS token past its lifetime", sts_expired, None, true, A::Token(T::Expired)),
        ("STS token signed by a retired key", sts_retired, None, true, A::Token(T::UnknownKey("kgk-0".into()))),
    ];
    assert!(table.len() >= 20);
    for (what, token, pool, sts, want) in table {
        assert_eq!(
            w.dir.authenticate(&token, pool, NOW, sts).err(),
            Some(want),
            "{what}"
        );
    }
}

fn base64_raw(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

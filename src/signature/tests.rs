//! Test vectors from docs/providers.md and the Standard Webhooks spec, and every way a request
//! must fail to verify.

use super::key::SECRET_PREFIX;
use super::*;
use axum::http::HeaderValue;
use ed25519_dalek::SigningKey;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: i64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const ENTRY: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const SECRET_2: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID_2: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const TS_2: i64 = 1649367553;
const BODY_2: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const ENTRY_2: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

const PUBLIC: &str = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=";
const ENTRY_V1A: &str =
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==";

fn key(text: &str) -> Key {
    text.parse().unwrap()
}

fn verifier(keys: &[&str]) -> Verifier {
    Verifier::new(keys.iter().map(|k| key(k)).collect(), DEFAULT_TOLERANCE)
}

fn headers(prefix: &str, id: &str, ts: i64, signature: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in [
        ("id", id.to_owned()),
        ("timestamp", ts.to_string()),
        ("signature", signature.to_owned()),
    ] {
        let name = axum::http::HeaderName::try_from(format!("{prefix}-{name}")).unwrap();
        map.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    map
}

fn svix(signature: &str) -> HeaderMap {
    headers("svix", ID, TS, signature)
}

#[test]
fn first_vector_verifies() {
    let verified = verifier(&[SECRET]).verify(&svix(ENTRY), BODY, TS).unwrap();
    assert_eq!(
        verified,
        Verified {
            id: ID.into(),
            timestamp: TS
        }
    );
}

#[test]
fn second_vector_verifies() {
    let map = headers("svix", ID_2, TS_2, ENTRY_2);
    assert!(verifier(&[SECRET_2]).verify(&map, BODY_2, TS_2).is_ok());
}

#[test]
fn sign_reproduces_both_vectors() {
    assert_eq!(Signer::new(key(SECRET)).unwrap().sign(ID, TS, BODY), ENTRY);
    assert_eq!(
        Signer::new(key(SECRET_2)).unwrap().sign(ID_2, TS_2, BODY_2),
        ENTRY_2
    );
}

#[test]
fn v1a_vector_verifies_with_public_key() {
    assert!(verifier(&[PUBLIC])
        .verify(&svix(ENTRY_V1A), BODY, TS)
        .is_ok());
}

#[test]
fn hmac_key_does_not_verify_v1a_and_public_key_does_not_verify_v1() {
    assert_eq!(
        verifier(&[SECRET]).verify(&svix(ENTRY_V1A), BODY, TS),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        verifier(&[PUBLIC]).verify(&svix(ENTRY), BODY, TS),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn ed25519_secret_key_signs_and_verifies() {
    let seed = BASE64.encode([7u8; 32]);
    let secret = key(&format!("whsk_{seed}"));
    let entry = Signer::new(secret.clone()).unwrap().sign(ID, TS, BODY);
    assert!(entry.starts_with("v1a,"));
    assert!(Verifier::new(vec![secret.clone()], DEFAULT_TOLERANCE)
        .verify(&svix(&entry), BODY, TS)
        .is_ok());
    let public = BASE64.encode(
        SigningKey::from_bytes(&[7u8; 32])
            .verifying_key()
            .to_bytes(),
    );
    assert!(verifier(&[&format!("whpk_{public}")])
        .verify(&svix(&entry), BODY, TS)
        .is_ok());
}

#[test]
fn ed25519_secret_key_accepts_64_byte_keypair() {
    let pair = BASE64.encode(SigningKey::from_bytes(&[7u8; 32]).to_keypair_bytes());
    assert!(format!("whsk_{pair}").parse::<Key>().is_ok());
    let mut wrong = SigningKey::from_bytes(&[7u8; 32]).to_keypair_bytes();
    wrong[40] ^= 1;
    let wrong = format!("whsk_{}", BASE64.encode(wrong));
    assert_eq!(
        wrong.parse::<Key>().unwrap_err(),
        KeyError::Ed25519(SECRET_PREFIX)
    );
}

#[test]
fn webhook_header_family_verifies() {
    let map = headers("webhook", ID, TS, ENTRY);
    assert_eq!(verifier(&[SECRET]).verify(&map, BODY, TS).unwrap().id, ID);
}

#[test]
fn webhook_family_wins_when_webhook_id_present() {
    let mut map = headers("webhook", ID, TS, ENTRY);
    map.extend(headers("svix", "other", TS, "v1,AAAA"));
    assert_eq!(verifier(&[SECRET]).verify(&map, BODY, TS).unwrap().id, ID);
}

#[test]
fn several_entries_only_last_matches() {
    let header = format!("v1,Zm9v v1,{} {ENTRY}", BASE64.encode([0u8; 32]));
    assert!(verifier(&[SECRET]).verify(&svix(&header), BODY, TS).is_ok());
}

#[test]
fn rotation_second_key_matches() {
    assert!(verifier(&[SECRET_2, SECRET])
        .verify(&svix(ENTRY), BODY, TS)
        .is_ok());
}

#[test]
fn unknown_versions_and_malformed_entries_are_skipped() {
    let header = format!("v2,abc garbage v1,!!notbase64 v1a,AAAA {ENTRY}");
    assert!(verifier(&[SECRET]).verify(&svix(&header), BODY, TS).is_ok());
}

/// Found by tests/signature_differential.rs: the first vector's `=` flipped into a tab (which
/// header parsing trims) was accepted, because entries were decoded as leniently as keys.
#[test]
fn an_entry_without_its_padding_is_refused() {
    for (keys, entry) in [(SECRET, ENTRY), (PUBLIC, ENTRY_V1A)] {
        let flipped = entry.replacen('=', "\t", 1);
        let unpadded = entry.trim_end_matches('=');
        for header in [flipped.as_str(), unpadded] {
            assert_eq!(
                verifier(&[keys]).verify(&svix(header), BODY, TS),
                Err(VerifyError::BadSignature),
                "{header:?}"
            );
        }
        assert!(verifier(&[keys]).verify(&svix(entry), BODY, TS).is_ok());
    }
}

#[test]
fn only_wrong_entries_is_bad_signature() {
    let header = format!("v1,{} v1,{}", BASE64.encode([1u8; 32]), &ENTRY_2[3..]);
    assert_eq!(
        verifier(&[SECRET]).verify(&svix(&header), BODY, TS),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn only_malformed_entries_is_bad_signature() {
    assert_eq!(
        verifier(&[SECRET]).verify(&svix("v2,abc nonsense"), BODY, TS),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn tampered_body_is_bad_signature() {
    let mut body = BODY.to_vec();
    body[10] ^= 1;
    assert_eq!(
        verifier(&[SECRET]).verify(&svix(ENTRY), &body, TS),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn timestamp_301s_away_is_stale() {
    let v = verifier(&[SECRET]);
    assert_eq!(
        v.verify(&svix(ENTRY), BODY, TS + 301),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        v.verify(&svix(ENTRY), BODY, TS - 301),
        Err(VerifyError::StaleTimestamp)
    );
}

#[test]
fn timestamp_within_tolerance_is_accepted() {
    let v = verifier(&[SECRET]);
    for now in [TS + 299, TS - 299, TS + 300, TS - 300] {
        assert!(v.verify(&svix(ENTRY), BODY, now).is_ok(), "now = {now}");
    }
}

#[test]
fn tolerance_is_configurable() {
    let v = Verifier::new(vec![key(SECRET)], Duration::from_secs(10));
    assert!(v.verify(&svix(ENTRY), BODY, TS + 10).is_ok());
    assert_eq!(
        v.verify(&svix(ENTRY), BODY, TS + 11),
        Err(VerifyError::StaleTimestamp)
    );
}

#[test]
fn each_missing_header_is_named() {
    for prefix in ["svix", "webhook"] {
        for name in ["id", "timestamp", "signature"] {
            let mut map = headers(prefix, ID, TS, ENTRY);
            let full = format!("{prefix}-{name}");
            map.remove(full.as_str());
            let err = verifier(&[SECRET]).verify(&map, BODY, TS).unwrap_err();
            assert_eq!(err.to_string(), format!("missing header `{full}`"));
            assert_eq!(err.reason(), "missing_header");
        }
    }
}

#[test]
fn no_headers_names_svix_id() {
    let err = verifier(&[SECRET])
        .verify(&HeaderMap::new(), BODY, TS)
        .unwrap_err();
    assert_eq!(err, VerifyError::MissingHeader("svix-id"));
}

#[test]
fn empty_header_counts_as_missing() {
    let mut map = svix(ENTRY);
    map.insert("svix-id", HeaderValue::from_static(""));
    assert_eq!(
        verifier(&[SECRET]).verify(&map, BODY, TS),
        Err(VerifyError::MissingHeader("svix-id"))
    );
}

#[test]
fn non_integer_timestamp_is_invalid() {
    for bad in ["1614265330.5", "soon", "1e9"] {
        let mut map = svix(ENTRY);
        map.insert("svix-timestamp", HeaderValue::from_static(bad));
        let err = verifier(&[SECRET]).verify(&map, BODY, TS).unwrap_err();
        assert_eq!(err, VerifyError::InvalidTimestamp);
        assert_eq!(err.reason(), "invalid_timestamp");
    }
}

#[test]
fn empty_key_is_rejected() {
    assert_eq!(
        "whsec_".parse::<Key>().unwrap_err(),
        KeyError::Empty("whsec_")
    );
    assert_eq!(
        "whpk_".parse::<Key>().unwrap_err(),
        KeyError::Empty("whpk_")
    );
    assert_eq!("  ".parse::<Key>().unwrap_err(), KeyError::Empty("whsec_"));
}

#[test]
fn bad_base64_is_rejected() {
    let err = "whsec_not*base64".parse::<Key>().unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::Base64 {
                prefix: "whsec_",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wrong_ed25519_length_is_rejected() {
    let err = "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        .parse::<Key>()
        .unwrap_err();
    assert_eq!(
        err,
        KeyError::Length {
            prefix: "whpk_",
            expected: "32",
            actual: 24
        }
    );
    let err = "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        .parse::<Key>()
        .unwrap_err();
    assert!(matches!(
        err,
        KeyError::Length {
            prefix: "whsk_",
            actual: 24,
            ..
        }
    ));
}

#[test]
fn bare_base64_is_an_hmac_key() {
    let bare = key(SECRET.trim_start_matches("whsec_"));
    let v = Verifier::new(vec![bare], DEFAULT_TOLERANCE);
    assert!(v.verify(&svix(ENTRY), BODY, TS).is_ok());
}

#[test]
fn unpadded_and_whitespace_keys_parse() {
    let unpadded = PUBLIC.trim_end_matches('=');
    assert!(verifier(&[unpadded])
        .verify(&svix(ENTRY_V1A), BODY, TS)
        .is_ok());
    assert!(verifier(&[&format!("{SECRET}\n")])
        .verify(&svix(ENTRY), BODY, TS)
        .is_ok());
}

#[test]
fn public_key_cannot_sign() {
    assert_eq!(Signer::new(key(PUBLIC)).unwrap_err(), KeyError::VerifyOnly);
}

#[test]
fn debug_and_masked_do_not_leak() {
    let secret_part = SECRET.trim_start_matches("whsec_");
    let k = key(SECRET);
    // Prefix, length and a fingerprint (SHA-256 of the decoded key), not a character of the key.
    assert_eq!(k.masked(), "whsec_…(24 bytes, fingerprint f74e)");
    let outputs = [
        format!("{k:?}"),
        format!("{:?}", verifier(&[SECRET, SECRET_2])),
        format!("{:?}", Signer::new(key(SECRET)).unwrap()),
    ];
    for output in outputs {
        assert!(
            output.contains("whsec_…(24 bytes, fingerprint "),
            "{output}"
        );
        assert!(!output.contains(secret_part), "{output}");
        assert!(!output.contains(&secret_part[..4]), "{output}");
        assert!(!output.contains("C2FVsBQIhrsc"), "{output}");
    }
}

#[test]
fn short_keys_show_no_characters() {
    assert_eq!(
        key("whsec_c2hvcnQ=").masked(),
        "whsec_…(5 bytes, fingerprint f9b0)"
    );
}

#[test]
fn key_errors_quote_nothing_of_the_key() {
    // A bad character, a bad length and placeholders: the decoder's own messages name the
    // character and its offset; ours say what was expected. (Random-looking values, so that no
    // word of the message matches a piece of them by chance.)
    for (text, expect) in [
        ("Qx9#Vb7Kp2Wz", "no `whsec_`, `whpk_` or `whsk_` prefix"),
        (
            "whsec_Qx9#Vb7Kp2Wz",
            "the part after `whsec_` is not valid base64",
        ),
        (
            "whsec_Qx9Vb7Kp2",
            "the part after `whsec_` is not valid base64",
        ),
        ("whsec_<Qx9Vb7 Kp2Wz>", "placeholder"),
        ("<Qx9Vb7Kp2Wz>", "placeholder"),
    ] {
        let message = text.parse::<Key>().unwrap_err().to_string();
        assert!(message.contains(expect), "{text}: {message}");
        let value = text.trim_start_matches("whsec_");
        for start in 0..value.len().saturating_sub(2) {
            let piece = &value[start..start + 3];
            assert!(
                !message.contains(piece),
                "{text}: {message} shows {piece:?}"
            );
        }
    }
    // The issue's example: no character, no offset, and no claim of a `whsec_` it does not have.
    let message = "notasecret".parse::<Key>().unwrap_err().to_string();
    for wrong in ["symbol", "offset", "116", "after `whsec_`"] {
        assert!(!message.contains(wrong), "{message}");
    }
}

#[test]
fn reasons_are_stable() {
    assert_eq!(VerifyError::StaleTimestamp.reason(), "stale_timestamp");
    assert_eq!(VerifyError::BadSignature.reason(), "bad_signature");
    assert_eq!(VerifyError::UnknownToken.reason(), "unknown_token");
}

#[test]
fn hmac_key_preparation_matches_new_from_slice() {
    for len in [0, 1, 24, 63, 64, 65, 200] {
        let secret: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let ours = hmac_sha256(&secret)
            .chain_update(b"msg")
            .finalize()
            .into_bytes();
        let theirs = <HmacSha256 as Mac>::new_from_slice(&secret)
            .unwrap()
            .chain_update(b"msg")
            .finalize()
            .into_bytes();
        assert_eq!(ours, theirs, "key length {len}");
    }
}

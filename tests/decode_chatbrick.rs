//! Decoding of ChatBrick bodies: every example fixture, and one test per quirk in docs/providers.md.

use chrono::{DateTime, TimeZone, Utc};
use hookline::chatbrick::event::{
    peek_type, Account, AccountEvent, ConnectionEvent, Contact, LineUser, Store, StoreEvent,
};
use hookline::chatbrick::Event;
use hookline::envelope::{KeyIds, PersonalData, ProviderEvent};
use serde_json::json;

/// Reads one fixture from `fixtures/chatbrick/`.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/chatbrick/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decodes one fixture, failing the test on error.
fn decode_fixture(name: &str) -> Event {
    Event::decode(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Decodes an inline JSON value, failing the test on error.
fn decode_json(body: serde_json::Value) -> Event {
    Event::decode(body.to_string().as_bytes()).unwrap()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + chrono::Duration::milliseconds(ms.into())
}

/// 2024-06-08T18:18:18.888Z, the fixtures' initial connection.
fn t_init() -> DateTime<Utc> {
    utc(2024, 6, 8, 18, 18, 18, 888)
}

/// 2024-06-18T18:18:18.000Z, the fixtures' later instant.
fn t_later() -> DateTime<Utc> {
    utc(2024, 6, 18, 18, 18, 18, 0)
}

const LOGO: &str =
    "https://imagedelivery.net/zdm_0V2jGvo4F5LeqaPJDQ/5178a7f8-661f-46d7-d852-0b72a2242100/public";

fn fixture_contact() -> Contact {
    Contact {
        id: "clrq5ca80000lb9c9dnxxfyid".into(),
        name: Some("康宜恩".into()),
        avatar: Some(
            "https://uc.chatbrick.com/avatar/clrq5ca80000lb9c9dnxxfyid/avatar.jpeg".into(),
        ),
    }
}

fn fixture_line_users() -> Vec<LineUser> {
    vec![LineUser {
        id: "clxvsgpgi000001qgdxuka3vj".into(),
        name: Some("Mr. Kang".into()),
        line_uid: "U4d26836f2aadb5ad84cc8b5b729fc9a1".into(),
        line_provider_id: "1660894172".into(),
        profile_picture_url: Some(
            "https://profile.line-scdn.net/0m0450c48c7251b78e575b3a5bb3c4ea5a7e70d9d2d471".into(),
        ),
    }]
}

fn fixture_store(external_id: &str) -> Store {
    Store {
        id: "clxvu9l6l000001p27bdm9ydk".into(),
        name: Some("台北101旗艦店".into()),
        logo: Some(LOGO.into()),
        external_id: Some(external_id.into()),
    }
}

fn fixture_account() -> Account {
    Account {
        id: "clxvu9uj3000001ob92yrb61o".into(),
        store_id: Some("clxvu9l6l000001p27bdm9ydk".into()),
        name: Some("何沛妮".into()),
        display_name: Some("小何 | 台北101旗艦店".into()),
        employee_id: Some("50001".into()),
        avatar: Some(LOGO.into()),
    }
}

fn expect_connection(event: &Event) -> &ConnectionEvent {
    match event {
        Event::ContactConnected(e) | Event::ContactConnectionChanged(e) => e,
        other => panic!("expected a connection event, got {other:?}"),
    }
}

fn expect_store(event: &Event) -> &StoreEvent {
    match event {
        Event::StoreCreated(e) | Event::StoreUpdated(e) | Event::StoreDeactivated(e) => e,
        other => panic!("expected a store event, got {other:?}"),
    }
}

fn expect_account(event: &Event) -> &AccountEvent {
    match event {
        Event::AccountCreated(e) | Event::AccountDeactivated(e) => e,
        other => panic!("expected an account event, got {other:?}"),
    }
}

// ---------------------------------------------------------------- fixtures

#[test]
fn fixture_connected_store_and_staff() {
    let event = decode_fixture("contact.connection.connected.store_and_staff.json");
    assert!(matches!(event, Event::ContactConnected(_)));
    assert_eq!(event.event_type(), "contact.connection.connected");
    let e = expect_connection(&event);
    assert_eq!(e.contact, fixture_contact());
    assert_eq!(e.line_users, fixture_line_users());
    assert_eq!(e.connected_store, Some(fixture_store("10000")));
    assert_eq!(e.connected_staff, Some(fixture_account()));
    assert_eq!(e.timestamps.connected_at, Some(t_init()));
    assert_eq!(e.timestamps.init_connected_at, Some(t_init()));
    assert_eq!(e.timestamps.changed_at, None);
    assert_eq!(e.timestamps_ms.connected_at, Some(t_init()));
    assert_eq!(e.timestamps_ms.init_connected_at, Some(t_init()));
}

#[test]
fn fixture_connected_store_only() {
    let event = decode_fixture("contact.connection.connected.store_only.json");
    assert!(matches!(event, Event::ContactConnected(_)));
    let e = expect_connection(&event);
    assert_eq!(e.contact.id, "clrq5ca80000lb9c9dnxxfyid");
    assert_eq!(
        e.line_users[0].line_uid,
        "U4d26836f2aadb5ad84cc8b5b729fc9a1"
    );
    assert_eq!(e.connected_store, Some(fixture_store("10000")));
    assert_eq!(e.connected_staff, None);
    assert_eq!(e.timestamps.connected_at, Some(t_init()));
    assert_eq!(e.timestamps_ms.connected_at, Some(t_init()));
}

#[test]
fn fixture_changed_store_and_staff() {
    let event = decode_fixture("contact.connection.changed.store_and_staff.json");
    assert!(matches!(event, Event::ContactConnectionChanged(_)));
    assert_eq!(event.event_type(), "contact.connection.changed");
    let e = expect_connection(&event);
    assert_eq!(e.contact, fixture_contact());
    assert_eq!(e.line_users, fixture_line_users());
    assert_eq!(e.connected_store, Some(fixture_store("10000")));
    assert_eq!(e.connected_staff, Some(fixture_account()));
    assert_eq!(e.timestamps.changed_at, Some(t_later()));
    assert_eq!(e.timestamps.connected_at, None);
    assert_eq!(e.timestamps.init_connected_at, Some(t_init()));
    assert_eq!(e.timestamps_ms.changed_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.init_connected_at, Some(t_init()));
}

#[test]
fn fixture_disconnected() {
    let event = decode_fixture("contact.connection.disconnected.example.json");
    assert_eq!(event.event_type(), "contact.connection.disconnected");
    let Event::ContactDisconnected(e) = &event else {
        panic!("expected ContactDisconnected, got {event:?}");
    };
    assert_eq!(e.contact, fixture_contact());
    assert_eq!(e.line_users, fixture_line_users());
    assert_eq!(e.timestamps.disconnected_at, Some(t_later()));
    assert_eq!(e.timestamps.init_connected_at, Some(t_init()));
    assert_eq!(e.timestamps_ms.disconnected_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.init_connected_at, Some(t_init()));
}

#[test]
fn fixture_store_created() {
    let event = decode_fixture("store.created.example.json");
    assert!(matches!(event, Event::StoreCreated(_)));
    assert_eq!(event.event_type(), "store.created");
    let e = expect_store(&event);
    assert_eq!(e.store, fixture_store("tpe-101"));
    assert_eq!(e.timestamps.created_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.created_at, Some(t_later()));
}

#[test]
fn fixture_store_updated() {
    let event = decode_fixture("store.updated.example.json");
    assert!(matches!(event, Event::StoreUpdated(_)));
    assert_eq!(event.event_type(), "store.updated");
    let e = expect_store(&event);
    assert_eq!(e.store, fixture_store("tpe-101"));
    assert_eq!(e.timestamps.updated_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.updated_at, Some(t_later()));
}

#[test]
fn fixture_store_deactivated() {
    let event = decode_fixture("store.deactivated.example.json");
    assert!(matches!(event, Event::StoreDeactivated(_)));
    assert_eq!(event.event_type(), "store.deactivated");
    let e = expect_store(&event);
    assert_eq!(e.store.external_id.as_deref(), Some("tpe-101"));
    assert_eq!(e.timestamps.deactivated_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.deactivated_at, Some(t_later()));
}

#[test]
fn fixture_account_created() {
    let event = decode_fixture("account.created.example.json");
    assert!(matches!(event, Event::AccountCreated(_)));
    assert_eq!(event.event_type(), "account.created");
    let e = expect_account(&event);
    assert_eq!(e.account, fixture_account());
    assert_eq!(e.timestamps.created_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.created_at, Some(t_later()));
}

#[test]
fn fixture_account_deactivated() {
    let event = decode_fixture("account.deactivated.example.json");
    assert!(matches!(event, Event::AccountDeactivated(_)));
    assert_eq!(event.event_type(), "account.deactivated");
    let e = expect_account(&event);
    assert_eq!(e.account, fixture_account());
    assert_eq!(e.timestamps.deactivated_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.deactivated_at, Some(t_later()));
}

#[test]
fn every_fixture_decodes_and_peeks() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/chatbrick");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read(&path).unwrap();
        let event = Event::decode(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!matches!(event, Event::Other { .. }), "{}", path.display());
        assert_eq!(peek_type(&body).as_deref(), Some(event.event_type()));
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
fn key_ids_and_personal_of_fixtures() {
    let connected = decode_fixture("contact.connection.connected.store_and_staff.json");
    assert_eq!(
        connected.key_ids(),
        KeyIds {
            contact: Some("clrq5ca80000lb9c9dnxxfyid".into()),
            store: Some("clxvu9l6l000001p27bdm9ydk".into()),
            account: Some("clxvu9uj3000001ob92yrb61o".into()),
            ..KeyIds::default()
        }
    );
    assert_eq!(
        connected.personal(),
        PersonalData {
            name: Some("康宜恩".into()),
            content: None,
        }
    );

    let store_only = decode_fixture("contact.connection.connected.store_only.json");
    assert_eq!(store_only.key_ids().account, None);

    let disconnected = decode_fixture("contact.connection.disconnected.example.json");
    assert_eq!(
        disconnected.key_ids(),
        KeyIds {
            contact: Some("clrq5ca80000lb9c9dnxxfyid".into()),
            ..KeyIds::default()
        }
    );

    let store = decode_fixture("store.updated.example.json");
    assert_eq!(
        store.key_ids(),
        KeyIds {
            store: Some("clxvu9l6l000001p27bdm9ydk".into()),
            ..KeyIds::default()
        }
    );
    assert_eq!(store.personal().name.as_deref(), Some("台北101旗艦店"));

    let account = decode_fixture("account.created.example.json");
    assert_eq!(
        account.key_ids(),
        KeyIds {
            store: Some("clxvu9l6l000001p27bdm9ydk".into()),
            account: Some("clxvu9uj3000001ob92yrb61o".into()),
            ..KeyIds::default()
        }
    );
    // The public displayName, never the internal name.
    assert_eq!(
        account.personal().name.as_deref(),
        Some("小何 | 台北101旗艦店")
    );
}

// ---------------------------------------------------------------- quirks

/// A minimal connection body with the given store and staff.
fn connection(store: serde_json::Value, staff: serde_json::Value) -> serde_json::Value {
    json!({
        "type": "contact.connection.connected",
        "data": {
            "contact": {"id": "c1", "name": "Amy", "avatar": "https://a/c1.png"},
            "lineUsers": [{"id": "l1", "name": "amy", "lineUid": "U1", "lineProviderId": "42"}],
            "connectedStore": store,
            "connectedStaff": staff,
            "timestamps": {"connectedAt": "2024-06-08T18:18:18.888Z"},
            "timestampsMs": {"connectedAt": 1717870698888_i64}
        }
    })
}

#[test]
fn quirk_connected_staff_null() {
    let event = decode_json(connection(json!({"id": "s1", "name": "Shop"}), json!(null)));
    let e = expect_connection(&event);
    assert_eq!(e.connected_staff, None);
    assert_eq!(
        e.connected_store.as_ref().map(|s| s.id.as_str()),
        Some("s1")
    );
    assert_eq!(event.key_ids().account, None);
}

#[test]
fn quirk_connected_store_null() {
    let event = decode_json(connection(
        json!(null),
        json!({"id": "a1", "storeId": "s1"}),
    ));
    let e = expect_connection(&event);
    assert_eq!(e.connected_store, None);
    assert_eq!(
        e.connected_staff.as_ref().map(|a| a.id.as_str()),
        Some("a1")
    );
    assert_eq!(event.key_ids().store, None);
    assert_eq!(event.key_ids().account.as_deref(), Some("a1"));
}

#[test]
fn quirk_store_id_null() {
    let event = decode_json(json!({
        "type": "account.created",
        "data": {
            "account": {"id": "a1", "storeId": null, "name": "Boss", "displayName": "Manager"},
            "timestamps": {"createdAt": "2024-06-18T18:18:18.000Z"},
            "timestampsMs": {"createdAt": 1718734698000_i64}
        }
    }));
    let e = expect_account(&event);
    assert_eq!(e.account.store_id, None);
    assert_eq!(event.key_ids().store, None);
    assert_eq!(event.key_ids().account.as_deref(), Some("a1"));
}

#[test]
fn quirk_timestamps_ms_as_numeric_strings() {
    let event = decode_json(json!({
        "type": "contact.connection.changed",
        "data": {
            "contact": {"id": "c1"},
            "timestamps": {"changedAt": "2024-06-18T18:18:18.000Z", "initConnectedAt": "2024-06-08T18:18:18.888Z"},
            "timestampsMs": {"changedAt": "1718734698000", "initConnectedAt": "1717870698888"}
        }
    }));
    let e = expect_connection(&event);
    assert_eq!(e.timestamps_ms.changed_at, Some(t_later()));
    assert_eq!(e.timestamps_ms.init_connected_at, Some(t_init()));
    assert_eq!(e.timestamps_ms.changed_at, e.timestamps.changed_at);
}

#[test]
fn quirk_unknown_fields_everywhere_are_ignored() {
    let event = decode_json(json!({
        "type": "contact.connection.connected",
        "version": 2,
        "data": {
            "contact": {"id": "c1", "name": "Amy", "tags": ["vip"], "phone": {"e164": "+886"}},
            "lineUsers": [{"id": "l1", "lineUid": "U1", "lineProviderId": "42", "language": "zh-TW"}],
            "connectedStore": {"id": "s1", "region": "north"},
            "connectedStaff": {"id": "a1", "role": "clerk"},
            "timestamps": {"connectedAt": "2024-06-08T18:18:18.888Z", "expiresAt": "2025-01-01T00:00:00.000Z"},
            "timestampsMs": {"connectedAt": 1717870698888_i64, "expiresAt": 1735689600000_i64},
            "channel": "line"
        }
    }));
    let e = expect_connection(&event);
    assert_eq!(e.contact.id, "c1");
    assert_eq!(e.line_users[0].line_uid, "U1");
    assert_eq!(
        e.connected_store.as_ref().map(|s| s.id.as_str()),
        Some("s1")
    );
    assert_eq!(
        e.connected_staff.as_ref().map(|a| a.id.as_str()),
        Some("a1")
    );
    assert_eq!(e.timestamps.connected_at, Some(t_init()));
}

#[test]
fn quirk_unknown_type_is_other_with_data_kept() {
    let data = json!({"coupon": {"id": "cp1", "amount": 100}, "list": [1, 2]});
    let body = json!({"type": "coupon.redeemed", "data": data});
    let event = decode_json(body);
    assert_eq!(event.event_type(), "coupon.redeemed");
    assert_eq!(
        event,
        Event::Other {
            event_type: "coupon.redeemed".into(),
            data
        }
    );
    assert_eq!(event.key_ids(), KeyIds::default());
    assert_eq!(event.personal(), PersonalData::default());

    // No `data` at all is still not an error for an unknown type.
    let event = decode_json(json!({"type": "ping"}));
    assert_eq!(
        event,
        Event::Other {
            event_type: "ping".into(),
            data: serde_json::Value::Null
        }
    );
}

#[test]
fn quirk_wrong_typed_field_is_error_but_type_peeks() {
    let body = br#"{"type": "contact.connection.disconnected", "data": {
    "contact": {"id": {"oops": 1}},
    "lineUsers": []
}}"#;
    let err = Event::decode(body).unwrap_err().to_string();
    assert!(err.contains("contact.connection.disconnected"), "{err}");
    assert!(
        err.contains("invalid type: map, expected a string"),
        "{err}"
    );
    // The position is the body's, not the `data` substring's.
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(
        peek_type(body).as_deref(),
        Some("contact.connection.disconnected")
    );
}

#[test]
fn quirk_documented_type_without_data_is_error() {
    let body = br#"{"type": "store.created"}"#;
    let err = Event::decode(body).unwrap_err().to_string();
    assert!(err.contains("missing field `data`"), "{err}");
    assert_eq!(peek_type(body).as_deref(), Some("store.created"));
}

#[test]
fn quirk_not_json_is_error() {
    for body in [
        &b"not json"[..],
        b"",
        b"{\"type\": \"store.created\"",
        b"[1, 2]",
        b"{\"type\": 7, \"data\": {}}",
        b"{\"data\": {}}",
    ] {
        assert!(
            Event::decode(body).is_err(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(peek_type(body), None);
    }
}

/// Found by fuzz/fuzz_targets/decode_chatbrick.rs: serde's derived structs read an array of
/// their fields in order, so `[""]` decoded as an event of type "" and `["store.created", …]`
/// as a store event.
#[test]
fn an_array_of_the_fields_is_not_an_event() {
    for body in [
        &b"[\"\"] "[..],
        br#"["coupon.redeemed", {}]"#,
        br#"["store.created", {"store": {"id": "s1", "name": "n"}, "timestamps": {}, "timestampsMs": {}}]"#,
    ] {
        let err = Event::decode(body).unwrap_err().to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
        assert_eq!(peek_type(body), None);
    }
}

#[test]
fn quirk_missing_optional_fields_are_none() {
    let event = decode_json(connection(
        json!({"id": "s1", "name": "Shop"}),
        json!({"id": "a1", "displayName": "Al"}),
    ));
    let e = expect_connection(&event);
    let store = e.connected_store.as_ref().unwrap();
    assert_eq!((&store.logo, &store.external_id), (&None, &None));
    let staff = e.connected_staff.as_ref().unwrap();
    assert_eq!(staff.store_id, None);
    assert_eq!(staff.employee_id, None);
    assert_eq!(staff.avatar, None);
    assert_eq!(staff.name, None);
    assert_eq!(e.line_users[0].profile_picture_url, None);

    let event = decode_json(json!({
        "type": "contact.connection.disconnected",
        "data": {"contact": {"id": "c1"}}
    }));
    let Event::ContactDisconnected(e) = &event else {
        panic!("expected ContactDisconnected, got {event:?}");
    };
    assert_eq!(e.contact.avatar, None);
    assert_eq!(e.contact.name, None);
    assert!(e.line_users.is_empty());
    assert_eq!(e.timestamps.disconnected_at, None);
    assert_eq!(e.timestamps_ms.disconnected_at, None);
}

#[test]
fn quirk_empty_url_and_numeric_line_provider_id() {
    let event = decode_json(json!({
        "type": "contact.connection.connected",
        "data": {
            "contact": {"id": "c1", "avatar": ""},
            "lineUsers": [{"id": "l1", "lineUid": "U1", "lineProviderId": 1660894172, "profilePictureUrl": ""}],
            "connectedStore": {"id": "s1", "logo": ""},
            "connectedStaff": null
        }
    }));
    let e = expect_connection(&event);
    assert_eq!(e.contact.avatar, None);
    assert_eq!(e.line_users[0].profile_picture_url, None);
    assert_eq!(e.line_users[0].line_provider_id, "1660894172");
    assert_eq!(e.connected_store.as_ref().unwrap().logo, None);
}

#[test]
fn typed_data_serializes_back_to_wire_shape() {
    let event = decode_fixture("contact.connection.changed.store_and_staff.json");
    let e = expect_connection(&event);
    let body: serde_json::Value =
        serde_json::from_slice(&fixture("contact.connection.changed.store_and_staff.json"))
            .unwrap();
    assert_eq!(
        serde_json::to_value(e).unwrap()["timestampsMs"],
        body["data"]["timestampsMs"]
    );
    assert_eq!(
        serde_json::to_value(e).unwrap()["lineUsers"],
        body["data"]["lineUsers"]
    );
    assert_eq!(
        serde_json::to_value(e).unwrap()["connectedStaff"],
        body["data"]["connectedStaff"]
    );
}

/// The card lines of an event as `(group, label, value, personal)`.
fn card(event: &Event) -> Vec<(&'static str, &'static str, String, bool)> {
    let fields = event.card().into_iter();
    fields
        .map(|f| (f.group, f.label, f.value, f.personal))
        .collect()
}

#[test]
fn a_connection_card_shows_contact_line_user_store_and_staff_marking_personal_data() {
    let event = decode_fixture("contact.connection.connected.store_and_staff.json");
    let lines = card(&event);
    let has = |group, label, value: &str, personal| {
        lines.contains(&(group, label, value.to_string(), personal))
    };
    assert!(
        has("Contact", "Contact id", "clrq5ca80000lb9c9dnxxfyid", false),
        "{lines:?}"
    );
    assert!(has("Contact", "Name", "康宜恩", true));
    assert!(has(
        "LINE user",
        "LINE user id",
        "U4d26836f2aadb5ad84cc8b5b729fc9a1",
        false
    ));
    assert!(has("LINE user", "Display name", "Mr. Kang", true));
    assert!(has("Store", "Store id", "clxvu9l6l000001p27bdm9ydk", false));
    assert!(has("Store", "External id", "10000", false));
    assert!(has("Staff", "Employee id", "50001", false));
    assert!(has("Staff", "Display name", "小何 | 台北101旗艦店", true));
    assert!(has(
        "When",
        "Connected",
        "2024-06-08T18:18:18.888+00:00",
        false
    ));
    let groups: Vec<_> = lines.iter().map(|l| l.0).collect();
    let first = |g| groups.iter().position(|x| *x == g).unwrap();
    assert!(first("Contact") < first("LINE user") && first("Store") < first("Staff"));
}

#[test]
fn an_unknown_type_has_an_empty_card() {
    let event = decode_json(json!({"type": "coupon.redeemed", "data": {"id": "c1"}}));
    assert!(event.card().is_empty());
}

//! Decoding liveDesk bodies: every fixture, and one small payload per quirk listed in
//! docs/providers.md.

use chrono::{DateTime, TimeZone, Utc};
use hookline::envelope::{KeyIds, PersonalData, ProviderEvent};
use hookline::livedesk::event::{
    peek_type, ChangedAttribute, Conversation, ConversationStatus, Message, MessageType, Priority,
    SenderType,
};
use hookline::livedesk::Event;
use serde_json::{json, Value};

/// The bytes of `fixtures/livedesk/<name>`.
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/livedesk/",
            $name
        ))
        .as_slice()
    };
}

const CONVERSATION_CREATED: &[u8] = fixture!("conversation_created.api_channel_doc.json");
const CONVERSATION_UPDATED: &[u8] = fixture!("conversation_updated.composed_from_doc.json");
const CONVERSATION_STATUS_CHANGED: &[u8] =
    fixture!("conversation_status_changed.composed_from_doc.json");
const MESSAGE_CREATED: &[u8] = fixture!("message_created.api_channel_doc.json");
const MESSAGE_UPDATED: &[u8] = fixture!("message_updated.composed_from_doc.json");

const ACCOUNT_ID: i64 = 17_629_000_001_207;
const CONTACT_NAME: &str = "สวัสดีคุณต้องการความช่วยเหลืออะไร";

/// A UTC time from epoch seconds and microseconds.
fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, micros * 1_000).unwrap()
}

/// A UTC time from an RFC 3339 string.
fn iso(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// `body` with `event` added, as bytes.
fn with_event(event: &str, mut body: Value) -> Vec<u8> {
    body["event"] = json!(event);
    serde_json::to_vec(&body).unwrap()
}

/// The smallest conversation that decodes, with `extra` keys merged in.
fn conversation(extra: Value) -> Value {
    let mut body = json!({"id": 89, "status": "open"});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// The smallest message that decodes, with `extra` keys merged in.
fn message(extra: Value) -> Value {
    let mut body = json!({"id": 2187685, "message_type": "outgoing", "private": false});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

fn decode_conversation(body: Value) -> Conversation {
    match Event::decode(&with_event("conversation_created", body)).unwrap() {
        Event::ConversationCreated(c) => c,
        other => panic!("expected ConversationCreated, got {other:?}"),
    }
}

fn decode_message(body: Value) -> Message {
    match Event::decode(&with_event("message_created", body)).unwrap() {
        Event::MessageCreated(m) => m,
        other => panic!("expected MessageCreated, got {other:?}"),
    }
}

/// What every conversation fixture says about conversation 89.
fn assert_fixture_conversation(c: &Conversation) {
    assert_eq!(c.id, 89);
    assert_eq!(c.inbox_id, Some(523));
    let account = c.account.as_ref().unwrap();
    assert_eq!(
        (account.id, account.name.as_deref()),
        (ACCOUNT_ID, Some("1112"))
    );
    assert_eq!(c.status, ConversationStatus::Open);
    assert_eq!(c.priority, None);
    assert_eq!(c.channel.as_deref(), Some("Channel::Api"));
    assert_eq!(c.can_reply, Some(true));
    assert_eq!(c.waiting_since, Some(at(1_768_967_324, 0)));
    assert_eq!(c.created_at, Some(at(1_768_967_324, 0)));
    assert_eq!(c.agent_last_seen_at, None);
    assert_eq!(c.contact_last_seen_at, None);
    assert_eq!(c.first_reply_created_at, None);
    assert_eq!(c.snoozed_until, None);
    assert_eq!(c.unread_count, Some(0));
    assert_eq!(c.conversation_category.as_deref(), Some("chat"));
    assert_eq!(c.chat_mode.as_deref(), Some("private_chat"));
    assert_eq!(c.ticket_info.as_object().map(|m| m.len()), Some(0));
    let inbox = c.contact_inbox.as_ref().unwrap();
    assert_eq!(inbox.contact_id, Some(42_218_348));
    assert_eq!(
        inbox.source_id.as_deref(),
        Some("1d484823-da29-4086-a7ba-d65ad0ebb588")
    );
    assert_eq!(inbox.created_at, Some(iso("2026-01-21T03:26:49.012Z")));
    let contact = c.meta.sender.as_ref().unwrap();
    assert_eq!(contact.id, 42_218_348);
    assert_eq!(contact.name.as_deref(), Some("Test"));
    assert_eq!(contact.email.as_deref(), Some("alice@acme.inc"));
    assert_eq!(contact.type_, Some(SenderType::Contact));
    assert_eq!(contact.thumbnail, None);
    assert_eq!(c.meta.assignee, None);
}

#[test]
fn conversation_created_fixture() {
    let Event::ConversationCreated(c) = Event::decode(CONVERSATION_CREATED).unwrap() else {
        panic!("wrong variant");
    };
    assert_fixture_conversation(&c);
    assert_eq!(c.updated_at, Some(at(1_768_967_324, 268_219)));
    assert_eq!(c.updated_at, Some(iso("2026-01-21T03:48:44.268219Z")));
    assert_eq!(c.last_activity_at, Some(at(1_768_967_324, 0)));
    assert!(c.messages.is_empty());
    assert!(c.labels.is_empty());
}

#[test]
fn conversation_updated_fixture() {
    let Event::ConversationUpdated(u) = Event::decode(CONVERSATION_UPDATED).unwrap() else {
        panic!("wrong variant");
    };
    assert_fixture_conversation(&u.conversation);
    assert_eq!(u.conversation.updated_at, Some(at(1_768_967_324, 268_219)));
    let change = |field: &str, previous: Value, current: Value| ChangedAttribute {
        field: field.into(),
        previous_value: previous,
        current_value: current,
    };
    assert_eq!(
        u.changed_attributes,
        [
            change(
                "updated_at",
                json!("2026-01-21T04:04:56.548Z"),
                json!("2026-01-21T04:04:56.601Z")
            ),
            change(
                "first_reply_created_at",
                Value::Null,
                json!("2026-01-21T04:04:56.544Z")
            ),
            change(
                "waiting_since",
                json!("2026-01-21T03:48:44.268Z"),
                Value::Null
            ),
        ]
    );
}

#[test]
fn conversation_status_changed_fixture() {
    let Event::ConversationStatusChanged(c) = Event::decode(CONVERSATION_STATUS_CHANGED).unwrap()
    else {
        panic!("wrong variant");
    };
    assert_fixture_conversation(&c);
}

/// What both message fixtures say about message 2187685.
fn assert_fixture_message(m: &Message) {
    assert_eq!(m.id, 2_187_685);
    assert_eq!(m.message_type, MessageType::Outgoing);
    assert!(!m.private);
    assert_eq!(m.content.as_deref(), Some(CONTACT_NAME));
    assert_eq!(m.content_type.as_deref(), Some("text"));
    assert_eq!(m.created_at, Some(iso("2026-01-21T04:04:56.544Z")));
    assert_eq!(m.source_id, None);
    assert_eq!(
        (m.user_id, m.contact_id),
        (Some(42_213_404), Some(42_218_348))
    );
    assert_eq!(m.participants, Value::Null);
    assert!(m.attachments.is_empty());
    assert_eq!(m.account.as_ref().map(|a| a.id), Some(ACCOUNT_ID));
    let inbox = m.inbox.as_ref().unwrap();
    assert_eq!((inbox.id, inbox.name.as_deref()), (523, Some("Test01")));
    let sender = m.sender.as_ref().unwrap();
    assert_eq!((sender.id, sender.name.as_deref()), (41, Some("support")));
    assert_eq!(sender.type_, Some(SenderType::User));
    assert_eq!(sender.availability.as_deref(), Some("online"));

    let c = m.conversation.as_ref().unwrap();
    assert_fixture_conversation(c);
    assert_eq!(c.updated_at, Some(at(1_768_968_296, 548_344)));
    assert_eq!(c.last_activity_at, Some(at(1_768_968_296, 0)));
    let last = &c.messages[0];
    assert_eq!(last.id, 2_187_685);
    assert_eq!(last.message_type, MessageType::Outgoing);
    assert!(!last.private);
    assert_eq!(last.created_at, Some(at(1_768_968_296, 0)));
    assert_eq!(last.updated_at, Some(iso("2026-01-21T04:04:56.544Z")));
    assert_eq!(last.account_id, Some(ACCOUNT_ID));
    assert_eq!(last.status.as_deref(), Some("sent"));
    assert_eq!(last.sender_type, Some(SenderType::User));
    let last_sender = last.sender.as_ref().unwrap();
    assert_eq!(last_sender.type_, Some(SenderType::User));
    assert_eq!(
        (
            last_sender.avatar_url.as_deref(),
            last_sender.thumbnail.as_deref()
        ),
        (None, None)
    );
}

#[test]
fn message_created_fixture() {
    let Event::MessageCreated(m) = Event::decode(MESSAGE_CREATED).unwrap() else {
        panic!("wrong variant");
    };
    assert_fixture_message(&m);
}

#[test]
fn message_updated_fixture() {
    let Event::MessageUpdated(m) = Event::decode(MESSAGE_UPDATED).unwrap() else {
        panic!("wrong variant");
    };
    assert_fixture_message(&m);
}

#[test]
fn every_fixture_file_decodes_to_its_named_variant() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/livedesk");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let event =
            Event::decode(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !matches!(event, Event::Other { .. }),
            "{name} decoded as Other"
        );
        assert_eq!(Some(event.event_type()), name.split('.').next(), "{name}");
        seen += 1;
    }
    assert!(seen >= 5);
}

#[test]
fn fixtures_survive_a_serialize_round_trip() {
    for body in [CONVERSATION_CREATED, CONVERSATION_UPDATED, MESSAGE_CREATED] {
        let event = Event::decode(body).unwrap();
        let inner = match &event {
            Event::ConversationCreated(c) => serde_json::to_value(c),
            Event::ConversationUpdated(u) => serde_json::to_value(u),
            Event::MessageCreated(m) => serde_json::to_value(m),
            other => panic!("unexpected {other:?}"),
        };
        let again = Event::decode(&with_event(event.event_type(), inner.unwrap())).unwrap();
        assert_eq!(again, event);
    }
}

#[test]
fn key_ids_on_fixtures() {
    let conversation = KeyIds {
        account: Some(ACCOUNT_ID.to_string()),
        conversation: Some("89".into()),
        contact: Some("42218348".into()),
        ..KeyIds::default()
    };
    for body in [
        CONVERSATION_CREATED,
        CONVERSATION_UPDATED,
        CONVERSATION_STATUS_CHANGED,
    ] {
        assert_eq!(Event::decode(body).unwrap().key_ids(), conversation);
    }
    let message = KeyIds {
        message: Some("2187685".into()),
        ..conversation
    };
    for body in [MESSAGE_CREATED, MESSAGE_UPDATED] {
        assert_eq!(Event::decode(body).unwrap().key_ids(), message);
    }
}

#[test]
fn personal_on_fixtures() {
    let conversation = PersonalData {
        name: Some("Test".into()),
        content: None,
    };
    assert_eq!(
        Event::decode(CONVERSATION_CREATED).unwrap().personal(),
        conversation
    );
    assert_eq!(
        Event::decode(CONVERSATION_UPDATED).unwrap().personal(),
        conversation
    );
    let message = PersonalData {
        name: Some("support".into()),
        content: Some(CONTACT_NAME.into()),
    };
    assert_eq!(Event::decode(MESSAGE_CREATED).unwrap().personal(), message);
}

#[test]
fn event_key_may_come_first_or_last() {
    let last = br#"{"id": 89, "status": "open", "event": "conversation_created"}"#;
    let first = br#"{"event": "conversation_created", "id": 89, "status": "open"}"#;
    assert_eq!(Event::decode(last).unwrap(), Event::decode(first).unwrap());
}

// ---- one test per quirk in docs/providers.md, "Types to tolerate" ----

#[test]
fn quirk_ids_beyond_32_bits() {
    let m = decode_message(message(json!({
        "id": 4_294_967_297_i64,
        "account": {"id": ACCOUNT_ID, "name": "1112"},
        "conversation": conversation(json!({"id": 5_000_000_000_i64})),
    })));
    assert_eq!(m.id, 4_294_967_297);
    assert_eq!(m.account.unwrap().id, ACCOUNT_ID);
    assert_eq!(m.conversation.unwrap().id, 5_000_000_000);
}

#[test]
fn quirk_time_integer_epoch_with_zero_meaning_never() {
    let c = decode_conversation(conversation(json!({
        "created_at": 1768967324, "waiting_since": 0, "last_activity_at": 1768968296,
        "agent_last_seen_at": 0, "contact_last_seen_at": 1768968300, "timestamp": 1768968296,
    })));
    assert_eq!(c.created_at, Some(at(1_768_967_324, 0)));
    assert_eq!(c.waiting_since, None);
    assert_eq!(c.agent_last_seen_at, None);
    assert_eq!(c.contact_last_seen_at, Some(at(1_768_968_300, 0)));
    assert_eq!(c.last_activity_at, c.timestamp);
}

#[test]
fn quirk_time_float_epoch_keeps_microseconds() {
    let c = decode_conversation(conversation(json!({"updated_at": 1768968296.5483441})));
    assert_eq!(c.updated_at, Some(at(1_768_968_296, 548_344)));
    let earlier = decode_conversation(conversation(json!({"updated_at": 1768968296.548343})));
    assert!(
        earlier.updated_at < c.updated_at,
        "micros must order two states"
    );
}

#[test]
fn quirk_time_iso_string_or_null() {
    let c = decode_conversation(conversation(json!({
        "first_reply_created_at": "2026-01-21T04:04:56.544Z",
        "snoozed_until": null,
        "contact_inbox": {"id": 1, "created_at": "2026-01-21T03:26:49.012Z", "updated_at": null},
    })));
    assert_eq!(
        c.first_reply_created_at,
        Some(iso("2026-01-21T04:04:56.544Z"))
    );
    assert_eq!(c.snoozed_until, None);
    let inbox = c.contact_inbox.unwrap();
    assert_eq!(inbox.created_at, Some(iso("2026-01-21T03:26:49.012Z")));
    assert_eq!(inbox.updated_at, None);
    let m = decode_message(message(json!({"created_at": "2026-01-21T04:04:56.544Z"})));
    assert_eq!(m.created_at, Some(iso("2026-01-21T04:04:56.544Z")));
}

#[test]
fn quirk_time_integer_created_at_beside_iso_updated_at_in_messages() {
    let c = decode_conversation(conversation(json!({"messages": [{
        "id": 1, "message_type": 0, "private": false,
        "created_at": 1768968296, "updated_at": "2026-01-21T04:04:56.544Z",
    }]})));
    assert_eq!(c.messages[0].created_at, Some(at(1_768_968_296, 0)));
    assert_eq!(
        c.messages[0].updated_at,
        Some(iso("2026-01-21T04:04:56.544Z"))
    );
}

#[test]
fn quirk_time_field_switching_encoding_still_decodes() {
    for updated_at in [
        json!(1768968296),
        json!("1768968296"),
        json!("2026-01-21T04:04:56Z"),
    ] {
        let c = decode_conversation(conversation(json!({"updated_at": updated_at})));
        assert_eq!(c.updated_at, Some(at(1_768_968_296, 0)));
    }
}

#[test]
fn quirk_message_type_string_at_top_level_integer_in_messages() {
    let m = decode_message(message(json!({
        "message_type": "incoming",
        "conversation": conversation(json!({"messages": [
            {"id": 2, "message_type": 3, "private": false},
        ]})),
    })));
    assert_eq!(m.message_type, MessageType::Incoming);
    assert_eq!(
        m.conversation.unwrap().messages[0].message_type,
        MessageType::Template
    );
    let activity = decode_message(message(json!({"message_type": 2})));
    assert_eq!(activity.message_type, MessageType::Activity);
}

#[test]
fn quirk_sender_without_type() {
    let body = message(json!({
        "sender": {"id": 42218348, "name": "Test", "avatar": "", "thumbnail": ""},
    }));
    let event = Event::decode(&with_event("message_created", body)).unwrap();
    assert_eq!(event.key_ids().contact.as_deref(), Some("42218348"));
    let Event::MessageCreated(m) = event else {
        panic!("wrong variant")
    };
    let sender = m.sender.as_ref().unwrap();
    assert_eq!(sender.type_, None);
    assert!(sender.is_contact());
}

#[test]
fn quirk_sender_types_documented_and_unknown() {
    let cases = [
        ("user", SenderType::User),
        ("agent_bot", SenderType::AgentBot),
        ("contact", SenderType::Contact),
        ("captain_assistant", SenderType::CaptainAssistant),
        ("copilot", SenderType::Other("copilot".into())),
    ];
    for (wire, expected) in cases {
        let m = decode_message(message(
            json!({"sender": {"id": 1, "name": "x", "type": wire}}),
        ));
        assert_eq!(m.sender.unwrap().type_, Some(expected), "{wire}");
    }
    let m = decode_message(message(json!({"sender": null})));
    assert_eq!(m.sender, None);
}

#[test]
fn quirk_free_form_empty_array_is_empty_object() {
    let c = decode_conversation(conversation(json!({
        "additional_attributes": [], "custom_attributes": {"plan": "gold"}, "ticket_info": null,
        "messages": [{"id": 1, "message_type": 1, "private": false, "sentiment": [], "content_attributes": []}],
    })));
    assert_eq!(
        c.additional_attributes.as_object().map(|m| m.is_empty()),
        Some(true)
    );
    assert_eq!(c.custom_attributes.get("plan"), Some(&json!("gold")));
    assert_eq!(c.ticket_info.as_object().map(|m| m.is_empty()), Some(true));
    assert_eq!(
        c.messages[0].sentiment.as_object().map(|m| m.is_empty()),
        Some(true)
    );
    let odd = decode_message(message(json!({"content_attributes": ["kept"]})));
    assert_eq!(
        odd.content_attributes.as_object(),
        None,
        "a non-empty array is kept, not lost"
    );
    assert_eq!(
        serde_json::to_value(&odd.content_attributes).unwrap(),
        json!(["kept"])
    );
}

#[test]
fn quirk_empty_string_thumbnail_avatar_and_urls_are_none() {
    let m = decode_message(message(json!({
        "sender": {"id": 41, "type": "user", "avatar_url": "", "thumbnail": "", "avatar": ""},
        "attachments": [{"id": 9, "file_type": "image", "data_url": "https://cdn/x.png", "thumb_url": ""}],
    })));
    let sender = m.sender.unwrap();
    assert_eq!(
        (sender.avatar_url, sender.thumbnail, sender.avatar),
        (None, None, None)
    );
    assert_eq!(
        m.attachments[0].data_url.as_deref(),
        Some("https://cdn/x.png")
    );
    assert_eq!(m.attachments[0].thumb_url, None);
}

#[test]
fn quirk_absent_and_null_keys_are_the_same() {
    let nulls = json!({
        "inbox_id": null, "account": null, "priority": null, "channel": null, "can_reply": null,
        "contact_inbox": null, "messages": null, "labels": null, "meta": null,
        "additional_attributes": null, "custom_attributes": null, "ticket_info": null,
        "snoozed_until": null, "unread_count": null, "first_reply_created_at": null,
        "waiting_since": null, "agent_last_seen_at": null, "contact_last_seen_at": null,
        "last_activity_at": null, "timestamp": null, "created_at": null, "updated_at": null,
        "conversation_category": null, "chat_mode": null,
    });
    assert_eq!(
        decode_conversation(conversation(nulls)),
        decode_conversation(conversation(json!({})))
    );
    let message_nulls = json!({
        "content": null, "content_type": null, "content_attributes": null,
        "additional_attributes": null, "source_id": null, "created_at": null, "sender": null,
        "inbox": null, "account": null, "conversation": null, "attachments": null,
        "conversation_topic_id": null, "user_id": null, "contact_id": null, "participants": null,
    });
    assert_eq!(
        decode_message(message(message_nulls)),
        decode_message(message(json!({})))
    );
}

#[test]
fn quirk_changed_attributes_null_or_absent_is_empty() {
    for changes in [json!({"changed_attributes": null}), json!({})] {
        let body = with_event("conversation_updated", conversation(changes));
        let Event::ConversationUpdated(u) = Event::decode(&body).unwrap() else {
            panic!("wrong variant");
        };
        assert!(u.changed_attributes.is_empty());
    }
}

#[test]
fn quirk_changed_attributes_values_of_any_type() {
    let body = with_event(
        "conversation_updated",
        conversation(json!({"changed_attributes": [
            {"status": {"previous_value": "open", "current_value": "resolved"}},
            {"label_list": {"previous_value": [], "current_value": ["vip"]}},
            {"assignee_id": {"previous_value": null, "current_value": 41}},
            {"custom_attributes": {"previous_value": {}, "current_value": {"plan": "gold"}}},
        ]})),
    );
    let Event::ConversationUpdated(u) = Event::decode(&body).unwrap() else {
        panic!("wrong variant");
    };
    let fields: Vec<_> = u
        .changed_attributes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(
        fields,
        ["status", "label_list", "assignee_id", "custom_attributes"]
    );
    assert_eq!(u.changed_attributes[1].current_value, json!(["vip"]));
    assert_eq!(u.changed_attributes[2].current_value, json!(41));
}

#[test]
fn quirk_conversation_status_changed_with_null_changed_attributes() {
    let body = with_event(
        "conversation_status_changed",
        conversation(json!({"status": "resolved", "changed_attributes": null})),
    );
    let Event::ConversationStatusChanged(c) = Event::decode(&body).unwrap() else {
        panic!("wrong variant");
    };
    assert_eq!(c.status, ConversationStatus::Resolved);
}

#[test]
fn quirk_typing_on_and_off() {
    for (name, private) in [
        ("conversation_typing_on", true),
        ("conversation_typing_off", false),
    ] {
        let body = with_event(
            name,
            json!({
                "user": {"id": 41, "name": "support", "email": "support@jiguang.cn", "type": "user"},
                "conversation": conversation(json!({"account": {"id": ACCOUNT_ID, "name": "1112"}})),
                "is_private": private,
            }),
        );
        let event = Event::decode(&body).unwrap();
        assert_eq!(event.event_type(), name);
        assert_eq!(event.key_ids().conversation.as_deref(), Some("89"));
        assert_eq!(event.personal().name.as_deref(), Some("support"));
        let (Event::ConversationTypingOn(t) | Event::ConversationTypingOff(t)) = event else {
            panic!("wrong variant");
        };
        assert_eq!(t.is_private, private);
        assert_eq!(t.user.unwrap().type_, Some(SenderType::User));
        assert_eq!(t.conversation.account.unwrap().id, ACCOUNT_ID);
    }
}

/// A Chatwoot contact `webhook_data`.
fn contact_body() -> Value {
    json!({
        "id": 42218348, "name": "Test", "avatar": "", "thumbnail": "", "type": "contact",
        "account": {"id": ACCOUNT_ID, "name": "1112"},
        "additional_attributes": {"city": "Bangkok"}, "custom_attributes": [],
        "email": "alice@acme.inc", "identifier": null, "phone_number": "+123456789",
        "blocked": false,
    })
}

#[test]
fn contact_created() {
    let event = Event::decode(&with_event("contact_created", contact_body())).unwrap();
    let expected_ids = KeyIds {
        contact: Some("42218348".into()),
        account: Some(ACCOUNT_ID.to_string()),
        ..KeyIds::default()
    };
    assert_eq!(event.key_ids(), expected_ids);
    assert_eq!(event.personal().name.as_deref(), Some("Test"));
    let Event::ContactCreated(c) = event else {
        panic!("wrong variant")
    };
    assert_eq!(c.avatar, None);
    assert_eq!(c.phone_number.as_deref(), Some("+123456789"));
    assert_eq!(c.additional_attributes.get("city"), Some(&json!("Bangkok")));
    assert_eq!(c.blocked, Some(false));
    assert!(c.changed_attributes.is_empty());
}

#[test]
fn contact_updated() {
    let mut body = contact_body();
    body["changed_attributes"] =
        json!([{"name": {"previous_value": "Tester", "current_value": "Test"}}]);
    let Event::ContactUpdated(c) = Event::decode(&with_event("contact_updated", body)).unwrap()
    else {
        panic!("wrong variant");
    };
    assert_eq!(c.changed_attributes[0].field, "name");
    assert_eq!(c.changed_attributes[0].previous_value, json!("Tester"));
}

#[test]
fn webwidget_triggered() {
    let body = json!({
        "id": 42213404, "source_id": "1d484823-da29-4086-a7ba-d65ad0ebb588",
        "contact": {"id": 42218348, "name": "Visitor", "avatar": "", "type": "contact"},
        "inbox": {"id": 7, "name": "Website"},
        "account": {"id": ACCOUNT_ID, "name": "1112"},
        "current_conversation": conversation(json!({"id": 90})),
        "event_info": {"referer": "https://acme.inc/pricing", "widget_language": null,
                       "browser_language": "th", "initiated_at": {"timestamp": "Wed Jan 21 2026"}},
    });
    let event = Event::decode(&with_event("webwidget_triggered", body)).unwrap();
    assert_eq!(event.key_ids().conversation.as_deref(), Some("90"));
    assert_eq!(event.key_ids().contact.as_deref(), Some("42218348"));
    assert_eq!(event.personal().name.as_deref(), Some("Visitor"));
    let Event::WebwidgetTriggered(w) = event else {
        panic!("wrong variant")
    };
    assert_eq!(w.inbox.unwrap().name.as_deref(), Some("Website"));
    assert_eq!(w.event_info.get("browser_language"), Some(&json!("th")));
}

/// Chatwoot's `Inbox::EventDataPresenter#push_data` (it sends no id or name).
fn inbox_body() -> Value {
    json!({
        "allow_messages_after_resolved": true, "lock_to_single_conversation": false,
        "auto_assignment_config": {}, "enable_auto_assignment": true,
        "enable_email_collect": true, "greeting_enabled": false, "greeting_message": null,
        "csat_survey_enabled": false, "business_name": null, "sender_name_type": "friendly",
        "timezone": "Asia/Bangkok", "out_of_office_message": null, "working_hours_enabled": false,
        "working_hours": [{"day_of_week": 1, "closed_all_day": false}],
        "created_at": "2026-01-21T03:00:00.000Z", "updated_at": "2026-01-21T03:00:00.000Z",
        "channel": {"id": 12, "webhook_url": "https://hooks.example/livedesk/t0k3n"},
    })
}

#[test]
fn inbox_created() {
    let event = Event::decode(&with_event("inbox_created", inbox_body())).unwrap();
    assert_eq!(event.key_ids(), KeyIds::default());
    let Event::InboxCreated(i) = event else {
        panic!("wrong variant")
    };
    assert_eq!(i.id, None);
    assert_eq!(i.timezone.as_deref(), Some("Asia/Bangkok"));
    assert_eq!(i.created_at, Some(iso("2026-01-21T03:00:00Z")));
    assert_eq!(i.channel.get("id"), Some(&json!(12)));
    assert_eq!(i.working_hours[0]["day_of_week"], json!(1));
}

#[test]
fn inbox_updated() {
    let mut body = inbox_body();
    body["id"] = json!(523);
    body["name"] = json!("Test01");
    body["changed_attributes"] =
        json!([{"timezone": {"previous_value": "UTC", "current_value": "Asia/Bangkok"}}]);
    let Event::InboxUpdated(i) = Event::decode(&with_event("inbox_updated", body)).unwrap() else {
        panic!("wrong variant");
    };
    assert_eq!((i.id, i.name.as_deref()), (Some(523), Some("Test01")));
    assert_eq!(i.changed_attributes[0].current_value, json!("Asia/Bangkok"));
}

#[test]
fn quirk_unknown_event_is_other() {
    let body = br#"{"id": 1, "payload": [1, 2], "event": "conversation_exploded"}"#;
    let event = Event::decode(body).unwrap();
    assert_eq!(event.event_type(), "conversation_exploded");
    assert_eq!(event.key_ids(), KeyIds::default());
    assert_eq!(event.personal(), PersonalData::default());
    let Event::Other { event_type, data } = event else {
        panic!("wrong variant")
    };
    assert_eq!(event_type, "conversation_exploded");
    assert_eq!(
        data,
        json!({"id": 1, "payload": [1, 2], "event": "conversation_exploded"})
    );
}

#[test]
fn quirk_unknown_enum_values_are_other() {
    let c = decode_conversation(conversation(
        json!({"status": "archived", "priority": "critical"}),
    ));
    assert_eq!(c.status, ConversationStatus::Other("archived".into()));
    assert_eq!(c.priority, Some(Priority::Other("critical".into())));
    let known = decode_conversation(conversation(
        json!({"status": "snoozed", "priority": "urgent"}),
    ));
    assert_eq!(
        (known.status, known.priority),
        (ConversationStatus::Snoozed, Some(Priority::Urgent))
    );
}

#[test]
fn quirk_new_keys_are_ignored() {
    let c = decode_conversation(conversation(
        json!({"uuid": "abc", "sla_policy": {"id": 1}}),
    ));
    assert_eq!(c.id, 89);
}

#[test]
fn wrong_typed_field_is_an_error_and_peek_still_works() {
    for bad_id in [json!("abc"), json!({"id": 89})] {
        let body = with_event("message_created", message(json!({"id": bad_id})));
        let error = Event::decode(&body).unwrap_err().to_string();
        assert!(error.contains("message_created"), "{error}");
        assert!(error.contains("line 1 column"), "{error}");
        assert_eq!(peek_type(&body).as_deref(), Some("message_created"));
    }
    let pretty = String::from_utf8_lossy(MESSAGE_CREATED).replace(
        "\"id\": 2187685,\n  \"inbox\"",
        "\"id\": \"abc\",\n  \"inbox\"",
    );
    let error = Event::decode(pretty.as_bytes()).unwrap_err().to_string();
    assert!(error.contains("invalid type: string \"abc\""), "{error}");
    assert!(error.contains("line 111 column"), "{error}");
}

#[test]
fn missing_private_flag_is_an_error_not_a_public_message() {
    let body = with_event(
        "message_created",
        json!({"id": 1, "message_type": "outgoing"}),
    );
    assert!(Event::decode(&body).is_err());
}

#[test]
fn non_json_and_missing_event_are_errors() {
    for body in [
        &b"not json"[..],
        b"[1, 2]",
        br#"{"id": 1}"#,
        br#"{"event": 7}"#,
        b"",
    ] {
        assert!(
            Event::decode(body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(peek_type(body), None);
    }
}

#[test]
fn message_with_attachments() {
    let m = decode_message(message(json!({
        "content": null,
        "message_type": "incoming",
        "attachments": [
            {"id": 9, "message_id": 2187685, "file_type": "image", "account_id": ACCOUNT_ID,
             "extension": "png", "data_url": "https://cdn/x.png", "thumb_url": "https://cdn/x_t.png",
             "file_size": 1024, "width": 640, "height": 480.0},
            {"id": 10, "message_id": 2187685, "file_type": "location", "account_id": ACCOUNT_ID,
             "coordinates_lat": 13.75, "coordinates_long": 100.5, "fallback_title": "Bangkok",
             "data_url": ""},
        ],
    })));
    assert_eq!(m.content, None);
    assert_eq!(m.attachments.len(), 2);
    let image = &m.attachments[0];
    assert_eq!(image.file_type.as_deref(), Some("image"));
    assert_eq!(image.file_size, Some(1024));
    assert_eq!(image.width.as_ref().and_then(|w| w.as_i64()), Some(640));
    assert_eq!(image.height.as_ref().and_then(|h| h.as_f64()), Some(480.0));
    let place = &m.attachments[1];
    assert_eq!(
        (place.coordinates_lat, place.coordinates_long),
        (Some(13.75), Some(100.5))
    );
    assert_eq!(place.data_url, None);
}

/// The card lines of an event as `(group, label, value, personal)`.
fn card(event: &Event) -> Vec<(&'static str, &'static str, String, bool)> {
    let fields = event.card().into_iter();
    fields
        .map(|f| (f.group, f.label, f.value, f.personal))
        .collect()
}

#[test]
fn a_message_card_shows_conversation_sender_message_and_attachments() {
    let mut body: Value = serde_json::from_slice(MESSAGE_CREATED).unwrap();
    body["attachments"] = json!([{"id": 7, "file_type": "image", "file_size": 2048,
        "data_url": "https://files.example/a.png"}]);
    let event = Event::decode(body.to_string().as_bytes()).unwrap();
    let lines = card(&event);
    let has = |group, label, value: &str, personal| {
        lines.contains(&(group, label, value.to_string(), personal))
    };
    assert!(
        has("Conversation", "Conversation id", "89", false),
        "{lines:?}"
    );
    assert!(has("Conversation", "Status", "open", false));
    assert!(has("Message", "Type", "outgoing", false));
    assert!(has("Message", "Private note", "false", false));
    assert!(has(
        "Message",
        "Content",
        "สวัสดีคุณต้องการความช่วยเหลืออะไร",
        true
    ));
    assert!(has("Attachment", "File type", "image", false));
    assert!(has("Attachment", "Size (bytes)", "2048", false));
    assert!(has(
        "Attachment",
        "File",
        "https://files.example/a.png",
        true
    ));
    assert!(lines.iter().any(|l| l.0 == "Sender" && l.1 == "Kind"));
}

#[test]
fn a_conversation_card_shows_its_contact_with_personal_fields_marked() {
    let event = Event::decode(CONVERSATION_CREATED).unwrap();
    let lines = card(&event);
    assert!(
        lines.contains(&("Contact", "E-mail", "alice@acme.inc".into(), true)),
        "{lines:?}"
    );
    assert!(lines.contains(&("Conversation", "Conversation id", "89".into(), false)));
}
